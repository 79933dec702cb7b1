<?php

declare(strict_types=1);

namespace Phpsessd;

use Phpsessd\Exception\ConnectionException;
use Phpsessd\Exception\PhpsessdException;
use Phpsessd\Exception\ServerException;
use Phpsessd\Exception\TimeoutException;

/**
 * PHP's session save handler, backed by phpsessd.
 *
 * READ hands out data, version and mode; WRITE sends the data with the
 * version it is based on, and the daemon merges. Round trips are the cost
 * that counts, so a request that opens an existing session and writes it
 * makes two: HELLO travels with the first command, strict mode's id check is
 * answered by the READ itself (see validateId()), and CLOSE is left out
 * where the WRITE already released everything.
 *
 * Callbacks never throw. A failure returns false and raises an
 * E_USER_WARNING that names the daemon's address and the cause, so PHP's
 * own reporting ("Failed to read session data", session_start() returning
 * false, "Failed to write session data") follows as for any handler.
 * Warnings never contain the session id: logs are not a place for secrets.
 *
 * The return types are left off (with #[\ReturnTypeWillChange], a comment
 * before PHP 8) so one file works from PHP 7.4 on without deprecation notices.
 */
class Handler implements \SessionHandlerInterface, \SessionIdInterface, \SessionUpdateTimestampHandlerInterface
{
    /** PHP's session id alphabet, in the order PHP maps bits to characters. */
    private const ID_ALPHABET = '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ,-';

    /** @var Connection */
    private $connection;

    /** @var Config */
    private $config;

    /** @var string|null the id this request read, as long as it is open */
    private $readId = null;

    /** @var int the version READ (or LOCK) handed out: WRITE's BASE */
    private $version = 0;

    /** @var string|null the mode the daemon granted */
    private $grantedMode = null;

    /** @var bool this request gave up its write (Session::readonly()) */
    private $readonly = false;

    /**
     * The old id of a session_regenerate_id(true) in progress: PHP destroys it
     * before asking for the new id, but the daemon moves data and keeps the
     * old id as an alias in one REGENERATE, so the destroy waits until
     * create_sid().
     *
     * @var string|null
     */
    private $deferredDestroy = null;

    /** @var string|null the id create_sid() made during session_regenerate_id() */
    private $regeneratedId = null;

    /**
     * The new id of a session the daemon moved away from its old id on an
     * IP prefix change (--fingerprint-action regenerate). validateId() gets
     * it with the READ and answers false so PHP asks create_sid() for an
     * id, which hands out this one; read() is then served the data the
     * READ already returned.
     *
     * @var string|null
     */
    private $movedTo = null;

    /** @var string|null last failure, for diagnostics */
    private $lastError = null;

    /**
     * The READ validateId() made, for the read() of the same id that PHP
     * calls next: [id, data, version, granted mode, failure]. A failure is
     * kept for read() to report, since PHP only gives up on a failed read.
     *
     * @var array{0: string, 1: string, 2: int, 3: string, 4: PhpsessdException|null}|null
     */
    private $prefetched = null;

    /** @var bool CLOSE for the id read already went out (pipelined) */
    private $closeSent = false;

    /**
     * The handshake failed inside this open/close cycle and was reported
     * once as "cannot open the session"; the callbacks PHP still makes
     * before it gives up fail quietly instead of trying (and warning) again.
     *
     * @var bool
     */
    private $openFailed = false;

    /** @var string|null null: session.serialize_handler, read per command */
    private $format;

    /** @var int|null seconds; null: session.gc_maxlifetime, read per command */
    private $ttl;

    /**
     * $format and $ttl are for callers that drive the handler themselves
     * instead of through PHP's session module (Laravel's session store):
     * their data is not encoded by session.serialize_handler and their
     * lifetime is not session.gc_maxlifetime.
     */
    public function __construct(
        Connection $connection,
        ?Config $config = null,
        ?string $format = null,
        ?int $ttl = null
    ) {
        $this->connection = $connection;
        $this->config = $config !== null ? $config : new Config();
        $this->format = $format;
        $this->ttl = $ttl !== null ? max(0, $ttl) : null;
    }

