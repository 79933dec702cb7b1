<?php

declare(strict_types=1);

namespace Phpsessd\Tests\Support;

/**
 * tests/fixtures/fake-daemon.php on a temp unix socket.
 */
final class FakeDaemon
{
    /** @var string */
    private $dir;

    /** @var BackgroundProcess */
    private $process;

    /** @var string */
    public $address;

    public function __construct(string $scenario)
    {
        $this->dir = TempDir::create('psfake');
        $this->address = 'unix://' . $this->dir . '/fake.sock';
        $this->process = new BackgroundProcess([
            PHP_BINARY,
            '-n',
            dirname(__DIR__) . '/fixtures/fake-daemon.php',
            $scenario,
            $this->address,
            $this->dir . '/commands.log',
        ], $this->dir);
        // The socket file appears at bind(), before listen(): wait for the
        // line the fake prints once it is really listening.
        $ready = TempDir::waitFor(function (): bool {
            return strpos($this->process->output(), "ready\n") !== false;
        }, 5.0);
        if (!$ready) {
            $this->stop();
            throw new \RuntimeException('fake daemon did not start: ' . $this->process->output());
        }
    }

    /**
     * @return array<int, string> "connection COMMAND" lines
     */
    public function commands(): array
    {
        $log = (string) @file_get_contents($this->dir . '/commands.log');

        return $log === '' ? [] : explode("\n", rtrim($log, "\n"));
    }

    public function stop(): void
    {
        $this->process->stop();
        TempDir::remove($this->dir);
    }
}
