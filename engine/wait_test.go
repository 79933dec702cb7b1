package engine

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The wait hook runs once for a lock wait that blocks, before it blocks,
// and never for a lock that is free.
func TestWaitHookRunsBeforeBlocking(t *testing.T) {
	e := newTestEngine(t, nil)
	id := strings.Repeat("h", 32)
	var hooked atomic.Int32
	ctx := WithWaitHook(context.Background(), func() { hooked.Add(1) })

	holder, waiter := e.NewClient("holder"), e.NewClient("waiter")
	defer holder.Close()
	defer waiter.Close()
	if _, err := holder.Read(ctx, ReadRequest{ID: id, Mode: ModeLocked, Format: "php"}); err != nil {
		t.Fatal(err)
	}
	if n := hooked.Load(); n != 0 {
		t.Fatalf("hook ran %d times for a free lock", n)
	}
	got := make(chan error, 1)
	go func() {
		_, err := waiter.Read(ctx, ReadRequest{ID: id, Mode: ModeLocked, Format: "php", LockWait: 5 * time.Second})
		got <- err
	}()
	deadline := time.Now().Add(5 * time.Second)
	for hooked.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the blocked waiter never ran the hook")
		}
		time.Sleep(time.Millisecond)
	}
	select {
	case err := <-got:
		t.Fatalf("the waiter returned (%v) while the lock was held", err)
	default:
	}
	if err := holder.Release(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatalf("waiter: %v", err)
	}
	if n := hooked.Load(); n != 1 {
		t.Fatalf("hook ran %d times for one wait", n)
	}
}
