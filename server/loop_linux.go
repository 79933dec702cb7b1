//go:build linux

package server

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/phpsessd/phpsessd/engine"
)

// An event loop serves its connections the way Redis does: one goroutine
// waits in epoll for all of them, reads what arrived, runs the commands in
// place and writes the replies, so a request costs one read and one write
// and no goroutine switch. A goroutine per connection costs a read that
// finds the socket empty, a park in Go's poller and a wake-up on top, which
// is most of what a request to the memory store costs.
//
// Commands run on the loop's goroutine, so one that waits would stall
// every connection of the loop. Before a command waits (the engine's wait
// hook: a session lock someone else holds, a write slot), and before a
// command that walks every session, the connection goes off the loop: a
// new goroutine takes over the loop, and the old one finishes the command
// and hands the connection back. Only stores that never block otherwise
// qualify; see Config.Loops.

const (
	// loopEvents is how many ready connections one epoll_wait returns.
	loopEvents = 256
	// loopTurnFrames bounds the requests one connection gets per turn, so
	// a client pipelining a long batch cannot starve the others.
	loopTurnFrames = 64
	// loopReadSize is the least room a read gets.
	loopReadSize = 16 << 10
	// lingerTime is how long a connection closed for a bad frame keeps
	// draining its input, as lingerClose does.
	lingerTime = 250 * time.Millisecond
)

// errNeedMore ends a parse that ran out of buffered bytes: the frame is
// parsed again from its start once more of it arrived.
var errNeedMore = errors.New("frame incomplete")

// errOnLoop answers the net.Conn calls a connection on a loop never makes.
var errOnLoop = errors.New("connection is served by an event loop")

type loop struct {
	s    *Server
	epfd int
	evfd int // eventfd: wakes the loop for posted connections
	// epf is epfd in Go's poller: an idle loop parks there like any
	// goroutine waiting for input, instead of blocking its thread in
	// epoll_wait.
	epf      *os.File
	epc      syscall.RawConn
	deadline time.Time // the read deadline set on epf

	mu      sync.Mutex
	inbox   []*conn // new connections and ones handed back; guarded by mu
	started bool    // guarded by mu
	stopped bool    // guarded by mu
	woken   atomic.Bool
	kills   atomic.Bool // a connection was closed from outside the loop
	// detaches counts commands that went off the loop.
	detaches atomic.Uint64

	// Owned by the goroutine running the loop and handed on with it.
	conns     map[int32]*conn
	events    []syscall.EpollEvent
	work      []loopItem
	next      int // first item of work not served yet
	again     []*conn
	tick      time.Duration
	lastSweep time.Time
	scratch   []byte
}

type loopItem struct {
	c    *conn
	read bool // the socket reported input
}

// loopState is a connection's part of its loop. Whoever owns the
// connection (the loop, or the goroutine a waiting command moved it to)
// uses it; off tells the loop which one that is.
type loopState struct {
	l            *loop
	fd           int
	raddr, laddr net.Addr
	in           loopInput
	out          []byte // reply bytes the socket did not take yet
	outSince     time.Time
	werr         error
	wantOut      bool // armed for writability instead of input
	onLoop       bool // the loop's goroutine is serving it right now
	off          atomic.Bool
	killed       atomic.Bool
	closing      bool // close once out is sent (QUIT, shutdown)
	lingering    bool
	shutWR       bool
	lingerUntil  time.Time
	lingerBudget int64
	closed       bool
}

// loopInput holds the bytes read from the socket; the connection's
// protocol.Reader reads from it and gets errNeedMore at its end.
type loopInput struct {
	buf []byte
	off int
	eof bool
}

func (in *loopInput) Read(p []byte) (int, error) {
	if in.off == len(in.buf) {
		if in.eof {
			return 0, io.EOF
		}
		return 0, errNeedMore
	}
	n := copy(p, in.buf[in.off:])
	in.off += n
	return n, nil
}

// loopWriter is the destination of a loop connection's reply buffer: it
// writes what the socket takes at once and keeps the rest for the loop to
// send when the socket has room.
type loopWriter struct{ st *loopState }

