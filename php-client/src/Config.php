<?php

declare(strict_types=1);

namespace Phpsessd;

/**
 * Client settings, gathered from php.ini and the environment.
 *
 * Every setting has a php.ini key (`phpsessd.<name>`, read with get_cfg_var()
 * because PHP has no registered ini entry for it) and a variable
 * (`PHPSESSD_<NAME>`). The variable wins: it is looked up first in $_SERVER,
 * which carries FastCGI params and, depending on variables_order, the
 * process environment, then with getenv(). So a pool or a vhost can
 * override the machine-wide php.ini.
 */
final class Config
{
    public const MODES = ['optimistic', 'readonly', 'locked'];

    /** @var string|null */
    public $address = null;

    /** @var string|null null: let the daemon (or the rules) decide */
    public $mode = null;

    /** @var string|null */
    public $token = null;

    /** @var ModeRules */
    public $rules;

    /** @var float seconds */
    public $connectTimeout = 1.0;

    /** @var float seconds */
    public $timeout = 5.0;

    /** @var int|null milliseconds; null: the daemon's --lock-wait */
    public $lockWait = null;

    /** @var bool */
    public $persistent = false;

    /** @var bool */
    public $cookieDefaults = true;

    /**
     * The daemon's default lock wait, used to size the socket timeout of a
     * READ that may wait for a lock when no lock_wait is configured.
     */
    public const DAEMON_DEFAULT_LOCK_WAIT_MS = 30000;

    public function __construct()
    {
        $this->rules = new ModeRules([]);
    }

    /**
     * @param array<string, mixed>|null $server $_SERVER, injectable for tests
     *
     * @throws \InvalidArgumentException on a malformed value: a wrong setting
     *                                   must not silently fall back to
     *                                   something else
     */
    public static function fromEnvironment(?array $server = null): self
    {
        if ($server === null) {
            $server = isset($_SERVER) && is_array($_SERVER) ? $_SERVER : [];
        }
        $lookup = static function (string $name) use ($server): ?string {
            $var = 'PHPSESSD_' . strtoupper($name);
            if (isset($server[$var]) && is_scalar($server[$var]) && (string) $server[$var] !== '') {
                return (string) $server[$var];
            }
            $env = getenv($var);
            if (is_string($env) && $env !== '') {
                return $env;
            }
            $ini = get_cfg_var('phpsessd.' . $name);
            if (is_string($ini) && $ini !== '') {
                return $ini;
            }
            return null;
        };

        return self::fromLookup($lookup);
    }

    /**
     * @param array<string, string> $values keys as in php.ini without the prefix
     */
    public static function fromArray(array $values): self
    {
        return self::fromLookup(static function (string $name) use ($values): ?string {
            return isset($values[$name]) && (string) $values[$name] !== '' ? (string) $values[$name] : null;
        });
    }

    /**
     * @param callable(string): ?string $lookup
     */
    private static function fromLookup(callable $lookup): self
    {
        $config = new self();
        $address = $lookup('address');
        if ($address !== null) {
            $config->address = Connection::normalizeAddress($address);
        }
        $mode = $lookup('mode');
        if ($mode !== null) {
            $config->mode = self::mode($mode, 'phpsessd.mode');
        }
        $config->token = $lookup('token');
        $tokenFile = $lookup('token_file');
        if ($config->token === null && $tokenFile !== null) {
            $token = @file_get_contents($tokenFile);
            if (!is_string($token) || trim($token) === '') {
                throw new \InvalidArgumentException('phpsessd.token_file ' . $tokenFile . ' is unreadable or empty');
            }
            $config->token = trim($token);
        }
        $rules = $lookup('rules');
        if ($rules !== null) {
            $config->rules = ModeRules::parse($rules);
        }
        $config->connectTimeout = self::seconds($lookup('connect_timeout'), 'connect_timeout', 1.0);
        $config->timeout = self::seconds($lookup('timeout'), 'timeout', 5.0);
        $lockWait = $lookup('lock_wait');
        if ($lockWait !== null) {
            $config->lockWait = self::milliseconds($lockWait, 'lock_wait');
        }
        $config->persistent = self::flag($lookup('persistent'), 'persistent', false);
        $config->cookieDefaults = self::flag($lookup('cookie_defaults'), 'cookie_defaults', true);

        return $config;
    }

    public static function mode(string $mode, string $what): string
    {
        $mode = strtolower(trim($mode));
        if (!in_array($mode, self::MODES, true)) {
            throw new \InvalidArgumentException(
                $what . ' must be one of ' . implode(', ', self::MODES) . ', got ' . $mode
            );
        }

        return $mode;
    }

    private static function seconds(?string $value, string $name, float $default): float
    {
        if ($value === null) {
            return $default;
        }
        $value = trim($value);
        if (!is_numeric($value) || (float) $value <= 0) {
            throw new \InvalidArgumentException('phpsessd.' . $name . ' must be seconds > 0, got ' . $value);
        }

        return (float) $value;
    }

    /**
     * Bare numbers are milliseconds; Go-style durations ("500ms", "30s",
     * "1m30s") are accepted too, because the daemon reads the same
     * PHPSESSD_LOCK_WAIT variable in that form and the two often share an
     * environment.
     */
    private static function milliseconds(string $value, string $name): int
    {
        $value = trim($value);
        if (preg_match('/\A[0-9]{1,9}\z/', $value) === 1) {
            return (int) $value;
        }
        $units = ['ms' => 1, 's' => 1000, 'm' => 60000, 'h' => 3600000];
        if (preg_match('/\A(?:[0-9]+(?:\.[0-9]+)?(?:ms|s|m|h))+\z/', $value) === 1) {
            preg_match_all('/([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)/', $value, $parts, PREG_SET_ORDER);
            $total = 0.0;
            foreach ($parts as $part) {
                $total += (float) $part[1] * $units[$part[2]];
            }
            if ($total <= 999999999) {
                return (int) round($total);
            }
        }
        throw new \InvalidArgumentException(
            'phpsessd.' . $name . ' must be milliseconds or a duration like 500ms or 30s, got ' . $value
        );
    }

    private static function flag(?string $value, string $name, bool $default): bool
    {
        if ($value === null) {
            return $default;
        }
        $parsed = filter_var($value, FILTER_VALIDATE_BOOLEAN, FILTER_NULL_ON_FAILURE);
        if ($parsed === null) {
            throw new \InvalidArgumentException('phpsessd.' . $name . ' must be on/off, got ' . $value);
        }

        return $parsed;
    }
}
