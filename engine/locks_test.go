package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/phpsessd/phpsessd/handlers/memory"
)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newTestEngine(t testing.TB, mod func(*Config)) *Engine {
	t.Helper()
	st, err := memory.New(memory.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := NewConfig(st)
	cfg.Logger = quietLogger()
	if mod != nil {
		mod(&cfg)
	}
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// checkNoLeak fails when goroutines started during the test outlive it.
func checkNoLeak(t *testing.T) func() {
	before := runtime.NumGoroutine()
	return func() {
		t.Helper()
		deadline := time.Now().Add(2 * time.Second)
		for {
			n := runtime.NumGoroutine()
			if n <= before {
				return
			}
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<16)
				buf = buf[:runtime.Stack(buf, true)]
				t.Fatalf("goroutines: %d before, %d after\n%s", before, n, buf)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

func TestLockFIFO(t *testing.T) {
	l := NewMemLocker(quietLogger())
	defer l.Close()
	ctx := context.Background()
	first, err := l.Acquire(ctx, "s", "holder", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	const n = 20
	var mu sync.Mutex
	var order []int
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			lk, err := l.Acquire(ctx, "s", fmt.Sprint("w", i), time.Minute)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			order = append(order, i)
			mu.Unlock()
			lk.Release()
		}(i)
		// Queue positions are fixed when a waiter enqueues; wait until
		// waiter i is queued before starting i+1.
		waitFor(t, func() bool { h, _ := l.Holder("s"); return h.Waiters == i+1 })
	}
	first.Release()
	wg.Wait()
	for i, v := range order {
		if v != i {
			t.Fatalf("grant order %v, want arrival order", order)
		}
	}
	if h, ok := l.Holder("s"); ok {
		t.Fatalf("lock still held by %+v", h)
	}
	if len(l.locks) != 0 {
		t.Fatalf("idle queues not dropped: %d", len(l.locks))
	}
}

func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestLockWaitTimeout(t *testing.T) {
	e := newTestEngine(t, func(c *Config) { c.LockWait = 50 * time.Millisecond })
	ctx := context.Background()
	a, b := e.NewClient("a"), e.NewClient("b")
	defer a.Close()
	defer b.Close()
	if _, err := a.Read(ctx, ReadRequest{ID: "sess1", Mode: ModeLocked}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err := b.Read(ctx, ReadRequest{ID: "sess1", Mode: ModeLocked})
	if !errors.Is(err, ErrLockTimeout) {
		t.Fatalf("err = %v, want ErrLockTimeout", err)
	}
	if el := time.Since(start); el < 50*time.Millisecond {
		t.Fatalf("gave up after %v, before the deadline", el)
	}
	if want := "lock wait timeout after 50ms on session sess1"; err.Error() != want {
		t.Fatalf("message %q, want %q", err, want)
	}
	// Per-request wait overrides the default.
	_, err = b.Read(ctx, ReadRequest{ID: "sess1", Mode: ModeLocked, LockWait: 10 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "after 10ms") {
		t.Fatalf("err = %v", err)
	}
	if s := e.Stats(); s.LockTimeouts != 2 {
		t.Fatalf("LockTimeouts = %d", s.LockTimeouts)
	}
	// The timed-out waiters left the queue: a release frees the lock.
	if err := a.Release(ctx, "sess1"); err != nil {
		t.Fatal(err)
	}
	if _, ok := e.LockInfo("sess1"); ok {
		t.Fatal("lock still held after release")
	}
}

func TestLockReleasedOnClientClose(t *testing.T) {
	defer checkNoLeak(t)()
	e := newTestEngine(t, nil)
	ctx := context.Background()
	a, b := e.NewClient("a"), e.NewClient("b")
	if _, err := a.Read(ctx, ReadRequest{ID: "sess2", Mode: ModeLocked}); err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() {
		_, err := b.Read(ctx, ReadRequest{ID: "sess2", Mode: ModeLocked})
		got <- err
	}()
	waitFor(t, func() bool { h, _ := e.LockInfo("sess2"); return h.Waiters == 1 })
	if h, _ := e.LockInfo("sess2"); h.Owner != "a" {
		t.Fatalf("holder %q", h.Owner)
	}
	a.Close() // the PHP worker died: its connection dropped
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("waiter not woken by the holder's close")
	}
	if h, _ := e.LockInfo("sess2"); h.Owner != "b" {
		t.Fatalf("holder %q, want b", h.Owner)
	}
	b.Close()
	if s := e.Stats(); s.LocksHeld != 0 || s.Clients != 0 {
		t.Fatalf("stats after close: %+v", s)
	}
	e.Close()
}

func TestCloseCancelsPendingWait(t *testing.T) {
	e := newTestEngine(t, nil)
	ctx := context.Background()
	a, b := e.NewClient("a"), e.NewClient("b")
	defer a.Close()
	if _, err := a.Read(ctx, ReadRequest{ID: "sess3", Mode: ModeLocked}); err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() {
		_, err := b.Read(ctx, ReadRequest{ID: "sess3", Mode: ModeLocked})
		got <- err
	}()
	waitFor(t, func() bool { h, _ := e.LockInfo("sess3"); return h.Waiters == 1 })
	b.Close()
	select {
	case err := <-got:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("err = %v, want ErrClosed", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("pending wait not cancelled by Close")
	}
	if h, _ := e.LockInfo("sess3"); h.Owner != "a" || h.Waiters != 0 {
		t.Fatalf("lock state %+v", h)
	}
}

func TestLockLeaseExpiry(t *testing.T) {
	e := newTestEngine(t, func(c *Config) { c.LockLease = 30 * time.Millisecond })
	ctx := context.Background()
	a, b := e.NewClient("stuck"), e.NewClient("next")
	defer a.Close()
	defer b.Close()
	if _, err := a.Read(ctx, ReadRequest{ID: "sess4", Mode: ModeLocked}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := b.Read(ctx, ReadRequest{ID: "sess4", Mode: ModeLocked, LockWait: 5 * time.Second}); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < 25*time.Millisecond {
		t.Fatalf("granted after %v, before the lease ran out", el)
	}
	// The stuck holder's late release must not free b's lock.
	if err := a.Release(ctx, "sess4"); err != nil {
		t.Fatal(err)
	}
	if h, _ := e.LockInfo("sess4"); h.Owner != "next" {
		t.Fatalf("holder %q, want next", h.Owner)
	}
	if ls := e.ownLocker.Stats(); ls.LeaseExpiries < 1 {
		t.Fatalf("lease expiries %d", ls.LeaseExpiries)
	}
}

func TestLockerCloseWakesWaiters(t *testing.T) {
	defer checkNoLeak(t)()
	l := NewMemLocker(quietLogger())
	ctx := context.Background()
	if _, err := l.Acquire(ctx, "x", "a", time.Minute); err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() {
		_, err := l.Acquire(ctx, "x", "b", time.Minute)
		got <- err
	}()
	waitFor(t, func() bool { h, _ := l.Holder("x"); return h.Waiters == 1 })
	l.Close()
	if err := <-got; err == nil {
		t.Fatal("waiter granted a lock on a closed locker")
	}
	if _, err := l.Acquire(ctx, "x", "c", time.Minute); err == nil {
		t.Fatal("acquire after close succeeded")
	}
}

// BenchmarkLockHandOff measures the time from Release by the holder to the
// next waiter running, with one waiter queued each round.
func BenchmarkLockHandOff(b *testing.B) {
	l := NewMemLocker(quietLogger())
	defer l.Close()
	ctx := context.Background()
	lats := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		lk, err := l.Acquire(ctx, "bench", "holder", time.Minute)
		if err != nil {
			b.Fatal(err)
		}
		granted := make(chan time.Time, 1)
		go func() {
			lk2, err := l.Acquire(ctx, "bench", "waiter", time.Minute)
			if err != nil {
				b.Error(err)
				granted <- time.Time{}
				return
			}
			granted <- time.Now()
			lk2.Release()
		}()
		for {
			l.mu.Lock()
			q := l.locks["bench"]
			queued := q != nil && len(q.waiters) == 1
			l.mu.Unlock()
			if queued {
				break
			}
			runtime.Gosched()
		}
		start := time.Now()
		lk.Release()
		at := <-granted
		lats = append(lats, at.Sub(start))
	}
	b.StopTimer()
	sort.Slice(lats, func(i, j int) bool { return lats[i] < lats[j] })
	if len(lats) > 0 {
		b.ReportMetric(float64(lats[len(lats)/2].Nanoseconds()), "p50-ns")
		b.ReportMetric(float64(lats[len(lats)*99/100].Nanoseconds()), "p99-ns")
	}
}