func (w loopWriter) Write(p []byte) (int, error) {
	st := w.st
	if st.werr != nil {
		return 0, st.werr
	}
	n := len(p)
	if len(st.out) == 0 {
		m, err := writeFD(st.fd, p)
		if err != nil {
			st.werr = err
			return m, err
		}
		if p = p[m:]; len(p) == 0 {
			return n, nil
		}
		st.outSince = time.Now()
	}
	st.out = append(st.out, p...)
	return n, nil
}

// loopConn stands in for the net.Conn a loop took the socket from. Close
// may come from Shutdown's goroutine, so it only asks the loop to close.
type loopConn struct{ st *loopState }

func (lc loopConn) Read([]byte) (int, error)         { return 0, errOnLoop }
func (lc loopConn) Write([]byte) (int, error)        { return 0, errOnLoop }
func (lc loopConn) LocalAddr() net.Addr              { return lc.st.laddr }
func (lc loopConn) RemoteAddr() net.Addr             { return lc.st.raddr }
func (lc loopConn) SetDeadline(time.Time) error      { return nil }
func (lc loopConn) SetReadDeadline(time.Time) error  { return nil }
func (lc loopConn) SetWriteDeadline(time.Time) error { return nil }
func (lc loopConn) Close() error {
	lc.st.killed.Store(true)
	lc.st.l.kills.Store(true)
	lc.st.l.wake()
	return nil
}

func newLoops(s *Server, n int) ([]*loop, error) {
	tick := min(s.cfg.IdleTimeout, s.cfg.WriteTimeout) / 16
	tick = max(5*time.Millisecond, min(tick, time.Second))
	loops := make([]*loop, 0, n)
	for i := 0; i < n; i++ {
		l := &loop{s: s, epfd: -1, evfd: -1, conns: make(map[int32]*conn), events: make([]syscall.EpollEvent, loopEvents), tick: tick}
		if err := l.open(); err != nil {
			l.closeFDs()
			for _, o := range loops {
				o.closeFDs()
			}
			return nil, err
		}
		loops = append(loops, l)
	}
	return loops, nil
}

func (l *loop) open() error {
	var err error
	if l.epfd, err = syscall.EpollCreate1(syscall.EPOLL_CLOEXEC); err != nil {
		return fmt.Errorf("event loop: epoll_create1: %w", err)
	}
	if err := syscall.SetNonblock(l.epfd, true); err != nil {
		return fmt.Errorf("event loop: epoll fd: %w", err)
	}
	l.epf = os.NewFile(uintptr(l.epfd), "epoll")
	if l.epc, err = l.epf.SyscallConn(); err != nil {
		return fmt.Errorf("event loop: epoll fd: %w", err)
	}
	fd, _, errno := syscall.RawSyscall(syscall.SYS_EVENTFD2, 0, syscall.O_CLOEXEC|syscall.O_NONBLOCK, 0)
	if errno != 0 {
		return fmt.Errorf("event loop: eventfd2: %w", errno)
	}
	l.evfd = int(fd)
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(l.evfd)}
	if err := syscall.EpollCtl(l.epfd, syscall.EPOLL_CTL_ADD, l.evfd, &ev); err != nil {
		return fmt.Errorf("event loop: watch eventfd: %w", err)
	}
	return nil
}

func (l *loop) closeFDs() {
	if l.evfd >= 0 {
		syscall.Close(l.evfd)
		l.evfd = -1
	}
	if l.epf != nil {
		l.epf.Close()
		l.epf = nil
		l.epfd = -1
	}
	if l.epfd >= 0 {
		syscall.Close(l.epfd)
		l.epfd = -1
	}
}

func (l *loop) start() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.started || l.stopped {
		return
	}
	l.started = true
	l.lastSweep = time.Now()
	l.s.loopWG.Add(1)
	go l.run()
}

// stop ends the loop once Shutdown has closed all its connections; close
// releases its descriptors after its goroutine is gone, so no wake-up can
// write to a closed (or reused) eventfd.
func (l *loop) stop() {
	l.mu.Lock()
	first := !l.stopped
	l.stopped = true
	started := l.started
	l.mu.Unlock()
	if first && started {
		l.wake()
	}
}

// wake makes the loop's epoll_wait return; one pending wake-up serves any
// number of posts.
func (l *loop) wake() {
	if l.woken.Swap(true) {
		return
	}
	one := [8]byte{1}
	for {
		_, err := syscall.Write(l.evfd, one[:])
		if err != syscall.EINTR {
			return
		}
	}
}

