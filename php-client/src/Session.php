<?php

declare(strict_types=1);

namespace Phpsessd;

use Phpsessd\Exception\PhpsessdException;

/**
 * What an app can ask of phpsessd beyond PHP's own session API.
 *
 * All methods work on the current session (session_id()) through the
 * registered handler's connection, the one the request's READ used. Unlike
 * the save handler callbacks these throw (PhpsessdException and subclasses)
 * because the app called them and can decide what a failure means.
 */
final class Session
{
    /** @var Handler|null */
    private static $handler = null;

    public static function setHandler(?Handler $handler): void
    {
        self::$handler = $handler;
    }

    /**
     * @throws \LogicException when phpsessd is not the session handler
     */
    public static function getHandler(): Handler
    {
        if (self::$handler === null) {
            throw new \LogicException('phpsessd is not the session handler (is phpsessd.address set?)');
        }

        return self::$handler;
    }

    public static function isEnabled(): bool
    {
        return self::$handler !== null;
    }

    /**
     * Upgrades this request to an exclusive lock, waiting in the daemon's
     * FIFO queue. The changes this request already made to $_SESSION are
     * merged onto the latest stored data and the result replaces $_SESSION;
     * the lock holds until the session is written or closed.
     *
     * @throws PhpsessdException (LockTimeoutException when the wait runs out)
     * @throws \LogicException without an active session
     */
    public static function lock(): void
    {
        $handler = self::getHandler();
        $id = self::activeId(true);
        if ($handler->getGrantedMode() === 'locked') {
            return;
        }
        $data = session_encode();
        if (!is_string($data)) {
            throw new \LogicException('session_encode() failed, the session cannot be locked');
        }
        $merged = $handler->lock($id, $data);
        foreach (array_keys($_SESSION) as $key) {
            unset($_SESSION[$key]);
        }
        if ($merged !== '' && session_decode($merged) === false) {
            throw new \LogicException('the locked session data could not be decoded');
        }
    }

    /**
     * This request will not store its changes to $_SESSION: the final write
     * only refreshes the expiry. The key operations below still apply, since
     * each is an explicit request to change the session.
     */
    public static function readonly(): void
    {
        self::getHandler()->setReadonly(true);
    }

    /**
     * $_SESSION[$key] gets this request's own delta added, not the returned
     * value: the daemon folds the same delta into the base this request
     * read, so the final write sees the key unchanged and keeps the stored
     * total. Mirroring the total would make this request's write look like
     * a change and overwrite increments that other requests make later.
     *
     * @return int the new value in the daemon, other requests' increments included
     *
     * @throws PhpsessdException
     */
    public static function incr(string $key, int $by = 1): int
    {
        $args = $by === 1 ? [] : ['BY', $by];
        $value = self::getHandler()->keyOperation('INCR', self::activeId(false), $key, $args);
        $value = self::expectInt($value, 'INCR');
        self::mirror(static function () use ($key, $by, $value): void {
            if (!isset($_SESSION[$key])) {
                $_SESSION[$key] = $by;
            } elseif (is_int($_SESSION[$key])) {
                $_SESSION[$key] += $by;
            } else {
                $_SESSION[$key] = $value;
            }
        });

        return $value;
    }

    /**
     * @return int the new length in bytes
     *
     * @throws PhpsessdException
     */
    public static function append(string $key, string $string): int
    {
        $length = self::expectInt(
            self::getHandler()->keyOperation('APPEND', self::activeId(false), $key, [$string]),
            'APPEND'
        );
        self::mirror(static function () use ($key, $string): void {
            $current = isset($_SESSION[$key]) && is_string($_SESSION[$key]) ? $_SESSION[$key] : '';
            $_SESSION[$key] = $current . $string;
        });

        return $length;
    }

    /**
     * @param mixed $value
     * @return int the new element count
     *
     * @throws PhpsessdException
     */
    public static function push(string $key, $value): int
    {
        $count = self::expectInt(
            self::getHandler()->keyOperation('PUSH', self::activeId(false), $key, [serialize($value)]),
            'PUSH'
        );
        self::mirror(static function () use ($key, $value): void {
            if (!isset($_SESSION[$key]) || !is_array($_SESSION[$key])) {
                $_SESSION[$key] = [];
            }
            $_SESSION[$key][] = $value;
        });

        return $count;
    }

