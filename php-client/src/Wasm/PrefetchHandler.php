<?php

declare(strict_types=1);

namespace Phpsessd\Wasm;

use Phpsessd\Config;
use Phpsessd\Exception\PhpsessdException;
use Phpsessd\Handler;
use Phpsessd\Session;

/**
 * Session handler for runtimes that cannot do socket I/O inside session
 * callbacks: PHP.wasm built with Asyncify (what @php-wasm/node picks on Node
 * without JSPI, e.g. Node 20) crashes when a callback that PHP calls from C
 * waits for the network.
 *
 * The network work is moved out of the callbacks: prefetch() reads the
 * session at top level before session_start(), the callbacks only hand out
 * and collect data in memory, and flush() sends the writes, destroys and the
 * lock release at top level after session_write_close(). The round trips
 * themselves are the regular Handler's, called from top level, so the wire
 * behaviour (READ base, merge on WRITE, lock release, warnings naming the
 * daemon's address) is the same as with bootstrap.php.
 *
 * Differences from the regular handler, all consequences of not talking to
 * the daemon from inside a callback:
 * - The session id has to be known before session_start(): the cookie, or
 *   session_id() set before prefetch(). A session_id()/session_name() change
 *   after prefetch() needs another prefetch(), and so does a session_start()
 *   after flush(). Reopening without one serves this request's own last
 *   write from memory.
 * - New ids (new sessions, session_regenerate_id()) are made locally with
 *   PHP's alphabet and sid_length/sid_bits_per_character. A regenerate is
 *   flushed as a write to the new id followed by a destroy of the old one,
 *   so the old id gets no alias grace period.
 * - A write becomes visible to other requests at flush(), not at
 *   session_write_close().
 * - gc() does nothing: expiry is the daemon's job anyway.
 */
