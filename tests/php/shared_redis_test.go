package phptest

import (
	"fmt"
	"testing"
	"time"

	"github.com/phpsessd/phpsessd/internal/fpmtest"
	"github.com/phpsessd/phpsessd/internal/testserver"
)

// TestSharedRedisTwoDaemons is the parallel scenario with the requests of
// one session spread over two daemons that share one Redis: correctness
// (merges, locks) must hold across daemons, not only inside one.
func TestSharedRedisTwoDaemons(t *testing.T) {
	p := newPool(t)
	r := testserver.StartRedis(t)
	store := "redis://" + r.Addr + "/0"
	a := startDaemon(t, store)
	b := startDaemon(t, store)
	ctx := testCtx(t, 2*time.Minute)
	sleepMS := fmt.Sprint(int(parallelSleep / time.Millisecond))

	// spread sends n hits.php requests of one session, alternating daemons.
	spread := func(t *testing.T, mode string) (id string, wall time.Duration, res []fpmtest.Result) {
		t.Helper()
		id = login(t, ctx, p, a.handler("optimistic"), "")
		reqs := make([]fpmtest.Request, parallelN)
		for i := range reqs {
			d := a
			if i%2 == 1 {
				d = b
			}
			reqs[i] = d.handler(mode).Req("hits.php", fmt.Sprintf("sleep=%s&tok=t%d", sleepMS, i), id)
		}
		res, wall = p.Parallel(ctx, reqs)
		noWarnings(t, mode, res)
		return id, wall, res
	}

	t.Run("optimistic", func(t *testing.T) {
		id, wall, _ := spread(t, "optimistic")
		// Read back through the other daemon: both see the same session.
		if got := show(t, ctx, p, b.handler("optimistic"), id).Hits(); got != parallelN {
			t.Errorf("kept %d/%d appends across two daemons", got, parallelN)
		}
		if wall >= 4*parallelSleep {
			t.Errorf("optimistic wall %v for %d parallel requests of %v: requests waited for each other", wall, parallelN, parallelSleep)
		}
		t.Logf("two daemons, optimistic: wall %.1f ms, kept all %d", ms(wall), parallelN)
	})

	t.Run("locked", func(t *testing.T) {
		id, wall, res := spread(t, "locked")
		if got := show(t, ctx, p, a.handler("optimistic"), id).Hits(); got != parallelN {
			t.Errorf("kept %d/%d appends across two daemons", got, parallelN)
		}
		// A lock taken through one daemon excludes the other daemon's
		// requests: grants are at least one request's work apart.
		g := grants(t, res)
		for i := 1; i < len(g); i++ {
			if gap := g[i] - g[i-1]; gap < 0.9*parallelSleep.Seconds() {
				t.Errorf("lock granted twice within %.0f ms across daemons: not exclusive", gap*1000)
			}
		}
		if wall < 8*parallelSleep {
			t.Errorf("locked wall %v: requests did not serialise across daemons", wall)
		}
		// Hand-off without polling: the gaps beyond the holder's 200 ms of
		// work are the hand-off; report them, bound them generously.
		var worst float64
		for i := 1; i < len(g); i++ {
			if extra := g[i] - g[i-1] - parallelSleep.Seconds(); extra > worst {
				worst = extra
			}
		}
		if worst > 0.5 {
			t.Errorf("slowest cross-daemon hand-off %.0f ms beyond the holder's work", worst*1000)
		}
		t.Logf("two daemons, locked: wall %.1f ms, slowest hand-off %.1f ms beyond the holder's work", ms(wall), worst*1000)
	})
}
