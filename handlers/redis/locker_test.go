package redis

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/phpsessd/phpsessd/engine"
	"github.com/phpsessd/phpsessd/handlers"
)

// commandCalls reads how often Redis ran a command since CONFIG RESETSTAT.
func commandCalls(t testing.TB, c *goredis.Client, name string) int {
	t.Helper()
	info, err := c.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		if rest, ok := strings.CutPrefix(line, "cmdstat_"+name+":calls="); ok {
			n, _ := strconv.Atoi(rest[:strings.IndexByte(rest, ',')])
			return n
		}
	}
	return 0
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestLockMutualExclusionTwoClients(t *testing.T) {
	srv := startRedis(t)
	lockers := []*Locker{srv.openStore(t, "").Locker(), srv.openStore(t, "").Locker()}
	const workers, rounds = 6, 15
	var (
		inside, maxInside atomic.Int32
		count             int // guarded by the Redis lock only
		wg                sync.WaitGroup
		failed            atomic.Value
	)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(l *Locker, w int) {
			defer wg.Done()
			for i := 0; i < rounds; i++ {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				lk, err := l.AcquireLock(ctx, "mutex1", fmt.Sprintf("w%d", w), 10*time.Second)
				cancel()
				if err != nil {
					failed.Store(err)
					return
				}
				if n := inside.Add(1); n > maxInside.Load() {
					maxInside.Store(n)
				}
				count++
				time.Sleep(100 * time.Microsecond)
				inside.Add(-1)
				if err := lk.Release(); err != nil {
					failed.Store(err)
					return
				}
			}
		}(lockers[w%2], w)
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		t.Fatal(err)
	}
	if maxInside.Load() != 1 || count != workers*rounds {
		t.Fatalf("max holders at once %d, count %d/%d", maxInside.Load(), count, workers*rounds)
	}
}

