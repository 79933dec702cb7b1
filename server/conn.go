package server

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/phpsessd/phpsessd/engine"
	"github.com/phpsessd/phpsessd/protocol"
)

// flushThreshold caps how many reply bytes pile up while a pipelined batch
// is being answered, so one client cannot make the server buffer without
// bound.
const flushThreshold = 64 << 10

// maxPending bounds the sessions one connection is counted as working on;
// a PHP request rarely opens more than one.
const maxPending = 16

// conn is one client connection, served by one goroutine.
type conn struct {
	s      *Server
	nc     net.Conn
	id     uint64
	l      *listener
	r      *protocol.Reader
	w      *protocol.Writer
	client *engine.Client
	authed bool
	name   string
	quit   bool
	// ctx is what commands run under: the server's base context, and on
	// an event loop also the hook that takes the connection off the loop
	// before a command waits.
	ctx context.Context
	// ev is the connection's event-loop state; nil when a goroutine of
	// its own serves it.
	ev *loopState

	readArmed, writeArmed time.Time // when the deadlines were last moved
	// lastDone is when the last command finished. Deadlines are armed
	// right after a command, and reading the clock is a noticeable part
	// of a request that costs a few µs, so they reuse this reading.
	lastDone time.Time

	// mu orders arming the idle read deadline against Shutdown's interrupt,
	// so a connection cannot slip back into a long read after Shutdown woke
	// it, and guards pending, which Shutdown reads.
	mu sync.Mutex
	// pending lists the ids this connection READ or LOCKed and has not
	// yet written or closed: a PHP request is working on them, and a
	// graceful shutdown keeps the connection until its WRITE arrives.
	pending []string

	// granted is the mode the current READ or LOCK granted, for observe.
	granted string
	// observe is Config.ObserveConn's hook for this connection, or nil.
	observe func(cmd, mode string, took time.Duration, code string)
	// lastID is the session id of the previous command: a request's READ
	// and WRITE arrive on one connection and share one string.
	lastID string
}

// addPending records that a READ or LOCK handed out a base for id.
func (c *conn) addPending(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range c.pending {
		if p == id {
			return
		}
	}
	if len(c.pending) == maxPending {
		// Requests that died without WRITE or CLOSE on a persistent
		// connection must not grow this list; the oldest is the likeliest
		// to be one of them.
		c.pending = append(c.pending[:0], c.pending[1:]...)
	}
	c.pending = append(c.pending, id)
}

