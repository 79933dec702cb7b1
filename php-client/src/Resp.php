<?php

declare(strict_types=1);

namespace Phpsessd;

use Phpsessd\Exception\ProtocolException;

/**
 * RESP2 framing: requests are arrays of bulk strings, replies any RESP2
 * value. Pure functions on strings so they can be tested without a socket.
 */
final class Resp
{
    /**
     * Guards against a corrupt length making us wait for (and allocate)
     * gigabytes; well above the daemon's own frame limit.
     */
    public const MAX_BULK = 536870912;

    /** Replies from phpsessd are at most two levels deep; 32 is generous. */
    public const MAX_DEPTH = 32;

    /**
     * @param array<int, string|int> $args
     */
    public static function encode(array $args): string
    {
        $out = '*' . count($args) . "\r\n";
        foreach ($args as $arg) {
            if (is_int($arg)) {
                $arg = (string) $arg;
            } elseif (!is_string($arg)) {
                throw new \InvalidArgumentException(
                    'RESP arguments must be strings or integers, got ' . gettype($arg)
                );
            }
            $out .= '$' . strlen($arg) . "\r\n" . $arg . "\r\n";
        }

        return $out;
    }

    /**
     * Parses one reply starting at $offset.
     *
     * Returns [value, offset after the reply], or null when $buffer ends
     * before the reply does (the caller reads more and tries again). Values:
     * simple string → string, error → RespError, integer → int, bulk →
     * string, null bulk / null array → null, array → list.
     *
     * @return array{0: mixed, 1: int}|null
     * @throws ProtocolException on bytes that can never become a valid reply
     */
    public static function parse(string $buffer, int $offset = 0, int $depth = 0): ?array
    {
        if ($depth > self::MAX_DEPTH) {
            throw new ProtocolException('reply nested deeper than ' . self::MAX_DEPTH . ' levels');
        }
        $end = strpos($buffer, "\r\n", $offset);
        if ($end === false) {
            if (strlen($buffer) - $offset > 65536) {
                throw new ProtocolException('reply header longer than 64 KiB');
            }
            return null;
        }
        if ($end === $offset) {
            throw new ProtocolException('empty reply line');
        }
        $type = $buffer[$offset];
        $line = (string) substr($buffer, $offset + 1, $end - $offset - 1);
        $next = $end + 2;

        switch ($type) {
            case '+':
                return [$line, $next];
            case '-':
                return [RespError::fromLine($line), $next];
            case ':':
                return [self::integer($line), $next];
            case '$':
                $length = self::integer($line);
                if ($length === -1) {
                    return [null, $next];
                }
                if ($length < 0 || $length > self::MAX_BULK) {
                    throw new ProtocolException('invalid bulk length ' . $line);
                }
                if (strlen($buffer) < $next + $length + 2) {
                    return null;
                }
                if (substr($buffer, $next + $length, 2) !== "\r\n") {
                    throw new ProtocolException('bulk string not terminated by CRLF');
                }
                return [(string) substr($buffer, $next, $length), $next + $length + 2];
            case '*':
                $count = self::integer($line);
                if ($count === -1) {
                    return [null, $next];
                }
                if ($count < 0 || $count > self::MAX_BULK) {
                    throw new ProtocolException('invalid array length ' . $line);
                }
                $items = [];
                for ($i = 0; $i < $count; $i++) {
                    $item = self::parse($buffer, $next, $depth + 1);
                    if ($item === null) {
                        return null;
                    }
                    $items[] = $item[0];
                    $next = $item[1];
                }
                return [$items, $next];
            default:
                throw new ProtocolException(sprintf('unknown reply type byte 0x%02x', ord($type)));
        }
    }

    private static function integer(string $text): int
    {
        // Every integer the daemon sends is canonical, which this checks
        // without a regex; anything else gets the slow path and its message.
        $value = (int) $text;
        if ((string) $value === $text) {
            return $value;
        }
        if (preg_match('/\A-?[0-9]{1,19}\z/', $text) !== 1) {
            throw new ProtocolException('invalid integer in reply: ' . substr($text, 0, 32));
        }
        $value = (int) $text;
        if ((string) $value !== $text && $text !== '-0') {
            throw new ProtocolException('integer out of range in reply: ' . $text);
        }

        return $value;
    }
}