// post hands c to the loop: a new connection, or one back from a command
// that ran off the loop.
func (l *loop) post(c *conn) {
	l.mu.Lock()
	l.inbox = append(l.inbox, c)
	l.mu.Unlock()
	l.wake()
}

// prepare readies a freshly accepted connection for the loop, before the
// server lists it. The socket is duplicated and the net.Conn closed, which
// takes it out of Go's poller so that only the loop hears of its input.
func (l *loop) prepare(c *conn) error {
	fd, err := takeFD(c.nc)
	if err != nil {
		return fmt.Errorf("move connection to event loop: %w", err)
	}
	st := &loopState{l: l, fd: fd, raddr: c.nc.RemoteAddr(), laddr: c.nc.LocalAddr()}
	c.nc = loopConn{st}
	c.ev = st
	c.ctx = engine.WithWaitHook(c.s.base, c.detach)
	c.r.Reset(&st.in)
	c.w.Reset(loopWriter{st})
	c.lastDone = time.Now()
	return nil
}

// adopt starts serving a prepared connection.
func (l *loop) adopt(c *conn) {
	if c.l.addr.Network == "tcp" {
		c.s.log.Debug("connection opened", append(c.logAttrs(), "remote", c.ev.raddr.String())...)
	} else {
		c.s.log.Debug("connection opened", c.logAttrs()...)
	}
	l.post(c)
}

func takeFD(nc net.Conn) (int, error) {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return -1, fmt.Errorf("%T has no file descriptor", nc)
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	var derr error
	if err := raw.Control(func(s uintptr) {
		r, _, errno := syscall.Syscall(syscall.SYS_FCNTL, s, syscall.F_DUPFD_CLOEXEC, 0)
		if errno != 0 {
			derr = fmt.Errorf("dup: %w", errno)
			return
		}
		fd = int(r)
	}); err != nil {
		return -1, err
	}
	if derr != nil {
		return -1, derr
	}
	// The copy shares the open socket, and with it the non-blocking flag
	// Go set; closing the original only ends Go's interest in it.
	nc.Close()
	return fd, nil
}

// detach takes c off the loop before its command waits: a new goroutine
// runs the loop from here on, and this one, now c's alone, finishes the
// command and hands c back. It is the engine's wait hook for loop
// connections and runs on the goroutine serving c.
func (c *conn) detach() {
	st := c.ev
	if st == nil || !st.onLoop {
		return
	}
	st.onLoop = false
	st.off.Store(true)
	l := st.l
	l.detaches.Add(1)
	// Level-triggered input would otherwise wake the loop again and again
	// while nobody on it may read.
	l.arm(st, 0)
	l.s.loopWG.Add(1)
	go l.run()
}

func (l *loop) arm(st *loopState, events uint32) {
	ev := syscall.EpollEvent{Events: events, Fd: int32(st.fd)}
	if err := syscall.EpollCtl(l.epfd, syscall.EPOLL_CTL_MOD, st.fd, &ev); err != nil {
		l.s.log.Warn("event loop: epoll_ctl", "err", err)
	}
}

const (
	inEvents = syscall.EPOLLIN | syscall.EPOLLRDHUP
	// Not EPOLLRDHUP: a peer that closed its side and stopped reading
	// would keep a level-triggered loop spinning until the write timeout.
	outEvents = syscall.EPOLLOUT
)

// run is the loop itself. Several goroutines run it over time but only
// one at once: a goroutine whose command went off the loop returns from
// run as soon as it has handed its connection back.
func (l *loop) run() {
	defer l.s.loopWG.Done()
	for {
		for l.next < len(l.work) {
			it := l.work[l.next]
			l.next++
			if l.serve(it.c, it.read) {
				return
			}
		}
		clear(l.work)
		l.work, l.next = l.work[:0], 0
		block := len(l.again) == 0
		if !block {
			for _, c := range l.again {
				l.work = append(l.work, loopItem{c: c})
			}
			l.again = l.again[:0]
		}
		n, err := l.wait(block)
		if err != nil && err != syscall.EINTR {
			l.s.log.Error("event loop: epoll_wait", "err", err)
			time.Sleep(10 * time.Millisecond)
		}
		woken := false
		for i := 0; i < n; i++ {
			ev := l.events[i]
			if ev.Fd == int32(l.evfd) {
				woken = true
				continue
			}
			if c := l.conns[ev.Fd]; c != nil {
				l.work = append(l.work, loopItem{c: c, read: ev.Events&(syscall.EPOLLIN|syscall.EPOLLRDHUP|syscall.EPOLLHUP|syscall.EPOLLERR) != 0})
			}
		}
		if woken {
			if l.takeInbox() {
				return
			}
		}
		if time.Since(l.lastSweep) >= l.tick || (woken && (l.s.shutting.Load() || l.kills.Load())) {
			l.sweep(time.Now())
		}
	}
}

