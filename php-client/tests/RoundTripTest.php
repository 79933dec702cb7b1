<?php

declare(strict_types=1);

namespace Phpsessd\Tests;

use Phpsessd\Connection;
use Phpsessd\Tests\Support\Daemon;
use Phpsessd\Tests\Support\IntegrationTestCase;

/**
 * What one request costs on the wire, by flow: round trips as the client
 * counts them, commands as the daemon's STATS counts them. Strict mode is on
 * in every request here (the bootstrap's cookie defaults), as in production.
 */
final class RoundTripTest extends IntegrationTestCase
{
    /** Prints the round trips of the request after its session work. */
    private const REPORT = 'echo "\n", json_encode(['
        . 'Phpsessd\Session::getHandler()->getConnection()->getRoundTrips(), session_id()]);';

    /** The commands a request can send; STATS reports the others too. */
    private const COMMANDS = [
        'HELLO', 'READ', 'WRITE', 'CLOSE', 'VALIDATE', 'CREATEID', 'TOUCH', 'LOCK', 'REGENERATE', 'DESTROY',
    ];

    /** @var Connection|null */
    private $stats = null;

    protected function tearDown(): void
    {
        if ($this->stats !== null) {
            $this->stats->close();
            $this->stats = null;
        }
    }

    public function testNewSessionTakesThreeRoundTrips(): void
    {
        [$trips, $commands] = $this->measure('session_start(); $_SESSION["a"] = 1; session_write_close();');
        // HELLO with CREATEID, READ of the new id, WRITE.
        $this->assertSame(3, $trips);
        $this->assertCommands(['HELLO' => 1, 'CREATEID' => 1, 'READ' => 1, 'WRITE' => 1], $commands);
    }

    public function testExistingSessionInStrictModeTakesTwoRoundTrips(): void
    {
        $id = $this->newSession();
        [$trips, $commands, $seen] = $this->measure(
            'session_id($argv[1]); session_start(); $seen = $_SESSION; $_SESSION["b"] = 2; session_write_close();'
            . ' echo json_encode($seen);',
            [$id]
        );
        // HELLO with the READ that also answers strict mode's question, then
        // the WRITE. No VALIDATE, no CLOSE.
        $this->assertSame(2, $trips);
        $this->assertCommands(['HELLO' => 1, 'READ' => 1, 'WRITE' => 1], $commands);
        $this->assertSame(['a' => 1], $seen);
        $this->assertSame('a|i:1;b|i:2;', $this->peek($id)[0]);
    }

    public function testLockedRequestTakesTwoRoundTripsAndReleasesTheLock(): void
    {
        $id = $this->newSession();
        [$trips, $commands, $free] = $this->measure(
            'session_id($argv[1]); session_start(); $_SESSION["b"] = 2; session_write_close();'
            // The request's own connection stays open: the lock must be free
            // now, not only once the request ends.
            . ' echo json_encode(' . $this->lockIsFree() . ');',
            [$id],
            ['phpsessd.mode' => 'locked'],
            1
        );
        $this->assertSame(2, $trips);
        $this->assertCommands(['HELLO' => 1, 'READ' => 1, 'WRITE' => 1], $commands);
        $this->assertTrue($free);
    }

    public function testUnchangedLockedRequestReleasesWithItsTouch(): void
    {
        $id = $this->newSession();
        [$trips, $commands, $free] = $this->measure(
            'session_id($argv[1]); session_start(); session_write_close();'
            . ' echo json_encode(' . $this->lockIsFree() . ');',
            [$id],
            ['phpsessd.mode' => 'locked'],
            1
        );
        // TOUCH releases nothing, so CLOSE goes with it in one write.
        $this->assertSame(2, $trips);
        $this->assertCommands(['HELLO' => 1, 'READ' => 1, 'TOUCH' => 1, 'CLOSE' => 1], $commands);
        $this->assertTrue($free);
    }

    public function testUnknownIdInLockedModeGivesBackItsLock(): void
    {
        $unknown = str_repeat('u', 32);
        [, $commands, $free, $id] = $this->measure(
            'session_id($argv[1]); session_start(); echo json_encode(' . $this->lockIsFree('$argv[1]') . ');',
            [$unknown],
            ['phpsessd.mode' => 'locked'],
            1
        );
        $this->assertNotSame($unknown, $id);
        // The READ that checked the id took its lock; PHP moved on to a new
        // id, so that lock went back at once.
        $this->assertTrue($free);
        $this->assertSame(1, $commands['VALIDATE']);
        $this->assertSame(1, $commands['CLOSE']);
        $this->assertSame(2, $commands['READ']);
    }

