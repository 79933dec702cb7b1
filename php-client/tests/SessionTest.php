<?php

declare(strict_types=1);

namespace Phpsessd\Tests;

use Phpsessd\Connection;
use Phpsessd\Tests\Support\Daemon;
use Phpsessd\Tests\Support\IntegrationTestCase;
use Phpsessd\Tests\Support\PhpRunner;

/**
 * Unmodified-app behaviour through real session_start() calls in child
 * processes, against the real daemon.
 */
final class SessionTest extends IntegrationTestCase
{
    /** Opens the session named by the child's first argument. */
    private const OPEN = 'session_id($argv[1]); session_start(); ';

    /** A new session holding a|i:1;, and its id. */
    private function newSession(): string
    {
        $id = $this->cleanRequest('session_start(); $_SESSION["a"] = 1; echo json_encode(session_id());');
        $this->assertIsString($id);
        $this->assertSame('a|i:1;', $this->peek($id)[0]);

        return $id;
    }

    public function testRoundTrip(): void
    {
        $id = $this->newSession();
        $seen = $this->cleanRequest(
            self::OPEN . '$seen = $_SESSION; $_SESSION["b"] = "two";'
            . ' echo json_encode([$seen, session_id()]);',
            [$id]
        );
        $this->assertSame([['a' => 1], $id], $seen);
        $this->assertSame('a|i:1;b|s:3:"two";', $this->peek($id)[0]);
    }

    public function testPhpSerializeFormat(): void
    {
        $ini = ['session.serialize_handler' => 'php_serialize'];
        $id = $this->cleanRequest(
            'session_start(); $_SESSION["list"] = [1, 2]; echo json_encode(session_id());',
            [],
            $ini
        );
        $seen = $this->cleanRequest(self::OPEN . 'echo json_encode($_SESSION);', [$id], $ini);
        $this->assertSame(['list' => [1, 2]], $seen);
    }

    public function testStrictModeReplacesAnUnknownId(): void
    {
        $unknown = str_repeat('a', 32);
        $id = $this->cleanRequest(
            self::OPEN . 'echo json_encode(session_id());',
            [$unknown]
        );
        $this->assertIsString($id);
        $this->assertNotSame($unknown, $id);
        $this->assertSame(32, strlen($id));
    }

    public function testIdFollowsPhpIdSettings(): void
    {
        $id = $this->cleanRequest(
            'session_start(); echo json_encode(session_id());',
            [],
            ['session.sid_length' => '48', 'session.sid_bits_per_character' => '6']
        );
        $this->assertMatchesRegularExpression('/\A[0-9a-zA-Z,-]{48}\z/', $id);
    }

    public function testLazyWriteOnlyTouches(): void
    {
        $id = $this->newSession();
        $version = $this->peek($id)[1];
        $this->cleanRequest(self::OPEN . 'echo json_encode($_SESSION);', [$id]);
        $this->assertSame(['a|i:1;', $version], $this->peek($id));
    }

    public function testDestroy(): void
    {
        $id = $this->newSession();
        $this->cleanRequest(self::OPEN . 'echo json_encode(session_destroy());', [$id]);
        $this->assertSame(['', 0], $this->peek($id));
    }

    public function testDestroyThenStartGivesAFreshSession(): void
    {
        $id = $this->newSession();
        $result = $this->cleanRequest(
            self::OPEN . 'session_destroy(); session_id(""); session_start();'
            . ' $_SESSION["z"] = 1; echo json_encode(session_id());',
            [$id]
        );
        $this->assertNotSame($id, $result);
        $this->assertSame(['', 0], $this->peek($id));
        $this->assertSame('z|i:1;', $this->peek($result)[0]);
    }

