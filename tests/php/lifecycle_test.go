package phptest

import (
	"testing"
	"time"
)

// TestSessionFunctions is scenario 4: the session_* functions an
// unmodified app calls behave through the shim as they do with PHP's own
// handlers, and nothing writes when nothing changed.
func TestSessionFunctions(t *testing.T) {
	p := newPool(t)
	d := startDaemon(t, "memory://")
	h := d.handler("optimistic")
	ctx := testCtx(t, 2*time.Minute)

	// unchanged asserts the stored session still is alice's at version v.
	unchanged := func(t *testing.T, id string, v uint64, what string) {
		t.Helper()
		in := d.info(id)
		if !in.Exists || in.Version != v {
			t.Errorf("%s rewrote the session: exists %v, version %d → %d", what, in.Exists, v, in.Version)
		}
		if s := show(t, ctx, p, h, id); s.Data["user"] != "alice" {
			t.Errorf("after %s user = %v, want alice", what, s.Data["user"])
		}
	}

	t.Run("destroy", func(t *testing.T) {
		id := login(t, ctx, p, h, "")
		if !d.info(id).Exists {
			t.Fatalf("INFO: session %s not stored after login", id)
		}
		var b struct {
			Destroyed bool `json:"destroyed"`
		}
		r := do(t, ctx, p, h.Req("destroy.php", "", id))
		decode(t, r, &b)
		if !b.Destroyed || len(r.Warnings()) > 0 {
			t.Errorf("session_destroy: %s, warnings %q", r.Body, r.Warnings())
		}
		if in := d.info(id); in.Exists {
			t.Errorf("session still exists after session_destroy(): %+v", in.Raw)
		}
		if s := show(t, ctx, p, h, id); len(s.Data) != 0 {
			t.Errorf("destroyed session still reads as %v", s.Data)
		}
	})

	t.Run("reset", func(t *testing.T) {
		id := login(t, ctx, p, h, "")
		v := d.info(id).Version
		var b struct {
			Reset bool   `json:"reset"`
			User  string `json:"user"`
		}
		r := do(t, ctx, p, h.Req("reset.php", "", id))
		decode(t, r, &b)
		if !b.Reset || b.User != "alice" || len(r.Warnings()) > 0 {
			t.Errorf("session_reset: %s, warnings %q", r.Body, r.Warnings())
		}
		unchanged(t, id, v, "session_reset()")
	})

	t.Run("abort", func(t *testing.T) {
		id := login(t, ctx, p, h, "")
		v := d.info(id).Version
		r := do(t, ctx, p, h.Req("abort.php", "", id))
		if len(r.Warnings()) > 0 {
			t.Errorf("session_abort warned: %q", r.Warnings())
		}
		unchanged(t, id, v, "session_abort()")
	})

	t.Run("read_and_close", func(t *testing.T) {
		id := login(t, ctx, p, h, "")
		v := d.info(id).Version
		var b struct {
			User string `json:"user"`
		}
		r := do(t, ctx, p, h.Req("readclose.php", "", id))
		decode(t, r, &b)
		if b.User != "alice" || len(r.Warnings()) > 0 {
			t.Errorf("read_and_close: %s, warnings %q", r.Body, r.Warnings())
		}
		unchanged(t, id, v, "read_and_close")
	})

	t.Run("lazy write", func(t *testing.T) {
		id := login(t, ctx, p, h, "")
		before := d.info(id)
		for i := 0; i < 3; i++ {
			r := do(t, ctx, p, h.Req("lazy.php", "", id))
			if len(r.Warnings()) > 0 {
				t.Errorf("lazy.php warned: %q", r.Warnings())
			}
		}
		after := d.info(id)
		if after.Version != before.Version {
			t.Errorf("three unchanged requests moved the version %d → %d: not a lazy write", before.Version, after.Version)
		}
		t.Logf("version %d before and %d after 3 unchanged requests", before.Version, after.Version)
	})

	t.Run("strict mode unknown id", func(t *testing.T) {
		strict := h.With(map[string]string{"session.use_strict_mode": "1"}, nil)
		const unknown = "unknownsessionid0123456789"
		r := do(t, ctx, p, strict.Req("set.php", "", unknown))
		got := r.SessionCookie("")
		if got == "" || got == unknown {
			t.Fatalf("strict mode kept the unknown id: Set-Cookie %q, body %s, stderr %q", r.Header.Values("Set-Cookie"), r.Body, r.Stderr)
		}
		if in := d.info(unknown); in.Exists {
			t.Errorf("the unknown id was created: %+v", in.Raw)
		}
		if in := d.info(got); !in.Exists {
			t.Errorf("the new id %s was not stored", got)
		}
		if len(r.Warnings()) > 0 {
			t.Errorf("strict mode warned: %q", r.Warnings())
		}
	})

	t.Run("gc_maxlifetime expiry", func(t *testing.T) {
		short := h.With(map[string]string{"session.gc_maxlifetime": "1"}, nil)
		id := login(t, ctx, p, short, "")
		if !d.info(id).Exists {
			t.Fatal("session not stored")
		}
		// Poll INFO, which does not refresh the session, up to 6 s.
		start := time.Now()
		for d.info(id).Exists {
			if time.Since(start) > 6*time.Second {
				t.Fatalf("session with gc_maxlifetime=1 still exists after %v", time.Since(start))
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Logf("session with gc_maxlifetime=1 expired %.0f ms after its write", ms(time.Since(start)))
		if s := show(t, ctx, p, short, id); s.Data["user"] != nil {
			t.Errorf("expired session still reads as %v", s.Data)
		}
	})
}