// donePending records that the request working on id is finished.
func (c *conn) donePending(id []byte) {
	if len(c.pending) == 0 {
		return // only this goroutine changes pending, so no lock to look
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, p := range c.pending {
		if p == string(id) {
			c.pending = append(c.pending[:i], c.pending[i+1:]...)
			return
		}
	}
}

// sessionID is args' session id as a string, allocated only when it is
// not the id of the previous command.
func (c *conn) sessionID(b []byte) string {
	if string(b) != c.lastID {
		c.lastID = string(b)
	}
	return c.lastID
}

// isPending reports whether a request on this connection works on id. Only
// the connection's own goroutine changes pending, so it reads it unlocked.
func (c *conn) isPending(id []byte) bool {
	for _, p := range c.pending {
		if p == string(id) {
			return true
		}
	}
	return false
}

// renamePending follows a REGENERATE: the request goes on under the new id.
func (c *conn) renamePending(old, id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, p := range c.pending {
		if p == old {
			c.pending[i] = id
			return
		}
	}
}

func (c *conn) logAttrs() []any {
	a := []any{"conn", c.id, "listen", c.l.addr.String()}
	if c.name != "" {
		a = append(a, "client", c.name)
	}
	return a
}

func (c *conn) serve() {
	defer c.close()
	if c.l.addr.Network == "tcp" {
		c.s.log.Debug("connection opened", append(c.logAttrs(), "remote", c.nc.RemoteAddr().String())...)
	} else {
		c.s.log.Debug("connection opened", c.logAttrs()...)
	}
	for {
		if !c.armRead() {
			c.flush() // answers of a pipelined batch cut by shutdown
			return
		}
		args, err := c.r.ReadRequest()
		if err != nil {
			if c.readFailed(err) {
				// No command ran for this frame, and the connection may
				// have been idle for longer than the write timeout since
				// the last one.
				c.lastDone = time.Now()
				if c.flush() == nil {
					c.lingerClose()
				}
			}
			return
		}
		c.dispatch(args)
		// Replies are otherwise flushed by flushingReader, just before the
		// connection would block waiting for more input.
		if c.w.Buffered() >= flushThreshold || c.quit {
			if err := c.flush(); err != nil {
				c.s.log.Debug("write failed, closing connection", append(c.logAttrs(), "err", err)...)
				return
			}
		}
		if c.quit {
			return
		}
	}
}

// flushingReader sits between the connection and the request reader and
// flushes pending replies whenever the reader needs more bytes from the
// socket. Requests already buffered (a pipelined batch) are answered into
// one write, and no reply waits behind a read that could block: not even
// when the next request has only partly arrived.
type flushingReader struct{ c *conn }

func (f flushingReader) Read(p []byte) (int, error) {
	replied := f.c.w.Buffered() > 0
	if err := f.c.flush(); err != nil {
		return 0, err
	}
	if replied {
		// The peer needs a moment to answer a reply with its next
		// request; reading at once would mostly find the socket empty,
		// a wasted system call before parking in the poller. Letting the
		// other connections run first usually gives the request time to
		// arrive, and costs nothing when nothing else is runnable.
		runtime.Gosched()
	}
	return f.c.nc.Read(p)
}

// armRead sets the idle deadline for the next request; false means the
// server is shutting down and the connection, with no request of its own
// left to finish, should end.
func (c *conn) armRead() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if c.s.shutting.Load() {
		if len(c.pending) == 0 {
			return false
		}
		// Shutdown may have interrupted this connection while its READ
		// was still running; the WRITE it now owes is worth waiting for.
		c.nc.SetReadDeadline(now.Add(c.s.cfg.IdleTimeout))
		c.readArmed = now
		return true
	}
	// Moving a deadline costs a timer update per request; moving it only
	// when a sixteenth of it has passed keeps the idle timeout within
	// 1/16 of the configured value at a fraction of the cost.
	if now.Sub(c.readArmed) > c.s.cfg.IdleTimeout/16 {
		c.nc.SetReadDeadline(now.Add(c.s.cfg.IdleTimeout))
		c.readArmed = now
	}
	return true
}

// interruptIdle makes a blocked read return at once, unless a request
// this connection serves still has to write its session.
func (c *conn) interruptIdle() {
	if c.ev != nil {
		c.ev.l.wake()
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.pending) == 0 {
		c.nc.SetReadDeadline(time.Unix(1, 0))
	}
}

// now is the time deadlines are armed from: the end of the command just
// answered, or the clock before the first one.
func (c *conn) now() time.Time {
	if c.lastDone.IsZero() {
		return time.Now()
	}
	return c.lastDone
}

func (c *conn) flush() error {
	if c.w.Buffered() == 0 {
		return nil
	}
	now := c.now()
	if now.Sub(c.writeArmed) > c.s.cfg.WriteTimeout/16 {
		c.nc.SetWriteDeadline(now.Add(c.s.cfg.WriteTimeout))
		c.writeArmed = now
	}
	return c.w.Flush()
}

func (c *conn) close() {
	c.nc.Close()
	c.release()
}

// release drops what the connection holds once its socket is closed: its
// locks and bases in the engine, its buffers and its place in the server.
func (c *conn) release() {
	if err := c.client.Close(); err != nil && !errors.Is(err, engine.ErrClosed) {
		c.s.log.Warn("releasing connection state", append(c.logAttrs(), "err", err)...)
	}
	c.s.recycle(c)
	c.s.dropConn(c)
	c.s.log.Debug("connection closed", c.logAttrs()...)
}

