<?php

declare(strict_types=1);

namespace Phpsessd\Tests;

use Phpsessd\Connection;
use Phpsessd\Tests\Support\IntegrationTestCase;
use Phpsessd\Tests\Support\PhpFpm;

/**
 * bootstrap.php under php-fpm, configured only through FastCGI params, the
 * way a web server would pass them.
 */
final class FpmTest extends IntegrationTestCase
{
    private const COUNTER = <<<'PHP'
session_start();
$_SESSION['n'] = ($_SESSION['n'] ?? 0) + 1;
echo json_encode([session_id(), $_SESSION['n']]);
PHP;

    /** @var PhpFpm|null */
    private $fpm = null;

    protected function setUp(): void
    {
        parent::setUp();
        $binary = getenv('PHP_FPM_BIN');
        if (!is_string($binary) || $binary === '') {
            $binary = '/usr/sbin/php-fpm' . PHP_MAJOR_VERSION . '.' . PHP_MINOR_VERSION;
        }
        if (!is_executable($binary)) {
            $this->markTestSkipped('no php-fpm at ' . $binary . ' (set PHP_FPM_BIN)');
        }
        $this->fpm = new PhpFpm($binary, ['session.gc_probability' => '0']);
    }

    protected function tearDown(): void
    {
        if ($this->fpm !== null) {
            $this->fpm->stop();
            $this->fpm = null;
        }
    }

    /**
     * @return array<int, bool>
     */
    public function persistence(): array
    {
        return ['one connection per request' => [false], 'persistent' => [true]];
    }

    /**
     * @dataProvider persistence
     */
    public function testRequestsThroughFpm(bool $persistent): void
    {
        $params = [
            'PHPSESSD_ADDRESS' => $this->daemon->unixAddress,
            'PHPSESSD_PERSISTENT' => $persistent ? '1' : '0',
        ];
        $stats = new Connection($this->daemon->unixAddress);
        $hellosBefore = $this->hellos($stats);

        $first = $this->fpm->request('counter.php', self::COUNTER, $params + ['HTTPS' => 'on']);
        $this->assertSame('', $first['stderr']);
        [$id, $n] = json_decode($first['stdout'], true);
        $this->assertSame(1, $n);
        $this->assertMatchesRegularExpression(
            '/^Set-Cookie: PHPSESSID=' . preg_quote($id, '/') . '; path=\/; secure; HttpOnly; SameSite=Lax/mi',
            $first['headers']
        );

        for ($i = 2; $i <= 4; $i++) {
            $next = $this->fpm->request('counter.php', self::COUNTER, $params + ['HTTP_COOKIE' => 'PHPSESSID=' . $id]);
            $this->assertSame('', $next['stderr']);
            $this->assertSame([$id, $i], json_decode($next['stdout'], true));
        }

        // One worker: a persistent socket is opened and greeted once and then
        // reused by every later request.
        $this->assertSame($persistent ? 1 : 4, $this->hellos($stats) - $hellosBefore);
        $stats->close();
    }

    public function testDaemonDownUnderFpm(): void
    {
        $address = 'unix://' . sys_get_temp_dir() . '/phpsessd-missing.sock';
        $result = $this->fpm->request(
            'down.php',
            'echo json_encode(session_start());',
            ['PHPSESSD_ADDRESS' => $address]
        );
        $this->assertSame('false', $result['stdout']);
        $this->assertStringContainsString('phpsessd: cannot open the session: ' . $address, $result['stderr']);
    }

    private function hellos(Connection $connection): int
    {
        $stats = json_decode((string) $connection->command(['STATS'], true), true);
        if (!isset($stats['server']['commands']['HELLO'])) {
            $this->markTestSkipped('STATS does not count HELLO commands');
        }

        return (int) $stats['server']['commands']['HELLO'];
    }
}
