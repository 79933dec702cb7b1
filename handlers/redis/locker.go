package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// errLockWait is returned when the caller's context ends before the lock
// is granted; the engine-facing Acquire wraps engine.ErrLockTimeout too.
var errLockWait = errors.New("redis lock wait ended")

const (
	// idleRefresh bounds one blocking wait when the caller set no deadline,
	// so the waiter's liveness key is renewed before it lapses.
	idleRefresh = 15 * time.Second
	// noTTLRecheck bounds a wait behind a lock without expiry, which only a
	// foreign client can create; our holders always have a lease.
	noTTLRecheck = time.Second
	// expiryMargin is added to the holder's remaining lease before the
	// safety re-check, so the re-check finds the lease already gone.
	expiryMargin = 20 * time.Millisecond
)

// Locker is a cross-daemon lock manager in Redis. The algorithm is in
// README.md; in short: SET NX-style ownership with a random token and a
// lease, a FIFO queue of waiting tokens, direct hand-off to the first live
// waiter on release, and a per-waiter wake list the waiter blocks on with
// BLPOP, so no waiter polls.
type Locker struct {
	s *Store
}

// Locker returns a lock manager that shares the store's client and key
// layout (in the phpredis layout the lock key is phpredis's own
// "<prefix><id>_LOCK"). Every blocked waiter holds one pooled connection
// for the duration of its BLPOP, so size pool_size for the expected number
// of concurrent waiters plus ordinary traffic.
func (s *Store) Locker() *Locker { return &Locker{s: s} }

// RedisLock is a held lock.
type RedisLock struct {
	l     *Locker
	k     keys
	token string
	once  sync.Once
	err   error
	// stop ends the renewal goroutine, done reports it ended; both nil when
	// the lease fits in one key TTL.
	stop, done chan struct{}
}

// Token is the random owner token stored in the lock key.
func (k *RedisLock) Token() string { return k.token }

// AcquireLock blocks until the lock on id is held, ctx ends (the error
// wraps context's error), or Redis fails (the error wraps
// handlers.ErrUnavailable). owner is informational only: two calls with the
// same owner are still two contenders.
func (l *Locker) AcquireLock(ctx context.Context, id, owner string, lease time.Duration) (*RedisLock, error) {
	if err := l.s.ks.validID(id); err != nil {
		return nil, err
	}
	if l.s.closed.Load() {
		return nil, unavailable("lock", id, errClosed)
	}
	if lease <= 0 {
		return nil, fmt.Errorf("redis lock %q: lease must be positive", id)
	}
	var rnd [16]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, fmt.Errorf("redis lock %q: token: %w", id, err)
	}
	lk := &RedisLock{l: l, k: l.s.ks.forID(id), token: hex.EncodeToString(rnd[:])}
	claim := l.s.opts.LockClaim
	keyTTL := lease
	if renew := l.s.opts.LockRenew; renew > 0 && lease > renew {
		keyTTL = renew
	}
	keys := []string{lk.k.lock, lk.k.lockTag + ":q"}
	wake := lk.k.lockTag + ":w:" + lk.token
	for {
		if err := ctx.Err(); err != nil {
			lk.cancel()
			return nil, fmt.Errorf("redis lock %q (owner %s): %w: %w", id, owner, errLockWait, err)
		}
		wait := idleRefresh
		if dl, ok := ctx.Deadline(); ok {
			wait = time.Until(dl)
		}
		// The liveness key outlives the wait by the claim window so a
		// hand-off that races with our deadline still finds us alive and
		// our cancel passes it on.
		res, err := l.run(ctx, lockAcquireScript, keys, lk.token, keyTTL.Milliseconds(),
			(wait + claim).Milliseconds(), claim.Milliseconds(), lk.k.lockTag)
		if err != nil {
			lk.cancel()
			if ctx.Err() != nil {
				return nil, fmt.Errorf("redis lock %q (owner %s): %w: %w", id, owner, errLockWait, ctx.Err())
			}
			return nil, unavailable("lock", id, err)
		}
		got, pttl, err := lockReply(res)
		if err != nil {
			lk.cancel()
			return nil, fmt.Errorf("redis lock %q: %w", id, err)
		}
		if got {
			if keyTTL < lease {
				lk.stop, lk.done = make(chan struct{}), make(chan struct{})
				go lk.renew(time.Now().Add(lease), keyTTL)
			}
			return lk, nil
		}
		// Block until the releaser pushes to our wake list; the timeout is
		// only the safety re-check for a holder that vanished without
		// releasing (its lease lapses after pttl).
		block := wait
		if pttl >= 0 {
			block = min(block, time.Duration(pttl)*time.Millisecond+expiryMargin)
		} else {
			block = min(block, noTTLRecheck)
		}
		if _, ok := ctx.Deadline(); !ok {
			block = min(block, idleRefresh)
		}
		if err := l.blockOn(ctx, wake, block); err != nil {
			lk.cancel()
			if ctx.Err() != nil {
				return nil, fmt.Errorf("redis lock %q (owner %s): %w: %w", id, owner, errLockWait, ctx.Err())
			}
			return nil, unavailable("lock wait", id, err)
		}
	}
}

