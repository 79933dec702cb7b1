<?php

declare(strict_types=1);

namespace Phpsessd\Symfony;

use Phpsessd\Handler;
use Symfony\Component\HttpFoundation\Session\Storage\Proxy\SessionHandlerProxy as SymfonyProxy;

/**
 * Symfony's session handler proxy, passing create_sid() on to phpsessd.
 *
 * NativeSessionStorage wraps whatever handler it is given in its own proxy
 * before registering it with PHP, and that proxy does not implement
 * \SessionIdInterface. PHP then makes new ids itself, and
 * session_regenerate_id(true) (Session::migrate(true), the login
 * "migrate" strategy) turns into a plain destroy plus a new id: the daemon's
 * REGENERATE, which keeps the old id as an alias so parallel requests still
 * carrying the old cookie are not logged out, never happens.
 *
 * NativeSessionStorage does not wrap a proxy again, so passing this one
 * instead of the bare handler keeps Symfony's behaviour and restores the
 * regenerate grace. Needs symfony/http-foundation (4.4 or newer); loaded
 * only by apps that use it.
 */
class SessionHandlerProxy extends SymfonyProxy implements \SessionIdInterface
{
    public function __construct(Handler $handler)
    {
        parent::__construct($handler);
    }

    /**
     * @return string
     */
    #[\ReturnTypeWillChange]
    public function create_sid() // phpcs:ignore PSR1.Methods.CamelCapsMethodName.NotCamelCaps
    {
        return $this->handler->create_sid();
    }
}
