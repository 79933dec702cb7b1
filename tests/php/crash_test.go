package phptest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/phpsessd/phpsessd/internal/fpmtest"
)

// TestKilledLockHolder is scenario 5: a php-fpm worker holding a session
// lock is killed with SIGKILL, so no PHP code runs to release it. The
// daemon sees the worker's connection close and hands the lock to the
// next waiter at once, instead of making it wait for a lock TTL (the
// "locks never released after a crash" complaint about other handlers).
func TestKilledLockHolder(t *testing.T) {
	p := newPool(t)
	d := startDaemon(t, "memory://")
	opt := d.handler("optimistic")
	locked := d.handler("locked")
	ctx := testCtx(t, time.Minute)
	id := login(t, ctx, p, opt, "")

	pidfile := filepath.Join(t.TempDir(), "holder.pid")
	holderDone := make(chan struct{})
	go func() {
		defer close(holderDone)
		// The holder's connection dies with the worker: an error is expected.
		_, _ = p.Do(ctx, fpmtest.Request{Script: "hold.php", Query: "sleep=20000&pidfile=" + pidfile,
			SessionID: id, INI: locked.INI, Params: locked.Params, Timeout: 30 * time.Second})
	}()
	var pid int
	for start := time.Now(); pid == 0; time.Sleep(10 * time.Millisecond) {
		if b, err := os.ReadFile(pidfile); err == nil {
			pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		}
		if time.Since(start) > 10*time.Second {
			t.Fatal("the holder never got the lock (no pid file)")
		}
	}

	type out struct {
		r   *fpmtest.Response
		err error
	}
	waiter := make(chan out, 1)
	go func() {
		r, err := p.Do(ctx, locked.Req("hits.php", "sleep=0&tok=next", id))
		waiter <- out{r, err}
	}()
	// Give the waiter time to queue; it must still be waiting afterwards.
	select {
	case o := <-waiter:
		t.Fatalf("a locked request did not wait for the lock holder: %v %s", o.err, bodyOf(o.r))
	case <-time.After(400 * time.Millisecond):
	}

	killed := time.Now()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9 %d: %v", pid, err)
	}
	var o out
	select {
	case o = <-waiter:
	case <-time.After(15 * time.Second):
		t.Fatal("the waiter never got the lock after its holder was killed")
	}
	done := time.Now()
	if o.err != nil {
		t.Fatalf("waiter: %v", o.err)
	}
	var b struct {
		Started bool    `json:"started"`
		Granted float64 `json:"granted"`
		Seen    int     `json:"seen"`
	}
	if err := json.Unmarshal(o.r.Body, &b); err != nil || !b.Started {
		t.Fatalf("waiter answered %q (stderr %q): %v", o.r.Body, o.r.Stderr, err)
	}
	grant := time.Duration((b.Granted - float64(killed.UnixNano())/1e9) * float64(time.Second))
	t.Logf("kill -9 of the lock holder → waiter's lock granted after %.1f ms, waiter's response after %.1f ms",
		ms(grant), ms(done.Sub(killed)))
	if grant < 0 {
		t.Errorf("the waiter got the lock %v before the holder was killed: the lock was not exclusive", -grant)
	}
	if done.Sub(killed) > 500*time.Millisecond {
		t.Errorf("the waiter needed %v after the kill (want well under 500 ms; target 50 ms)", done.Sub(killed))
	}
	if w := o.r.Warnings(); len(w) > 0 {
		t.Errorf("waiter warned: %q", w)
	}
	<-holderDone
}

func bodyOf(r *fpmtest.Response) string {
	if r == nil {
		return ""
	}
	return string(r.Body)
}
