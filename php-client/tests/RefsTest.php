<?php

declare(strict_types=1);

namespace Phpsessd\Tests;

use Phpsessd\Connection;
use Phpsessd\Exception\ServerException;
use Phpsessd\Tests\Support\IntegrationTestCase;

/**
 * Session references from PHP (Phpsessd\Session::addRef and friends) in
 * child processes against the real daemon.
 */
final class RefsTest extends IntegrationTestCase
{
    /** Opens the session named by the child's first argument. */
    private const OPEN = 'session_id($argv[1]); session_start(); ';

    /** A login: a new session tagged with $ref, and its id. */
    private function login(string $ref, bool $exclusive = false): string
    {
        $result = $this->cleanRequest(
            'session_start(); $_SESSION["uid"] = $argv[1];'
            . ' $ended = \Phpsessd\Session::addRef($argv[1], $argv[2] === "1");'
            . ' echo json_encode([session_id(), $ended]);',
            [$ref, $exclusive ? '1' : '0']
        );
        $this->assertIsArray($result);
        [$id, $ended] = $result;
        $this->assertIsString($id);
        $this->assertIsInt($ended);
        // The tag was attached before the session's first write, which
        // must still have stored the request's data.
        $this->assertSame('uid|s:' . strlen($ref) . ':"' . $ref . '";', $this->peek($id)[0]);

        return $id;
    }

    /**
     * @return array<int, string>
     */
    private function listed(string $ref): array
    {
        $connection = new Connection($this->daemon->unixAddress);
        try {
            $ids = $connection->command(['REF', 'LIST', $ref], true);
        } finally {
            $connection->close();
        }
        $this->assertIsArray($ids);
        sort($ids);

        return $ids;
    }

    private function unique(string $prefix): string
    {
        return $prefix . ':' . bin2hex(random_bytes(6));
    }

    public function testLoginTagsAndLogoutEverywhere(): void
    {
        $ref = $this->unique('user');
        $first = $this->login($ref);
        $second = $this->login($ref);
        $expected = [$first, $second];
        sort($expected);
        $this->assertSame($expected, $this->listed($ref));

        $seen = $this->cleanRequest(
            self::OPEN . 'echo json_encode(\Phpsessd\Session::sessionsOf($argv[2]));',
            [$first, $ref]
        );
        sort($seen);
        $this->assertSame($expected, $seen);

        // Logging out everywhere from the first session ends both.
        $killed = $this->cleanRequest(
            self::OPEN . 'echo json_encode(\Phpsessd\Session::destroyRef($argv[2]));',
            [$first, $ref]
        );
        $this->assertSame(2, $killed);
        $this->assertSame([], $this->listed($ref));
        $this->assertSame('', $this->peek($second)[0]);

        // Strict mode: the ended session's cookie now starts a new one.
        $after = $this->cleanRequest(
            self::OPEN . 'echo json_encode([session_id(), $_SESSION]);',
            [$second]
        );
        $this->assertNotSame($second, $after[0]);
        $this->assertSame([], $after[1]);
    }

    public function testExclusiveLoginEndsTheOlderSession(): void
    {
        $ref = $this->unique('user');
        $old = $this->login($ref);
        $new = $this->login($ref, true);
        $this->assertSame([$new], $this->listed($ref));
        $this->assertSame('', $this->peek($old)[0]);
    }

    public function testRemoveRefAndWritesKeepTags(): void
    {
        $ref = $this->unique('user');
        $other = $this->unique('tenant');
        $id = $this->login($ref);
        $result = $this->cleanRequest(
            self::OPEN . '\Phpsessd\Session::addRef($argv[3]); $_SESSION["n"] = 1;'
            . ' echo json_encode(\Phpsessd\Session::removeRef($argv[2]));',
            [$id, $ref, $other]
        );
        $this->assertTrue($result);
        $this->assertSame([], $this->listed($ref));
        $this->assertSame([$id], $this->listed($other));
        $this->assertStringContainsString('n|i:1;', $this->peek($id)[0]);

        // A later request that changes the session keeps its tag.
        $this->cleanRequest(self::OPEN . '$_SESSION["n"] = 2; echo json_encode(true);', [$id]);
        $this->assertSame([$id], $this->listed($other));
        $again = $this->cleanRequest(
            self::OPEN . 'echo json_encode(\Phpsessd\Session::removeRef($argv[2]));',
            [$id, $ref]
        );
        $this->assertFalse($again);
    }

    public function testBadReferenceThrows(): void
    {
        $result = $this->request(
            'session_start(); try { \Phpsessd\Session::addRef("has space"); echo json_encode("no"); }'
            . ' catch (\Phpsessd\Exception\ServerException $e) { echo json_encode($e->getMessage()); }'
        );
        $this->assertSame('', $result['err']);
        $this->assertIsString($result['json']);
        $this->assertStringContainsString('reference', $result['json']);
    }

    public function testReservedIdsAreRefused(): void
    {
        $connection = new Connection($this->daemon->unixAddress);
        try {
            $this->expectException(ServerException::class);
            $connection->command(['READ', '--phpsessd-ref-x'], true);
        } finally {
            $connection->close();
        }
    }
}