    /**
     * @param mixed $value
     *
     * @throws PhpsessdException
     */
    public static function set(string $key, $value): void
    {
        self::getHandler()->keyOperation('SET', self::activeId(false), $key, [serialize($value)]);
        self::mirror(static function () use ($key, $value): void {
            $_SESSION[$key] = $value;
        });
    }

    /**
     * @return bool whether the key existed in the daemon
     *
     * @throws PhpsessdException
     */
    public static function unset(string $key): bool
    {
        $removed = self::getHandler()->keyOperation('UNSET', self::activeId(false), $key, []);
        self::mirror(static function () use ($key): void {
            unset($_SESSION[$key]);
        });

        return $removed === 1;
    }

    /**
     * Tags the current session with a reference such as 'user:42', so that
     * sessionsOf() finds it and destroyRef() ends it ("log out everywhere").
     * Call it at login, after session_regenerate_id(). A session that was
     * never stored is stored (empty) right away so the tag cannot be lost.
     *
     * @param string $ref       1..200 printable ASCII bytes, no spaces
     * @param bool   $exclusive end every other session carrying $ref (one
     *                          session per user); the daemon may also be
     *                          configured to do so for some references
     * @return int how many other sessions were ended
     *
     * @throws PhpsessdException
     */
    public static function addRef(string $ref, bool $exclusive = false): int
    {
        $args = ['REF', 'ADD', self::activeId(false), $ref];
        if ($exclusive) {
            $args[] = 'EXCLUSIVE';
        }
        $reply = self::getHandler()->getConnection()->command($args, true);
        if (!is_array($reply) || count($reply) !== 2 || !is_int($reply[1])) {
            throw new PhpsessdException('malformed REF ADD reply');
        }

        return $reply[1];
    }

    /**
     * @return bool whether the current session carried the reference
     *
     * @throws PhpsessdException
     */
    public static function removeRef(string $ref): bool
    {
        $args = ['REF', 'DEL', self::activeId(false), $ref];
        $reply = self::getHandler()->getConnection()->command($args, true);

        return self::expectInt($reply, 'REF DEL') === 1;
    }

    /**
     * The ids of the live sessions carrying the reference (any request may
     * ask; no session needs to be open).
     *
     * @return array<int, string>
     *
     * @throws PhpsessdException
     */
    public static function sessionsOf(string $ref): array
    {
        $reply = self::getHandler()->getConnection()->command(['REF', 'LIST', $ref], true);
        if (!is_array($reply)) {
            throw new PhpsessdException('malformed REF LIST reply');
        }

        return array_map('strval', $reply);
    }

    /**
     * Destroys every session carrying the reference, the current one
     * included if it does.
     *
     * @return int how many sessions were destroyed
     *
     * @throws PhpsessdException
     */
    public static function destroyRef(string $ref): int
    {
        $reply = self::getHandler()->getConnection()->command(['REF', 'KILL', $ref], true);

        return self::expectInt($reply, 'REF KILL');
    }

    /**
     * Key operations need only an id, so they also work after
     * session_write_close(); lock() needs the session open.
     */
    private static function activeId(bool $mustBeActive): string
    {
        $active = session_status() === PHP_SESSION_ACTIVE;
        $id = session_id();
        if (($mustBeActive && !$active) || !is_string($id) || $id === '') {
            throw new \LogicException('no active session: call session_start() first');
        }

        return $id;
    }

    private static function mirror(callable $apply): void
    {
        if (session_status() === PHP_SESSION_ACTIVE) {
            $apply();
        }
    }

    /**
     * @param mixed $value
     */
    private static function expectInt($value, string $command): int
    {
        if (!is_int($value)) {
            throw new PhpsessdException('malformed ' . $command . ' reply');
        }

        return $value;
    }
}
