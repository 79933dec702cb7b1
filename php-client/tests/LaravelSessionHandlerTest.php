<?php

declare(strict_types=1);

namespace Phpsessd\Tests;

use Phpsessd\Config;
use Phpsessd\Connection;
use Phpsessd\Exception\PhpsessdException;
use Phpsessd\Laravel\SessionHandler;
use Phpsessd\Tests\Support\IntegrationTestCase;

/**
 * Phpsessd\Laravel\SessionHandler against the real daemon, called the way
 * Laravel's session store calls a driver: read() at start, write() at save,
 * never open() or close(). Each handler object stands for one request.
 */
final class LaravelSessionHandlerTest extends IntegrationTestCase
{
    /** @var list<SessionHandler> */
    private $handlers = [];

    protected function tearDown(): void
    {
        foreach ($this->handlers as $handler) {
            $handler->getHandler()->getConnection()->close();
        }
        $this->handlers = [];
    }

    private function handler(?string $mode = null, int $lifetimeMinutes = 120): SessionHandler
    {
        $config = new Config();
        $config->address = $this->daemon->unixAddress;
        $config->mode = $mode;
        $config->lockWait = 300;
        $handler = SessionHandler::fromConfig($config, $lifetimeMinutes);
        $this->handlers[] = $handler;

        return $handler;
    }

    /** A Laravel-shaped id: 40 letters and digits. */
    private static function laravelId(): string
    {
        return substr(bin2hex(random_bytes(20)) . 'AbCdEf', 0, 40);
    }

    /**
     * @return array<string, mixed>
     */
    private function info(string $id): array
    {
        $connection = new Connection($this->daemon->unixAddress);
        try {
            $info = json_decode((string) $connection->command(['INFO', $id], true), true);
        } finally {
            $connection->close();
        }
        $this->assertIsArray($info);

        return $info;
    }

    public function testReadAndWriteWithoutOpenOrClose(): void
    {
        $id = self::laravelId();
        $handler = $this->handler(null, 90);
        $this->assertSame('', $handler->read($id));
        $data = serialize(['_token' => 'tok', 'hits' => ['a']]);
        $this->assertTrue($handler->write($id, $data));

        $info = $this->info($id);
        $this->assertTrue($info['exists']);
        $this->assertSame('php_serialize', $info['format']);
        $this->assertSame(['_token' => 'tok', 'hits' => ['a']], $info['data']);
        // The session lives Laravel's lifetime, not session.gc_maxlifetime.
        $left = strtotime($info['expires']) - time();
        $this->assertGreaterThan(90 * 60 - 30, $left);
        $this->assertLessThanOrEqual(90 * 60 + 1, $left);

        $this->assertSame($data, $this->handler()->read($id));
    }

    public function testOverlappingRequestsKeepBothAppends(): void
    {
        $id = self::laravelId();
        $seed = $this->handler();
        $seed->read($id);
        $seed->write($id, serialize(['_token' => 'tok', 'hits' => ['seed']]));

        // Both read before either writes: the lost update Laravel's own
        // drivers make, which the daemon's merge must undo.
        $first = $this->handler();
        $second = $this->handler();
        $a = unserialize($first->read($id));
        $b = unserialize($second->read($id));
        $a['hits'][] = 'first';
        $b['hits'][] = 'second';
        $this->assertTrue($first->write($id, serialize($a)));
        $this->assertTrue($second->write($id, serialize($b)));

        $stored = unserialize($this->handler()->read($id));
        $this->assertSame('tok', $stored['_token']);
        $this->assertEqualsCanonicalizing(['seed', 'first', 'second'], $stored['hits']);
    }

    public function testLockedModeReleasesTheLockAtWrite(): void
    {
        $id = self::laravelId();
        $holder = $this->handler('locked');
        $holder->read($id);
        $holder->write($id, serialize(['n' => 1]));
        // Laravel never calls close(); the next request must not queue
        // behind a lock nobody gives back (lock_wait is 300 ms here).
        $next = $this->handler('locked');
        $this->assertSame(['n' => 1], unserialize($next->read($id)));
        $next->write($id, serialize(['n' => 2]));
        $this->assertSame(['n' => 2], $this->info($id)['data']);
    }

    public function testAnUnsavedRequestReleasesItsLockAtTheNextRead(): void
    {
        $id = self::laravelId();
        $worker = $this->handler('locked');
        $worker->read($id);
        // The request died before save(); a long-lived worker (Octane)
        // reuses the handler for its next request.
        $this->assertSame('', $worker->read(self::laravelId()));
        $other = $this->handler('locked');
        $this->assertSame('', $other->read($id));
    }

    public function testIlluminateStoreDrivesTheHandler(): void
    {
        if (stream_resolve_include_path('Illuminate/Session/autoload.php') === false) {
            $this->skipOrFail('Laravel (Debian: php-laravel-framework) is not installed');
        }
        require_once 'Illuminate/Session/autoload.php';

        $first = new \Illuminate\Session\Store('laravel_session', $this->handler());
        $first->start();
        $first->push('hits', 'one');
        $first->save();
        $id = $first->getId();

        $second = new \Illuminate\Session\Store('laravel_session', $this->handler());
        $second->setId($id);
        $second->start();
        $this->assertSame(['one'], $second->get('hits'));
        $this->assertSame($first->token(), $second->token());
        $second->push('hits', 'two');
        $second->save();

        $this->assertSame(['one', 'two'], $this->info($id)['data']['hits']);
    }

    public function testFailuresAreThrownNotReturned(): void
    {
        $config = new Config();
        $config->address = 'unix://' . sys_get_temp_dir() . '/phpsessd-down-' . bin2hex(random_bytes(4)) . '.sock';
        $handler = SessionHandler::fromConfig($config, 120);
        $warnings = [];
        set_error_handler(static function (int $level, string $message) use (&$warnings): bool {
            $warnings[] = $message;
            return true;
        });
        try {
            // Returning false would make Laravel start an empty session and
            // save it over the user's data.
            $handler->read(self::laravelId());
            $this->fail('read() of an unreachable daemon returned');
        } catch (PhpsessdException $e) {
            $this->assertStringContainsString('Laravel session read failed', $e->getMessage());
            $this->assertStringContainsString('cannot connect', $e->getMessage());
        } finally {
            restore_error_handler();
        }
        $this->assertNotEmpty($warnings);
    }

    private function skipOrFail(string $why): void
    {
        if (getenv('PHPSESSD_REQUIRE_PHP') === '1') {
            $this->fail('PHPSESSD_REQUIRE_PHP=1 but ' . $why);
        }
        $this->markTestSkipped($why);
    }
}
