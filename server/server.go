// Package server is phpsessd's network front end: it listens on unix
// sockets and TCP addresses, speaks the protocol of package protocol, and
// turns each command into a call on the session engine. Every connection
// gets one goroutine and one engine client, so the locks and bases a PHP
// request holds live exactly as long as its connection: a PHP worker that
// dies drops its socket and its locks with it. The server owns framing,
// authentication, limits, timeouts, error mapping and graceful shutdown;
// all session semantics stay in package engine.
package server

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/user"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/phpsessd/phpsessd/engine"
	"github.com/phpsessd/phpsessd/protocol"
)

// Defaults for zero Config fields.
const (
	DefaultSocketMode   fs.FileMode = 0o660
	DefaultIdleTimeout              = 10 * time.Minute
	DefaultWriteTimeout             = 30 * time.Second
)

// Config configures a Server.
type Config struct {
	Engine *engine.Engine
	// Listen holds "unix:///path" and "tcp://host:port" addresses.
	Listen []string
	// Token, when set, is required on TCP listeners (HELLO … AUTH or AUTH)
	// and checked, when offered, on unix listeners.
	Token string
	// InsecureNoAuth allows TCP without a token, on loopback addresses only.
	InsecureNoAuth bool
	// SocketMode is applied to unix socket files; 0 means 0660.
	SocketMode fs.FileMode
	// SocketGroup, a group name or numeric id, becomes the group of unix
	// socket files, so PHP workers in that group can connect to a daemon
	// running as another user. Empty leaves the creating user's group.
	SocketGroup string
	// MaxFrame bounds one request in bytes; 0 means 16 MiB.
	MaxFrame int64
	// IdleTimeout closes connections that send nothing for this long.
	IdleTimeout time.Duration
	// WriteTimeout bounds writing one batch of replies to a slow peer.
	WriteTimeout time.Duration
	Logger       *slog.Logger
	// Version is reported by HELLO.
	Version string
	// ObserveConn, when set, is called once per connection; the function
	// it returns is then called after every command on that connection
	// with the command's name, the mode a READ or LOCK granted ("" else),
	// its duration and the error code it answered ("" for success). It
	// feeds metrics. Only the connection's own goroutine calls it, so an
	// implementation can keep per-connection state, which is how counts
	// taken on every request avoid one shared tally all CPUs write to.
	ObserveConn func() func(cmd, mode string, took time.Duration, code string)
	// Security, when set, receives security events: failed
	// authentication and unknown ids refused by VALIDATE.
	Security func(kind, source, id, reason string)
	// Loops above zero serves connections on that many event loops
	// instead of a goroutine per connection, where the platform has them
	// (Linux); elsewhere it is ignored. A loop runs commands in place, so
	// it is only for an engine whose store and locker never block but
	// where engine.WithWaitHook says so: the memory store with the
	// in-process locker.
	Loops int
}

// Server accepts connections and serves the protocol on them.
type Server struct {
	cfg Config
	// epoch is when the server was made; see now.
	epoch time.Time
	eng   *engine.Engine
	log   *slog.Logger
	lns   []*listener
	gid   int // socket group, -1 for none
	stats stats
	table map[string]*command

	// base is the context of every command; cancelled when a graceful
	// shutdown runs out of time, which aborts lock waits.
	base   context.Context
	cancel context.CancelFunc

	shutting atomic.Bool
	started  atomic.Bool
	nextID   atomic.Uint64

	mu    sync.Mutex
	conns map[*conn]struct{}

	acceptWG sync.WaitGroup
	connWG   sync.WaitGroup
	// bufs holds the buffers of closed connections for new ones.
	bufs sync.Pool

	loops  []*loop
	loopWG sync.WaitGroup // every goroutine running a loop's turn
}

type listener struct {
	ln          net.Listener
	addr        protocol.Address
	requireAuth bool
}

