package redis

import (
	"context"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/phpsessd/phpsessd/engine"
	"github.com/phpsessd/phpsessd/handlers"
)

// loadCounting counts the loads the engine asks of a Redis store; the
// store's ExactVersion is promoted, so the engine sees what it would see
// without the wrapper.
type loadCounting struct {
	*Store
	loads atomic.Int64
}

func (l *loadCounting) Load(ctx context.Context, id string) (handlers.Record, error) {
	l.loads.Add(1)
	return l.Store.Load(ctx, id)
}

func newDaemonEngine(t *testing.T, st handlers.Store) *engine.Engine {
	t.Helper()
	cfg := engine.NewConfig(st)
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	e, err := engine.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// Two daemons on one Redis, the way a rollout runs them. A write from the
// counter version its READ got saves without a load; a write after
// another daemon's write, or after phpredis overwrote the data without
// the meta, loads and merges and keeps the other side's keys; a content
// version (the record phpredis left) never skips the load.
func TestEngineWritesFromCounterBaseWithoutLoad(t *testing.T) {
	srv := startRedis(t)
	ctx := ctxT(t)
	sa := &loadCounting{Store: srv.openStore(t, "")}
	ea := newDaemonEngine(t, sa)
	eb := newDaemonEngine(t, srv.openStore(t, ""))
	ca, cb := ea.NewClient("a"), eb.NewClient("b")
	defer ca.Close()
	defer cb.Close()
	raw := srv.newClient(t)
	const id = "enginecounter0000000000000000000"

	read := func(c *engine.Client) engine.ReadResult {
		t.Helper()
		r, err := c.Read(ctx, engine.ReadRequest{ID: id, Format: "php", Mode: engine.ModeOptimistic})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	write := func(c *engine.Client, data string, base uint64) engine.WriteResult {
		t.Helper()
		w, err := c.Write(ctx, engine.WriteRequest{ID: id, Data: []byte(data), BaseVersion: base, Format: "php"})
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	stored := func() string {
		t.Helper()
		rec, err := sa.Store.Load(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return string(rec.Data)
	}

	read(ca)
	write(ca, "n|i:1;", 0)
	r := read(ca)
	if r.Version == 0 || r.Version >= versionHashBit {
		t.Fatalf("a daemon's write left version %d, want a counter version", r.Version)
	}
	before := sa.loads.Load()
	if w := write(ca, "n|i:2;", r.Version); w.Status != engine.StatusWritten || sa.loads.Load() != before {
		t.Fatalf("unchanged session: %s after %d loads, want written after none", w.Status, sa.loads.Load()-before)
	}

	// The other daemon writes between this request's READ and WRITE.
	r = read(ca)
	read(cb)
	write(cb, "n|i:2;o|i:1;", 0)
	before = sa.loads.Load()
	if w := write(ca, "n|i:3;", r.Version); w.Status != engine.StatusMerged || sa.loads.Load() == before {
		t.Fatalf("after another daemon's write: %s after %d loads, want merged after a load", w.Status, sa.loads.Load()-before)
	}
	if got, want := stored(), "n|i:3;o|i:1;"; got != want {
		t.Fatalf("stored %q, want %q", got, want)
	}

	// phpredis replaces the data and leaves the meta: the counter must not
	// be taken as proof of an unchanged session.
	r = read(ca)
	if err := raw.Set(ctx, "PHPREDIS_SESSION:"+id, "n|i:3;o|i:1;p|i:1;", time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	before = sa.loads.Load()
	if w := write(ca, "n|i:4;o|i:1;", r.Version); w.Status != engine.StatusMerged || sa.loads.Load() == before {
		t.Fatalf("after a phpredis write: %s after %d loads, want merged after a load", w.Status, sa.loads.Load()-before)
	}
	if got, want := stored(), "n|i:4;o|i:1;p|i:1;"; got != want {
		t.Fatalf("stored %q, want %q", got, want)
	}

	// A record phpredis wrote has a content version: its write loads.
	if err := raw.Set(ctx, "PHPREDIS_SESSION:"+id, "n|i:5;", time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	r = read(ca)
	if r.Version < versionHashBit {
		t.Fatalf("phpredis's record read as version %d, want a content version", r.Version)
	}
	before = sa.loads.Load()
	write(ca, "n|i:6;", r.Version)
	if sa.loads.Load() == before {
		t.Fatal("a write from a content version skipped the load")
	}
	if got, want := stored(), "n|i:6;"; got != want {
		t.Fatalf("stored %q, want %q", got, want)
	}
}