    public function testRegenerateMovesDataAndKeepsTheOldIdDuringGrace(): void
    {
        $old = $this->newSession();
        $new = $this->cleanRequest(
            self::OPEN . '$_SESSION["b"] = 2; session_regenerate_id(true);'
            . ' echo json_encode(session_id());',
            [$old]
        );
        $this->assertIsString($new);
        $this->assertNotSame($old, $new);
        $this->assertSame('a|i:1;b|i:2;', $this->peek($new)[0]);

        // A parallel request still carrying the old cookie reads and writes
        // the new session.
        $seen = $this->cleanRequest(
            self::OPEN . '$seen = $_SESSION; $_SESSION["c"] = 3;'
            . ' echo json_encode([session_id(), $seen]);',
            [$old]
        );
        $this->assertSame([$old, ['a' => 1, 'b' => 2]], $seen);
        $this->assertSame('a|i:1;b|i:2;c|i:3;', $this->peek($new)[0]);

        usleep((Daemon::GRACE_MS + 500) * 1000);
        $after = $this->cleanRequest(
            self::OPEN . 'echo json_encode([session_id(), $_SESSION]);',
            [$old]
        );
        $this->assertNotSame($old, $after[0]);
        $this->assertSame([], $after[1]);
    }

    public function testRegenerateWithoutDeleteKeepsBoth(): void
    {
        $old = $this->newSession();
        $new = $this->cleanRequest(
            self::OPEN . 'session_regenerate_id(false); echo json_encode(session_id());',
            [$old]
        );
        $this->assertNotSame($old, $new);
        $this->assertSame('a|i:1;', $this->peek($old)[0]);
        $this->assertSame('a|i:1;', $this->peek($new)[0]);
    }

    public function testRegenerateOfANewSession(): void
    {
        $result = $this->cleanRequest(
            'session_start(); $first = session_id(); $_SESSION["x"] = 1; session_regenerate_id(true);'
            . ' echo json_encode([$first, session_id()]);'
        );
        $this->assertNotSame($result[0], $result[1]);
        $this->assertSame('x|i:1;', $this->peek($result[1])[0]);
    }

    public function testParallelRequestsKeepEveryWrite(): void
    {
        $id = $this->newSession();
        $code = self::OPEN . 'usleep(500000); $_SESSION["k" . $argv[2]] = (int) $argv[2];'
            . ' echo json_encode(true);';
        $handles = [];
        for ($i = 0; $i < 8; $i++) {
            $handles[] = $this->startRequest($code, [$id, (string) $i]);
        }
        $start = microtime(true);
        foreach ($handles as $handle) {
            $result = PhpRunner::wait($handle);
            $this->assertSame('', $result['err']);
        }
        // One after another would take over 4 s.
        $this->assertLessThan(3.0, microtime(true) - $start, 'requests ran one after another');
        $seen = $this->cleanRequest(self::OPEN . 'echo json_encode($_SESSION);', [$id]);
        ksort($seen);
        $this->assertSame(
            ['a' => 1, 'k0' => 0, 'k1' => 1, 'k2' => 2, 'k3' => 3, 'k4' => 4, 'k5' => 5, 'k6' => 6, 'k7' => 7],
            $seen
        );
    }

    public function testKeyOperationsMirrorIntoTheSessionAndApplyOnce(): void
    {
        $id = $this->newSession();
        $code = <<<'PHP'
session_id($argv[1]);
session_start();
$out = [];
$out[] = Phpsessd\Session::incr('n');
$out[] = Phpsessd\Session::incr('n', 5);
$out[] = Phpsessd\Session::append('log', 'ab');
$out[] = Phpsessd\Session::append('log', 'cd');
$out[] = Phpsessd\Session::push('items', ['sku' => 1]);
$out[] = Phpsessd\Session::push('items', 'two');
Phpsessd\Session::set('user', ['id' => 7]);
$out[] = Phpsessd\Session::unset('a');
$out[] = Phpsessd\Session::unset('missing');
$out[] = $_SESSION;
echo json_encode($out);
PHP;
        $out = $this->cleanRequest($code, [$id]);
        $this->assertSame([
            1, 6, 2, 4, 1, 2, true, false,
            ['n' => 6, 'log' => 'abcd', 'items' => [['sku' => 1], 'two'], 'user' => ['id' => 7]],
        ], $out);
        $seen = $this->cleanRequest(self::OPEN . 'echo json_encode($_SESSION);', [$id]);
        $this->assertSame(['n' => 6, 'log' => 'abcd', 'items' => [['sku' => 1], 'two'], 'user' => ['id' => 7]], $seen);
    }

