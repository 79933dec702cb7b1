<?php

declare(strict_types=1);

namespace Phpsessd\Tests;

use Phpsessd\Tests\Support\IntegrationTestCase;

/**
 * Fingerprint binding as a web request sees it: the shim sends the user
 * agent and address, and a session presented from another browser or
 * network is replaced by a new, empty one.
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

    /**
     * @return array{0: string, 1: array<string, mixed>}
     */
    private function web(string $id, string $agent, string $address): array
    {
        $result = $this->cleanRequest(self::REQUEST, [$id, $agent, $address]);
        $this->assertIsArray($result);

        return $result;
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
}
