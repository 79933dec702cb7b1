<?php

declare(strict_types=1);

namespace Phpsessd\Tests\Support;

use Phpsessd\Connection;

/**
 * The real phpsessd, built from this repository (or $PHPSESSD_BIN), serving
 * a memory store on a temp unix socket and on a TCP port with a token. One
 * daemon is shared by all tests of a run and stopped at the end.
 */
final class Daemon
{
    public const TOKEN = 'test-token-5b1e';

    /** Short so the tests can watch a regenerate alias expire. */
    public const GRACE_MS = 3000;

    /** Short so a test can watch a lock wait time out. */
    public const LOCK_WAIT_MS = 1500;

    /** @var self|null */
    private static $shared = null;

    /** @var string|null why the daemon is not available */
    private static $failure = null;

    /** @var string */
    public $unixAddress;

    /** @var string */
    public $tcpAddress;

    /** @var string */
    private $dir;

    /** @var BackgroundProcess|null */
    private $process = null;

    /**
     * @throws \RuntimeException with the reason when it cannot be started
     */
    public static function shared(): self
    {
        if (self::$shared !== null) {
            return self::$shared;
        }
        if (self::$failure !== null) {
            throw new \RuntimeException(self::$failure);
        }
        try {
            self::$shared = new self();
        } catch (\RuntimeException $e) {
            self::$failure = $e->getMessage();
            throw $e;
        }

        return self::$shared;
    }

    public static function stopShared(): void
    {
        if (self::$shared !== null) {
            self::$shared->stop();
            self::$shared = null;
        }
    }

    private function __construct()
    {
        $this->dir = TempDir::create('psd');
        try {
            $binary = self::binary($this->dir);
        } catch (\RuntimeException $e) {
            TempDir::remove($this->dir);
            throw $e;
        }
        $socket = $this->dir . '/phpsessd.sock';
        $port = TempDir::freePort();
        $this->unixAddress = 'unix://' . $socket;
        $this->tcpAddress = 'tcp://127.0.0.1:' . $port;

        $args = [
            $binary,
            'serve',
            '--listen', $this->unixAddress,
            '--listen', $this->tcpAddress,
            '--token', self::TOKEN,
            '--store', 'memory://',
            '--regenerate-grace', self::GRACE_MS . 'ms',
            '--lock-wait', self::LOCK_WAIT_MS . 'ms',
            // Only requests that set REMOTE_ADDR (FingerprintTest) send
            // fingerprint inputs; the CLI requests of other tests do not.
            '--fingerprint', 'ua,ip',
        ];
        $extra = getenv('PHPSESSD_SERVE_ARGS');
        if (is_string($extra) && trim($extra) !== '') {
            $args = array_merge([$binary], preg_split('/\s+/', trim(strtr($extra, [
                '{unix}' => $this->unixAddress,
                '{tcp}' => $this->tcpAddress,
                '{token}' => self::TOKEN,
            ]))) ?: []);
        }
        $this->process = new BackgroundProcess($args, $this->dir);

        $ready = TempDir::waitFor(function (): bool {
            if (!$this->process->isRunning()) {
                return true;
            }
            if (!file_exists(substr($this->unixAddress, 7))) {
                return false;
            }
            try {
                $connection = new Connection($this->unixAddress, null, 0.5, 1.0);
                $connection->command(['PING'], true);
                $connection->close();
                return true;
            } catch (\Throwable $e) {
                return false;
            }
        }, 15.0);
        if (!$ready || !$this->process->isRunning()) {
            $output = $this->process->output();
            $this->stop();
            throw new \RuntimeException('phpsessd serve did not come up: ' . trim($output));
        }
    }

    public function output(): string
    {
        return $this->process !== null ? $this->process->output() : '';
    }

    public function stop(): void
    {
        if ($this->process !== null) {
            $this->process->stop();
            $this->process = null;
        }
        TempDir::remove($this->dir);
    }

    private static function binary(string $dir): string
    {
        $env = getenv('PHPSESSD_BIN');
        if (is_string($env) && $env !== '') {
            if (!is_executable($env)) {
                throw new \RuntimeException('PHPSESSD_BIN=' . $env . ' is not executable');
            }
            return $env;
        }
        $repo = dirname(__DIR__, 3);
        $binary = $dir . '/phpsessd';
        $path = (string) getenv('PATH');
        $command = sprintf(
            'cd %s && PATH=%s go build -o %s ./cmd/phpsessd 2>&1',
            escapeshellarg($repo),
            escapeshellarg($path . ':/usr/local/go/bin'),
            escapeshellarg($binary)
        );
        exec($command, $output, $status);
        if ($status !== 0 || !is_executable($binary)) {
            throw new \RuntimeException('go build ./cmd/phpsessd failed: ' . implode("\n", $output));
        }

        return $binary;
    }
}
