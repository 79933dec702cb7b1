<?php

declare(strict_types=1);

namespace Phpsessd\Tests\Support;

/**
 * Runs small PHP scripts in child php-cli processes with bootstrap.php
 * prepended, the way an unmodified app would run under phpsessd. Sessions
 * in the PHPUnit process itself would share one PHP session state between
 * tests; a child per request is also closer to a PHP worker.
 */
final class PhpRunner
{
    /** @var string|null */
    private static $scriptDir = null;

    /**
     * @param array<string, string|int> $ini   extra -d settings
     * @param array<int, string>         $args  $argv[1..]
     * @param array<string, string>      $env   extra environment variables
     * @return array{out: string, err: string, exit: int, json: mixed}
     */
    public static function run(string $code, array $ini = [], array $args = [], array $env = []): array
    {
        return self::wait(self::start($code, $ini, $args, $env));
    }

    /**
     * Starts a child without waiting, for requests that must overlap.
     *
     * @param array<string, string|int> $ini
     * @param array<int, string>         $args
     * @param array<string, string>      $env
     * @return array<string, mixed> a handle for wait()
     */
    public static function start(string $code, array $ini = [], array $args = [], array $env = []): array
    {
        $dir = self::scriptDir();
        $script = $dir . '/s' . bin2hex(random_bytes(6)) . '.php';
        file_put_contents($script, "<?php\n" . $code . "\n");
        $settings = array_merge([
            'display_errors' => 'stderr',
            'display_startup_errors' => '1',
            'log_errors' => '0',
            'html_errors' => '0',
            'error_reporting' => '-1',
            'session.use_cookies' => '0',
            'session.cache_limiter' => '',
            // Without a php.ini, PHP runs its gc on 1 % of session starts;
            // tests that count the daemon's commands must not see a stray GC.
            'session.gc_probability' => '0',
            'auto_prepend_file' => dirname(__DIR__, 2) . '/bootstrap.php',
        ], $ini);
        $command = [PHP_BINARY, '-n'];
        foreach ($settings as $key => $value) {
            $command[] = '-d';
            $command[] = $key . '=' . $value;
        }
        $command[] = $script;
        foreach ($args as $arg) {
            $command[] = $arg;
        }

        $environment = [];
        foreach (getenv() as $name => $value) {
            if (strncmp((string) $name, 'PHPSESSD_', 9) !== 0) {
                $environment[$name] = $value;
            }
        }
        $environment = array_merge($environment, $env);

        $out = $script . '.out';
        $err = $script . '.err';
        $process = proc_open(
            'exec ' . implode(' ', array_map('escapeshellarg', $command)),
            [0 => ['file', '/dev/null', 'r'], 1 => ['file', $out, 'w'], 2 => ['file', $err, 'w']],
            $pipes,
            null,
            $environment
        );
        if (!is_resource($process)) {
            throw new \RuntimeException('cannot run php');
        }

        return ['process' => $process, 'script' => $script, 'out' => $out, 'err' => $err];
    }

    /**
     * @param array<string, mixed> $handle
     * @return array{out: string, err: string, exit: int, json: mixed}
     */
    public static function wait(array $handle, float $timeout = 60.0): array
    {
        $deadline = microtime(true) + $timeout;
        $exit = -1;
        while (true) {
            $status = proc_get_status($handle['process']);
            if (!$status['running']) {
                $exit = $status['exitcode'];
                break;
            }
            if (microtime(true) > $deadline) {
                proc_terminate($handle['process'], 9);
                break;
            }
            usleep(5000);
        }
        proc_close($handle['process']);
        $out = (string) file_get_contents($handle['out']);
        $err = (string) file_get_contents($handle['err']);
        @unlink($handle['script']);
        @unlink($handle['out']);
        @unlink($handle['err']);
        $lines = explode("\n", rtrim($out, "\n"));
        $json = json_decode((string) end($lines), true);

        return ['out' => $out, 'err' => $err, 'exit' => $exit, 'json' => $json];
    }

    private static function scriptDir(): string
    {
        if (self::$scriptDir === null) {
            self::$scriptDir = TempDir::create('psrun');
            $dir = self::$scriptDir;
            register_shutdown_function(static function () use ($dir): void {
                TempDir::remove($dir);
            });
        }

        return self::$scriptDir;
    }
}
