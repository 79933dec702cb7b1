<?php

declare(strict_types=1);

namespace Phpsessd;

use Phpsessd\Exception\ConnectionException;
use Phpsessd\Exception\ProtocolException;
use Phpsessd\Exception\ServerException;
use Phpsessd\Exception\TimeoutException;

/**
 * One connection to the daemon, speaking RESP2.
 *
 * The daemon keeps per-connection state (the base a READ handed out, the
 * locks held), so one PHP request should use one Connection for all of its
 * commands.
 *
 * Round trips are what a request pays for, so the handshake is not one of
 * its own: HELLO goes out in the same write as the first command that may
 * safely run even if HELLO is refused, and pipeline() sends several commands
 * at once.
 *
 * Retry policy, chosen so that a command is never applied twice:
 * - Before a command is sent on a connection that was used before, the
 *   connection is probed without blocking; a connection the daemon closed
 *   while idle is replaced before a single byte goes out.
 * - If sending fails part-way, the daemon never saw a complete frame (frames
 *   are length-prefixed and only run once complete), so any command may be
 *   resent, once, on a new connection, when the failed one had been used
 *   before (a fresh one failing means the daemon is really gone). Several
 *   pipelined frames are resent only when all of them are retryable: the
 *   first may have arrived whole.
 * - If the frame was sent and the connection then closed without a single
 *   byte of reply, the command may or may not have run. Only commands the
 *   caller marks retryable (READ, PING, VALIDATE, CLOSE, TOUCH, DESTROY, ...)
 *   are resent, once. WRITE, LOCK, INCR, APPEND, PUSH and REGENERATE are not:
 *   applying them twice could count a delta twice.
 * - A timeout is never retried and the connection is dropped, since a late
 *   reply would otherwise be read as the answer to the next command.
 */
final class Connection
{
    public const PROTOCOL_VERSION = '1';

    /**
     * After these error codes the daemon closes the connection (or is going
     * away), so nothing more can be read from it.
     */
    private const CLOSING_ERRORS = ['PROTO' => true, 'TOOBIG' => true, 'SHUTDOWN' => true];

    /** @var string */
    private $address;

    /** @var string */
    private $uri;

    /** @var string|null */
    private $token;

    /** @var float */
    private $connectTimeout;

    /** @var float */
    private $timeout;

    /** @var bool */
    private $persistent;

    /** @var resource|null */
    private $stream = null;

    /**
     * True once a reply was read on the current stream, or when a persistent
     * stream left over from an earlier request was handed back to us.
     *
     * @var bool
     */
    private $used = false;

    /** @var bool the daemon accepted HELLO on the current stream */
    private $greeted = false;

    /** @var float|null the timeout the stream is set to, to skip setting it again */
    private $streamTimeout = null;

    /** @var string bytes read but not yet parsed into a reply */
    private $buffer = '';

    /** @var int where the next reply starts in $buffer */
    private $offset = 0;

    /** @var bool the last command failed before the daemon accepted the handshake */
    private $handshakeFailed = false;

    /** @var int writes that then waited for replies, over this object's life */
    private $roundTrips = 0;

    /** @var array<string, mixed> */
    private $serverInfo = [];

    /**
     * @param string      $address        unix:///path, /path, tcp://host:port
     * @param string|null $token          sent with HELLO when not null or ''
     * @param float       $connectTimeout seconds
     * @param float       $timeout        seconds without progress on a read or write
     * @param bool        $persistent     reuse the socket across requests of one PHP worker
     */
    public function __construct(
        string $address,
        ?string $token = null,
        float $connectTimeout = 1.0,
        float $timeout = 5.0,
        bool $persistent = false
    ) {
        $this->uri = self::normalizeAddress($address);
        $this->address = $this->uri;
        $this->token = ($token === null || $token === '') ? null : $token;
        $this->connectTimeout = $connectTimeout > 0 ? $connectTimeout : 1.0;
        $this->timeout = $timeout > 0 ? $timeout : 5.0;
        $this->persistent = $persistent;
    }

    /**
     * Turns the accepted spellings into a stream URI.
     *
     * @throws \InvalidArgumentException for anything else, so a typo fails
     *                                   loudly instead of connecting somewhere odd
     */
    public static function normalizeAddress(string $address): string
    {
        $address = trim($address);
        if ($address === '') {
            throw new \InvalidArgumentException('phpsessd address is empty');
        }
        if ($address[0] === '/') {
            return 'unix://' . $address;
        }
        if (strncmp($address, 'unix://', 7) === 0) {
            if (strlen($address) < 9 || $address[7] !== '/') {
                throw new \InvalidArgumentException(
                    'phpsessd address ' . $address . ': a unix socket needs an absolute path (unix:///path)'
                );
            }
            return $address;
        }
        if (strncmp($address, 'tcp://', 6) === 0) {
            if (
                preg_match('~\Atcp://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):([0-9]{1,5})\z~', $address, $m) !== 1
                || (int) $m[2] < 1 || (int) $m[2] > 65535
            ) {
                throw new \InvalidArgumentException(
                    'phpsessd address ' . $address . ': expected tcp://host:port'
                );
            }
            return $address;
        }
        throw new \InvalidArgumentException(
            'phpsessd address ' . $address . ': expected unix:///path, /path or tcp://host:port'
        );
    }

