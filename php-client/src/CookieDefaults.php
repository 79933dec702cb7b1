<?php

declare(strict_types=1);

namespace Phpsessd;

/**
 * Safer session cookie settings for apps that never chose their own.
 *
 * A setting is changed only while ini_get() still shows PHP's built-in
 * default, so any value an app, a pool or a php.ini set to something else is
 * left alone. A php.ini line that spells out the default (Debian's
 * `session.use_strict_mode = 0`) cannot be told apart from no line at all;
 * `phpsessd.cookie_defaults = 0` turns all of this off for such setups.
 */
final class CookieDefaults
{
    /**
     * @param array<string, mixed> $server $_SERVER
     * @return array<string, string> what was changed, for tests and debugging
     */
    public static function apply(array $server): array
    {
        if (session_status() !== PHP_SESSION_NONE || headers_sent()) {
            return [];
        }
        $wanted = [
            'session.cookie_httponly' => '1',
            'session.cookie_samesite' => 'Lax',
            'session.use_strict_mode' => '1',
        ];
        if (self::isHttps($server)) {
            $wanted['session.cookie_secure'] = '1';
        }
        $changed = [];
        foreach ($wanted as $key => $value) {
            $current = ini_get($key);
            // Booleans at their default read back as "" or "0"; samesite as "".
            if (($current === '' || $current === '0') && ini_set($key, $value) !== false) {
                $changed[$key] = $value;
            }
        }

        return $changed;
    }

    /**
     * Only what the web server itself reports: X-Forwarded-Proto is set by
     * the client unless a trusted proxy rewrites it, so it is not trusted here.
     *
     * @param array<string, mixed> $server
     */
    public static function isHttps(array $server): bool
    {
        if (
            isset($server['HTTPS']) && is_string($server['HTTPS'])
            && $server['HTTPS'] !== '' && strtolower($server['HTTPS']) !== 'off'
        ) {
            return true;
        }

        return isset($server['REQUEST_SCHEME']) && is_string($server['REQUEST_SCHEME'])
            && strtolower($server['REQUEST_SCHEME']) === 'https';
    }
}
