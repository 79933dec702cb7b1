package phptest

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestDaemonStoppedMidRun is scenario 6: the daemon is stopped while
// requests are running. Requests that cannot reach it must say so (PHP
// warnings, not a silently empty session that later overwrites real
// data); no session may end up holding half of a request's write; and a
// daemon restarted on the same files store serves every session again.
func TestDaemonStoppedMidRun(t *testing.T) {
	p := newPool(t)
	storeDir := t.TempDir()
	store := "files://" + storeDir
	sockDir := t.TempDir()
	d1 := startDaemonIn(t, sockDir, store)
	h := d1.handler("optimistic")
	ctx := testCtx(t, time.Minute)

	const sessions = 6
	ids := make([]string, sessions)
	for i := range ids {
		ids[i] = login(t, ctx, p, h, "")
		for n := 0; n < 3; n++ {
			r := do(t, ctx, p, h.Req("block.php", fmt.Sprintf("n=%d", n), ids[i]))
			if w := r.Warnings(); len(w) > 0 {
				t.Fatalf("block.php before the stop warned: %q", w)
			}
		}
	}

	// outcome of block.php n on session i.
	type outcome struct {
		ok       bool
		warnings []string
	}
	var mu sync.Mutex
	results := make([]map[int]outcome, sessions)
	var wg sync.WaitGroup
	stopLoad := time.Now().Add(2500 * time.Millisecond)
	for i := range ids {
		results[i] = map[int]outcome{}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for n := 3; n < 200 && time.Now().Before(stopLoad); n++ {
				r, err := p.Do(ctx, h.Req("block.php", fmt.Sprintf("n=%d&sleep=30", n), ids[i]))
				o := outcome{}
				if err == nil {
					var b struct {
						Started bool `json:"started"`
					}
					_ = json.Unmarshal(r.Body, &b)
					o.warnings = r.Warnings()
					o.ok = r.Status == 200 && b.Started && len(o.warnings) == 0
				}
				mu.Lock()
				results[i][n] = o
				mu.Unlock()
			}
		}(i)
	}
	time.Sleep(600 * time.Millisecond)
	stopAt := time.Now()
	if err := d1.Stop(); err != nil {
		t.Errorf("stop phpsessd: %v", err)
	}
	t.Logf("phpsessd stopped with SIGTERM in %.1f ms under load", ms(time.Since(stopAt)))
	wg.Wait()

	// A request while the daemon is down must warn, clearly.
	r := do(t, ctx, p, h.Req("block.php", "n=999", ids[0]))
	down := r.Warnings()
	if len(down) == 0 {
		t.Errorf("a request with the daemon down gave no PHP warning: body %s, stderr %q", r.Body, r.Stderr)
	}
	t.Logf("warnings of a request while the daemon is down: %q", down)

	okCount, failCount, silent := 0, 0, 0
	msgs := map[string]int{}
	for i := range results {
		for _, o := range results[i] {
			switch {
			case o.ok:
				okCount++
			case len(o.warnings) > 0:
				failCount++
				for _, w := range o.warnings {
					msgs[trimWarning(w)]++
				}
			default:
				silent++
			}
		}
	}
	t.Logf("during the run: %d requests ok, %d failed with warnings, %d failed silently", okCount, failCount, silent)
	for m, n := range msgs {
		t.Logf("  %3d × %s", n, m)
	}
	if silent > 0 {
		t.Errorf("%d requests failed without any PHP warning", silent)
	}
	if failCount == 0 {
		t.Errorf("no request saw the daemon stop: the scenario did not exercise the outage")
	}

	// Restart on the same files store and socket.
	d2 := startDaemonIn(t, sockDir, store)
	h2 := d2.handler("optimistic")
	if ents, _ := os.ReadDir(storeDir); len(ents) > 0 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		sort.Strings(names)
		if len(names) > 3 {
			names = append(names[:3], "…")
		}
		t.Logf("files store after restart: %d entries (%s)", len(ents), strings.Join(names, ", "))
	}
	for i, id := range ids {
		s := show(t, ctx, p, h2, id)
		if s.Data["user"] != "alice" {
			t.Errorf("session %d (%s) lost after restart: %v", i, id, s.Data)
			continue
		}
		for n := 0; n < 200; n++ {
			a, hasA := s.Data[fmt.Sprintf("a%d", n)].(string)
			b, hasB := s.Data[fmt.Sprintf("b%d", n)].(string)
			if hasA != hasB {
				t.Errorf("session %d holds half of write %d (a %v, b %v)", i, n, hasA, hasB)
			}
			if hasA && (len(a) != 512 || a != b) {
				t.Errorf("session %d write %d is damaged (len a %d, len b %d)", i, n, len(a), len(b))
			}
			okBefore := n < 3 || results[i][n].ok
			if okBefore && !hasA {
				t.Errorf("session %d lost write %d, which PHP reported as saved", i, n)
			}
		}
	}
}

func trimWarning(w string) string {
	w = strings.TrimPrefix(w, "PHP Warning:")
	w = strings.TrimSpace(w)
	w = strings.TrimPrefix(w, "phpsessd: ")
	w = strings.TrimSpace(w)
	if i := strings.Index(w, " in /"); i > 0 {
		w = w[:i]
	}
	return w
}
