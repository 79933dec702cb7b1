<?php

declare(strict_types=1);

namespace Phpsessd\Laravel;

use Phpsessd\Config;
use Phpsessd\Exception\PhpsessdException;
use Phpsessd\Handler;

/**
 * phpsessd as a Laravel session driver.
 *
 * Laravel's session store bypasses PHP's session module: it calls read($id)
 * when the session starts and write($id, serialize($attributes)) when it is
 * saved, and never open() or close(). This decorator supplies the
 * open/close cycle Handler relies on around that pair, so a lock or a
 * persistent connection's base is given back after the write and not left
 * for the next request of a long-lived worker.
 *
 * Unlike PHP's session module, Laravel treats a failed read as an empty
 * session and would then save that over the user's data. So a failure is
 * thrown here (as Laravel's own Redis and database drivers do) instead of
 * being returned as false.
 *
 * Register it in a service provider:
 *
 *     Session::extend('phpsessd', function ($app) {
 *         return SessionHandler::fromConfig(Config::fromEnvironment(), $app['config']['session.lifetime']);
 *     });
 */
final class SessionHandler implements \SessionHandlerInterface
{
    /** What Laravel's store writes: PHP's serialize() of the attribute array. */
    public const FORMAT = 'php_serialize';

    /** @var Handler */
    private $handler;

    /** @var bool Handler::open() ran and its close() is still due */
    private $open = false;

    /**
     * The handler must send FORMAT php_serialize (see fromConfig()): with
     * PHP's default `php` format the daemon cannot decode Laravel's data
     * and falls back to last-writer-wins.
     */
    public function __construct(Handler $handler)
    {
        $this->handler = $handler;
    }

    /**
     * @param int $lifetimeMinutes Laravel's session.lifetime; the daemon
     *                             expires the session after as many idle
     *                             minutes
     *
     * @throws \InvalidArgumentException when the config has no address
     */
    public static function fromConfig(Config $config, int $lifetimeMinutes): self
    {
        return new self(Handler::fromConfig($config, self::FORMAT, max(0, $lifetimeMinutes) * 60));
    }

    public function getHandler(): Handler
    {
        return $this->handler;
    }

    /**
     * @param string $path
     * @param string $name
     * @return bool
     */
    #[\ReturnTypeWillChange]
    public function open($path, $name)
    {
        return $this->begin();
    }

    /**
     * @return bool
     */
    #[\ReturnTypeWillChange]
    public function close()
    {
        $this->end();

        return true;
    }

    /**
     * @param string $id
     * @return string
     *
     * @throws PhpsessdException
     */
    #[\ReturnTypeWillChange]
    public function read($id)
    {
        // A read starts a new request cycle; whatever the previous one left
        // (a store that was never saved) is released first.
        $this->end();
        $data = $this->begin() ? $this->handler->read((string) $id) : false;
        if ($data === false) {
            $this->end();
            throw $this->failure('read');
        }

        return $data;
    }

    /**
     * @param string $id
     * @param string $data
     * @return bool
     *
     * @throws PhpsessdException
     */
    #[\ReturnTypeWillChange]
    public function write($id, $data)
    {
        try {
            $written = $this->begin() && $this->handler->write((string) $id, (string) $data);
        } finally {
            // Laravel saves once per request and never closes.
            $this->end();
        }
        if (!$written) {
            throw $this->failure('write');
        }

        return true;
    }

    /**
     * @param string $id
     * @return bool
     *
     * @throws PhpsessdException
     */
    #[\ReturnTypeWillChange]
    public function destroy($id)
    {
        if (!$this->handler->destroy((string) $id)) {
            throw $this->failure('destroy');
        }

        return true;
    }

    /**
     * @param int $maxlifetime
     * @return int|false
     */
    #[\ReturnTypeWillChange]
    public function gc($maxlifetime)
    {
        return $this->handler->gc((int) $maxlifetime);
    }

    public function __destruct()
    {
        $this->end();
    }

    private function begin(): bool
    {
        if ($this->open) {
            return true;
        }
        $this->open = true;
        if ($this->handler->open('', '')) {
            return true;
        }
        $this->end();

        return false;
    }

    private function end(): void
    {
        if ($this->open) {
            $this->open = false;
            $this->handler->close();
        }
    }

    private function failure(string $what): PhpsessdException
    {
        $cause = $this->handler->getLastError();

        return new PhpsessdException(
            'phpsessd: Laravel session ' . $what . ' failed' . ($cause !== null ? ' (' . $cause . ')' : '')
        );
    }
}
