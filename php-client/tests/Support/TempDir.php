<?php

declare(strict_types=1);

namespace Phpsessd\Tests\Support;

/**
 * Short temp directories: unix socket paths are limited to ~107 bytes.
 */
final class TempDir
{
    public static function create(string $prefix): string
    {
        $dir = sys_get_temp_dir() . '/' . $prefix . bin2hex(random_bytes(4));
        if (!mkdir($dir, 0700) && !is_dir($dir)) {
            throw new \RuntimeException('cannot create ' . $dir);
        }

        return $dir;
    }

    public static function remove(string $dir): void
    {
        if (!is_dir($dir)) {
            return;
        }
        foreach (scandir($dir) ?: [] as $entry) {
            if ($entry === '.' || $entry === '..') {
                continue;
            }
            $path = $dir . '/' . $entry;
            if (is_dir($path) && !is_link($path)) {
                self::remove($path);
            } else {
                @unlink($path);
            }
        }
        @rmdir($dir);
    }

    public static function freePort(): int
    {
        $server = stream_socket_server('tcp://127.0.0.1:0', $errno, $errstr);
        if ($server === false) {
            throw new \RuntimeException('no free port: ' . $errstr);
        }
        $name = stream_socket_get_name($server, false);
        fclose($server);

        return (int) substr((string) $name, strrpos((string) $name, ':') + 1);
    }

    public static function waitFor(callable $ready, float $seconds): bool
    {
        $deadline = microtime(true) + $seconds;
        do {
            if ($ready()) {
                return true;
            }
            usleep(20000);
        } while (microtime(true) < $deadline);

        return false;
    }
}
