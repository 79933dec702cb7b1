<?php

declare(strict_types=1);

namespace Phpsessd\Tests\Support;

use Phpsessd\Connection;
use PHPUnit\Framework\TestCase;

/**
 * Base of the tests that need the real daemon. Without one (no Go, the
 * build fails, serve does not come up) they are skipped with the reason,
 * or fail when PHPSESSD_REQUIRE_DAEMON=1, as CI should set.
 */
abstract class IntegrationTestCase extends TestCase
{
    /** @var Daemon */
    protected $daemon;

    protected function setUp(): void
    {
        try {
            $this->daemon = Daemon::shared();
        } catch (\RuntimeException $e) {
            if (getenv('PHPSESSD_REQUIRE_DAEMON') === '1') {
                $this->fail('phpsessd is required: ' . $e->getMessage());
            }
            $this->markTestSkipped('phpsessd is not available: ' . $e->getMessage());
        }
    }

    /**
     * One PHP request under phpsessd (unix socket), as a child process.
     *
     * @param array<int, string>         $args
     * @param array<string, string|int> $ini
     * @param array<string, string>      $env
     * @return array{out: string, err: string, exit: int, json: mixed}
     */
    protected function request(string $code, array $args = [], array $ini = [], array $env = []): array
    {
        return PhpRunner::run($code, $this->ini($ini), $args, $env);
    }

    /**
     * @param array<int, string>         $args
     * @param array<string, string|int> $ini
     * @return array<string, mixed>
     */
    protected function startRequest(string $code, array $args = [], array $ini = []): array
    {
        return PhpRunner::start($code, $this->ini($ini), $args);
    }

    /**
     * Runs a request and insists it produced JSON and no warning.
     *
     * @param array<int, string>         $args
     * @param array<string, string|int> $ini
     * @return mixed the decoded JSON
     */
    protected function cleanRequest(string $code, array $args = [], array $ini = [])
    {
        $result = $this->request($code, $args, $ini);
        $this->assertSame('', $result['err'], 'stderr of the request');
        $this->assertSame(0, $result['exit']);

        return $result['json'];
    }

    /**
     * The stored session as another client sees it: [data, version].
     *
     * @return array{0: string, 1: int}
     */
    protected function peek(string $id): array
    {
        $connection = new Connection($this->daemon->unixAddress);
        try {
            $reply = $connection->command(['READ', $id, 'MODE', 'readonly', 'FORMAT', 'php'], true);
            $connection->command(['CLOSE', $id], true);
        } finally {
            $connection->close();
        }

        return [(string) $reply[0], (int) $reply[1]];
    }

    /**
     * @param array<string, string|int> $ini
     * @return array<string, string|int>
     */
    private function ini(array $ini): array
    {
        return array_merge(['phpsessd.address' => $this->daemon->unixAddress], $ini);
    }
}