    /**
     * @throws \InvalidArgumentException when the config has no address
     */
    public static function fromConfig(Config $config, ?string $format = null, ?int $ttl = null): self
    {
        if ($config->address === null) {
            throw new \InvalidArgumentException('phpsessd.address is not set');
        }

        return new self(
            new Connection(
                $config->address,
                $config->token,
                $config->connectTimeout,
                $config->timeout,
                $config->persistent
            ),
            $config,
            $format,
            $ttl
        );
    }

    public function getConnection(): Connection
    {
        return $this->connection;
    }

    public function getGrantedMode(): ?string
    {
        return $this->grantedMode;
    }

    public function getVersion(): int
    {
        return $this->version;
    }

    public function getLastError(): ?string
    {
        return $this->lastError;
    }

    /**
     * @param string $path
     * @param string $name
     * @return bool
     */
    #[\ReturnTypeWillChange]
    public function open($path, $name)
    {
        $this->openFailed = false;
        // HELLO waits for the first command, to share its round trip.
        try {
            $this->connection->open();
        } catch (PhpsessdException $e) {
            return $this->fail('cannot open the session', $e);
        }

        return true;
    }

    /**
     * @return bool
     */
    #[\ReturnTypeWillChange]
    public function close()
    {
        $id = $this->readId;
        $release = $id !== null && !$this->closeSent && $this->mustRelease();
        $this->readId = null;
        $this->version = 0;
        $this->grantedMode = null;
        $this->readonly = false;
        $this->closeSent = false;
        $this->openFailed = false;
        $this->movedTo = null;
        $this->dropPrefetched();
        // Without a live connection there is nothing to release: the daemon
        // drops a connection's locks and bases when the connection goes away.
        if ($release && $this->connection->isConnected()) {
            try {
                $this->connection->command(['CLOSE', $id], true);
            } catch (PhpsessdException $e) {
                $this->lastError = $e->getMessage();
            }
        }

        return true;
    }

    /**
     * @param string $id
     * @return string|false
     */
    #[\ReturnTypeWillChange]
    public function read($id)
    {
        $id = (string) $id;
        if ($this->openFailed) {
            return false;
        }
        if ($this->prefetched !== null) {
            if ($this->prefetched[0] === $id) {
                [, $data, $version, $granted, $failure] = $this->prefetched;
                $this->prefetched = null;
                $this->regeneratedId = null;
                if ($failure !== null) {
                    return $this->failOpen('cannot read the session', $failure);
                }
                $this->opened($id, $version, $granted);
                return $data;
            }
            $this->dropPrefetched();
        }
        if ($this->deferredDestroy !== null && $this->deferredDestroy !== $id) {
            // A regenerate that never asked for its new id: finish the destroy
            // PHP asked for rather than leave the old session behind.
            $old = $this->deferredDestroy;
            $this->deferredDestroy = null;
            try {
                $this->connection->command(['DESTROY', $old], true);
            } catch (PhpsessdException $e) {
                $this->lastError = $e->getMessage();
            }
        }
        $this->regeneratedId = null;

        [$args, $timeout] = $this->readCommand($id);
        try {
            $reply = $this->connection->command($args, true, $timeout);
            [$data, $version, $granted] = self::triple($reply, 'READ');
        } catch (PhpsessdException $e) {
            return $this->failOpen('cannot read the session', $e);
        }
        $this->opened($id, $version, $granted);

        return $data;
    }

    /**
     * READ with everything this request says about itself, and the socket
     * timeout it needs. $movable: the caller can take the session under a
     * new id if the daemon moves it (only validateId() can: PHP asks for a
     * new id after it, never after read()).
     *
     * @return array{0: array<int, string|int>, 1: float|null}
     */
    private function readCommand(string $id, bool $movable = false): array
    {
        $mode = $this->requestedMode();
        $args = ['READ', $id];
        if ($mode !== null) {
            $args[] = 'MODE';
            $args[] = $mode;
        }
        array_push($args, 'FORMAT', $this->format(), 'TTL', $this->ttl());
        $request = self::requestLine();
        if ($request[0] !== null) {
            array_push($args, 'METHOD', $request[0]);
        }
        if ($request[1] !== null) {
            array_push($args, 'PATH', $request[1]);
        }
        if ($this->config->lockWait !== null && $mode !== 'optimistic' && $mode !== 'readonly') {
            array_push($args, 'WAIT', $this->config->lockWait);
        }
        // Fingerprint inputs, for web requests only. A missing User-Agent
        // header is sent as an empty one: leaving the header out must not
        // skip the daemon's check.
        if (isset($_SERVER['REMOTE_ADDR']) && is_string($_SERVER['REMOTE_ADDR'])) {
            $agent = $_SERVER['HTTP_USER_AGENT'] ?? '';
            array_push($args, 'UA', is_string($agent) ? $agent : '', 'IP', $_SERVER['REMOTE_ADDR']);
            if ($movable) {
                array_push($args, 'MOVE', 1);
            }
        }
        // A READ that may wait for a lock must not time out before the lock
        // wait does.
        $timeout = ($mode === 'optimistic' || $mode === 'readonly') ? null : $this->lockTimeout();

        return [$args, $timeout];
    }