    public function testParallelIncrementsAreNotLost(): void
    {
        $id = $this->newSession();
        $code = self::OPEN . 'usleep(100000); echo json_encode(Phpsessd\Session::incr("hits"));';
        $handles = [];
        for ($i = 0; $i < 8; $i++) {
            $handles[] = $this->startRequest($code, [$id]);
        }
        $values = [];
        foreach ($handles as $handle) {
            $result = PhpRunner::wait($handle);
            $this->assertSame('', $result['err']);
            $values[] = $result['json'];
        }
        sort($values);
        $this->assertSame([1, 2, 3, 4, 5, 6, 7, 8], $values);
        $seen = $this->cleanRequest(self::OPEN . 'echo json_encode($_SESSION["hits"]);', [$id]);
        $this->assertSame(8, $seen);
    }

    public function testKeyOperationsWorkAfterWriteClose(): void
    {
        $id = $this->newSession();
        $out = $this->cleanRequest(
            self::OPEN . 'session_write_close(); echo json_encode(Phpsessd\Session::incr("n", 3));',
            [$id]
        );
        $this->assertSame(3, $out);
        $this->assertSame('a|i:1;n|i:3;', $this->peek($id)[0]);
    }

    public function testLockMergesOwnChangesOntoFreshData(): void
    {
        $id = $this->newSession();
        $code = <<<'PHP'
session_id($argv[1]);
session_start();
$_SESSION['mine'] = 1;
// Another request stores a key meanwhile.
$other = new Phpsessd\Connection($argv[2]);
$other->command(['SET', $argv[1], 'theirs', serialize('x'), 'FORMAT', 'php'], false);
$other->close();
Phpsessd\Session::lock();
$locked = Phpsessd\Session::getHandler()->getGrantedMode();
$seen = $_SESSION;
ksort($seen);
$_SESSION['after'] = 2;
echo json_encode([$locked, $seen]);
PHP;
        $out = $this->cleanRequest($code, [$id, $this->daemon->unixAddress]);
        $this->assertSame(['locked', ['a' => 1, 'mine' => 1, 'theirs' => 'x']], $out);
        $seen = $this->cleanRequest(self::OPEN . '$s = $_SESSION; ksort($s); echo json_encode($s);', [$id]);
        $this->assertSame(['a' => 1, 'after' => 2, 'mine' => 1, 'theirs' => 'x'], $seen);
    }

    public function testLockedModeExcludesAndTimesOut(): void
    {
        $id = $this->newSession();
        $holder = $this->startRequest(
            self::OPEN . 'usleep(' . ((Daemon::LOCK_WAIT_MS + 1500) * 1000) . ');'
            . ' $_SESSION["holder"] = 1; echo json_encode(Phpsessd\Session::getHandler()->getGrantedMode());',
            [$id],
            ['phpsessd.mode' => 'locked']
        );
        usleep(500000);
        $start = microtime(true);
        $waiter = $this->request(
            'session_id($argv[1]); echo json_encode(session_start());',
            [$id],
            ['phpsessd.mode' => 'locked', 'phpsessd.lock_wait' => '500']
        );
        $waited = microtime(true) - $start;
        $this->assertFalse($waiter['json']);
        $this->assertStringContainsString('answered LOCKTIMEOUT', $waiter['err']);
        $this->assertGreaterThan(0.4, $waited);

        $held = PhpRunner::wait($holder);
        $this->assertSame('', $held['err']);
        $this->assertSame('locked', $held['json']);

        // Once released, the next locked request gets the lock at once.
        $start = microtime(true);
        $this->cleanRequest(self::OPEN . 'echo json_encode(1);', [$id], ['phpsessd.mode' => 'locked']);
        $this->assertLessThan(2.0, microtime(true) - $start);
        $this->assertSame('a|i:1;holder|i:1;', $this->peek($id)[0]);
    }