final class PrefetchHandler implements
    \SessionHandlerInterface,
    \SessionIdInterface,
    \SessionUpdateTimestampHandlerInterface
{
    /** @var Handler does every round trip, always from top level */
    private $inner;

    /** @var string|null the id prefetch() read */
    private $id = null;

    /** @var string|false what READ returned for $id; false: it failed */
    private $data = false;

    /** @var bool the daemon knows $id (version > 0) */
    private $exists = false;

    /** @var bool prefetch() ran and the daemon answered (or there was nothing to read) */
    private $ready = false;

    /** @var string|null why the last prefetch() failed */
    private $failure = null;

    /**
     * Ids create_sid() made in this request: nothing is stored under them yet,
     * so they read as empty without asking the daemon.
     *
     * @var array<string, true>
     */
    private $created = [];

    /**
     * What the callbacks asked for, in order, for flush(): [op, id, data].
     *
     * @var array<int, array{0: string, 1: string, 2: string}>
     */
    private $pending = [];

    /** @var self|null the handler register() installed */
    private static $current = null;

    public function __construct(Handler $inner)
    {
        $this->inner = $inner;
    }

    /**
     * The handler wasm-prefetch.php installed, for pages that open the
     * session more than once (prefetch() before each session_start()) or
     * want their writes out before the request ends (flush()).
     */
    public static function current(): ?self
    {
        return self::$current;
    }

    /**
     * @throws \InvalidArgumentException when the config has no address
     */
    public static function fromConfig(Config $config): self
    {
        return new self(Handler::fromConfig($config));
    }

    /**
     * The regular handler underneath, for Phpsessd\Session (incr(), lock(),
     * ...), which works from top level as long as a prefetch() happened.
     */
    public function getHandler(): Handler
    {
        return $this->inner;
    }

    public function getLastError(): ?string
    {
        return $this->failure !== null ? $this->failure : $this->inner->getLastError();
    }

    /**
     * Makes this the session handler and flushes at the end of the request.
     */
    public function register(): bool
    {
        // No automatic session_write_close() from PHP: flush() closes the
        // session itself and must run after it.
        if (!session_set_save_handler($this, false)) {
            return false;
        }
        self::$current = $this;
        Session::setHandler($this->inner);
        register_shutdown_function(function (): void {
            // Shutdown functions the app registers later may still change
            // $_SESSION (PHP normally writes after all of them), so the flush
            // queues itself behind them.
            register_shutdown_function([$this, 'flush']);
        });

        return true;
    }

    /**
     * Reads the session the next session_start() will open. Call at top
     * level, before session_start() and before any output.
     *
     * @param string|null $id the id to read; by default session_id() if the
     *                        app set one, else the session cookie
     * @return bool false when the daemon could not be asked; a warning naming
     *              its address was raised, and session_start() will fail
     */
    public function prefetch(?string $id = null): bool
    {
        if (session_status() === PHP_SESSION_ACTIVE) {
            trigger_error('phpsessd: prefetch() must run before session_start()', E_USER_WARNING);
            return false;
        }
        if ($this->pending !== []) {
            // A session_write_close() without flush(): send it first, or the
            // read below would miss this request's own changes.
            $this->flush();
        }
        $this->id = null;
        $this->data = false;
        $this->exists = false;
        $this->ready = false;
        $this->failure = null;
        $this->created = [];

        if ($id === null) {
            $id = self::requestedId();
        }
        if (!$this->inner->open('', (string) session_name())) {
            $this->failure = $this->inner->getLastError();
            return false;
        }
        if ($id === null) {
            // A new session: PHP will ask create_sid() for an id. open()
            // only opens the socket and PHP.wasm reports a refused connect
            // as success, so complete the handshake here: a dead daemon
            // must fail session_start(), not the flush() at the end.
            try {
                $this->inner->getConnection()->connect();
            } catch (PhpsessdException $e) {
                $this->failure = $e->getMessage();
                trigger_error('phpsessd: cannot open the session: ' . $e->getMessage(), E_USER_WARNING);
                return false;
            }
            $this->ready = true;
            return true;
        }
        $data = $this->inner->read($id);
        if ($data === false) {
            $this->failure = $this->inner->getLastError();
            return false;
        }
        $this->id = $id;
        $this->data = (string) $data;
        $this->exists = $this->inner->getVersion() > 0;
        $this->ready = true;

        return true;
    }

    /**
     * Sends what the session callbacks collected: writes, expiry refreshes,
     * destroys, then the lock release. Closes the session first if it is
     * still active. Call at top level; wasm-prefetch.php calls it at
     * shutdown.
     *
     * @return bool false when something could not be stored (warned)
     */
    public function flush(): bool
    {
        if (session_status() === PHP_SESSION_ACTIVE) {
            session_write_close();
        }
        $pending = $this->pending;
        $this->pending = [];
        $ok = true;
        foreach (self::order($pending) as [$op, $id, $data]) {
            switch ($op) {
                case 'write':
                    $ok = $this->inner->write($id, $data) && $ok;
                    break;
                case 'touch':
                    $ok = $this->inner->updateTimestamp($id, $data) && $ok;
                    break;
                case 'destroy':
                    $ok = $this->inner->destroy($id) && $ok;
                    break;
            }
        }
        if ($this->ready || $pending !== []) {
            $this->inner->close();
        }
        // The data handed out is stale now; the next session_start() needs
        // a new prefetch().
        $this->id = null;
        $this->data = false;
        $this->exists = false;
        $this->ready = false;
        $this->created = [];

        return $ok;
    }

    /**
     * @param string $path
     * @param string $name
     * @return bool
     */
    #[\ReturnTypeWillChange]
    public function open($path, $name)
    {
        if ($this->failure !== null) {
            // prefetch() already warned with the daemon's address and the cause.
            return false;
        }
        if (!$this->ready) {
            trigger_error(
                'phpsessd: session_start() without prefetch(): in prefetch mode call '
                . 'Phpsessd\\Wasm\\PrefetchHandler::prefetch() before every session_start()',
                E_USER_WARNING
            );
            return false;
        }

        return true;
    }

    /**
     * @return bool
     */
    #[\ReturnTypeWillChange]
    public function close()
    {
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
        // Opened again after a session_write_close() in this request: what
        // this request wrote is newer than anything prefetched.
        for ($i = count($this->pending) - 1; $i >= 0; $i--) {
            if ($this->pending[$i][1] === $id) {
                return $this->pending[$i][0] === 'destroy' ? '' : $this->pending[$i][2];
            }
        }
        if (isset($this->created[$id])) {
            return '';
        }
        if ($id === $this->id && $this->data !== false) {
            return $this->data;
        }
        trigger_error(
            'phpsessd: the session id changed after prefetch(); call prefetch() after session_id() or session_name()',
            E_USER_WARNING
        );

        return false;
    }

    /**
     * @param string $id
     * @param string $data
     * @return bool
     */
    #[\ReturnTypeWillChange]
    public function write($id, $data)
    {
        $this->pending[] = ['write', (string) $id, (string) $data];

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
        $this->pending[] = ['destroy', $id, ''];
        if ($id === $this->id) {
            $this->data = '';
            $this->exists = false;
        }

        return true;
    }

    /**
     * @param int $maxlifetime
     * @return int
     */
    #[\ReturnTypeWillChange]
    public function gc($maxlifetime)
    {
        return 0;
    }

    /**
     * @return string
     */
    #[\ReturnTypeWillChange]
    public function create_sid() // phpcs:ignore PSR1.Methods.CamelCapsMethodName.NotCamelCaps
    {
        $id = Handler::localId(self::iniInt('session.sid_length', 32), self::iniInt('session.sid_bits_per_character', 4));
        $this->created[$id] = true;

        return $id;
    }

    /**
     * @param string $id
     * @return bool
     */
    #[\ReturnTypeWillChange]
    public function validateId($id)
    {
        $id = (string) $id;
        if (isset($this->created[$id])) {
            // Strict mode asks whether a fresh id is taken: it is not.
            return false;
        }

        return $id === $this->id && $this->exists;
    }

    /**
     * @param string $id
     * @param string $data
     * @return bool
     */
    #[\ReturnTypeWillChange]
    public function updateTimestamp($id, $data)
    {
        $this->pending[] = ['touch', (string) $id, (string) $data];

        return true;
    }

    /**
     * One WRITE per id, the last one: a session opened again in the same
     * request read back the earlier write, so the last data includes it, and
     * it must be merged against the prefetched base, not against the
     * request's own earlier write. A TOUCH only goes out for ids without a
     * write. Writes to ids that are not destroyed in the same request go
     * first, so a regenerated session exists under its new id before the
     * old id goes away; destroys keep the order PHP asked for.
     *
     * @param array<int, array{0: string, 1: string, 2: string}> $pending
     * @return array<int, array{0: string, 1: string, 2: string}>
     */
    private static function order(array $pending): array
    {
        $destroyed = [];
        $lastWrite = [];
        foreach ($pending as $i => $op) {
            if ($op[0] === 'destroy') {
                $destroyed[$op[1]] = true;
            } elseif ($op[0] === 'write') {
                $lastWrite[$op[1]] = $i;
            }
        }
        $first = [];
        $rest = [];
        $touched = [];
        foreach ($pending as $i => $op) {
            if ($op[0] === 'write' && $lastWrite[$op[1]] !== $i) {
                continue;
            }
            if ($op[0] === 'touch') {
                if (isset($lastWrite[$op[1]]) || isset($touched[$op[1]])) {
                    continue;
                }
                $touched[$op[1]] = true;
            }
            if ($op[0] !== 'destroy' && !isset($destroyed[$op[1]])) {
                $first[] = $op;
            } else {
                $rest[] = $op;
            }
        }

        return array_merge($first, $rest);
    }

    /**
     * The id session_start() will use, if the request brings one: an id the
     * app set with session_id(), else the cookie. Ids outside PHP's alphabet
     * are ignored here just as PHP ignores them.
     */
    private static function requestedId(): ?string
    {
        $id = session_id();
        if (!is_string($id) || $id === '') {
            $id = null;
            $name = (string) session_name();
            if (ini_get('session.use_cookies') && isset($_COOKIE[$name]) && is_string($_COOKIE[$name])) {
                $id = $_COOKIE[$name];
            }
        }
        if ($id === null || preg_match('/\A[A-Za-z0-9,-]{1,256}\z/', $id) !== 1) {
            return null;
        }

        return $id;
    }

    private static function iniInt(string $key, int $default): int
    {
        $value = ini_get($key);

        return is_string($value) && is_numeric($value) ? (int) $value : $default;
    }
}
