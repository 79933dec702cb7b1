package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// LockInfo describes the current holder of a lock and its queue.
type LockInfo struct {
	Owner   string    `json:"owner"`
	Since   time.Time `json:"since"`
	Expires time.Time `json:"expires"`
	Waiters int       `json:"waiters"`
}

// LockInspector is implemented by lockers that can report who holds a lock
// (for INFO). The in-process MemLocker implements it.
type LockInspector interface {
	Holder(id string) (LockInfo, bool)
}

// LockerStats are the counters of a MemLocker.
type LockerStats struct {
	Waits, HandOffs, Timeouts, LeaseExpiries uint64
	Held                                     int64
}

// MemLocker is the in-process Locker: one FIFO queue per session id. A
// release hands the lock straight to the first waiter by closing that
// waiter's channel, so nobody polls and the next request runs the moment
// the previous one lets go. Leases are timers that fire only if a holder
// never releases (a stuck or killed PHP worker whose connection stays open).
type MemLocker struct {
	log *slog.Logger

	mu     sync.Mutex
	locks  map[string]*lockQueue
	closed bool

	waits, handOffs, timeouts, leaseExpiries atomic.Uint64
	held                                     atomic.Int64
}

type lockQueue struct {
	holder  *memLock
	waiters []*lockWaiter // FIFO; cancelled waiters are removed eagerly
}

type lockWaiter struct {
	owner string
	lease time.Duration
	ready chan struct{} // closed when granted or when the locker closes
	lock  *memLock      // set under MemLocker.mu before ready is closed
}

type memLock struct {
	l       *MemLocker
	id      string
	owner   string
	since   time.Time
	expires time.Time
	timer   *time.Timer
	done    bool // guarded by l.mu
}

var errLockerClosed = errors.New("locker closed")

// NewMemLocker returns an empty in-process locker. logger may be nil.
func NewMemLocker(logger *slog.Logger) *MemLocker {
	if logger == nil {
		logger = slog.Default()
	}
	return &MemLocker{log: logger, locks: make(map[string]*lockQueue)}
}

// Acquire implements Locker. When ctx ends while waiting, the waiter leaves
// the queue; if the deadline passed the error wraps ErrLockTimeout.
func (l *MemLocker) Acquire(ctx context.Context, id, owner string, lease time.Duration) (Lock, error) {
	if err := ctx.Err(); err != nil {
		return nil, waitErr(err)
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil, errLockerClosed
	}
	q := l.locks[id]
	if q == nil {
		q = &lockQueue{}
		l.locks[id] = q
	}
	if q.holder == nil && len(q.waiters) == 0 {
		lk := l.grantLocked(q, id, owner, lease)
		l.mu.Unlock()
		return lk, nil
	}
	w := &lockWaiter{owner: owner, lease: lease, ready: make(chan struct{})}
	q.waiters = append(q.waiters, w)
	l.mu.Unlock()
	l.waits.Add(1)

	beforeWait(ctx)
	select {
	case <-w.ready:
		if w.lock == nil {
			return nil, errLockerClosed
		}
		return w.lock, nil
	case <-ctx.Done():
	}
	l.mu.Lock()
	if w.lock != nil {
		// Granted in the same instant the wait ended: give it straight on
		// rather than holding a lock nobody will use.
		lk := w.lock
		l.releaseLocked(lk)
		l.mu.Unlock()
	} else {
		if q := l.locks[id]; q != nil {
			for i, x := range q.waiters {
				if x == w {
					q.waiters = append(q.waiters[:i], q.waiters[i+1:]...)
					break
				}
			}
			l.dropIfIdleLocked(id, q)
		}
		l.mu.Unlock()
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		l.timeouts.Add(1)
	}
	return nil, waitErr(ctx.Err())
}

func waitErr(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %v", ErrLockTimeout, err)
	}
	return err
}

// grantLocked makes owner the holder of q. Callers hold l.mu.
func (l *MemLocker) grantLocked(q *lockQueue, id, owner string, lease time.Duration) *memLock {
	now := time.Now()
	lk := &memLock{l: l, id: id, owner: owner, since: now}
	if lease > 0 {
		lk.expires = now.Add(lease)
		lk.timer = time.AfterFunc(lease, func() { l.expire(lk) })
	}
	q.holder = lk
	l.held.Add(1)
	return lk
}

func (l *MemLocker) expire(lk *memLock) {
	l.mu.Lock()
	if lk.done {
		l.mu.Unlock()
		return
	}
	l.leaseExpiries.Add(1)
	l.releaseLocked(lk)
	l.mu.Unlock()
	l.log.Warn("lock lease expired; lock taken from its holder",
		"session", shortID(lk.id), "owner", lk.owner, "held", time.Since(lk.since).Round(time.Millisecond))
}

// releaseLocked frees lk and hands the lock to the first waiter. Callers
// hold l.mu.
func (l *MemLocker) releaseLocked(lk *memLock) {
	if lk.done {
		return
	}
	lk.done = true
	if lk.timer != nil {
		lk.timer.Stop()
	}
	l.held.Add(-1)
	q := l.locks[lk.id]
	if q == nil || q.holder != lk {
		return
	}
	q.holder = nil
	if len(q.waiters) > 0 {
		w := q.waiters[0]
		q.waiters[0] = nil
		q.waiters = q.waiters[1:]
		w.lock = l.grantLocked(q, lk.id, w.owner, w.lease)
		l.handOffs.Add(1)
		close(w.ready)
		return
	}
	l.dropIfIdleLocked(lk.id, q)
}

func (l *MemLocker) dropIfIdleLocked(id string, q *lockQueue) {
	if q.holder == nil && len(q.waiters) == 0 && l.locks[id] == q {
		delete(l.locks, id)
	}
}

// Release implements Lock.
func (lk *memLock) Release() error {
	lk.l.mu.Lock()
	lk.l.releaseLocked(lk)
	lk.l.mu.Unlock()
	return nil
}

// Holder implements LockInspector.
func (l *MemLocker) Holder(id string) (LockInfo, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	q := l.locks[id]
	if q == nil || q.holder == nil {
		return LockInfo{}, false
	}
	return LockInfo{Owner: q.holder.owner, Since: q.holder.since, Expires: q.holder.expires, Waiters: len(q.waiters)}, true
}

// Stats returns the locker's counters.
func (l *MemLocker) Stats() LockerStats {
	return LockerStats{
		Waits: l.waits.Load(), HandOffs: l.handOffs.Load(), Timeouts: l.timeouts.Load(),
		LeaseExpiries: l.leaseExpiries.Load(), Held: l.held.Load(),
	}
}

// Close releases every lock, stops every lease timer and wakes every
// waiter with an error. Later Acquire calls fail.
func (l *MemLocker) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	for id, q := range l.locks {
		if q.holder != nil {
			q.holder.done = true
			if q.holder.timer != nil {
				q.holder.timer.Stop()
			}
			l.held.Add(-1)
			q.holder = nil
		}
		for _, w := range q.waiters {
			close(w.ready)
		}
		q.waiters = nil
		delete(l.locks, id)
	}
	return nil
}
