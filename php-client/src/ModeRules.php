<?php

declare(strict_types=1);

namespace Phpsessd;

/**
 * Client-side mode rules: `METHOD PATH MODE; ...`, first match wins.
 *
 * METHOD is an HTTP method or `*`; it may be left out (`PATH MODE`), which
 * means any method. PATH is a glob on the request path without the query
 * string where `*` matches any run of characters, `/` included, the same
 * reading the daemon gives its own mode rules. Example:
 * `POST /checkout/* locked; GET /api/* readonly; * optimistic`.
 */
final class ModeRules
{
    /** @var array<int, array{0: string, 1: string, 2: string}> method, regex, mode */
    private $rules;

    /**
     * @param array<int, array{0: string, 1: string, 2: string}> $rules method, path glob, mode
     */
    public function __construct(array $rules)
    {
        $this->rules = [];
        foreach ($rules as $rule) {
            $this->rules[] = [
                strtoupper($rule[0]),
                self::globToRegex($rule[1]),
                Config::mode($rule[2], 'phpsessd.rules'),
            ];
        }
    }

    /**
     * @throws \InvalidArgumentException naming the broken rule
     */
    public static function parse(string $text): self
    {
        $rules = [];
        foreach (preg_split('/[;\n]/', $text) ?: [] as $chunk) {
            $chunk = trim($chunk);
            if ($chunk === '') {
                continue;
            }
            $parts = preg_split('/\s+/', $chunk) ?: [];
            if (count($parts) === 2) {
                array_unshift($parts, '*');
            }
            if (count($parts) !== 3) {
                throw new \InvalidArgumentException(
                    'phpsessd.rules: "' . $chunk . '" is not "METHOD PATH MODE" or "PATH MODE"'
                );
            }
            $rules[] = $parts;
        }

        return new self($rules);
    }

    public function isEmpty(): bool
    {
        return $this->rules === [];
    }

    /**
     * The mode of the first matching rule, or null when none matches.
     */
    public function match(string $method, string $path): ?string
    {
        $method = strtoupper($method);
        foreach ($this->rules as $rule) {
            if (($rule[0] === '*' || $rule[0] === $method) && preg_match($rule[1], $path) === 1) {
                return $rule[2];
            }
        }

        return null;
    }

    private static function globToRegex(string $glob): string
    {
        $parts = explode('*', $glob);
        $quoted = array_map(static function (string $part): string {
            return preg_quote($part, '~');
        }, $parts);

        return '~\A' . implode('.*', $quoted) . '\z~s';
    }
}