    public function testPersistentSocketSendsCloseWithTheWrite(): void
    {
        $id = $this->newSession();
        [$trips, $commands] = $this->measure(
            'session_id($argv[1]); session_start(); $_SESSION["b"] = 2; session_write_close();',
            [$id],
            ['phpsessd.persistent' => '1']
        );
        // The socket outlives the request, so the base WRITE leaves behind
        // is given back, in the WRITE's round trip.
        $this->assertSame(2, $trips);
        $this->assertCommands(['HELLO' => 1, 'READ' => 1, 'WRITE' => 1, 'CLOSE' => 1], $commands);
    }

    public function testReadAndCloseOfAnOptimisticSessionIsOneRoundTrip(): void
    {
        $id = $this->newSession();
        [$trips, $commands] = $this->measure(
            'session_id($argv[1]); session_start(["read_and_close" => true]);',
            [$id]
        );
        $this->assertSame(1, $trips);
        $this->assertCommands(['HELLO' => 1, 'READ' => 1], $commands);
    }

    /**
     * @return array<string, array{0: string}>
     */
    public function firstCommand(): array
    {
        return [
            'new session: CREATEID' => [''],
            'strict mode: READ' => ['session_id($argv[1]); '],
        ];
    }

    /**
     * @dataProvider firstCommand
     */
    public function testWrongTokenWarnsOnceAsAnOpenFailure(string $before): void
    {
        $result = $this->request(
            $before . 'echo json_encode(session_start());',
            [str_repeat('a', 32)],
            ['phpsessd.address' => $this->daemon->tcpAddress, 'phpsessd.token' => 'not-the-token']
        );
        $this->assertFalse($result['json']);
        $this->assertSame(1, substr_count($result['err'], 'phpsessd:'), $result['err']);
        $this->assertStringContainsString('phpsessd: cannot open the session: the daemon at ', $result['err']);
        $this->assertStringContainsString('answered WRONGPASS', $result['err']);
    }

    /** A new session holding a|i:1;, and its id. */
    private function newSession(): string
    {
        $id = $this->cleanRequest('session_start(); $_SESSION["a"] = 1; echo json_encode(session_id());');
        $this->assertIsString($id);

        return $id;
    }

    /**
     * @param array<string, int> $expected
     * @param array<string, int> $actual
     */
    private function assertCommands(array $expected, array $actual): void
    {
        ksort($expected);
        ksort($actual);
        $this->assertSame($expected, $actual);
    }

    /**
     * A PHP expression that is true when a locked READ of the id (session_id()
     * by default) on another connection gets the lock without waiting; it
     * costs the daemon one HELLO and one READ.
     */
    private function lockIsFree(string $id = 'session_id()'): string
    {
        return '(function ($id) { $c = new Phpsessd\Connection(' . var_export($this->daemon->unixAddress, true) . ');'
            . ' try { $c->command(["READ", $id, "MODE", "locked", "WAIT", 100], true, 2.0);'
            . ' return true; } catch (Phpsessd\Exception\LockTimeoutException $e) { return false; }'
            . ' finally { $c->close(); } })(' . $id . ')';
    }

    /**
     * Runs one request and returns its round trips, the session commands the
     * daemon ran meanwhile (those that ran at all), and the JSON the code
     * printed, if any.
     *
     * @param array<int, string>         $args
     * @param array<string, string|int> $ini
     * @param int                        $probes lockIsFree() calls in $code, whose
     *                                           commands are not the request's
     * @return array{0: int, 1: array<string, int>, 2: mixed, 3: string}
     */
    private function measure(string $code, array $args = [], array $ini = [], int $probes = 0): array
    {
        $before = $this->commands();
        $result = $this->request($code . self::REPORT, $args, $ini);
        $after = $this->commands();
        $this->assertSame('', $result['err'], 'stderr of the request');
        $lines = explode("\n", rtrim($result['out'], "\n"));
        [$trips, $id] = json_decode((string) array_pop($lines), true);
        $printed = $lines === [] ? null : json_decode((string) array_pop($lines), true);

        $ran = [];
        foreach (self::COMMANDS as $name) {
            $n = ($after[$name] ?? 0) - ($before[$name] ?? 0);
            if ($n !== 0) {
                $ran[$name] = $n;
            }
        }
        if ($probes > 0) {
            $ran['HELLO'] -= $probes;
            $ran['READ'] -= $probes;
            $ran = array_filter($ran);
        }

        return [$trips, $ran, $printed, (string) $id];
    }

    /**
     * @return array<string, int>
     */
    private function commands(): array
    {
        if ($this->stats === null) {
            $this->stats = new Connection($this->daemon->unixAddress, Daemon::TOKEN);
        }
        $stats = json_decode((string) $this->stats->command(['STATS'], true), true);

        return $stats['server']['commands'] ?? [];
    }
}