// readFailed handles the end of a connection's input: a clean close, an
// idle timeout, shutdown, or a bad frame, which gets one error reply. It
// reports whether it wrote that reply, which the caller then sends before
// closing.
func (c *conn) readFailed(err error) bool {
	var pe *protocol.ProtocolError
	var tb *protocol.TooBigError
	switch {
	case errors.Is(err, io.EOF):
		return false
	case errors.As(err, &pe), errors.As(err, &tb), errors.Is(err, io.ErrUnexpectedEOF):
	case errors.Is(err, os.ErrDeadlineExceeded):
		if !c.s.shutting.Load() {
			c.s.log.Debug("idle timeout, closing connection", c.logAttrs()...)
		}
		return false
	default:
		if !errors.Is(err, net.ErrClosed) {
			c.s.log.Debug("read failed, closing connection", append(c.logAttrs(), "err", err)...)
		}
		return false
	}
	code, msg := protocol.Describe(err)
	if errors.Is(err, io.ErrUnexpectedEOF) {
		// The peer went away mid-request; nobody is left to read a reply.
		c.s.log.Debug("connection closed inside a frame", c.logAttrs()...)
		return false
	}
	c.s.stats.countError(code)
	c.s.log.Info("bad frame, closing connection", append(c.logAttrs(), "code", code, "reason", msg)...)
	c.w.WriteError(code, msg)
	return true
}

// lingerClose half-closes the connection and drains what the peer is still
// sending for a moment before the full close. Closing a TCP socket with
// unread input makes the kernel send a reset, which can destroy the error
// reply before the peer reads it.
func (c *conn) lingerClose() {
	if cw, ok := c.nc.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	c.nc.SetReadDeadline(time.Now().Add(250 * time.Millisecond))
	io.CopyN(io.Discard, c.nc, c.s.cfg.MaxFrame+1)
}

// dispatch runs one request and writes its reply into the buffer.
func (c *conn) dispatch(args [][]byte) {
	start := c.s.now()
	// Requests turned away below still count as activity for the idle
	// deadline armed from lastDone.
	c.lastDone = start
	cmd := c.s.lookup(args[0])
	if cmd == nil {
		c.s.stats.unknown.Add(1)
		c.replyError("ERR", "unknown command '"+printable(args[0])+"'")
		return
	}
	cmd.calls.Add(1)
	if !c.authed && !cmd.preAuth {
		c.replyError("NOAUTH", "authentication required: send HELLO 1 AUTH <token> or AUTH <token>")
		return
	}
	if len(args) < cmd.minArgs || (cmd.maxArgs >= 0 && len(args) > cmd.maxArgs) {
		c.replyError("ERR", "wrong number of arguments for '"+cmd.name+"'; usage: "+cmd.usage)
		return
	}
	if cmd.opens && c.s.shutting.Load() && !(cmd.name == "LOCK" && c.isPending(args[1])) {
		// A request starting now could not save its session before the
		// daemon is gone: let PHP fail at session_start, visibly.
		c.replyError("SHUTDOWN", "phpsessd is shutting down")
		return
	}
	if cmd.offLoop && c.ev != nil {
		c.detach()
	}
	code := ""
	if err := cmd.run(c, args); err != nil {
		var msg string
		code, msg = c.s.mapError(err)
		if code == "ERR" || code == "BACKEND" {
			c.s.log.Debug("command failed", append(c.logAttrs(), "cmd", cmd.name, "code", code, "err", err)...)
		}
		c.replyError(code, msg)
	}
	// One more clock read, not two: Since reads only the monotonic clock.
	d := time.Since(start)
	c.lastDone = start.Add(d)
	if c.observe != nil {
		c.observe(cmd.name, c.granted, d, code)
		c.granted = ""
	}
	if d > time.Second {
		c.s.log.Debug("slow command", append(c.logAttrs(), "cmd", cmd.name, "took", d)...)
	}
}

// source names the peer of this connection for security signals.
func (c *conn) source() string {
	if c.l.addr.Network == "unix" {
		return "unix:" + c.l.addr.Addr
	}
	return "tcp:" + c.nc.RemoteAddr().String()
}

// signal reports a security event when the daemon collects them.
func (c *conn) signal(kind, id, reason string) {
	if f := c.s.cfg.Security; f != nil {
		f(kind, c.source(), id, reason)
	}
}

func (c *conn) replyError(code, msg string) {
	c.s.stats.countError(code)
	c.w.WriteError(code, msg)
}

// printable shortens and cleans a client-supplied string for an error
// message or a log line.
func printable(b []byte) string {
	if len(b) > 64 {
		b = append(bytes.Clone(b[:64]), "..."...)
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, string(b))
}
