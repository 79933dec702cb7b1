package phptest

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/phpsessd/phpsessd/internal/fpmtest"
)

// TestParallelMerge is scenario 2: parallel requests changing distinct
// keys, entries of one nested array, one list and one counter lose
// nothing; a key under the `fail` rule changed by two requests makes one
// write fail loudly instead of silently picking a winner.
func TestParallelMerge(t *testing.T) {
	p := newPool(t)
	d := startDaemon(t, "memory://", "--counter", "n", "--key-rule", "price fail")
	h := d.handler("optimistic")
	ctx := testCtx(t, time.Minute)

	t.Run("shapes", func(t *testing.T) {
		id := login(t, ctx, p, h, "")
		const n = 10
		reqs := make([]fpmtest.Request, n)
		for i := range reqs {
			reqs[i] = h.Req("mix.php", fmt.Sprintf("i=%d&sleep=200", i), id)
		}
		res, wall := p.Parallel(ctx, reqs)
		noWarnings(t, "mix.php", res)
		s := show(t, ctx, p, h, id)
		t.Logf("%d parallel mixed updates in %.1f ms", n, ms(wall))
		if s.Data["user"] != "alice" {
			t.Errorf("user = %v, want alice (untouched key lost)", s.Data["user"])
		}
		for i := 0; i < n; i++ {
			if v, ok := s.Data[fmt.Sprintf("k%d", i)].(float64); !ok || int(v) != i {
				t.Errorf("k%d = %v, want %d", i, s.Data[fmt.Sprintf("k%d", i)], i)
			}
		}
		cart, _ := s.Data["cart"].(map[string]any)
		items, _ := cart["items"].(map[string]any)
		for i := 0; i < n; i++ {
			it, _ := items[fmt.Sprintf("sku%d", i)].(map[string]any)
			if q, ok := it["qty"].(float64); !ok || int(q) != i || it["name"] != fmt.Sprintf("item %d", i) {
				t.Errorf("cart.items.sku%d = %v", i, items[fmt.Sprintf("sku%d", i)])
			}
		}
		if _, ok := cart["updated_by"].(float64); !ok {
			t.Errorf("cart.updated_by missing: %v", cart)
		}
		log, _ := s.Data["log"].([]any)
		seen := map[string]bool{}
		for _, e := range log {
			seen[fmt.Sprint(e)] = true
		}
		if len(log) != n || len(seen) != n {
			t.Errorf("log = %v, want the %d appends r0..r%d once each", log, n, n-1)
		}
		if c, ok := s.Data["n"].(float64); !ok || int(c) != n {
			t.Errorf("counter n = %v, want %d (increments merged by delta)", s.Data["n"], n)
		}
		in := d.info(id)
		t.Logf("INFO after merge: version %d, size %d", in.Version, in.Size)
	})

	t.Run("fail rule", func(t *testing.T) {
		id := login(t, ctx, p, h, "i_price=1")
		reqs := []fpmtest.Request{
			h.Req("price.php", "v=2&sleep=200", id),
			h.Req("price.php", "v=3&sleep=400", id),
		}
		res, _ := p.Parallel(ctx, reqs)
		failed := -1
		for i, r := range res {
			if r.Err != nil {
				t.Fatalf("price.php #%d: %v", i, r.Err)
			}
			for _, w := range r.Resp.Warnings() {
				if strings.Contains(w, "Failed to write session data") {
					if failed >= 0 {
						t.Errorf("both writes failed")
					}
					failed = i
				}
			}
			t.Logf("price.php v=%d: HTTP %d, warnings %q", i+2, r.Resp.Status, r.Resp.Warnings())
		}
		if failed != 1 {
			t.Fatalf("the later conflicting write did not fail visibly (failed index %d); want PHP warning \"Failed to write session data\" on the second request", failed)
		}
		s := show(t, ctx, p, h, id)
		if v, ok := s.Data["price"].(float64); !ok || v != 2 {
			t.Errorf("price = %v, want 2 (the first write; the conflicting one must not land)", s.Data["price"])
		}
	})
}