func lockReply(res any) (bool, int64, error) {
	arr, ok := res.([]any)
	if !ok || len(arr) != 2 {
		return false, 0, fmt.Errorf("unexpected lock script reply %v", res)
	}
	a, _ := arr[0].(int64)
	b, _ := arr[1].(int64)
	return a == 1, b, nil
}

func (l *Locker) run(ctx context.Context, sc *goredis.Script, keys []string, args ...any) (any, error) {
	cctx, cancel := l.s.opContext(ctx)
	defer cancel()
	return sc.Run(cctx, l.s.client, keys, args...).Result()
}

// blockOn waits up to d for an element on the wake list. Redis takes
// fractional BLPOP timeouts, but go-redis's BLPop rounds to whole seconds,
// so short waits go out as a raw command within the client's read timeout.
func (l *Locker) blockOn(ctx context.Context, key string, d time.Duration) error {
	if d < time.Millisecond {
		d = time.Millisecond
	}
	rt := l.s.readTimeout
	var err error
	if rt < 0 || d+500*time.Millisecond < rt {
		cmd := goredis.NewStringSliceCmd(ctx, "blpop", key, strconv.FormatFloat(d.Seconds(), 'f', 3, 64))
		_ = l.s.client.Process(ctx, cmd)
		err = cmd.Err()
	} else {
		// BLPOP 0 would block forever: never send less than a second.
		err = l.s.client.BLPop(ctx, max(d.Truncate(time.Second), time.Second), key).Err()
	}
	if errors.Is(err, goredis.Nil) {
		return nil
	}
	return err
}

// cancel withdraws a waiter; it runs even when the caller's context is
// done, because a lock handed to a waiter that gave up must move on now
// rather than after the claim window.
func (k *RedisLock) cancel() {
	ctx, cancel := context.WithTimeout(context.Background(), k.l.s.opts.OpTimeout)
	defer cancel()
	_ = lockCancelScript.Run(ctx, k.l.s.client, []string{k.k.lock, k.k.lockTag + ":q"},
		k.token, k.l.s.opts.LockClaim.Milliseconds(), k.k.lockTag).Err()
}

// renew keeps the lock key alive until the lease ends, Release is called,
// the store closes or the lock turns out to be lost. Missing one renewal
// (a Redis blip) is harmless: the key still has two thirds of its TTL.
func (k *RedisLock) renew(until time.Time, ttl time.Duration) {
	defer close(k.done)
	tick := time.NewTicker(ttl / 3)
	defer tick.Stop()
	keys := []string{k.k.lock}
	for {
		select {
		case <-k.stop:
			return
		case <-tick.C:
		}
		rem := time.Until(until)
		if rem <= 0 || k.l.s.closed.Load() {
			return // the lease is over: the key lapses by itself
		}
		ctx, cancel := context.WithTimeout(context.Background(), k.l.s.opts.OpTimeout)
		n, err := lockExtendScript.Run(ctx, k.l.s.client, keys, k.token, min(ttl, rem).Milliseconds()).Int64()
		cancel()
		if err == nil && n == 0 {
			return // lapsed and taken over; nothing left to keep alive
		}
	}
}

// Release gives the lock to the first live waiter at once. It is
// idempotent, and a no-op when the lease already lapsed and someone else
// holds the lock.
func (k *RedisLock) Release() error {
	k.once.Do(func() {
		if k.stop != nil {
			close(k.stop)
			<-k.done
		}
		ctx, cancel := context.WithTimeout(context.Background(), k.l.s.opts.OpTimeout)
		defer cancel()
		err := lockReleaseScript.Run(ctx, k.l.s.client, []string{k.k.lock, k.k.lockTag + ":q"},
			k.token, k.l.s.opts.LockClaim.Milliseconds(), k.k.lockTag).Err()
		if err != nil {
			k.err = unavailable("unlock", "", err)
		}
	})
	return k.err
}