    private function opened(string $id, int $version, string $granted): void
    {
        $this->readId = $id;
        $this->version = $version;
        $this->grantedMode = $granted;
        $this->readonly = false;
        $this->closeSent = false;
    }

    /**
     * @param string $id
     * @param string $data
     * @return bool
     */
    #[\ReturnTypeWillChange]
    public function write($id, $data)
    {
        $id = (string) $id;
        if ($this->readonly) {
            return $this->touch($id, 'cannot refresh the session');
        }
        $args = ['WRITE', $id, (string) $data];
        if ($this->readId === $id) {
            array_push($args, 'BASE', $this->version);
        }
        array_push($args, 'FORMAT', $this->format(), 'TTL', $this->ttl());
        // WRITE releases the lock but leaves its result as the connection's
        // base. That only matters on a socket that outlives the request, and
        // there CLOSE rides along instead of costing a round trip in close().
        $withClose = $this->readId === $id && $this->connection->isPersistent();

        try {
            if ($withClose) {
                $replies = $this->connection->pipeline([$args, ['CLOSE', $id]], false);
                $this->closeSent = true;
                $reply = $replies[0];
                if ($reply instanceof RespError) {
                    throw ServerException::fromReply($reply->getCode(), $reply->getMessage());
                }
            } else {
                $reply = $this->connection->command($args, false);
            }
            if (!is_array($reply) || count($reply) < 2 || !is_string($reply[0]) || !is_int($reply[1])) {
                throw new ConnectionException(
                    $this->connection->getAddress() . ': malformed WRITE reply'
                );
            }
        } catch (ServerException $e) {
            return $this->fail('session write refused, nothing was stored', $e);
        } catch (TimeoutException $e) {
            return $this->fail('session write timed out, its outcome is unknown', $e);
        } catch (PhpsessdException $e) {
            // Whether the daemon got the whole frame is unknown here; the
            // cause in the message tells.
            return $this->fail('session write failed', $e);
        }
        // "dropped" (a read-only request changed data) is not a failure of this
        // request: the daemon logs and counts it.
        $this->version = $reply[1];
        if ($this->readId === $id && $this->grantedMode === 'locked') {
            $this->grantedMode = null;
        }

        return true;
    }

    /**
     * @param string $id
     * @return bool
     */
    #[\ReturnTypeWillChange]
    public function destroy($id)
    {
        $id = (string) $id;
        if (self::calledFrom('session_regenerate_id')) {
            $this->deferredDestroy = $id;
            return true;
        }
        try {
            $this->connection->command(['DESTROY', $id], true);
        } catch (PhpsessdException $e) {
            return $this->fail('cannot destroy the session', $e);
        }

        return true;
    }

    /**
     * Expiry is the daemon's own background job; GC only reports.
     *
     * @param int $maxlifetime
     * @return int|false
     */
    #[\ReturnTypeWillChange]
    public function gc($maxlifetime)
    {
        try {
            $swept = $this->connection->command(['GC', (int) $maxlifetime], true);
        } catch (PhpsessdException $e) {
            return $this->fail('session gc failed', $e);
        }

        return is_int($swept) ? $swept : 0;
    }