    public function getAddress(): string
    {
        return $this->address;
    }

    public function getTimeout(): float
    {
        return $this->timeout;
    }

    public function isPersistent(): bool
    {
        return $this->persistent;
    }

    public function isConnected(): bool
    {
        return $this->stream !== null;
    }

    /**
     * Whether the last command failed before the daemon accepted the
     * handshake: no socket, HELLO refused or unanswered. To the caller that
     * is a session that could not be opened, whatever command carried it.
     */
    public function handshakeFailed(): bool
    {
        return $this->handshakeFailed;
    }

    /**
     * How many times this object sent something and waited for the reply,
     * pipelined commands counting once: what a request's latency is made of.
     */
    public function getRoundTrips(): int
    {
        return $this->roundTrips;
    }

    /**
     * What HELLO answered (server, version, proto, id), as a map.
     *
     * @return array<string, mixed>
     */
    public function getServerInfo(): array
    {
        return $this->serverInfo;
    }

    /**
     * Opens the socket and shakes hands in a round trip of its own, unless
     * already connected.
     *
     * Some runtimes (PHP.wasm) report a refused connection only as an empty
     * first read, so a connect that "succeeded" proves nothing; this is for
     * callers that want that proof now. open() is the cheap variant.
     *
     * @throws ConnectionException|ServerException
     */
    public function connect(): void
    {
        $this->handshakeFailed = false;
        if ($this->stream === null) {
            $this->openSocket();
        }
        if (!$this->greeted) {
            $this->handshake();
        }
    }

    /**
     * Opens the socket, unless already open, and leaves HELLO to travel with
     * the first command. Catches a missing socket or a refused connection at
     * once; a wrong token or a daemon that does not answer shows at the first
     * command (see handshakeFailed()).
     *
     * @throws ConnectionException
     */
    public function open(): void
    {
        $this->handshakeFailed = false;
        if ($this->stream === null) {
            $this->openSocket();
        }
    }

    /**
     * Sends one command and returns its reply.
     *
     * @param array<int, string|int> $args
     * @param bool       $retryable the command is safe to run twice (see class doc)
     * @param float|null $timeout   seconds, for commands that may legitimately
     *                              wait longer than the default (lock waits)
     *
     * @return mixed string, int, null or list, as Resp::parse gives them
     *
     * @throws ConnectionException|ServerException
     */
    public function command(array $args, bool $retryable = false, ?float $timeout = null)
    {
        $reply = $this->exchange(Resp::encode($args), 1, $retryable, $timeout)[0];
        if ($reply instanceof RespError) {
            throw ServerException::fromReply($reply->getCode(), $reply->getMessage());
        }

        return $reply;
    }

    /**
     * Sends several commands in one write and reads their replies, in order:
     * one round trip for all of them. The daemon runs them one after the
     * other whatever each answers, so only batch commands whose later members
     * are wanted even when an earlier one fails.
     *
     * @param array<int, array<int, string|int>> $commands
     * @param bool       $retryable every command is safe to run twice
     * @param float|null $timeout   seconds to wait for each reply
     *
     * @return array<int, mixed> one reply per command; an error reply is a
     *                           RespError so that every outcome is seen
     *
     * @throws ConnectionException|ServerException the latter when the daemon
     *                                             closes the connection
     */
    public function pipeline(array $commands, bool $retryable = false, ?float $timeout = null): array
    {
        $frames = '';
        foreach ($commands as $args) {
            $frames .= Resp::encode($args);
        }

        return $this->exchange($frames, count($commands), $retryable, $timeout);
    }

    /**
     * Closes the socket, persistent or not. Locks held by this connection are
     * released by the daemon when it sees the close.
     */
    public function close(): void
    {
        $this->drop();
    }

