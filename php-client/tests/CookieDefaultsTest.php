<?php

declare(strict_types=1);

namespace Phpsessd\Tests;

use Phpsessd\CookieDefaults;
use Phpsessd\Tests\Support\PhpRunner;
use PHPUnit\Framework\TestCase;

final class CookieDefaultsTest extends TestCase
{
    private const SHOW = <<<'PHP'
echo json_encode([
    ini_get('session.cookie_httponly'),
    ini_get('session.cookie_samesite'),
    ini_get('session.cookie_secure'),
    ini_get('session.use_strict_mode'),
]);
PHP;

    public function testSafeDefaultsOnPlainHttp(): void
    {
        $result = PhpRunner::run(self::SHOW, ['phpsessd.address' => '/tmp/unused.sock']);
        $this->assertSame(['1', 'Lax', '0', '1'], $result['json']);
    }

    public function testSecureCookieOnHttps(): void
    {
        $result = PhpRunner::run(self::SHOW, ['phpsessd.address' => '/tmp/unused.sock'], [], ['HTTPS' => 'on']);
        $this->assertSame(['1', 'Lax', '1', '1'], $result['json']);
    }

    public function testValuesTheAppChoseAreKept(): void
    {
        $result = PhpRunner::run(self::SHOW, [
            'phpsessd.address' => '/tmp/unused.sock',
            'session.cookie_samesite' => 'Strict',
        ]);
        $this->assertSame(['1', 'Strict', '0', '1'], $result['json']);
    }

    public function testCanBeTurnedOff(): void
    {
        $result = PhpRunner::run(self::SHOW, [
            'phpsessd.address' => '/tmp/unused.sock',
            'phpsessd.cookie_defaults' => '0',
        ]);
        $this->assertSame(['0', '', '0', '0'], $result['json']);
    }

    public function testHttpsDetection(): void
    {
        $this->assertTrue(CookieDefaults::isHttps(['HTTPS' => 'on']));
        $this->assertTrue(CookieDefaults::isHttps(['HTTPS' => '1']));
        $this->assertTrue(CookieDefaults::isHttps(['REQUEST_SCHEME' => 'https']));
        $this->assertFalse(CookieDefaults::isHttps(['HTTPS' => 'off']));
        $this->assertFalse(CookieDefaults::isHttps(['HTTPS' => '']));
        $this->assertFalse(CookieDefaults::isHttps(['HTTP_X_FORWARDED_PROTO' => 'https']));
    }
}