    /**
     * PHP insists on a string here (false is a fatal error), so when the daemon
     * cannot be asked the id is made locally; the READ that follows fails in
     * that case anyway.
     *
     * @return string
     */
    #[\ReturnTypeWillChange]
    public function create_sid() // phpcs:ignore PSR1.Methods.CamelCapsMethodName.NotCamelCaps
    {
        $length = self::iniInt('session.sid_length', 32);
        $bits = self::iniInt('session.sid_bits_per_character', 4);
        if ($this->openFailed) {
            return self::localId($length, $bits);
        }
        $regenerating = self::calledFrom('session_regenerate_id');
        if ($this->movedTo !== null && !$regenerating) {
            // The daemon already made the id (unique, in the old id's
            // shape); the READ for it is waiting in $prefetched.
            $moved = $this->movedTo;
            $this->movedTo = null;
            return $moved;
        }
        $this->movedTo = null;
        $this->dropPrefetched();
        $options = ['LENGTH', $length, 'BITS', $bits];

        if ($this->deferredDestroy !== null && $regenerating) {
            $old = $this->deferredDestroy;
            $this->deferredDestroy = null;
            try {
                $new = $this->connection->command(array_merge(['REGENERATE', $old], $options), false);
                if (!is_string($new) || $new === '') {
                    throw new ConnectionException($this->connection->getAddress() . ': malformed REGENERATE reply');
                }
                $this->regeneratedId = $new;
                return $new;
            } catch (ServerException $e) {
                // A session never stored has nothing to move: fall back to a
                // fresh id and the destroy PHP asked for.
                if ($e->getErrorCode() !== 'UNKNOWNID') {
                    $this->fail('cannot regenerate the session id', $e);
                    return self::localId($length, $bits);
                }
                try {
                    $this->connection->command(['DESTROY', $old], true);
                } catch (PhpsessdException $ignored) {
                    $this->lastError = $ignored->getMessage();
                }
            } catch (PhpsessdException $e) {
                $this->fail('cannot regenerate the session id', $e);
                return self::localId($length, $bits);
            }
        }

        try {
            $new = $this->connection->command(array_merge(['CREATEID'], $options), true);
            if (!is_string($new) || $new === '') {
                throw new ConnectionException($this->connection->getAddress() . ': malformed CREATEID reply');
            }
        } catch (PhpsessdException $e) {
            $this->failOpen('cannot create a session id', $e);
            return self::localId($length, $bits);
        }
        if ($regenerating) {
            $this->regeneratedId = $new;
        }

        return $new;
    }

    /**
     * @param string $id
     * @return bool
     */
    #[\ReturnTypeWillChange]
    public function validateId($id)
    {
        $id = (string) $id;
        // In strict mode session_regenerate_id() asks whether the new id is
        // taken and, if so, makes another. The id REGENERATE just moved the
        // data to is "taken" by that very data, and the daemon already made
        // it unique, so the answer is no.
        if (
            $this->regeneratedId !== null && $this->regeneratedId === $id
            && self::calledFrom('session_regenerate_id')
        ) {
            return false;
        }
        if ($this->openFailed) {
            return false;
        }
        $this->movedTo = null;
        $this->dropPrefetched();
        // PHP reads the id right after validating it, so the READ is made
        // now and answers both: a session with a version exists. A deferred
        // destroy must run before any READ (read() does it), so not then.
        if ($this->deferredDestroy === null) {
            [$args, $timeout] = $this->readCommand($id, true);
            try {
                $reply = $this->connection->command($args, true, $timeout);
                [$data, $version, $granted] = self::triple($reply, 'READ');
            } catch (PhpsessdException $e) {
                // A session bound to another browser or network is, for
                // this request, a session that does not exist: PHP starts
                // a new one under a fresh id (strict mode).
                if (
                    $e instanceof ServerException
                    && ($e->getErrorCode() === 'INVALIDID' || $e->getErrorCode() === 'FINGERPRINT')
                ) {
                    return false;
                }
                // The failure is read()'s to report: PHP gives up on a failed
                // read, while false here would make it start a new session
                // under a fresh id (a lock wait running out would log the
                // user out).
                $this->prefetched = [$id, '', 0, '', $e];
                return true;
            }
            if (is_array($reply) && isset($reply[3]) && is_string($reply[3]) && $reply[3] !== '') {
                // The session moved to a new id and the old one is gone:
                // the old id is invalid, and the id PHP asks for next is
                // the new one.
                $this->movedTo = $reply[3];
                $this->prefetched = [$reply[3], $data, $version, $granted, null];
                return false;
            }
            $this->prefetched = [$id, $data, $version, $granted, null];
            if ($version > 0) {
                return true;
            }
            // Nothing stored under the id: whether that is acceptable is the
            // daemon's strict-ids setting, which only VALIDATE reveals; a
            // dead regenerate alias also reads as nothing but validates.
        }
        try {
            $valid = $this->connection->command(['VALIDATE', $id], true) === 1;
        } catch (ServerException $e) {
            $this->dropPrefetched();
            if ($e->getErrorCode() === 'INVALIDID') {
                return false;
            }
            return $this->failOpen('cannot validate the session id', $e);
        } catch (PhpsessdException $e) {
            $this->dropPrefetched();
            return $this->failOpen('cannot validate the session id', $e);
        }
        if (!$valid) {
            // PHP makes a new id and reads that one instead.
            $this->dropPrefetched();
        }

        return $valid;
    }

