<?php

declare(strict_types=1);

namespace Phpsessd\Tests;

use Phpsessd\Tests\Support\FakeDaemon;
use Phpsessd\Tests\Support\PhpRunner;
use PHPUnit\Framework\TestCase;

/**
 * What an app sees when the daemon is down or stuck: session_start() false
 * and a warning that names the address and the cause. No daemon needed.
 */
final class HandlerFailureTest extends TestCase
{
    private const START = <<<'PHP'
$ok = session_start();
echo json_encode(['ok' => $ok, 'status' => session_status()]);
PHP;

    public function testDaemonDownMakesSessionStartFail(): void
    {
        $address = 'unix://' . sys_get_temp_dir() . '/phpsessd-down-' . bin2hex(random_bytes(4)) . '.sock';
        $result = PhpRunner::run(self::START, ['phpsessd.address' => $address]);
        $this->assertSame(0, $result['exit'], $result['err']);
        $this->assertSame(['ok' => false, 'status' => PHP_SESSION_NONE], $result['json']);
        $this->assertStringContainsString(
            'phpsessd: cannot open the session: ' . $address . ': cannot connect',
            $result['err']
        );
        $this->assertStringContainsString('Failed to initialize storage module', $result['err']);
    }

    public function testStuckDaemonTimesOut(): void
    {
        $fake = new FakeDaemon('silent');
        try {
            $start = microtime(true);
            $result = PhpRunner::run(self::START, [
                'phpsessd.address' => $fake->address,
                'phpsessd.timeout' => '0.3',
            ]);
            $this->assertLessThan(3.0, microtime(true) - $start);
        } finally {
            $fake->stop();
        }
        $this->assertSame(['ok' => false, 'status' => PHP_SESSION_NONE], $result['json']);
        $this->assertStringContainsString($fake->address . ': no reply within 0.3 s', $result['err']);
    }

    public function testRefusedWriteWarnsAndPhpReportsIt(): void
    {
        $fake = new FakeDaemon('refuse-write');
        try {
            $code = <<<'PHP'
session_id('abcdefghijklmnopqrstuvwxyz012345');
$ok = session_start();
$_SESSION['x'] = 2;
$closed = session_write_close();
echo json_encode(['ok' => $ok, 'data' => $_SESSION]);
PHP;
            $result = PhpRunner::run($code, [
                'phpsessd.address' => $fake->address,
                'phpsessd.cookie_defaults' => '0',
            ]);
            $commands = $fake->commands();
        } finally {
            $fake->stop();
        }
        $this->assertSame(['ok' => true, 'data' => ['a' => 1, 'x' => 2]], $result['json']);
        $this->assertStringContainsString(
            'phpsessd: session write refused, nothing was stored: the daemon at ' . $fake->address
            . ' answered BACKEND store unavailable: disk full',
            $result['err']
        );
        $this->assertStringContainsString('Failed to write session data', $result['err']);
        $this->assertStringNotContainsString('abcdefghijklmnopqrstuvwxyz012345', $result['err']);
        // HELLO and READ share a write; no CLOSE: the optimistic request holds
        // no lock, and its socket closes with the request.
        $this->assertSame(['1 HELLO', '1 READ', '1 WRITE'], $commands);
    }

    public function testNoAddressLeavesPhpsOwnHandler(): void
    {
        $result = PhpRunner::run(
            'echo json_encode([ini_get("session.save_handler"), Phpsessd\Session::isEnabled()]);',
            ['session.save_handler' => 'files']
        );
        $this->assertSame('', $result['err']);
        $this->assertSame(['files', false], $result['json']);
    }

    public function testBadConfigWarnsAndLeavesPhpsOwnHandler(): void
    {
        $result = PhpRunner::run('echo json_encode(ini_get("session.save_handler"));', [
            'phpsessd.address' => 'redis://nope',
            'session.save_handler' => 'files',
        ]);
        $this->assertStringContainsString('phpsessd: phpsessd address redis://nope', $result['err']);
        $this->assertSame('files', $result['json']);
    }

    public function testBootstrapPrintsNothing(): void
    {
        $address = 'unix://' . sys_get_temp_dir() . '/phpsessd-down.sock';
        $result = PhpRunner::run('', ['phpsessd.address' => $address]);
        $this->assertSame('', $result['out']);
        $this->assertSame('', $result['err']);
    }
}
