//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package files

import (
	"context"
	"errors"
	"os"
	"sync"
	"syscall"
)

// flockFD runs flock(2) on f's descriptor. Control holds a reference on the
// descriptor for the whole call, so a concurrent f.Close only marks the
// file closed and the real close(2) waits until flock returns: the number
// cannot be reused under a blocked call.
func flockFD(f *os.File, how int) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	cerr := rc.Control(func(fd uintptr) {
		for {
			ferr = syscall.Flock(int(fd), how)
			if ferr != syscall.EINTR {
				return
			}
		}
	})
	if cerr != nil {
		return cerr
	}
	return ferr
}

// lockFile takes flock(how) on f, the lock PHP's files handler holds on
// sess_<id> for the length of a request. The uncontended case is one
// non-blocking syscall. When the lock is busy the blocking flock runs in a
// helper goroutine so ctx can end the wait; the caller must then close f,
// which drops the lock the abandoned helper may still obtain later. The
// helper itself lives on until the holder releases (flock cannot be
// interrupted), holding nothing once it returns.
func lockFile(ctx context.Context, f *os.File, how int) error {
	err := flockFD(f, how|syscall.LOCK_NB)
	if err == nil || !errors.Is(err, syscall.EWOULDBLOCK) {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- flockFD(f, how) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// tryLockFile takes flock(how) without waiting; ok is false when busy.
func tryLockFile(f *os.File, how int) (ok bool, err error) {
	err = flockFD(f, how|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return false, nil
	}
	return err == nil, err
}

// idLocks serialises the goroutines of this process per session id, so at
// most one of them waits in flock per id and a create race between two of
// them cannot happen. Waiting honours ctx; entries vanish when unused.
type idLocks struct {
	mu sync.Mutex
	m  map[string]*idLock
}

type idLock struct {
	ch   chan struct{}
	refs int
}

func (l *idLocks) lock(ctx context.Context, id string) (unlock func(), err error) {
	l.mu.Lock()
	if l.m == nil {
		l.m = map[string]*idLock{}
	}
	k := l.m[id]
	if k == nil {
		k = &idLock{ch: make(chan struct{}, 1)}
		l.m[id] = k
	}
	k.refs++
	l.mu.Unlock()

	release := func() {
		l.mu.Lock()
		if k.refs--; k.refs == 0 {
			delete(l.m, id)
		}
		l.mu.Unlock()
	}
	select {
	case k.ch <- struct{}{}:
		return func() { <-k.ch; release() }, nil
	case <-ctx.Done():
		release()
		return nil, ctx.Err()
	}
}

// tryLock is lock without waiting; ok is false when another goroutine
// holds or awaits the id.
func (l *idLocks) tryLock(id string) (unlock func(), ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = map[string]*idLock{}
	}
	if l.m[id] != nil {
		return nil, false
	}
	k := &idLock{ch: make(chan struct{}, 1), refs: 1}
	k.ch <- struct{}{}
	l.m[id] = k
	return func() {
		<-k.ch
		l.mu.Lock()
		if k.refs--; k.refs == 0 {
			delete(l.m, id)
		}
		l.mu.Unlock()
	}, true
}