    /**
     * @param string $id
     * @param string $data
     * @return bool
     */
    #[\ReturnTypeWillChange]
    public function updateTimestamp($id, $data)
    {
        return $this->touch((string) $id, 'cannot refresh the session');
    }

    /**
     * Takes the lock mid-request and merges this request's current data onto
     * the stored session under it.
     *
     * @return string the merged encoded session, to be decoded into $_SESSION
     *
     * @throws PhpsessdException
     */
    public function lock(string $id, string $data): string
    {
        $args = ['LOCK', $id, 'DATA', $data, 'FORMAT', $this->format(), 'TTL', $this->ttl()];
        if ($this->config->lockWait !== null) {
            array_push($args, 'WAIT', $this->config->lockWait);
        }
        [$merged, $version, $granted] = self::triple(
            $this->connection->command($args, false, $this->lockTimeout()),
            'LOCK'
        );
        $this->opened($id, $version, $granted);

        return $merged;
    }

    /**
     * From now on this request's changes are not sent; its write only
     * refreshes the expiry, and a lock it holds is released at close as usual.
     */
    public function setReadonly(bool $readonly = true): void
    {
        $this->readonly = $readonly;
    }

    public function isReadonly(): bool
    {
        return $this->readonly;
    }

    /**
     * A lockless key operation (INCR, APPEND, PUSH, SET, UNSET) on the same
     * connection as this request's READ, so the daemon folds it into the base
     * and the final WRITE does not apply it again.
     *
     * @param array<int, string|int> $args operation arguments after the key
     * @return mixed the daemon's reply
     *
     * @throws PhpsessdException
     */
    public function keyOperation(string $operation, string $id, string $key, array $args)
    {
        $command = array_merge([$operation, $id, $key], $args, ['FORMAT', $this->format(), 'TTL', $this->ttl()]);
        $retryable = $operation === 'SET' || $operation === 'UNSET';

        return $this->connection->command($command, $retryable);
    }

    private function touch(string $id, string $what): bool
    {
        $args = ['TOUCH', $id, 'TTL', $this->ttl()];
        try {
            // TOUCH releases nothing; when close() would have to, its CLOSE
            // rides along.
            if ($this->readId === $id && !$this->closeSent && $this->mustRelease()) {
                $replies = $this->connection->pipeline([$args, ['CLOSE', $id]], true);
                $this->closeSent = true;
                if ($replies[0] instanceof RespError) {
                    throw ServerException::fromReply($replies[0]->getCode(), $replies[0]->getMessage());
                }
            } else {
                $this->connection->command($args, true);
            }
        } catch (PhpsessdException $e) {
            return $this->fail($what, $e);
        }

        return true;
    }

    /**
     * Whether the daemon holds something for the id read that only CLOSE
     * gives back: the lock (a WRITE already released it), or, on a socket
     * that outlives the request, the base. A plain socket closes with the
     * request and takes the base along.
     */
    private function mustRelease(): bool
    {
        return $this->grantedMode === 'locked' || $this->connection->isPersistent();
    }

    /**
     * Gives back what an unused READ from validateId() took.
     */
    private function dropPrefetched(): void
    {
        if ($this->prefetched === null) {
            return;
        }
        [$id, , , $granted, $failure] = $this->prefetched;
        $this->prefetched = null;
        if (
            $failure === null && $this->connection->isConnected()
            && ($granted === 'locked' || $this->connection->isPersistent())
        ) {
            try {
                $this->connection->command(['CLOSE', $id], true);
            } catch (PhpsessdException $e) {
                $this->lastError = $e->getMessage();
            }
        }
    }

    private function requestedMode(): ?string
    {
        if (!$this->config->rules->isEmpty()) {
            $request = self::requestLine();
            $mode = $this->config->rules->match(
                $request[0] !== null ? $request[0] : 'GET',
                $request[1] !== null ? $request[1] : '/'
            );
            if ($mode !== null) {
                return $mode;
            }
        }

        return $this->config->mode;
    }