    /**
     * @return array<int, mixed>
     *
     * @throws ConnectionException|ServerException
     */
    private function exchange(string $frames, int $count, bool $retryable, ?float $timeout): array
    {
        $this->handshakeFailed = false;
        $wait = $timeout === null ? $this->timeout : $timeout;
        $retried = false;
        while (true) {
            $reused = true;
            if ($this->stream === null) {
                $this->openSocket();
            } elseif ($this->used && !$this->probe()) {
                $this->drop();
                $this->openSocket();
                $reused = false;
            }
            // A refused HELLO must not leave behind a command that changed
            // something (a unix listener runs commands without a token), so
            // only harmless commands travel with it.
            $greet = !$this->greeted;
            if ($greet && !$retryable) {
                $this->handshake();
                $greet = false;
            }

            try {
                $this->send($greet ? $this->helloFrame() . $frames : $frames);
            } catch (ConnectionException $e) {
                $this->handshakeFailed = $greet;
                $this->drop();
                // Incomplete frame: the daemon cannot have run it.
                if (
                    !$e instanceof TimeoutException && !$greet && $reused && !$retried
                    && ($count === 1 || $retryable)
                ) {
                    $retried = true;
                    continue;
                }
                throw $e;
            }

            $gotBytes = false;
            $replies = [];
            try {
                if ($greet) {
                    $this->accept($this->receive($this->timeout, $gotBytes));
                    $gotBytes = $this->offset < strlen($this->buffer);
                }
                for ($i = 0; $i < $count; $i++) {
                    $reply = $this->receive($wait, $gotBytes);
                    if ($reply instanceof RespError && isset(self::CLOSING_ERRORS[$reply->getCode()])) {
                        $this->drop();
                        throw ServerException::fromReply($reply->getCode(), $reply->getMessage());
                    }
                    $replies[] = $reply;
                }
                if ($this->offset !== strlen($this->buffer)) {
                    throw new ProtocolException($this->address . ': unexpected bytes after a reply');
                }
            } catch (ConnectionException $e) {
                $this->handshakeFailed = !$this->greeted;
                $this->drop();
                if (
                    $retryable && $reused && !$gotBytes && !$retried && !$this->handshakeFailed
                    && !$e instanceof TimeoutException && !$e instanceof ProtocolException
                ) {
                    $retried = true;
                    continue;
                }
                throw $e;
            }
            $this->buffer = '';
            $this->offset = 0;
            $this->used = true;

            return $replies;
        }
    }

    /**
     * @throws ConnectionException
     */
    private function openSocket(): void
    {
        $flags = STREAM_CLIENT_CONNECT;
        if ($this->persistent) {
            $flags |= STREAM_CLIENT_PERSISTENT;
        }
        $errno = 0;
        $errstr = '';
        $stream = @stream_socket_client($this->uri, $errno, $errstr, $this->connectTimeout, $flags);
        if ($stream === false) {
            $this->handshakeFailed = true;
            if ($errstr === '') {
                $last = error_get_last();
                $errstr = $last !== null ? $last['message'] : 'unknown error';
            }
            throw new ConnectionException(sprintf(
                '%s: cannot connect: %s%s',
                $this->address,
                $errstr,
                $errno !== 0 ? ' (errno ' . $errno . ')' : ''
            ));
        }
        $this->stream = $stream;
        $this->used = false;
        $this->greeted = false;
        $this->buffer = '';
        $this->offset = 0;
        $this->streamTimeout = null;

        // A persistent socket that already carried bytes was opened and
        // authenticated by an earlier request of this worker.
        if ($this->persistent && @ftell($stream) > 0) {
            $this->used = true;
            $this->greeted = true;
        }
    }

    private function helloFrame(): string
    {
        $args = ['HELLO', self::PROTOCOL_VERSION];
        if ($this->token !== null) {
            $args[] = 'AUTH';
            $args[] = $this->token;
        }
        $args[] = 'NAME';
        $args[] = 'php-client/' . getmypid();

        return Resp::encode($args);
    }

    /**
     * HELLO in a round trip of its own.
     *
     * @throws ConnectionException|ServerException
     */
    private function handshake(): void
    {
        try {
            $this->send($this->helloFrame());
            $gotBytes = false;
            $this->accept($this->receive($this->timeout, $gotBytes));
            if ($this->offset !== strlen($this->buffer)) {
                throw new ProtocolException($this->address . ': unexpected bytes after a reply');
            }
        } catch (ConnectionException $e) {
            $this->handshakeFailed = true;
            $this->drop();
            throw $e;
        }
        $this->buffer = '';
        $this->offset = 0;
    }

