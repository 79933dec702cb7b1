<?php

declare(strict_types=1);

namespace Phpsessd\Tests\Support;

/**
 * A private php-fpm pool (one static child, so consecutive requests land in
 * the same worker) with bootstrap.php prepended.
 */
final class PhpFpm
{
    /** @var string */
    private $dir;

    /** @var BackgroundProcess */
    private $process;

    /** @var string */
    public $socket;

    /** @var string */
    public $docRoot;

    /**
     * @param array<string, string> $ini php_admin_value settings
     */
    public function __construct(string $binary, array $ini)
    {
        $this->dir = TempDir::create('psfpm');
        $this->socket = $this->dir . '/fpm.sock';
        $this->docRoot = $this->dir . '/www';
        mkdir($this->docRoot);
        $ini = array_merge([
            'auto_prepend_file' => dirname(__DIR__, 2) . '/bootstrap.php',
            // Logged errors without an error_log go to the FastCGI stderr
            // stream, where a web server would log them.
            'display_errors' => '0',
            'log_errors' => '1',
            'error_reporting' => '-1',
        ], $ini);
        $conf = "[global]\nerror_log = {$this->dir}/fpm.log\ndaemonize = no\n\n"
            . "[test]\nlisten = {$this->socket}\npm = static\npm.max_children = 1\n"
            . "clear_env = yes\ncatch_workers_output = yes\n";
        foreach ($ini as $key => $value) {
            $conf .= 'php_admin_value[' . $key . '] = ' . $value . "\n";
        }
        file_put_contents($this->dir . '/fpm.conf', $conf);
        $command = [$binary, '-n', '-F', '-y', $this->dir . '/fpm.conf'];
        if (function_exists('posix_getuid') && posix_getuid() === 0) {
            $command[] = '-R';
        }
        $this->process = new BackgroundProcess($command, $this->dir);
        $ready = TempDir::waitFor(function (): bool {
            return !$this->process->isRunning() || file_exists($this->socket);
        }, 10.0);
        usleep(100000);
        if (!$ready || !$this->process->isRunning()) {
            $output = $this->process->output() . (string) @file_get_contents($this->dir . '/fpm.log');
            $this->stop();
            throw new \RuntimeException('php-fpm did not start: ' . $output);
        }
    }

    /**
     * @param array<string, string> $params extra FastCGI params
     * @return array{headers: string, stdout: string, stderr: string}
     */
    public function request(string $script, string $code, array $params = []): array
    {
        $file = $this->docRoot . '/' . $script;
        if (!file_exists($file)) {
            file_put_contents($file, "<?php\n" . $code . "\n");
        }

        return FastCgi::request($this->socket, array_merge([
            'GATEWAY_INTERFACE' => 'FastCGI/1.0',
            'REQUEST_METHOD' => 'GET',
            'SCRIPT_FILENAME' => $file,
            'SCRIPT_NAME' => '/' . $script,
            'REQUEST_URI' => '/' . $script,
            'DOCUMENT_ROOT' => $this->docRoot,
            'SERVER_PROTOCOL' => 'HTTP/1.1',
            'SERVER_NAME' => 'localhost',
            'SERVER_PORT' => '80',
            'REMOTE_ADDR' => '127.0.0.1',
        ], $params));
    }

    public function stop(): void
    {
        $this->process->stop();
        TempDir::remove($this->dir);
    }
}
