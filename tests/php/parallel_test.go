package phptest

import (
	"encoding/json"
	"sort"
	"testing"
	"time"

	"github.com/phpsessd/phpsessd/internal/fpmtest"
)

const (
	parallelN     = 10
	parallelSleep = 200 * time.Millisecond
)

// runParallel is scenario 1 for one handler, logged for the report.
func runParallel(t *testing.T, p *fpmtest.Pool, loginH, h fpmtest.Handler) (*fpmtest.ParallelResult, []fpmtest.Result) {
	t.Helper()
	ctx := testCtx(t, time.Minute)
	pr, _, res, err := p.ParallelHits(ctx, loginH, h, parallelN, parallelSleep)
	if err != nil {
		t.Fatalf("%s: %v", h.Name, err)
	}
	t.Logf("%-22s wall %7.1f ms  one request %6.1f ms  kept %d/%d  warnings %d  failed %d",
		h.Name, ms(pr.Wall), ms(pr.One), pr.Kept, pr.N, pr.Warnings, pr.Failed)
	return pr, res
}

// grants returns the moments PHP's session_start() returned, sorted.
func grants(t *testing.T, res []fpmtest.Result) []float64 {
	t.Helper()
	var out []float64
	for _, r := range res {
		if r.Err != nil {
			t.Fatalf("request failed: %v", r.Err)
		}
		var b struct {
			Granted float64 `json:"granted"`
		}
		if err := json.Unmarshal(r.Resp.Body, &b); err != nil {
			t.Fatalf("hits.php answered %q: %v", r.Resp.Body, err)
		}
		out = append(out, b.Granted)
	}
	sort.Float64s(out)
	return out
}

// TestParallelOneSession is scenario 1: ten parallel requests of one
// session, each appending to $_SESSION['hits'] and then working 200 ms.
// PHP's files handler, measured in the same run, is the yardstick: it
// keeps all ten by serialising them (~10 × 200 ms).
func TestParallelOneSession(t *testing.T) {
	p := newPool(t)
	files := fpmtest.Files(p.SavePath)
	base, res := runParallel(t, p, files, files)
	noWarnings(t, "files", res)
	if base.Kept != parallelN {
		t.Errorf("files handler kept %d/%d appends", base.Kept, parallelN)
	}
	// Sanity of the yardstick itself: the files handler's flock serialises.
	if base.Wall < 8*parallelSleep {
		t.Errorf("files handler took %v for %d requests of %v: it did not serialise, the comparison is meaningless", base.Wall, parallelN, parallelSleep)
	}
	if t.Failed() {
		return
	}

	d := startDaemon(t, "memory://")
	opt := d.handler("optimistic")

	t.Run("optimistic", func(t *testing.T) {
		pr, res := runParallel(t, p, opt, opt)
		noWarnings(t, "optimistic", res)
		if pr.Kept != parallelN {
			t.Errorf("optimistic kept %d/%d appends", pr.Kept, parallelN)
		}
		if pr.Wall >= base.Wall/2 {
			t.Errorf("optimistic wall %v is not under half the files handler's %v", pr.Wall, base.Wall)
		}
		if pr.Wall >= 4*pr.One {
			t.Errorf("optimistic wall %v is not under 4 × one request (%v)", pr.Wall, pr.One)
		}
		t.Logf("ratios: optimistic/files %.2f, optimistic/one request %.2f", float64(pr.Wall)/float64(base.Wall), float64(pr.Wall)/float64(pr.One))
	})

	t.Run("locked", func(t *testing.T) {
		h := d.handler("locked")
		pr, res := runParallel(t, p, opt, h)
		noWarnings(t, "locked", res)
		if pr.Kept != parallelN {
			t.Errorf("locked kept %d/%d appends", pr.Kept, parallelN)
		}
		// Serialised like the files handler: every holder works 200 ms
		// before the next one is let in.
		if pr.Wall < 8*parallelSleep || pr.Wall < base.Wall*6/10 {
			t.Errorf("locked wall %v: requests did not serialise (files %v)", pr.Wall, base.Wall)
		}
		g := grants(t, res)
		for i := 1; i < len(g); i++ {
			if gap := g[i] - g[i-1]; gap < 0.9*parallelSleep.Seconds() {
				t.Errorf("lock granted to two requests %.0f ms apart: the lock is not exclusive", gap*1000)
			}
		}
		t.Logf("ratio locked/files %.2f", float64(pr.Wall)/float64(base.Wall))
	})

	t.Run("readonly", func(t *testing.T) {
		h := d.handler("readonly")
		pr, res := runParallel(t, p, opt, h)
		for i, r := range res {
			if r.Err != nil {
				t.Errorf("readonly #%d: %v", i, r.Err)
			}
		}
		if pr.Wall >= base.Wall/2 || pr.Wall >= 4*pr.One {
			t.Errorf("readonly wall %v waited (files %v, one request %v)", pr.Wall, base.Wall, pr.One)
		}
		// Readonly requests changed the data; their writes are dropped.
		if pr.Kept != 0 {
			t.Errorf("readonly stored %d appends, want 0 (writes dropped)", pr.Kept)
		}
	})

	t.Run("readonly beside a lock holder", func(t *testing.T) {
		// A readonly request never queues behind a locked one.
		ctx := testCtx(t, 30*time.Second)
		id := login(t, ctx, p, opt, "")
		locked := d.handler("locked")
		holder := make(chan *fpmtest.Response, 1)
		go func() {
			r, _ := p.Do(ctx, locked.Req("hits.php", "sleep=1500&tok=holder", id))
			holder <- r
		}()
		time.Sleep(300 * time.Millisecond)
		r := do(t, ctx, p, d.handler("readonly").Req("hits.php", "sleep=0&tok=ro", id))
		h := <-holder
		if h == nil {
			t.Fatal("the lock holder's request failed")
		}
		// Relative to the holder rather than a fixed bound, so a loaded
		// machine does not make this flaky: the readonly request must be
		// done long before the holder lets go.
		if !r.End.Before(h.End.Add(-500*time.Millisecond)) || r.Duration() > time.Second {
			t.Errorf("readonly request waited behind a lock holder: took %v, finished %v before the holder", r.Duration(), h.End.Sub(r.End))
		}
		t.Logf("readonly beside a 1.5 s lock holder: %.1f ms", ms(r.Duration()))
	})
}
