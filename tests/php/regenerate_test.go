package phptest

import (
	"fmt"
	"testing"
	"time"

	"github.com/phpsessd/phpsessd/internal/fpmtest"
)

// TestRegenerateDuringParallelRequests is scenario 3: one request calls
// session_regenerate_id(true) while five others still carry the old
// cookie, some reading before the new id exists and some after. With PHP's
// own handlers the late ones find no session and the user is logged out
// (the CodeIgniter #1900 problem); with phpsessd the old id is an alias
// for a grace period, so all five stay logged in and their writes land in
// the new session.
func TestRegenerateDuringParallelRequests(t *testing.T) {
	p := newPool(t)
	d := startDaemon(t, "memory://")
	h := d.handler("optimistic")
	ctx := testCtx(t, time.Minute)
	old := login(t, ctx, p, h, "user=alice")

	type out struct {
		r   *fpmtest.Response
		err error
	}
	regen := make(chan out, 1)
	go func() {
		r, err := p.Do(ctx, h.Req("regen.php", "pre=100&post=200", old))
		regen <- out{r, err}
	}()
	others := make(chan out, 5)
	for i := 0; i < 5; i++ {
		// Two start before the regenerate happens, three after it.
		delay := time.Duration(0)
		if i >= 2 {
			delay = 250 * time.Millisecond
		}
		go func(i int, delay time.Duration) {
			time.Sleep(delay)
			r, err := p.Do(ctx, h.Req("hits.php", fmt.Sprintf("sleep=300&tok=tab%d", i), old))
			others <- out{r, err}
		}(i, delay)
	}
	rg := <-regen
	if rg.err != nil {
		t.Fatalf("regen.php: %v", rg.err)
	}
	var rb struct {
		Started     bool   `json:"started"`
		Regenerated bool   `json:"regenerated"`
		ID          string `json:"id"`
	}
	decode(t, rg.r, &rb)
	if !rb.Regenerated || rb.ID == old || rb.ID == "" {
		t.Fatalf("regen.php: %s (stderr %q)", rg.r.Body, rg.r.Stderr)
	}
	if c := rg.r.SessionCookie(""); c != rb.ID {
		t.Errorf("regenerate sent cookie %q, want the new id %q", c, rb.ID)
	}
	for i := 0; i < 5; i++ {
		o := <-others
		if o.err != nil {
			t.Errorf("old-cookie request: %v", o.err)
			continue
		}
		var hb struct {
			Started bool   `json:"started"`
			User    string `json:"user"`
			ID      string `json:"id"`
		}
		decode(t, o.r, &hb)
		if w := o.r.Warnings(); len(w) > 0 {
			t.Errorf("old-cookie request warned: %q", w)
		}
		if !hb.Started || hb.User != "alice" {
			t.Errorf("old-cookie request was logged out: %s", o.r.Body)
		}
		if c := o.r.SessionCookie(""); c != "" && c != rb.ID && c != old {
			t.Errorf("old-cookie request was handed a third session %q", c)
		}
	}
	s := show(t, ctx, p, h, rb.ID)
	if s.Data["user"] != "alice" || s.Data["regenerated"] != true {
		t.Errorf("new session lost the regenerating request's data: %v", s.Data)
	}
	if s.Hits() != 5 {
		t.Errorf("new session holds %d of the 5 old-cookie writes: %v", s.Hits(), s.Data["hits"])
	}
	in := d.info(rb.ID)
	t.Logf("new session after regenerate: version %d, %d hits; old id alias_of=%q", in.Version, s.Hits(), d.info(old).AliasOf)
}
