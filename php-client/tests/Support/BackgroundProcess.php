<?php

declare(strict_types=1);

namespace Phpsessd\Tests\Support;

/**
 * A process that runs beside the tests (daemon, fake daemon), with its
 * output kept in files so a full pipe never blocks it.
 */
final class BackgroundProcess
{
    /** @var resource */
    private $process;

    /** @var string */
    private $outFile;

    /** @var string */
    private $errFile;

    /**
     * @param array<int, string> $command
     */
    public function __construct(array $command, string $logDir)
    {
        $this->outFile = $logDir . '/stdout.log';
        $this->errFile = $logDir . '/stderr.log';
        $spec = [
            0 => ['file', '/dev/null', 'r'],
            1 => ['file', $this->outFile, 'a'],
            2 => ['file', $this->errFile, 'a'],
        ];
        $process = proc_open(self::commandLine($command), $spec, $pipes);
        if (!is_resource($process)) {
            throw new \RuntimeException('cannot start ' . implode(' ', $command));
        }
        $this->process = $process;
    }

    public function isRunning(): bool
    {
        $status = proc_get_status($this->process);

        return $status['running'];
    }

    public function output(): string
    {
        return (string) @file_get_contents($this->outFile) . (string) @file_get_contents($this->errFile);
    }

    public function stop(): void
    {
        if (!is_resource($this->process)) {
            return;
        }
        if ($this->isRunning()) {
            proc_terminate($this->process, 15);
            $stopped = TempDir::waitFor(function (): bool {
                return !$this->isRunning();
            }, 5.0);
            if (!$stopped) {
                proc_terminate($this->process, 9);
            }
        }
        proc_close($this->process);
    }

    /**
     * exec makes the shell replace itself, so terminating the process
     * handle terminates the program, not a shell around it.
     *
     * @param array<int, string> $command
     */
    private static function commandLine(array $command): string
    {
        return 'exec ' . implode(' ', array_map('escapeshellarg', $command));
    }
}
