<?php

declare(strict_types=1);

namespace Phpsessd\Tests;

use Phpsessd\Connection;
use Phpsessd\Exception\ConnectionException;
use Phpsessd\Exception\ServerException;
use Phpsessd\Exception\TimeoutException;
use Phpsessd\RespError;
use Phpsessd\Tests\Support\FakeDaemon;
use Phpsessd\Tests\Support\TempDir;
use PHPUnit\Framework\TestCase;

/**
 * Failure handling against a misbehaving fake daemon: no real daemon needed.
 */
final class ConnectionFailureTest extends TestCase
{
    /** @var FakeDaemon|null */
    private $fake = null;

    protected function tearDown(): void
    {
        if ($this->fake !== null) {
            $this->fake->stop();
            $this->fake = null;
        }
    }

    public function testMissingSocketNamesTheAddress(): void
    {
        $address = 'unix://' . sys_get_temp_dir() . '/phpsessd-nowhere-' . bin2hex(random_bytes(4)) . '.sock';
        $connection = new Connection($address, null, 0.5, 0.5);
        try {
            $connection->connect();
            $this->fail('connected to nothing');
        } catch (ConnectionException $e) {
            $this->assertStringContainsString($address, $e->getMessage());
            $this->assertStringContainsString('cannot connect', $e->getMessage());
        }
        $this->assertFalse($connection->isConnected());
    }

    public function testRefusedTcpNamesTheAddress(): void
    {
        $address = 'tcp://127.0.0.1:' . TempDir::freePort();
        $connection = new Connection($address, null, 0.5, 0.5);
        $this->expectException(ConnectionException::class);
        $this->expectExceptionMessage($address);
        $connection->connect();
    }

    public function testAnImmediateCloseIsADeadDaemonNotAnEmptyReply(): void
    {
        $this->fake = new FakeDaemon('close');
        $connection = new Connection($this->fake->address, null, 0.5, 1.0);
        // Depending on timing the close shows while sending HELLO or as an
        // empty first read; both must fail the connect.
        $this->expectException(ConnectionException::class);
        $this->expectExceptionMessage($this->fake->address);
        $connection->connect();
    }

    public function testSilentDaemonTimesOut(): void
    {
        $this->fake = new FakeDaemon('silent');
        $connection = new Connection($this->fake->address, null, 0.5, 0.3);
        $start = microtime(true);
        try {
            $connection->connect();
            $this->fail('no timeout');
        } catch (TimeoutException $e) {
            $this->assertStringContainsString('no reply within 0.3 s', $e->getMessage());
            $this->assertStringContainsString($this->fake->address, $e->getMessage());
        }
        $elapsed = microtime(true) - $start;
        $this->assertGreaterThan(0.25, $elapsed);
        $this->assertLessThan(2.0, $elapsed);
        $this->assertFalse($connection->isConnected());
    }

    public function testLongerTimeoutForOneCommand(): void
    {
        $this->fake = new FakeDaemon('mute');
        $connection = new Connection($this->fake->address, null, 0.5, 0.2);
        $connection->connect();
        $start = microtime(true);
        try {
            $connection->command(['READ', 'abc', 'MODE', 'locked'], true, 0.8);
            $this->fail('no timeout');
        } catch (TimeoutException $e) {
            $this->assertStringContainsString('no reply within 0.8 s', $e->getMessage());
        }
        $elapsed = microtime(true) - $start;
        $this->assertGreaterThan(0.7, $elapsed);
        $this->assertLessThan(1.5, $elapsed);
        // Timeouts are not retried: a late reply must not answer a retry.
        $this->assertSame(['1 HELLO', '1 READ'], $this->fake->commands());
        $this->assertFalse($connection->isConnected());
    }

    public function testIdleConnectionClosedByTheDaemonIsReplacedBeforeSending(): void
    {
        $this->fake = new FakeDaemon('idle-close');
        $connection = new Connection($this->fake->address, null, 0.5, 1.0);
        $connection->connect();
        usleep(400000);
        // WRITE is never resent after it went out, so this only passes if the
        // dead connection was noticed before sending.
        $this->assertSame(['written', 8], $connection->command(['WRITE', 'id', 'data'], false));
        $this->assertSame(['1 HELLO', '2 HELLO', '2 WRITE'], $this->fake->commands());
    }