// New validates cfg and binds every listen address, so configuration and
// permission problems surface before anything is served. On error nothing
// stays bound.
func New(cfg Config) (*Server, error) {
	if cfg.Engine == nil {
		return nil, errors.New("server: no engine")
	}
	if len(cfg.Listen) == 0 {
		return nil, errors.New("server: no listen address")
	}
	if cfg.SocketMode == 0 {
		cfg.SocketMode = DefaultSocketMode
	}
	if cfg.MaxFrame <= 0 {
		cfg.MaxFrame = protocol.DefaultMaxFrame
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Version == "" {
		cfg.Version = "0.0.0"
	}
	s := &Server{
		epoch: time.Now(),
		cfg:   cfg,
		eng:   cfg.Engine,
		log:   cfg.Logger,
		conns: make(map[*conn]struct{}),
		table: commandTable(),
	}
	s.gid = -1
	if cfg.SocketGroup != "" {
		gid, err := lookupGroup(cfg.SocketGroup)
		if err != nil {
			return nil, err
		}
		s.gid = gid
	}
	s.base, s.cancel = context.WithCancel(context.Background())
	for _, raw := range cfg.Listen {
		l, err := s.bind(raw)
		if err != nil {
			for _, l := range s.lns {
				l.ln.Close()
			}
			s.cancel()
			return nil, err
		}
		s.lns = append(s.lns, l)
	}
	if cfg.Loops > 0 {
		loops, err := newLoops(s, cfg.Loops)
		if err != nil {
			for _, l := range s.lns {
				l.ln.Close()
			}
			s.cancel()
			return nil, err
		}
		s.loops = loops
	}
	return s, nil
}

func (s *Server) bind(raw string) (*listener, error) {
	a, err := protocol.ParseAddress(raw)
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	switch a.Network {
	case "unix":
		ln, err := listenUnix(a.Addr, s.cfg.SocketMode, s.gid)
		if err != nil {
			return nil, err
		}
		return &listener{ln: ln, addr: a}, nil
	default:
		if s.cfg.Token == "" && !s.cfg.InsecureNoAuth {
			return nil, fmt.Errorf("listen %s: TCP needs a token (--token or --token-file); --insecure-no-auth allows loopback only", a)
		}
		ln, err := net.Listen("tcp", a.Addr)
		if err != nil {
			return nil, fmt.Errorf("listen %s: %w", a, err)
		}
		if s.cfg.Token == "" {
			if ta, ok := ln.Addr().(*net.TCPAddr); !ok || !ta.IP.IsLoopback() {
				ln.Close()
				return nil, fmt.Errorf("listen %s: refusing TCP without a token on a non-loopback address (bound %s)", a, ln.Addr())
			}
		}
		// Report the bound port, which differs from the request for ":0".
		a.Addr = ln.Addr().String()
		return &listener{ln: ln, addr: a, requireAuth: s.cfg.Token != ""}, nil
	}
}

// listenUnix binds a unix socket, replacing a stale socket file left by a
// crashed daemon but never one a live process still accepts on, and never
// a file that is not a socket.
func listenUnix(path string, mode fs.FileMode, gid int) (net.Listener, error) {
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&fs.ModeSocket == 0 {
			return nil, fmt.Errorf("listen unix://%s: file exists and is not a socket", path)
		}
		c, derr := net.DialTimeout("unix", path, time.Second)
		if derr == nil {
			c.Close()
			return nil, fmt.Errorf("listen unix://%s: another process is serving this socket", path)
		}
		if !errors.Is(derr, syscall.ECONNREFUSED) && !errors.Is(derr, syscall.ENOENT) {
			return nil, fmt.Errorf("listen unix://%s: cannot tell whether the existing socket is stale: %w", path, derr)
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("listen unix://%s: remove stale socket: %w", path, err)
		}
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen unix://%s: %w", path, err)
	}
	if gid >= 0 {
		if err := os.Chown(path, -1, gid); err != nil {
			ln.Close()
			return nil, fmt.Errorf("listen unix://%s: chgrp %d: %w", path, gid, err)
		}
	}
	if err := os.Chmod(path, mode); err != nil {
		ln.Close()
		return nil, fmt.Errorf("listen unix://%s: chmod %o: %w", path, mode, err)
	}
	return ln, nil
}

func lookupGroup(name string) (int, error) {
	if gid, err := strconv.Atoi(name); err == nil && gid >= 0 {
		return gid, nil
	}
	g, err := user.LookupGroup(name)
	if err != nil {
		return -1, fmt.Errorf("socket group: %w", err)
	}
	gid, err := strconv.Atoi(g.Gid)
	if err != nil {
		return -1, fmt.Errorf("socket group %s: gid %q: %w", name, g.Gid, err)
	}
	return gid, nil
}

// Addrs returns the bound addresses in URL form (TCP with the real port).
func (s *Server) Addrs() []string {
	out := make([]string, len(s.lns))
	for i, l := range s.lns {
		out[i] = l.addr.String()
	}
	return out
}

// Start begins accepting on every listener and returns at once.
func (s *Server) Start() {
	if !s.started.CompareAndSwap(false, true) {
		return
	}
	for _, l := range s.loops {
		l.start()
	}
	for _, l := range s.lns {
		s.acceptWG.Add(1)
		go s.acceptLoop(l)
	}
}

func (s *Server) acceptLoop(l *listener) {
	defer s.acceptWG.Done()
	var backoff time.Duration
	for {
		nc, err := l.ln.Accept()
		if err != nil {
			if s.shutting.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and similar: wait instead of spinning.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.log.Warn("accept failed", "listen", l.addr.String(), "err", err, "retry_in", backoff)
			select {
			case <-time.After(backoff):
			case <-s.base.Done():
				return
			}
			continue
		}
		backoff = 0
		c := s.newConn(nc, l)
		if c == nil {
			continue
		}
		if c.ev != nil {
			c.ev.l.adopt(c)
			continue
		}
		go c.serve()
	}
}