// TestLockFIFONoPolling queues waiters from two clients behind a holder,
// checks that they are served in arrival order, that nobody polls while
// waiting, and that each hand-off is prompt.
func TestLockFIFONoPolling(t *testing.T) {
	srv := startRedis(t)
	raw := srv.newClient(t)
	a, b := srv.openStore(t, ""), srv.openStore(t, "")
	ctx := ctxT(t)
	holder, err := a.Locker().AcquireLock(ctx, "fifo1", "holder", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	qkey := a.ks.forID("fifo1").lockTag + ":q"
	const waiters = 4
	var (
		mu    sync.Mutex
		order []int
		wg    sync.WaitGroup
		errs  = make(chan error, waiters)
		gotAt = make([]time.Time, waiters)
	)
	for i := 0; i < waiters; i++ {
		st := []*Store{a, b}[i%2]
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			lk, err := st.Locker().AcquireLock(ctx, "fifo1", strconv.Itoa(i), time.Minute)
			if err != nil {
				errs <- err
				return
			}
			mu.Lock()
			order = append(order, i)
			gotAt[i] = time.Now()
			mu.Unlock()
			time.Sleep(20 * time.Millisecond)
			if err := lk.Release(); err != nil {
				errs <- err
			}
		}(i)
		waitFor(t, "waiter to queue", func() bool { return raw.LLen(ctx, qkey).Val() == int64(i+1) })
	}
	if err := raw.ConfigResetStat(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	if n := commandCalls(t, raw, "evalsha") + commandCalls(t, raw, "blpop"); n > 0 {
		t.Fatalf("%d lock commands while %d waiters waited 1s behind a 1-minute lease: waiters poll", n, waiters)
	}
	released := time.Now()
	if err := holder.Release(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for i, got := range order {
		if got != i {
			t.Fatalf("acquisition order %v, want arrival order", order)
		}
	}
	first := gotAt[0].Sub(released)
	if first > 500*time.Millisecond {
		t.Fatalf("first hand-off took %v", first)
	}
	t.Logf("order %v; first hand-off %v after release", order, first)
	if n := raw.Exists(ctx, qkey, a.ks.forID("fifo1").lock).Val(); n != 0 {
		t.Fatalf("%d lock keys left behind", n)
	}
}

func TestLockLeaseExpiry(t *testing.T) {
	srv := startRedis(t)
	a, b := srv.openStore(t, ""), srv.openStore(t, "")
	ctx := ctxT(t)
	// The holder "dies": it never releases, its lease runs out.
	dead, err := a.Locker().AcquireLock(ctx, "lease1", "dead", 300*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	lk, err := b.Locker().AcquireLock(ctx, "lease1", "next", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	waited := time.Since(start)
	if waited < 200*time.Millisecond || waited > 2*time.Second {
		t.Fatalf("waited %v for a 300ms lease", waited)
	}
	// The late release of the dead holder must not free the new holder.
	if err := dead.Release(); err != nil {
		t.Fatal(err)
	}
	raw := srv.newClient(t)
	if got := raw.Get(ctx, "PHPREDIS_SESSION:lease1_LOCK").Val(); got != lk.Token() {
		t.Fatalf("lock key holds %q, want the new holder's token (phpredis lock key shared)", got)
	}
	if err := lk.Release(); err != nil || lk.Release() != nil {
		t.Fatalf("Release not idempotent: %v", err)
	}
}

func TestLockTimeoutAndCancel(t *testing.T) {
	srv := startRedis(t)
	raw := srv.newClient(t)
	a, b := srv.openStore(t, ""), srv.openStore(t, "")
	ctx := ctxT(t)
	holder, err := a.Locker().AcquireLock(ctx, "tmo1", "h", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	tctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	start := time.Now()
	_, err = b.Locker().AcquireLock(tctx, "tmo1", "late", time.Minute)
	cancel()
	if !errors.Is(err, errLockWait) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("timed-out wait = %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("timeout honoured after %v", d)
	}
	qkey := a.ks.forID("tmo1").lockTag + ":q"
	if n := raw.LLen(ctx, qkey).Val(); n != 0 {
		t.Fatalf("a timed-out waiter stayed queued (%d)", n)
	}
	// The released lock is free at once for a newcomer.
	if err := holder.Release(); err != nil {
		t.Fatal(err)
	}
	qctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	lk, err := b.Locker().AcquireLock(qctx, "tmo1", "new", time.Minute)
	if err != nil {
		t.Fatalf("lock not free after release: %v", err)
	}
	_ = lk.Release()
}

// TestLockDeadWaiters: a queued waiter whose daemon died (liveness key
// gone) is skipped; one that died after being handed the lock costs at
// most the claim window.
func TestLockDeadWaiters(t *testing.T) {
	srv := startRedis(t)
	raw := srv.newClient(t)
	s := srv.openStore(t, "lock_claim=300ms")
	ctx := ctxT(t)
	k := s.ks.forID("dead1")
	holder, err := s.Locker().AcquireLock(ctx, "dead1", "h", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	// ghost1 died long ago (no liveness key); ghost2 is "alive" but will
	// never claim the lock handed to it.
	raw.RPush(ctx, k.lockTag+":q", "ghost1", "ghost2")
	raw.Set(ctx, k.lockTag+":a:ghost2", "1", time.Minute)
	done := make(chan error, 1)
	var waited time.Duration
	go func() {
		start := time.Now()
		lk, err := s.Locker().AcquireLock(ctx, "dead1", "real", time.Minute)
		waited = time.Since(start)
		if err == nil {
			err = lk.Release()
		}
		done <- err
	}()
	waitFor(t, "real waiter to queue", func() bool { return raw.LLen(ctx, k.lockTag+":q").Val() == 3 })
	if err := holder.Release(); err != nil {
		t.Fatal(err)
	}
	if got := raw.Get(ctx, k.lock).Val(); got != "ghost2" {
		t.Fatalf("lock handed to %q, want the first live waiter ghost2", got)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if waited > 3*time.Second {
		t.Fatalf("dead waiter held the queue for %v", waited)
	}
}

// TestLockHandoffLatency measures release-to-acquire across two clients.
func TestLockHandoffLatency(t *testing.T) {
	srv := startRedis(t)
	a, b := srv.openStore(t, ""), srv.openStore(t, "")
	lat := handoffRounds(t, a.Locker(), b.Locker(), 100)
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	p50, p99 := lat[len(lat)/2], lat[len(lat)*99/100]
	t.Logf("hand-off latency over %d rounds: p50 %v, p99 %v, max %v", len(lat), p50, p99, lat[len(lat)-1])
	if p50 > 50*time.Millisecond {
		t.Fatalf("median hand-off %v: waiters are not woken on release", p50)
	}
}

// handoffRounds has a holder on one client release while a waiter on the
// other blocks, and returns the release-to-acquired latencies.
func handoffRounds(t testing.TB, la, lb *Locker, rounds int) []time.Duration {
	ctx := context.Background()
	qkey := la.s.ks.forID("handoff1").lockTag + ":q"
	var out []time.Duration
	for i := 0; i < rounds; i++ {
		holder, err := la.AcquireLock(ctx, "handoff1", "a", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		got := make(chan time.Time, 1)
		errc := make(chan error, 2)
		go func() {
			lk, err := lb.AcquireLock(ctx, "handoff1", "b", time.Minute)
			if err != nil {
				errc <- err
				return
			}
			got <- time.Now()
			errc <- lk.Release()
		}()
		for la.s.client.LLen(ctx, qkey).Val() == 0 {
			time.Sleep(200 * time.Microsecond)
		}
		released := time.Now()
		if err := holder.Release(); err != nil {
			t.Fatal(err)
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		out = append(out, (<-got).Sub(released))
	}
	return out
}

func TestEngineLocker(t *testing.T) {
	srv := startRedis(t)
	a, b := srv.openStore(t, ""), srv.openStore(t, "")
	ctx := ctxT(t)
	held, err := a.EngineLocker().Acquire(ctx, "eng1", "x", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	tctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := b.EngineLocker().Acquire(tctx, "eng1", "y", time.Minute); !errors.Is(err, engine.ErrLockTimeout) {
		t.Fatalf("Acquire past its deadline = %v, want engine.ErrLockTimeout", err)
	}
	if err := held.Release(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.EngineLocker().Acquire(ctx, "bad/id", "y", time.Minute); err == nil {
		t.Fatal("invalid id accepted")
	}
	_ = a.Close()
	if _, err := a.EngineLocker().Acquire(ctx, "eng2", "y", time.Minute); !errors.Is(err, handlers.ErrUnavailable) {
		t.Fatalf("Acquire on a closed store = %v, want ErrUnavailable", err)
	}
}

// TestLockRenewal: a long lease is kept alive by its daemon in short TTL
// steps, and a daemon that disappears frees the lock within one step.
func TestLockRenewal(t *testing.T) {
	srv := startRedis(t)
	raw := srv.newClient(t)
	a := srv.openStore(t, "lock_renew=1s")
	b := srv.openStore(t, "lock_renew=1s")
	ctx := ctxT(t)
	lk, err := a.Locker().AcquireLock(ctx, "renew1", "a", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	key := a.ks.forID("renew1").lock
	if ttl := raw.PTTL(ctx, key).Val(); ttl > time.Second {
		t.Fatalf("key TTL %v, want the 1s renewal step", ttl)
	}
	time.Sleep(2500 * time.Millisecond)
	if got := raw.Get(ctx, key).Val(); got != lk.Token() {
		t.Fatalf("lock lost after 2.5s of a 1-minute lease (key %q)", got)
	}
	// The holding daemon vanishes without releasing (its store closes, so
	// renewals stop): the other daemon gets the lock within about a step.
	_ = a.Close()
	start := time.Now()
	lk2, err := b.Locker().AcquireLock(ctx, "renew1", "b", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited > 2*time.Second {
		t.Fatalf("waited %v for a dead daemon's lock with 1s renewal", waited)
	}
	if err := lk2.Release(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-lk2.done:
	default:
		t.Fatal("renewal goroutine still running after Release")
	}
	<-lk.done // ended by the closed store
}