// wait returns the ready events; with block it waits for some, at most
// until the next sweep is due. Under load something is nearly always
// ready, so it first looks without blocking, outside Go's system-call
// bookkeeping.
// When nothing is, the loop parks in Go's poller, where epfd itself is
// registered, rather than blocking its thread in epoll_wait: the runtime
// hands the P of a thread stuck in a system call to another thread and
// keeps its monitor thread waking every 20 µs while it does, which on a
// busy two-core machine cost the daemon about 3 µs of CPU per request
// pair. Parked, the loop is a goroutine waiting for input like any other.
func (l *loop) wait(block bool) (int, error) {
	n, errno := l.look()
	if errno != 0 {
		return 0, errno
	}
	if n > 0 || !block {
		return n, nil
	}
	if d := l.lastSweep.Add(l.tick); !d.Equal(l.deadline) {
		if err := l.epf.SetReadDeadline(d); err != nil {
			return 0, err
		}
		l.deadline = d
	}
	var werr error
	err := l.epc.Read(func(uintptr) bool {
		var e syscall.Errno
		n, e = l.look()
		if e != 0 && e != syscall.EINTR {
			werr = e
			return true
		}
		return n > 0
	})
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return n, werr
}

// look is epoll_wait without blocking.
func (l *loop) look() (int, syscall.Errno) {
	n, _, errno := syscall.RawSyscall6(syscall.SYS_EPOLL_PWAIT, uintptr(l.epfd), uintptr(unsafe.Pointer(&l.events[0])), uintptr(len(l.events)), 0, 0, 0)
	return int(n), errno
}