    public function testIdempotentCommandIsRetriedOnceAfterADrop(): void
    {
        $this->fake = new FakeDaemon('drop-first');
        $connection = new Connection($this->fake->address, null, 0.5, 1.0);
        $reply = $connection->command(['READ', 'abc', 'FORMAT', 'php'], true);
        $this->assertSame(['a|i:1;', 7, 'optimistic'], $reply);
        $this->assertSame(['1 HELLO', '1 READ', '2 HELLO', '2 READ'], $this->fake->commands());
    }

    public function testWriteIsNotRetriedOnceSent(): void
    {
        $this->fake = new FakeDaemon('drop-first');
        $connection = new Connection($this->fake->address, null, 0.5, 1.0);
        try {
            $connection->command(['WRITE', 'abc', 'a|i:2;', 'BASE', 7], false);
            $this->fail('WRITE was retried');
        } catch (ConnectionException $e) {
            $this->assertStringContainsString('closed by the daemon', $e->getMessage());
        }
        $this->assertSame(['1 HELLO', '1 WRITE'], $this->fake->commands());
        // The next command gets a new connection.
        $this->assertSame('PONG', $connection->command(['PING'], true));
    }

    public function testHelloTravelsWithTheFirstHarmlessCommand(): void
    {
        $this->fake = new FakeDaemon('refuse-write');
        $connection = new Connection($this->fake->address, null, 0.5, 1.0);
        $connection->open();
        $this->assertSame([], $this->fake->commands());
        $this->assertSame(['a|i:1;', 7, 'optimistic'], $connection->command(['READ', 'abc'], true));
        $this->assertSame(1, $connection->getRoundTrips());
        $this->assertSame('fake', $connection->getServerInfo()['version'] ?? null);
        $this->assertSame(['1 HELLO', '1 READ'], $this->fake->commands());
    }

    public function testWriteOnAFreshConnectionWaitsForHello(): void
    {
        $this->fake = new FakeDaemon('refuse-write');
        $connection = new Connection($this->fake->address, null, 0.5, 1.0);
        try {
            $connection->command(['WRITE', 'abc', 'a|i:2;'], false);
            $this->fail('the fake refuses writes');
        } catch (ServerException $e) {
            $this->assertSame('BACKEND', $e->getErrorCode());
        }
        // A WRITE must not run behind a HELLO that might be refused.
        $this->assertSame(2, $connection->getRoundTrips());
        $this->assertSame(['1 HELLO', '1 WRITE'], $this->fake->commands());
        $this->assertTrue($connection->isConnected());
    }

    public function testPipelinedRepliesKeepTheirErrors(): void
    {
        $this->fake = new FakeDaemon('refuse-write');
        $connection = new Connection($this->fake->address, null, 0.5, 1.0);
        $connection->connect();
        $replies = $connection->pipeline([['WRITE', 'abc', 'a|i:2;'], ['CLOSE', 'abc']], false);
        $this->assertInstanceOf(RespError::class, $replies[0]);
        $this->assertSame('BACKEND', $replies[0]->getCode());
        $this->assertSame('OK', $replies[1]);
        $this->assertSame(2, $connection->getRoundTrips());
        $this->assertSame(['1 HELLO', '1 WRITE', '1 CLOSE'], $this->fake->commands());
    }

    public function testSilentDaemonFailsTheHandshakeOfAPipelinedCommand(): void
    {
        $this->fake = new FakeDaemon('silent');
        $connection = new Connection($this->fake->address, null, 0.5, 0.3);
        $connection->open();
        try {
            $connection->command(['READ', 'abc'], true, 2.0);
            $this->fail('no timeout');
        } catch (TimeoutException $e) {
            // HELLO's reply is due within the connection's timeout, whatever
            // the command that travels with it may wait.
            $this->assertStringContainsString('no reply within 0.3 s', $e->getMessage());
        }
        $this->assertTrue($connection->handshakeFailed());
        $this->assertFalse($connection->isConnected());
    }

    public function testAFreshConnectionIsNotRetried(): void
    {
        $this->fake = new FakeDaemon('close');
        $connection = new Connection($this->fake->address, null, 0.5, 1.0);
        try {
            $connection->command(['PING'], true);
            $this->fail('no failure');
        } catch (ConnectionException $e) {
            $this->assertStringContainsString($this->fake->address, $e->getMessage());
        }
    }
}
