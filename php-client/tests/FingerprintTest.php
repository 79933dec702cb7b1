<?php

declare(strict_types=1);

namespace Phpsessd\Tests;

use Phpsessd\Connection;
use Phpsessd\Tests\Support\BackgroundProcess;
use Phpsessd\Tests\Support\Daemon;
use Phpsessd\Tests\Support\IntegrationTestCase;
use Phpsessd\Tests\Support\TempDir;

/**
 * Fingerprint binding as a web request sees it: the shim sends the user
 * agent and address, and a session presented from another browser or
 * network is replaced by a new, empty one; under --fingerprint-action
 * regenerate one presented by the same browser from another network moves
 * to a new id instead.
 */
final class FingerprintTest extends IntegrationTestCase
{
    /**
     * A web request from $argv[2] (user agent) at $argv[3] (address) that
     * opens the session $argv[1] ('' for a new one), sets "seen" and
     * reports [id, $_SESSION before].
     */
    private const REQUEST = '$_SERVER["REMOTE_ADDR"] = $argv[3];'
        . ' if ($argv[2] !== "-") { $_SERVER["HTTP_USER_AGENT"] = $argv[2]; }'
        . ' if ($argv[1] !== "") { session_id($argv[1]); }'
        . ' session_start(); $before = $_SESSION; $_SESSION["seen"] = ($_SESSION["seen"] ?? 0) + 1;'
        . ' echo json_encode([session_id(), $before]);';

    /** @var BackgroundProcess|null a daemon run with --fingerprint-action regenerate */
    private $regenerating = null;

    /** @var string|null */
    private $regeneratingDir = null;

    protected function tearDown(): void
    {
        if ($this->regenerating !== null) {
            $this->regenerating->stop();
            $this->regenerating = null;
        }
        if ($this->regeneratingDir !== null) {
            TempDir::remove($this->regeneratingDir);
            $this->regeneratingDir = null;
        }
        parent::tearDown();
    }

    /**
     * @param array<string, string|int> $ini
     * @return array{0: string, 1: array<string, mixed>}
     */
    private function web(string $id, string $agent, string $address, array $ini = []): array
    {
        $result = $this->cleanRequest(self::REQUEST, [$id, $agent, $address], $ini);
        $this->assertIsArray($result);

        return $result;
    }

    /**
     * Its own daemon, since the shared one refuses mismatches (the default).
     *
     * @return string the daemon's address
     */
    private function startRegeneratingDaemon(): string
    {
        $this->regeneratingDir = TempDir::create('psdfp');
        // The shared daemon's binary is built (or named by PHPSESSD_BIN) by
        // Daemon; asking it again keeps one way of getting it.
        $binary = new \ReflectionMethod(Daemon::class, 'binary');
        $binary->setAccessible(true);
        $address = 'unix://' . $this->regeneratingDir . '/phpsessd.sock';
        $this->regenerating = new BackgroundProcess([
            (string) $binary->invoke(null, $this->regeneratingDir),
            'serve',
            '--listen', $address,
            '--store', 'memory://',
            '--fingerprint', 'ua,ip',
            '--fingerprint-action', 'regenerate',
        ], $this->regeneratingDir);
        $up = TempDir::waitFor(function () use ($address): bool {
            if (!$this->regenerating->isRunning()) {
                return true;
            }
            try {
                $connection = new Connection($address, null, 0.5, 1.0);
                $connection->command(['PING'], true);
                $connection->close();
                return true;
            } catch (\Throwable $e) {
                return false;
            }
        }, 15.0);
        $this->assertTrue($up && $this->regenerating->isRunning(), 'daemon: ' . $this->regenerating->output());

        return $address;
    }

    /**
     * @return array{0: string, 1: int} [data, version] of $id at $address
     */
    private function peekAt(string $address, string $id): array
    {
        $connection = new Connection($address);
        try {
            $reply = $connection->command(['READ', $id, 'MODE', 'readonly', 'FORMAT', 'php'], true);
            $connection->command(['CLOSE', $id], true);
        } finally {
            $connection->close();
        }

        return [(string) $reply[0], (int) $reply[1]];
    }