func (s *Server) newConn(nc net.Conn, l *listener) *conn {
	id := s.nextID.Add(1)
	c := &conn{
		s:      s,
		nc:     nc,
		id:     id,
		l:      l,
		authed: !l.requireAuth,
		ctx:    s.base,
	}
	if s.cfg.ObserveConn != nil {
		c.observe = s.cfg.ObserveConn()
	}
	if b, ok := s.bufs.Get().(*connBufs); ok {
		c.r, c.w = b.r, b.w
		c.r.Reset(flushingReader{c})
		c.w.Reset(nc)
	} else {
		c.w = protocol.NewWriter(nc)
		c.r = protocol.NewReader(flushingReader{c}, protocol.Limits{MaxFrame: s.cfg.MaxFrame, MaxArgs: protocol.DefaultMaxArgs})
		// Every command answers before the next is read and copies what
		// it keeps (stores copy what they save), so the arguments can be
		// reused.
		c.r.ReuseArgs()
	}
	s.mu.Lock()
	if s.shutting.Load() {
		s.mu.Unlock()
		nc.Close()
		return nil
	}
	if len(s.loops) > 0 {
		// Before the connection is listed: Shutdown reads what this sets.
		if err := s.loops[id%uint64(len(s.loops))].prepare(c); err != nil {
			s.mu.Unlock()
			s.log.Warn("closing connection", append(c.logAttrs(), "err", err)...)
			nc.Close()
			s.recycle(c)
			return nil
		}
	}
	s.conns[c] = struct{}{}
	s.connWG.Add(1)
	s.mu.Unlock()
	s.stats.connsTotal.Add(1)
	s.stats.connsOpen.Add(1)
	c.client = s.eng.NewClient(fmt.Sprintf("conn-%d@%s", id, l.addr.Network))
	return c
}

// connBufs are a connection's reader and writer, about 36 KiB of buffers.
// PHP opens a connection per request by default, so they go back to
// Server.bufs when a connection closes and serve the next one.
type connBufs struct {
	r *protocol.Reader
	w *protocol.Writer
}

// recycle returns c's buffers to the pool; c must not use them again.
func (s *Server) recycle(c *conn) {
	c.r.Reset(nil)
	c.w.Reset(nil)
	s.bufs.Put(&connBufs{r: c.r, w: c.w})
	c.r, c.w = nil, nil
}

func (s *Server) dropConn(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.stats.connsOpen.Add(-1)
	s.connWG.Done()
}

// ShuttingDown reports whether Shutdown has begun.
func (s *Server) ShuttingDown() bool { return s.shutting.Load() }

// Shutdown stops accepting at once and lets the PHP requests under way
// finish: a connection that READ or LOCKed a session and has not yet sent
// WRITE or CLOSE for it stays open until it has (its other commands are
// served as usual), while a READ or LOCK arriving on any connection gets
// -SHUTDOWN. Commands in flight finish; connections with nothing pending
// are closed as soon as they are idle, which releases their locks in the
// engine. Shutdown returns when all connection goroutines are gone. When
// ctx ends first, in-flight commands are cancelled (lock waits end with
// -SHUTDOWN) and connections are closed by force; Shutdown then returns
// ctx's error. The engine is not closed: its owner closes it after
// Shutdown, so the store is flushed only once no connection can write any
// more.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	first := s.shutting.CompareAndSwap(false, true)
	s.mu.Unlock()
	if first {
		for _, l := range s.lns {
			l.ln.Close()
		}
	}
	s.acceptWG.Wait()

	// Wake connections idling in a read with nothing pending; busy ones
	// notice the flag once their current command is answered, and the
	// others once their request has written its session.
	s.mu.Lock()
	for c := range s.conns {
		c.interruptIdle()
	}
	s.mu.Unlock()

	done := make(chan struct{})
	go func() { s.connWG.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("shutdown: %w; cancelling in-flight commands", ctx.Err())
		s.cancel()
		s.mu.Lock()
		for c := range s.conns {
			c.nc.Close()
		}
		s.mu.Unlock()
		<-done
	}
	s.cancel()
	for _, l := range s.loops {
		l.stop()
	}
	s.loopWG.Wait()
	for _, l := range s.loops {
		l.closeFDs()
	}
	return err
}

// now is time.Now from one read of the monotonic clock, where time.Now
// reads the wall clock too; every command reads the clock. Its wall part
// does not follow clock steps made since the server started, so it serves
// durations and deadlines (which use the monotonic part), not display.
func (s *Server) now() time.Time {
	if s.epoch.IsZero() {
		return time.Now()
	}
	return s.epoch.Add(time.Since(s.epoch))
}
