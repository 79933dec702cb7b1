<?php

declare(strict_types=1);

namespace Phpsessd\Tests;

use Phpsessd\Connection;
use Phpsessd\Exception\ServerException;
use Phpsessd\RespError;
use Phpsessd\Tests\Support\Daemon;
use Phpsessd\Tests\Support\IntegrationTestCase;

final class ConnectionTest extends IntegrationTestCase
{
    public function testUnixSocketHandshake(): void
    {
        $connection = new Connection($this->daemon->unixAddress);
        $connection->connect();
        $info = $connection->getServerInfo();
        $this->assertSame('phpsessd', $info['server'] ?? null);
        $this->assertSame('1', (string) ($info['proto'] ?? ''));
        $this->assertSame('PONG', $connection->command(['PING'], true));
        $connection->close();
    }

    public function testPathShortcut(): void
    {
        $connection = new Connection(substr($this->daemon->unixAddress, 7));
        $this->assertSame('PONG', $connection->command(['PING'], true));
        $connection->close();
    }

    public function testTcpWithToken(): void
    {
        $connection = new Connection($this->daemon->tcpAddress, Daemon::TOKEN);
        $id = $connection->command(['CREATEID', 'LENGTH', 32, 'BITS', 5], true);
        $this->assertIsString($id);
        $this->assertSame(32, strlen($id));
        $reply = $connection->command(['READ', $id, 'FORMAT', 'php'], true);
        $this->assertSame(['', 0], [$reply[0], $reply[1]]);
        $connection->close();
    }

    public function testTcpWithWrongToken(): void
    {
        $connection = new Connection($this->daemon->tcpAddress, 'not-the-token');
        try {
            $connection->connect();
            $this->fail('a wrong token was accepted');
        } catch (ServerException $e) {
            $this->assertSame('WRONGPASS', $e->getErrorCode());
            $this->assertStringNotContainsString('not-the-token', $e->getMessage());
        }
        $this->assertFalse($connection->isConnected());
    }

    public function testWrongTokenPipelinedWithACommandIsAHandshakeFailure(): void
    {
        $connection = new Connection($this->daemon->tcpAddress, 'not-the-token');
        try {
            $connection->command(['READ', str_repeat('a', 32), 'FORMAT', 'php'], true);
            $this->fail('a wrong token was accepted');
        } catch (ServerException $e) {
            $this->assertSame('WRONGPASS', $e->getErrorCode());
            $this->assertStringContainsString('(HELLO to ' . $this->daemon->tcpAddress . ')', $e->getMessage());
        }
        $this->assertTrue($connection->handshakeFailed());
        $this->assertFalse($connection->isConnected());
        $this->assertSame(1, $connection->getRoundTrips());
    }

    public function testPipelineAnswersEveryCommandInOrder(): void
    {
        $connection = new Connection($this->daemon->unixAddress);
        $connection->connect();
        $replies = $connection->pipeline([['PING'], ['VALIDATE', 'bad id!'], ['PING', 'two']], true);
        $this->assertCount(3, $replies);
        $this->assertSame('PONG', $replies[0]);
        $this->assertInstanceOf(RespError::class, $replies[1]);
        $this->assertSame('INVALIDID', $replies[1]->getCode());
        $this->assertSame('two', $replies[2]);
        $this->assertSame(2, $connection->getRoundTrips());
        $this->assertFalse($connection->handshakeFailed());
        // The connection is still in step: the next reply is the next command's.
        $this->assertSame('PONG', $connection->command(['PING'], true));
        $connection->close();
    }

    public function testTcpWithoutToken(): void
    {
        $connection = new Connection($this->daemon->tcpAddress);
        try {
            $connection->command(['CREATEID'], true);
            $this->fail('an unauthenticated command was accepted');
        } catch (ServerException $e) {
            $this->assertSame('NOAUTH', $e->getErrorCode());
        }
        $connection->close();
    }

    public function testPersistentConnectionSkipsTheSecondHandshake(): void
    {
        $first = new Connection($this->daemon->tcpAddress, Daemon::TOKEN, 1.0, 5.0, true);
        $this->assertSame('PONG', $first->command(['PING'], true));
        // A second object gets the same socket back, already authenticated,
        // as the next request of a PHP worker would.
        $second = new Connection($this->daemon->tcpAddress, Daemon::TOKEN, 1.0, 5.0, true);
        $second->connect();
        $this->assertSame([], $second->getServerInfo());
        $this->assertIsString($second->command(['CREATEID'], true));
        $second->close();
    }

    public function testInvalidIdIsAServerError(): void
    {
        $connection = new Connection($this->daemon->unixAddress);
        try {
            $connection->command(['READ', '../../etc/passwd'], true);
            $this->fail('an invalid id was accepted');
        } catch (ServerException $e) {
            $this->assertSame('INVALIDID', $e->getErrorCode());
        }
        // The connection stays usable after an error reply.
        $this->assertSame('PONG', $connection->command(['PING'], true));
        $connection->close();
    }

    public function testTcpSessionThroughBootstrap(): void
    {
        $result = $this->request(
            'var_dump(session_start()); $_SESSION["n"] = 1; echo json_encode(session_id());',
            [],
            ['phpsessd.address' => $this->daemon->tcpAddress],
            ['PHPSESSD_TOKEN' => Daemon::TOKEN]
        );
        $this->assertSame('', $result['err']);
        $this->assertStringContainsString('bool(true)', $result['out']);
        $this->assertSame('n|i:1;', $this->peek((string) $result['json'])[0]);
    }

    public function testWrongTokenThroughBootstrapFailsLoudly(): void
    {
        $result = $this->request(
            'echo json_encode(session_start());',
            [],
            ['phpsessd.address' => $this->daemon->tcpAddress, 'phpsessd.token' => 'not-the-token']
        );
        $this->assertFalse($result['json']);
        $this->assertStringContainsString(
            'phpsessd: cannot open the session: the daemon at ' . $this->daemon->tcpAddress . ' answered WRONGPASS',
            $result['err']
        );
        $this->assertStringNotContainsString('not-the-token', $result['err']);
    }
}