    /**
     * Checks HELLO's reply; the connection is dropped when it is not a
     * welcome.
     *
     * @param mixed $reply
     *
     * @throws ConnectionException|ServerException
     */
    private function accept($reply): void
    {
        if ($reply instanceof RespError) {
            $this->handshakeFailed = true;
            $this->drop();
            throw ServerException::fromReply(
                $reply->getCode(),
                $reply->getMessage() . ' (HELLO to ' . $this->address . ')'
            );
        }
        if (!is_array($reply)) {
            throw new ProtocolException($this->address . ': HELLO reply is not an array');
        }
        $info = [];
        for ($i = 0, $n = count($reply); $i + 1 < $n; $i += 2) {
            if (is_string($reply[$i])) {
                $info[$reply[$i]] = $reply[$i + 1];
            }
        }
        if (isset($info['proto']) && (string) $info['proto'] !== self::PROTOCOL_VERSION) {
            throw new ProtocolException(
                $this->address . ': daemon speaks protocol ' . $info['proto']
                . ', this client ' . self::PROTOCOL_VERSION
            );
        }
        $this->serverInfo = $info;
        $this->greeted = true;
        $this->used = true;
    }

    /**
     * False when an idle connection has something to read: that is either the
     * daemon's close (idle timeout, restart) or stray bytes, and neither may
     * be mistaken for the reply to the next command.
     */
    private function probe(): bool
    {
        $read = [$this->stream];
        $write = null;
        $except = null;

        $ready = @stream_select($read, $write, $except, 0, 0);
        if ($ready === 0) {
            return true;
        }
        if ($ready === false) {
            return false;
        }
        // An idle connection should have nothing to read, so "readable"
        // normally means the daemon closed it. PHP.wasm, however, reports
        // idle sockets as readable: peek without blocking to tell EOF ('')
        // from a healthy socket with no data (false). Stray bytes are a
        // desynchronised stream and count as dead too.
        @stream_set_blocking($this->stream, false);
        $peek = @stream_socket_recvfrom($this->stream, 1, STREAM_PEEK);
        @stream_set_blocking($this->stream, true);

        return $peek === false && !@feof($this->stream);
    }

    private function send(string $frame): void
    {
        $this->roundTrips++;
        $this->applyTimeout($this->timeout);
        // One write is the rule: a socket takes a request frame whole.
        $n = @fwrite($this->stream, $frame);
        if ($n === strlen($frame)) {
            return;
        }
        $total = strlen($frame);
        $written = is_int($n) ? $n : 0;
        while (true) {
            if ($n === false || $n === 0) {
                $meta = @stream_get_meta_data($this->stream);
                if (!empty($meta['timed_out'])) {
                    throw new TimeoutException(sprintf(
                        '%s: write timed out after %s s',
                        $this->address,
                        self::seconds($this->timeout)
                    ));
                }
                throw new ConnectionException($this->address . ': connection lost while sending');
            }
            if ($written >= $total) {
                return;
            }
            $n = @fwrite($this->stream, substr($frame, $written));
            if (is_int($n)) {
                $written += $n;
            }
        }
    }

    /**
     * The next reply, from what is buffered or else read: a read takes
     * whatever has arrived, which for pipelined commands is often every
     * reply at once.
     *
     * @return mixed
     */
    private function receive(float $timeout, bool &$gotBytes)
    {
        while (true) {
            if ($this->offset < strlen($this->buffer)) {
                $parsed = Resp::parse($this->buffer, $this->offset);
                if ($parsed !== null) {
                    $this->offset = $parsed[1];
                    return $parsed[0];
                }
            }
            $this->applyTimeout($timeout);
            $chunk = @fread($this->stream, 65536);
            if ($chunk === false || $chunk === '') {
                $meta = @stream_get_meta_data($this->stream);
                if (!empty($meta['timed_out'])) {
                    throw new TimeoutException(sprintf(
                        '%s: no reply within %s s',
                        $this->address,
                        self::seconds($timeout)
                    ));
                }
                throw new ConnectionException(
                    $this->address . ($this->offset < strlen($this->buffer)
                        ? ': connection closed in the middle of a reply'
                        : ': connection closed by the daemon (or refused)')
                );
            }
            $gotBytes = true;
            if ($this->offset > 0) {
                $this->buffer = (string) substr($this->buffer, $this->offset);
                $this->offset = 0;
            }
            $this->buffer .= $chunk;
        }
    }

    private function applyTimeout(float $seconds): void
    {
        if ($this->streamTimeout === $seconds) {
            return;
        }
        $whole = (int) floor($seconds);
        $micro = (int) round(($seconds - $whole) * 1000000);
        if ($micro >= 1000000) {
            $whole++;
            $micro = 0;
        }
        stream_set_timeout($this->stream, $whole, $micro);
        $this->streamTimeout = $seconds;
    }

    private function drop(): void
    {
        if ($this->stream !== null) {
            @fclose($this->stream);
        }
        $this->stream = null;
        $this->used = false;
        $this->greeted = false;
        $this->buffer = '';
        $this->offset = 0;
        $this->streamTimeout = null;
    }

    private static function seconds(float $seconds): string
    {
        return rtrim(rtrim(number_format($seconds, 3, '.', ''), '0'), '.');
    }
}