    public function testLockWaiterGetsTheLockWhenTheHolderAborts(): void
    {
        $id = $this->newSession();
        $holder = $this->startRequest(
            self::OPEN . 'usleep(400000); $_SESSION["lost"] = 1; session_abort(); usleep(3000000);'
            . ' echo json_encode(1);',
            [$id],
            ['phpsessd.mode' => 'locked']
        );
        usleep(200000);
        $start = microtime(true);
        $this->cleanRequest(self::OPEN . 'echo json_encode(1);', [$id], ['phpsessd.mode' => 'locked']);
        // Released at abort: about 0.3 s; held until the holder exits: 3 s more.
        $this->assertLessThan(2.0, microtime(true) - $start, 'abort did not release the lock');
        PhpRunner::wait($holder);
        $this->assertSame('a|i:1;', $this->peek($id)[0]);
    }

    public function testReadAndCloseReleasesAtOnce(): void
    {
        $id = $this->newSession();
        $seen = $this->cleanRequest(
            'session_id($argv[1]); session_start(["read_and_close" => true]); $s = $_SESSION;'
            . ' session_id($argv[1]); session_start();'
            . ' echo json_encode([$s, Phpsessd\Session::getHandler()->getGrantedMode()]);',
            [$id],
            ['phpsessd.mode' => 'locked']
        );
        $this->assertSame([['a' => 1], 'locked'], $seen);
    }

    public function testReadonlyDropsThisRequestsChanges(): void
    {
        $id = $this->newSession();
        $this->cleanRequest(
            self::OPEN . 'Phpsessd\Session::readonly(); $_SESSION["x"] = 9; echo json_encode(1);',
            [$id]
        );
        $this->assertSame('a|i:1;', $this->peek($id)[0]);
    }

    public function testClientRulesPickTheMode(): void
    {
        $id = $this->newSession();
        $code = self::OPEN . 'echo json_encode(Phpsessd\Session::getHandler()->getGrantedMode());';
        // php.ini needs the quotes: an unquoted ';' starts a comment.
        $ini = ['phpsessd.rules' => '"POST /checkout/* locked; GET /api/* readonly; * optimistic"'];
        $env = ['REQUEST_METHOD' => 'POST', 'REQUEST_URI' => '/checkout/pay?x=1'];
        $this->assertSame('locked', $this->request($code, [$id], $ini, $env)['json']);
        $env = ['REQUEST_METHOD' => 'GET', 'REQUEST_URI' => '/api/cart'];
        $this->assertSame('readonly', $this->request($code, [$id], $ini, $env)['json']);
        $env = ['REQUEST_METHOD' => 'GET', 'REQUEST_URI' => '/'];
        $this->assertSame('optimistic', $this->request($code, [$id], $ini, $env)['json']);
    }

    public function testReadonlyModeDropsWritesWithoutWarning(): void
    {
        $id = $this->newSession();
        $this->cleanRequest(
            self::OPEN . '$_SESSION["x"] = 1; echo json_encode(1);',
            [$id],
            ['phpsessd.mode' => 'readonly']
        );
        $this->assertSame('a|i:1;', $this->peek($id)[0]);
    }

    public function testWriteAfterALostConnectionMergesOnANewOne(): void
    {
        // The connection that carried the READ is gone by the time of the
        // WRITE: the WRITE goes out on a new connection and the daemon
        // merges against the base version it cached.
        $id = $this->newSession();
        $code = <<<'PHP'
session_id($argv[1]);
session_start();
$_SESSION['x'] = 1;
$h = Phpsessd\Session::getHandler();
$h->getConnection()->close();
echo json_encode(session_write_close());
PHP;
        $this->cleanRequest($code, [$id]);
        $this->assertSame('a|i:1;x|i:1;', $this->peek($id)[0]);
    }
}
