<?php

declare(strict_types=1);

namespace Phpsessd\Tests;

use Phpsessd\Config;
use Phpsessd\Connection;
use Phpsessd\Tests\Support\PhpRunner;
use PHPUnit\Framework\TestCase;

final class ConfigTest extends TestCase
{
    public function testDefaults(): void
    {
        $config = Config::fromArray([]);
        $this->assertNull($config->address);
        $this->assertNull($config->mode);
        $this->assertNull($config->token);
        $this->assertSame(1.0, $config->connectTimeout);
        $this->assertSame(5.0, $config->timeout);
        $this->assertNull($config->lockWait);
        $this->assertFalse($config->persistent);
        $this->assertTrue($config->cookieDefaults);
        $this->assertTrue($config->rules->isEmpty());
    }

    public function testParsesEveryKey(): void
    {
        $config = Config::fromArray([
            'address' => '/run/phpsessd.sock',
            'mode' => 'Locked',
            'token' => 's3cret',
            'rules' => 'GET /api/* readonly',
            'connect_timeout' => '0.25',
            'timeout' => '2',
            'lock_wait' => '1500',
            'persistent' => 'on',
            'cookie_defaults' => 'off',
        ]);
        $this->assertSame('unix:///run/phpsessd.sock', $config->address);
        $this->assertSame('locked', $config->mode);
        $this->assertSame('s3cret', $config->token);
        $this->assertSame('readonly', $config->rules->match('GET', '/api/x'));
        $this->assertSame(0.25, $config->connectTimeout);
        $this->assertSame(2.0, $config->timeout);
        $this->assertSame(1500, $config->lockWait);
        $this->assertTrue($config->persistent);
        $this->assertFalse($config->cookieDefaults);
    }

    /**
     * @return array<string, array{0: string, 1: string}>
     */
    public function badValues(): array
    {
        return [
            'mode' => ['mode', 'exclusive'],
            'timeout' => ['timeout', 'soon'],
            'zero timeout' => ['timeout', '0'],
            'lock_wait' => ['lock_wait', '1.5 s'],
            'lock_wait unit' => ['lock_wait', '3d'],
            'token_file' => ['token_file', '/nonexistent/token'],
            'persistent' => ['persistent', 'maybe'],
            'address' => ['address', 'redis://localhost'],
        ];
    }

    /**
     * @dataProvider badValues
     */
    public function testRejectsBadValues(string $key, string $value): void
    {
        $this->expectException(\InvalidArgumentException::class);
        Config::fromArray([$key => $value]);
    }

    /**
     * @return array<string, array{0: string, 1: int}>
     */
    public function lockWaits(): array
    {
        return [
            'bare milliseconds' => ['1500', 1500],
            'ms' => ['500ms', 500],
            'seconds' => ['30s', 30000],
            'fraction' => ['1.5s', 1500],
            'compound' => ['1m30s', 90000],
        ];
    }

    /**
     * @dataProvider lockWaits
     */
    public function testLockWaitAcceptsTheDaemonsDurations(string $value, int $expected): void
    {
        $this->assertSame($expected, Config::fromArray(['lock_wait' => $value])->lockWait);
    }

    public function testTokenFile(): void
    {
        $file = tempnam(sys_get_temp_dir(), 'pstok');
        file_put_contents($file, "  from-file\n");
        try {
            $this->assertSame('from-file', Config::fromArray(['token_file' => $file])->token);
            $this->assertSame('direct', Config::fromArray(['token_file' => $file, 'token' => 'direct'])->token);
        } finally {
            unlink($file);
        }
    }

    /**
     * @return array<string, array{0: string, 1: string}>
     */
    public function addresses(): array
    {
        return [
            'unix url' => ['unix:///run/phpsessd/phpsessd.sock', 'unix:///run/phpsessd/phpsessd.sock'],
            'path shortcut' => ['/run/phpsessd/phpsessd.sock', 'unix:///run/phpsessd/phpsessd.sock'],
            'tcp' => ['tcp://10.0.0.5:7411', 'tcp://10.0.0.5:7411'],
            'tcp hostname' => ['tcp://sessions.internal:7411', 'tcp://sessions.internal:7411'],
            'tcp ipv6' => ['tcp://[::1]:7411', 'tcp://[::1]:7411'],
            'whitespace' => ['  /tmp/x.sock ', 'unix:///tmp/x.sock'],
        ];
    }

    /**
     * @dataProvider addresses
     */
    public function testNormalizesAddresses(string $given, string $expected): void
    {
        $this->assertSame($expected, Connection::normalizeAddress($given));
    }

    /**
     * @return array<string, array{0: string}>
     */
    public function badAddresses(): array
    {
        return [
            'relative unix' => ['unix://run/x.sock'],
            'tcp without port' => ['tcp://localhost'],
            'tcp port out of range' => ['tcp://localhost:70000'],
            'bare host' => ['localhost:7411'],
            'empty' => [' '],
        ];
    }

    /**
     * @dataProvider badAddresses
     */
    public function testRejectsBadAddresses(string $address): void
    {
        $this->expectException(\InvalidArgumentException::class);
        Connection::normalizeAddress($address);
    }

    public function testFastCgiParamsOverrideEnvironmentOverrideIni(): void
    {
        $code = <<<'PHP'
$fromServer = Phpsessd\Config::fromEnvironment(['PHPSESSD_MODE' => 'readonly']);
$fromEnv = Phpsessd\Config::fromEnvironment([]);
echo json_encode([
    'server' => [$fromServer->mode, $fromServer->address, (string) $fromServer->timeout],
    'env' => [$fromEnv->mode, $fromEnv->address, (string) $fromEnv->timeout],
]);
PHP;
        $result = PhpRunner::run(
            $code,
            ['phpsessd.mode' => 'locked', 'phpsessd.address' => '/ini.sock', 'phpsessd.timeout' => '3'],
            [],
            ['PHPSESSD_MODE' => 'optimistic', 'PHPSESSD_ADDRESS' => '/env.sock']
        );
        $this->assertSame('', $result['err']);
        $this->assertSame([
            'server' => ['readonly', 'unix:///env.sock', '3'],
            'env' => ['optimistic', 'unix:///env.sock', '3'],
        ], $result['json']);
    }
}
