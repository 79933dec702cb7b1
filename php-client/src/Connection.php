<?php

declare(strict_types=1);

namespace Phpsessd;

use Phpsessd\Exception\ConnectionException;
use Phpsessd\Exception\ProtocolException;
use Phpsessd\Exception\ServerException;
use Phpsessd\Exception\TimeoutException;

/**
 * One connection to the daemon, speaking RESP2 one command at a time.
 *
 * The daemon keeps per-connection state (the base a READ handed out, the
 * locks held), so one PHP request should use one Connection for all of its
 * commands.
 *
 * Retry policy, chosen so that a command is never applied twice:
 * - Before a command is sent on a connection that was used before, the
 *   connection is probed without blocking; a connection the daemon closed
 *   while idle is replaced before a single byte goes out.
 * - If sending fails part-way, the daemon never saw a complete frame (frames
 *   are length-prefixed and only run once complete), so any command may be
 *   resent, once, on a new connection, when the failed one had been used
 *   before (a fresh one failing means the daemon is really gone).
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

    public function isConnected(): bool
    {
        return $this->stream !== null;
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
     * Opens the socket and shakes hands, unless already connected.
     *
     * The handshake is a full round trip on purpose: some runtimes (PHP.wasm)
     * report a refused connection only as an empty first read, so a connect
     * that "succeeded" proves nothing.
     *
     * @throws ConnectionException|ServerException
     */
    public function connect(): void
    {
        if ($this->stream !== null) {
            return;
        }
        $flags = STREAM_CLIENT_CONNECT;
        if ($this->persistent) {
            $flags |= STREAM_CLIENT_PERSISTENT;
        }
        $errno = 0;
        $errstr = '';
        $stream = @stream_socket_client($this->uri, $errno, $errstr, $this->connectTimeout, $flags);
        if ($stream === false) {
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
        stream_set_blocking($stream, true);
        $this->applyTimeout($this->timeout);

        // A persistent socket that already carried bytes was opened and
        // authenticated by an earlier request of this worker.
        if ($this->persistent && @ftell($stream) > 0) {
            $this->used = true;
            return;
        }
        $this->handshake();
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
        $frame = Resp::encode($args);
        $retried = false;
        while (true) {
            $this->connect();
            $reused = $this->used;
            if ($reused && !$this->probe()) {
                $this->drop();
                $this->connect();
                $reused = false;
            }

            try {
                $this->send($frame);
            } catch (TimeoutException $e) {
                $this->drop();
                throw $e;
            } catch (ConnectionException $e) {
                // Incomplete frame: the daemon cannot have run it.
                $this->drop();
                if ($reused && !$retried) {
                    $retried = true;
                    continue;
                }
                throw $e;
            }

            $gotBytes = false;
            try {
                $reply = $this->receive($timeout === null ? $this->timeout : $timeout, $gotBytes);
            } catch (TimeoutException $e) {
                $this->drop();
                throw $e;
            } catch (ProtocolException $e) {
                $this->drop();
                throw $e;
            } catch (ConnectionException $e) {
                $this->drop();
                if ($retryable && $reused && !$gotBytes && !$retried) {
                    $retried = true;
                    continue;
                }
                throw $e;
            }
            $this->used = true;

            if ($reply instanceof RespError) {
                // After these the daemon closes the connection (or is going away).
                if (in_array($reply->getCode(), ['PROTO', 'TOOBIG', 'SHUTDOWN'], true)) {
                    $this->drop();
                }
                throw ServerException::fromReply($reply->getCode(), $reply->getMessage());
            }

            return $reply;
        }
    }

    /**
     * Closes the socket, persistent or not. Locks held by this connection are
     * released by the daemon when it sees the close.
     */
    public function close(): void
    {
        $this->drop();
    }

    private function handshake(): void
    {
        $args = ['HELLO', self::PROTOCOL_VERSION];
        if ($this->token !== null) {
            $args[] = 'AUTH';
            $args[] = $this->token;
        }
        $args[] = 'NAME';
        $args[] = 'php-client/' . getmypid();

        try {
            $this->send(Resp::encode($args));
            $gotBytes = false;
            $reply = $this->receive($this->timeout, $gotBytes);
        } catch (ConnectionException $e) {
            $this->drop();
            throw $e;
        }
        if ($reply instanceof RespError) {
            $this->drop();
            throw ServerException::fromReply(
                $reply->getCode(),
                $reply->getMessage() . ' (HELLO to ' . $this->address . ')'
            );
        }
        if (!is_array($reply)) {
            $this->drop();
            throw new ProtocolException($this->address . ': HELLO reply is not an array');
        }
        $info = [];
        for ($i = 0; $i + 1 < count($reply); $i += 2) {
            if (is_string($reply[$i])) {
                $info[$reply[$i]] = $reply[$i + 1];
            }
        }
        if (isset($info['proto']) && (string) $info['proto'] !== self::PROTOCOL_VERSION) {
            $this->drop();
            throw new ProtocolException(
                $this->address . ': daemon speaks protocol ' . $info['proto']
                . ', this client ' . self::PROTOCOL_VERSION
            );
        }
        $this->serverInfo = $info;
        $this->used = true;
    }

    /**
     * False when an idle connection has something to read: that is either the
     * daemon's close (idle timeout, restart) or stray bytes, and neither may
     * be mistaken for the reply to the next command.
     */
    private function probe(): bool
    {
        if ($this->stream === null) {
            return false;
        }
        $read = [$this->stream];
        $write = null;
        $except = null;
        $ready = @stream_select($read, $write, $except, 0, 0);

        return $ready === 0;
    }

    private function send(string $frame): void
    {
        $this->applyTimeout($this->timeout);
        $total = strlen($frame);
        $written = 0;
        while ($written < $total) {
            $n = @fwrite($this->stream, $written === 0 ? $frame : substr($frame, $written));
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
            $written += $n;
        }
    }

    /**
     * @return mixed
     */
    private function receive(float $timeout, bool &$gotBytes)
    {
        $this->applyTimeout($timeout);
        $buffer = '';
        while (true) {
            if ($buffer !== '') {
                $parsed = Resp::parse($buffer);
                if ($parsed !== null) {
                    if ($parsed[1] !== strlen($buffer)) {
                        throw new ProtocolException($this->address . ': unexpected bytes after a reply');
                    }
                    return $parsed[0];
                }
            }
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
                    $this->address . ($buffer === ''
                        ? ': connection closed by the daemon (or refused)'
                        : ': connection closed in the middle of a reply')
                );
            }
            $gotBytes = true;
            $buffer .= $chunk;
        }
    }

    private function applyTimeout(float $seconds): void
    {
        if ($this->stream === null) {
            return;
        }
        $whole = (int) floor($seconds);
        $micro = (int) round(($seconds - $whole) * 1000000);
        if ($micro >= 1000000) {
            $whole++;
            $micro = 0;
        }
        stream_set_timeout($this->stream, $whole, $micro);
    }

    private function drop(): void
    {
        if ($this->stream !== null) {
            @fclose($this->stream);
        }
        $this->stream = null;
        $this->used = false;
    }

    private static function seconds(float $seconds): string
    {
        return rtrim(rtrim(number_format($seconds, 3, '.', ''), '0'), '.');
    }
}