// readFD and writeFD's write are read(2) and write(2) on a non-blocking
// socket: they never wait, so like wait's first look they skip the
// runtime's bookkeeping for calls that may block.
func readFD(fd int, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, _, errno := syscall.RawSyscall(syscall.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

func rawWrite(fd int, p []byte) (int, error) {
	n, _, errno := syscall.RawSyscall(syscall.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

// takeInbox queues the posted connections; true means the loop is
// stopped and this goroutine should end.
func (l *loop) takeInbox() bool {
	var b [8]byte
	syscall.Read(l.evfd, b[:])
	l.woken.Store(false)
	l.mu.Lock()
	inbox := l.inbox
	l.inbox = nil
	stopped := l.stopped
	l.mu.Unlock()
	for _, c := range inbox {
		st := c.ev
		if _, ok := l.conns[int32(st.fd)]; !ok {
			ev := syscall.EpollEvent{Events: inEvents, Fd: int32(st.fd)}
			if err := syscall.EpollCtl(l.epfd, syscall.EPOLL_CTL_ADD, st.fd, &ev); err != nil {
				c.s.log.Warn("event loop: watch connection", append(c.logAttrs(), "err", err)...)
				syscall.Close(st.fd)
				st.closed = true
				c.release()
				continue
			}
			l.conns[int32(st.fd)] = c
		} else {
			st.off.Store(false)
			ev := uint32(inEvents)
			if st.wantOut {
				ev = outEvents
			}
			l.arm(st, ev)
		}
		l.work = append(l.work, loopItem{c: c})
	}
	if stopped && len(l.conns) == 0 && l.next == len(l.work) {
		return true
	}
	return false
}

// sweep closes the connections whose time is up, or that shutdown or a
// forced close asks to go.
func (l *loop) sweep(now time.Time) {
	l.lastSweep = now
	l.kills.Store(false)
	shutting := l.s.shutting.Load()
	for _, c := range l.conns {
		st := c.ev
		if st.off.Load() || st.closed {
			continue
		}
		switch {
		case st.killed.Load():
			l.closeConn(c)
		case len(st.out) > 0 && now.Sub(st.outSince) > l.s.cfg.WriteTimeout:
			c.s.log.Debug("write timeout, closing connection", c.logAttrs()...)
			l.closeConn(c)
		case st.lingering && now.After(st.lingerUntil):
			l.closeConn(c)
		case shutting && len(c.pending) == 0 && len(st.out) == 0:
			l.closeConn(c)
		case now.Sub(c.lastDone) > l.s.cfg.IdleTimeout:
			if !shutting {
				c.s.log.Debug("idle timeout, closing connection", c.logAttrs()...)
			}
			l.closeConn(c)
		}
	}
}

func (l *loop) closeConn(c *conn) {
	st := c.ev
	if st.closed {
		return
	}
	st.closed = true
	syscall.EpollCtl(l.epfd, syscall.EPOLL_CTL_DEL, st.fd, nil)
	delete(l.conns, int32(st.fd))
	syscall.Close(st.fd)
	putInBuf(st.in.buf)
	st.in = loopInput{}
	c.release()
}

// serve gives c its turn: pending output first, then one read if the
// socket reported input, then the complete requests buffered. It reports
// true when a command took c off the loop, which ends this goroutine's
// time as the loop.
func (l *loop) serve(c *conn, read bool) bool {
	st := c.ev
	if st.closed || st.off.Load() {
		return false
	}
	if st.killed.Load() {
		l.closeConn(c)
		return false
	}
	if len(st.out) > 0 {
		if !l.writeOut(c) {
			l.closeConn(c)
			return false
		}
		if len(st.out) > 0 {
			return false
		}
	}
	if st.closing {
		l.closeConn(c)
		return false
	}
	if st.lingering {
		l.linger(c, read)
		return false
	}
	if read && !l.readIn(c) {
		return false
	}
	st.onLoop = true
	gone := l.serveFrames(c)
	if !gone {
		st.onLoop = false
	}
	return gone
}

// serveFrames runs c's complete requests, at most a turn's worth.
func (l *loop) serveFrames(c *conn) bool {
	st := c.ev
	for frames := 0; ; frames++ {
		if l.s.shutting.Load() && len(c.pending) == 0 {
			// As armRead: nothing of this connection is left to finish.
			l.finish(c)
			return false
		}
		if frames == loopTurnFrames {
			if !l.flush(c) {
				l.closeConn(c)
			} else if len(st.out) == 0 {
				l.again = append(l.again, c)
			}
			// With replies still unsent, writability brings c back.
			return false
		}
		args, err := l.nextFrame(c)
		if err == errNeedMore {
			break
		}
		if err != nil {
			if c.readFailed(err) {
				c.lastDone = time.Now()
				if l.flush(c) {
					l.startLinger(c)
					return false
				}
			}
			l.closeConn(c)
			return false
		}
		c.dispatch(args)
		if !st.onLoop {
			l.post(c)
			return true
		}
		if c.quit {
			l.finish(c)
			return false
		}
		if c.w.Buffered() >= flushThreshold {
			if !l.flush(c) {
				l.closeConn(c)
				return false
			}
			if len(st.out) > 0 {
				return false
			}
		}
	}
	if !l.flush(c) {
		l.closeConn(c)
	}
	return false
}

// finish sends what is buffered and closes c once it is sent.
func (l *loop) finish(c *conn) {
	if !l.flush(c) || len(c.ev.out) == 0 {
		l.closeConn(c)
		return
	}
	c.ev.closing = true
}

// nextFrame parses the next buffered request; errNeedMore means none is
// complete yet, and the partial one is parsed again from its start later.
func (l *loop) nextFrame(c *conn) ([][]byte, error) {
	in := &c.ev.in
	if c.r.Buffered() == 0 && in.off == len(in.buf) && !in.eof {
		in.buf, in.off = in.buf[:0], 0
		return nil, errNeedMore
	}
	start := in.off - c.r.Buffered()
	args, err := c.r.ReadRequest()
	if err != nil && errors.Is(err, errNeedMore) {
		in.off = start
		c.r.Reset(in)
		return nil, errNeedMore
	}
	return args, err
}

// readIn reads what the socket has; false means c was closed.
func (l *loop) readIn(c *conn) bool {
	st := c.ev
	in := &st.in
	if cap(in.buf)-len(in.buf) < loopReadSize/4 {
		// Bytes before start are parsed; the reader holds copies of those
		// between start and off, so off moves with the bytes.
		start := in.off - c.r.Buffered()
		live := len(in.buf) - start
		if limit := int(c.s.cfg.MaxFrame) + 2*loopReadSize; live >= limit {
			// Complete frames fill the buffer; the again list serves them
			// before anything more is read.
			return true
		}
		if size := max(loopReadSize, 2*live); size > cap(in.buf) {
			nb := getInBuf(size)
			in.buf = append(nb[:0], in.buf[start:]...)
		} else {
			in.buf = in.buf[:copy(in.buf, in.buf[start:])]
		}
		in.off -= start
	}
	for {
		n, err := readFD(st.fd, in.buf[len(in.buf):cap(in.buf)])
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			return true
		case err != nil:
			if err != syscall.ECONNRESET {
				c.s.log.Debug("read failed, closing connection", append(c.logAttrs(), "err", err)...)
			}
			l.closeConn(c)
			return false
		case n == 0:
			in.eof = true
			return true
		}
		in.buf = in.buf[:len(in.buf)+n]
		return true
	}
}

// inBufs recycles the input buffers of the usual size: PHP opens a
// connection per request by default.
var inBufs sync.Pool

func getInBuf(size int) []byte {
	if size == loopReadSize {
		if b, ok := inBufs.Get().(*[]byte); ok {
			return (*b)[:0]
		}
	}
	return make([]byte, 0, size)
}

func putInBuf(b []byte) {
	if cap(b) == loopReadSize {
		b = b[:0]
		inBufs.Put(&b)
	}
}

// flush hands the buffered replies to the socket; false means the
// connection is broken. What the socket does not take waits for
// writability, and c reads no more requests until it is sent.
func (l *loop) flush(c *conn) bool {
	st := c.ev
	if c.w.Buffered() > 0 {
		if err := c.w.Flush(); err != nil {
			c.s.log.Debug("write failed, closing connection", append(c.logAttrs(), "err", err)...)
			return false
		}
	}
	if st.werr != nil {
		return false
	}
	if len(st.out) > 0 && !st.wantOut {
		st.wantOut = true
		l.arm(st, outEvents)
	}
	return true
}

func (l *loop) writeOut(c *conn) bool {
	st := c.ev
	n, err := writeFD(st.fd, st.out)
	if err != nil {
		c.s.log.Debug("write failed, closing connection", append(c.logAttrs(), "err", err)...)
		return false
	}
	if st.out = st.out[n:]; len(st.out) == 0 {
		st.out = nil
		if st.wantOut {
			st.wantOut = false
			l.arm(st, inEvents)
		}
	} else if !st.wantOut {
		st.wantOut = true
		l.arm(st, outEvents)
	}
	return true
}

func writeFD(fd int, p []byte) (int, error) {
	n := 0
	for n < len(p) {
		m, err := rawWrite(fd, p[n:])
		if m > 0 {
			n += m
		}
		switch {
		case err == syscall.EINTR:
		case err == syscall.EAGAIN:
			return n, nil
		case err != nil:
			return n, err
		case m == 0:
			return n, io.ErrShortWrite
		}
	}
	return n, nil
}

// startLinger is lingerClose for a loop: the error reply goes out, the
// write side closes, and input is drained for a moment before the close.
func (l *loop) startLinger(c *conn) {
	st := c.ev
	st.lingering = true
	st.lingerUntil = time.Now().Add(lingerTime)
	st.lingerBudget = c.s.cfg.MaxFrame + 1
	st.in = loopInput{}
	l.linger(c, false)
}

func (l *loop) linger(c *conn, read bool) {
	st := c.ev
	if len(st.out) > 0 {
		return
	}
	if !st.shutWR {
		st.shutWR = true
		syscall.Shutdown(st.fd, syscall.SHUT_WR)
	}
	if !read {
		return
	}
	if l.scratch == nil {
		l.scratch = make([]byte, loopReadSize)
	}
	for st.lingerBudget > 0 {
		n, err := readFD(st.fd, l.scratch)
		if err == syscall.EINTR {
			continue
		}
		if err == syscall.EAGAIN {
			return
		}
		if err != nil || n == 0 {
			break
		}
		st.lingerBudget -= int64(n)
	}
	l.closeConn(c)
}