    private function lockTimeout(): float
    {
        $wait = $this->config->lockWait !== null ? $this->config->lockWait : Config::DAEMON_DEFAULT_LOCK_WAIT_MS;

        return $this->connection->getTimeout() + $wait / 1000;
    }

    /**
     * fail() for the callbacks between open and close that carry the
     * handshake: a failed handshake is reported as the open failure it is.
     *
     * @return false
     */
    private function failOpen(string $what, \Throwable $e): bool
    {
        if ($this->connection->handshakeFailed()) {
            $this->openFailed = true;
            $what = 'cannot open the session';
        }

        return $this->fail($what, $e);
    }

    /**
     * @return false
     */
    private function fail(string $what, \Throwable $e): bool
    {
        if ($e instanceof ServerException) {
            $message = sprintf(
                'phpsessd: %s: the daemon at %s answered %s',
                $what,
                $this->connection->getAddress(),
                $e->getMessage()
            );
        } else {
            $message = sprintf('phpsessd: %s: %s', $what, $e->getMessage());
        }
        $this->lastError = $message;
        trigger_error($message, E_USER_WARNING);

        return false;
    }

    /**
     * @param mixed $reply
     * @return array{0: string, 1: int, 2: string}
     */
    private static function triple($reply, string $command): array
    {
        if (
            !is_array($reply) || count($reply) < 3 || !is_int($reply[1])
            || !($reply[0] === null || is_string($reply[0])) || !is_string($reply[2])
        ) {
            throw new ConnectionException('malformed ' . $command . ' reply');
        }

        return [$reply[0] === null ? '' : $reply[0], $reply[1], $reply[2]];
    }

    private static function calledFrom(string $function): bool
    {
        foreach (debug_backtrace(DEBUG_BACKTRACE_IGNORE_ARGS) as $frame) {
            if (!isset($frame['class']) && isset($frame['function']) && $frame['function'] === $function) {
                return true;
            }
        }

        return false;
    }

    private function format(): string
    {
        if ($this->format !== null) {
            return $this->format;
        }
        $format = ini_get('session.serialize_handler');

        return is_string($format) && $format !== '' ? $format : 'php';
    }

    private function ttl(): int
    {
        if ($this->ttl !== null) {
            return $this->ttl;
        }

        return max(0, self::iniInt('session.gc_maxlifetime', 0));
    }

    private static function iniInt(string $key, int $default): int
    {
        $value = ini_get($key);

        return is_string($value) && is_numeric($value) ? (int) $value : $default;
    }

    /**
     * @return array{0: string|null, 1: string|null} method and path without the query
     */
    private static function requestLine(): array
    {
        $method = isset($_SERVER['REQUEST_METHOD']) && is_string($_SERVER['REQUEST_METHOD'])
            && $_SERVER['REQUEST_METHOD'] !== '' ? $_SERVER['REQUEST_METHOD'] : null;
        $path = null;
        if (isset($_SERVER['REQUEST_URI']) && is_string($_SERVER['REQUEST_URI']) && $_SERVER['REQUEST_URI'] !== '') {
            $uri = $_SERVER['REQUEST_URI'];
            $cut = strcspn($uri, '?#');
            $path = substr($uri, 0, $cut);
            // Absolute-form request targets (proxies) carry scheme and host.
            if (
                ($path === '' || $path[0] !== '/')
                && preg_match('~\A[a-zA-Z][a-zA-Z0-9+.-]*://[^/]*~', $path, $m) === 1
            ) {
                $path = (string) substr($path, strlen($m[0]));
            }
            if ($path === '') {
                $path = '/';
            }
        }

        return [$method, $path];
    }

    /**
     * A crypto-random id in PHP's own alphabet for the given sid_length and
     * sid_bits_per_character, for when the daemon cannot make one.
     */
    public static function localId(int $length, int $bits): string
    {
        if ($length < 22 || $length > 256) {
            $length = 32;
        }
        if ($bits < 4 || $bits > 6) {
            $bits = 4;
        }
        $mask = (1 << $bits) - 1;
        $bytes = random_bytes($length);
        $id = '';
        for ($i = 0; $i < $length; $i++) {
            $id .= self::ID_ALPHABET[ord($bytes[$i]) & $mask];
        }

        return $id;
    }
}
