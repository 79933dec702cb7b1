<?php

declare(strict_types=1);

namespace Phpsessd\Tests;

use Phpsessd\Config;
use Phpsessd\Connection;
use Phpsessd\Handler;
use Phpsessd\Symfony\SessionHandlerProxy;
use Phpsessd\Tests\Support\IntegrationTestCase;

/**
 * Phpsessd\Symfony\SessionHandlerProxy against the real daemon. The whole
 * flow (Session::migrate(true) through NativeSessionStorage in php-fpm,
 * the old cookie still finding the session) is in tests/php.
 */
final class SymfonySessionHandlerProxyTest extends IntegrationTestCase
{
    /** @var Handler|null */
    private $handler = null;

    protected function setUp(): void
    {
        parent::setUp();
        $autoload = 'Symfony/Component/HttpFoundation/autoload.php';
        if (stream_resolve_include_path($autoload) === false) {
            $why = 'Symfony HttpFoundation (Debian: php-symfony-http-foundation) is not installed';
            if (getenv('PHPSESSD_REQUIRE_PHP') === '1') {
                $this->fail('PHPSESSD_REQUIRE_PHP=1 but ' . $why);
            }
            $this->markTestSkipped($why);
        }
        require_once $autoload;
        $config = new Config();
        $config->address = $this->daemon->unixAddress;
        $this->handler = Handler::fromConfig($config);
    }

    protected function tearDown(): void
    {
        if ($this->handler !== null) {
            $this->handler->getConnection()->close();
        }
    }

    public function testIsWhatNativeSessionStorageRegistersUnwrapped(): void
    {
        $proxy = new SessionHandlerProxy($this->handler);
        $this->assertInstanceOf(\SessionIdInterface::class, $proxy);
        $this->assertInstanceOf(
            \Symfony\Component\HttpFoundation\Session\Storage\Proxy\AbstractProxy::class,
            $proxy
        );
        $this->assertSame($this->handler, $proxy->getHandler());
        $this->assertSame('user', $proxy->getSaveHandlerName());
    }

    public function testCreateSidAsksTheDaemon(): void
    {
        $proxy = new SessionHandlerProxy($this->handler);
        $before = $this->handler->getConnection()->getRoundTrips();
        $id = $proxy->create_sid();
        $this->assertIsString($id);
        $length = (int) ini_get('session.sid_length');
        $this->assertSame($length > 0 ? $length : 32, strlen($id));
        $this->assertGreaterThan($before, $this->handler->getConnection()->getRoundTrips(), 'no CREATEID was sent');

        $check = new Connection($this->daemon->unixAddress);
        try {
            // A fresh id names no session yet.
            $this->assertSame(0, $check->command(['VALIDATE', $id], true));
        } finally {
            $check->close();
        }
    }
}