    public function testSameBrowserKeepsItsSession(): void
    {
        [$id] = $this->web('', 'Firefox/128', '192.0.2.10');
        [$again, $seen] = $this->web($id, 'Firefox/128', '192.0.2.77');
        $this->assertSame($id, $again);
        $this->assertSame(['seen' => 1], $seen);
    }

    public function testOtherBrowserGetsAFreshSession(): void
    {
        [$id] = $this->web('', 'Firefox/128', '192.0.2.10');
        foreach ([['curl/8', '192.0.2.10'], ['-', '192.0.2.10'], ['Firefox/128', '198.51.100.1']] as [$agent, $address]) {
            [$other, $seen] = $this->web($id, $agent, $address);
            $this->assertNotSame($id, $other, $agent . ' at ' . $address);
            $this->assertSame([], $seen);
        }
        // The owner's session is untouched.
        $this->assertSame('seen|i:1;', $this->peek($id)[0]);
    }

    public function testCliRequestsSendNoInputs(): void
    {
        [$id] = $this->web('', 'Firefox/128', '192.0.2.10');
        $seen = $this->cleanRequest('session_id($argv[1]); session_start(); echo json_encode($_SESSION);', [$id]);
        $this->assertSame(['seen' => 1], $seen);
    }

    public function testIpChangeMovesTheSessionUnderRegenerate(): void
    {
        $address = $this->startRegeneratingDaemon();
        $ini = ['phpsessd.address' => $address];
        [$id] = $this->web('', 'Firefox/128', '10.0.0.1', $ini);

        // Same browser, another network: same data, new id.
        [$moved, $seen] = $this->web($id, 'Firefox/128', '10.9.9.9', $ini);
        $this->assertNotSame($id, $moved);
        $this->assertSame(strlen($id), strlen($moved));
        $this->assertSame(['seen' => 1], $seen);
        $this->assertSame('seen|i:2;', $this->peekAt($address, $moved)[0]);
        $this->assertSame(['', 0], $this->peekAt($address, $id));

        // The old id is dead for everyone, its own old network included.
        [$fresh, $seen] = $this->web($id, 'Firefox/128', '10.0.0.1', $ini);
        $this->assertNotSame($id, $fresh);
        $this->assertNotSame($moved, $fresh);
        $this->assertSame([], $seen);

        // The new id is bound to the new network and keeps working there.
        [$again, $seen] = $this->web($moved, 'Firefox/128', '10.9.9.77', $ini);
        $this->assertSame($moved, $again);
        $this->assertSame(['seen' => 2], $seen);

        // Another browser with the cookie is refused, not moved.
        [$other, $seen] = $this->web($moved, 'curl/8', '10.9.9.9', $ini);
        $this->assertNotSame($moved, $other);
        $this->assertSame([], $seen);
        $this->assertSame('seen|i:3;', $this->peekAt($address, $moved)[0]);
    }

    public function testWithoutStrictModeAnIpChangeIsStillRefused(): void
    {
        $address = $this->startRegeneratingDaemon();
        $ini = ['phpsessd.address' => $address];
        [$id] = $this->web('', 'Firefox/128', '10.0.0.1', $ini);
        // read() cannot hand PHP another id, so it must not ask for a move.
        $lax = $ini + ['phpsessd.cookie_defaults' => '0', 'session.use_strict_mode' => '0'];
        $result = $this->request(self::REQUEST, [$id, 'Firefox/128', '10.9.9.9'], $lax);
        $this->assertStringContainsString('FINGERPRINT', $result['err']);
        $this->assertSame('seen|i:1;', $this->peekAt($address, $id)[0]);
        [$same, $seen] = $this->web($id, 'Firefox/128', '10.0.0.9', $ini);
        $this->assertSame($id, $same);
        $this->assertSame(['seen' => 1], $seen);
    }
}
