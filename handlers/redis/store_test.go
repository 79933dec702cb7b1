package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/phpsessd/phpsessd/handlers"
	"github.com/phpsessd/phpsessd/handlers/storetest"
)

func openForTest(ctx context.Context, rawURL string) (*Store, error) {
	s, err := handlers.Open(ctx, rawURL)
	if err != nil {
		return nil, err
	}
	st, ok := s.(*Store)
	if !ok {
		_ = s.Close()
		return nil, fmt.Errorf("handlers.Open returned %T", s)
	}
	return st, nil
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestStoreSuite(t *testing.T) {
	srv := startRedis(t)
	for _, layout := range []string{"phpredis", "hashtag"} {
		t.Run(layout, func(t *testing.T) {
			storetest.RunWith(t, func(t *testing.T) handlers.Store {
				return srv.openStore(t, "layout="+layout)
			}, storetest.Options{NativeExpiry: true})
		})
	}
}

func TestParseURL(t *testing.T) {
	good := []struct {
		url     string
		addrs   string
		db      int
		prefix  string
		layout  Layout
		tls     bool
		cluster bool
		master  string
	}{
		{"redis://127.0.0.1", "127.0.0.1:6379", 0, DefaultPrefix, "", false, false, ""},
		{"redis://:pw@10.0.0.1:7000/3?prefix=APP:&layout=hashtag&pool_size=20&dial_timeout=1s", "10.0.0.1:7000", 3, "APP:", LayoutHashTag, false, false, ""},
		{"rediss://u:p@cache.example:6380?db=2&tls_server_name=cache", "cache.example:6380", 2, DefaultPrefix, "", true, false, ""},
		{"redis+sentinel://s1,s2:26380/1?master=mymaster&sentinel_password=x", "s1:26379,s2:26380", 1, DefaultPrefix, "", false, false, "mymaster"},
		{"sentinel://s1?master=m", "s1:26379", 0, DefaultPrefix, "", false, false, "m"},
		{"redis+cluster://a:7000,b:7001?addr=c:7002&layout=phpredis", "a:7000,b:7001,c:7002", 0, DefaultClusterPrefix, LayoutPHPRedis, false, true, ""},
		{"rediss+cluster://a:7000?prefix=", "a:7000", 0, "", "", true, true, ""},
		{"redis+unix:///run/redis.sock?db=4", "/run/redis.sock", 4, DefaultPrefix, "", false, false, ""},
	}
	for _, g := range good {
		u, err := url.Parse(g.url)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := parseURL(u)
		if err != nil {
			t.Errorf("%s: %v", g.url, err)
			continue
		}
		if got := strings.Join(cfg.client.Addrs, ","); got != g.addrs {
			t.Errorf("%s: addrs %s, want %s", g.url, got, g.addrs)
		}
		if cfg.client.DB != g.db || cfg.store.Prefix != g.prefix || cfg.store.Layout != g.layout ||
			(cfg.client.TLSConfig != nil) != g.tls || cfg.cluster != g.cluster || cfg.client.MasterName != g.master {
			t.Errorf("%s: parsed db=%d prefix=%q layout=%q tls=%v cluster=%v master=%q", g.url,
				cfg.client.DB, cfg.store.Prefix, cfg.store.Layout, cfg.client.TLSConfig != nil, cfg.cluster, cfg.client.MasterName)
		}
		if !cfg.client.ContextTimeoutEnabled {
			t.Errorf("%s: context timeouts not enabled", g.url)
		}
	}
	u, _ := url.Parse("redis://:pw@h:1/0?pool_size=20&read_timeout=250ms&op_timeout=2s")
	cfg, err := parseURL(u)
	if err != nil || cfg.client.Password != "pw" || cfg.client.PoolSize != 20 ||
		cfg.client.ReadTimeout != 250*time.Millisecond || cfg.store.OpTimeout != 2*time.Second {
		t.Errorf("options not applied: %+v %v", cfg, err)
	}
	bad := []string{
		"redis://h?bogus=1", "redis://h/x", "redis://h?layout=weird", "redis://a,b",
		"redis+sentinel://s1", "redis+cluster://a/2", "redis://h?pool_size=x",
		"redis://h?dial_timeout=soon", "redis+unix://", "redis://h?master=m",
	}
	for _, b := range bad {
		u, err := url.Parse(b)
		if err != nil {
			continue
		}
		if _, err := parseURL(u); err == nil {
			t.Errorf("%s: accepted, want an error", b)
		}
	}
	for _, p := range []string{"a{b", "a}b", "{}x"} {
		if _, err := newKeyspace(p, LayoutPHPRedis); err == nil {
			t.Errorf("prefix %q accepted", p)
		}
	}
	if _, err := newKeyspace("{app}:", LayoutHashTag); err == nil {
		t.Error("braces in a hashtag-layout prefix accepted")
	}
}

func TestKeyLayouts(t *testing.T) {
	ks, _ := newKeyspace("PHPREDIS_SESSION:", LayoutPHPRedis)
	k := ks.forID("abc")
	if k.data != "PHPREDIS_SESSION:abc" || k.meta != "PHPREDIS_SESSION:{PHPREDIS_SESSION:abc}:m" ||
		k.lock != "PHPREDIS_SESSION:abc_LOCK" || k.lockTag != "PHPREDIS_SESSION:{PHPREDIS_SESSION:abc_LOCK}" {
		t.Errorf("phpredis layout: %+v", k)
	}
	for _, key := range []string{k.meta, k.lock, k.lockTag + ":q", k.lockTag + ":a:x"} {
		if _, ok := ks.idFromKey(key); ok {
			t.Errorf("sibling key %s taken for a session", key)
		}
	}
	if id, ok := ks.idFromKey(k.data); !ok || id != "abc" {
		t.Errorf("idFromKey(%s) = %q %v", k.data, id, ok)
	}
	hs, _ := newKeyspace("S:", LayoutHashTag)
	k = hs.forID("abc")
	if k.data != "S:{abc}" || k.meta != "S:{abc}:m" || k.lock != "S:{abc}:lock" {
		t.Errorf("hashtag layout: %+v", k)
	}
	if id, ok := hs.idFromKey("S:{abc}"); !ok || id != "abc" {
		t.Errorf("hashtag idFromKey = %q %v", id, ok)
	}
	for _, key := range []string{"S:{abc}:m", "S:{abc}:lock", "S:{}", "S:abc"} {
		if _, ok := hs.idFromKey(key); ok {
			t.Errorf("hashtag: %s taken for a session", key)
		}
	}
	tagged, err := newKeyspace("{app}:", LayoutPHPRedis)
	if err != nil {
		t.Fatal(err)
	}
	if k := tagged.forID("abc"); k.meta != "{app}:abc:m" {
		t.Errorf("tagged prefix meta key %s", k.meta)
	}
}

// TestPHPRedisKeyFormat checks the bytes a phpredis reader would see.
func TestPHPRedisKeyFormat(t *testing.T) {
	srv := startRedis(t)
	s := srv.openStore(t, "")
	raw := srv.newClient(t)
	ctx := ctxT(t)
	data := []byte(`user|s:5:"alice";n|i:3;`)
	if _, err := s.Save(ctx, "keyfmt1", handlers.Record{Data: data, Meta: []byte("m"), Expires: time.Now().Add(time.Hour)}, 0); err != nil {
		t.Fatal(err)
	}
	got, err := raw.Get(ctx, "PHPREDIS_SESSION:keyfmt1").Result()
	if err != nil || got != string(data) {
		t.Fatalf("raw GET = %q, %v; want the PHP-encoded data", got, err)
	}
	ttl := raw.PTTL(ctx, "PHPREDIS_SESSION:keyfmt1").Val()
	if ttl < 59*time.Minute || ttl > time.Hour {
		t.Fatalf("PTTL %v, want about an hour", ttl)
	}
	mttl := raw.PTTL(ctx, "PHPREDIS_SESSION:{PHPREDIS_SESSION:keyfmt1}:m").Val()
	if mttl < ttl {
		t.Fatalf("meta PTTL %v shorter than data PTTL %v", mttl, ttl)
	}
}

// TestForeignSessions covers sessions phpredis writes behind the store's
// back: data without meta, and data changed after phpsessd wrote meta.
func TestForeignSessions(t *testing.T) {
	srv := startRedis(t)
	s := srv.openStore(t, "")
	raw := srv.newClient(t)
	ctx := ctxT(t)
	key := "PHPREDIS_SESSION:foreign1"
	if err := raw.Set(ctx, key, "a|i:1;", time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	r1, err := s.Load(ctx, "foreign1")
	if err != nil || string(r1.Data) != "a|i:1;" || r1.Version < versionHashBit {
		t.Fatalf("Load(foreign) = %q v%d, %v", r1.Data, r1.Version, err)
	}
	if r1.Expires.IsZero() {
		t.Fatal("foreign session lost its TTL")
	}
	r2, _ := s.Load(ctx, "foreign1")
	if r2.Version != r1.Version {
		t.Fatalf("content version not deterministic: %d then %d", r1.Version, r2.Version)
	}
	// A stale content version loses.
	if err := raw.Set(ctx, key, "a|i:2;", time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Save(ctx, "foreign1", handlers.Record{Data: []byte("a|i:9;")}, r1.Version); !errors.Is(err, handlers.ErrVersionMismatch) {
		t.Fatalf("Save with a stale content version = %v", err)
	}
	r3, _ := s.Load(ctx, "foreign1")
	v, err := s.Save(ctx, "foreign1", handlers.Record{Data: []byte("a|i:3;"), Expires: time.Now().Add(time.Hour)}, r3.Version)
	if err != nil || v >= versionHashBit {
		t.Fatalf("Save over a foreign session = v%d, %v; want a counter version", v, err)
	}
	// phpredis overwrites again: the meta now describes other bytes, so
	// the counter version must not be accepted any more.
	if err := raw.Set(ctx, key, "a|i:4;", time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Save(ctx, "foreign1", handlers.Record{Data: []byte("a|i:5;")}, v); !errors.Is(err, handlers.ErrVersionMismatch) {
		t.Fatalf("Save after a foreign overwrite = %v, want ErrVersionMismatch", err)
	}
	r4, _ := s.Load(ctx, "foreign1")
	if string(r4.Data) != "a|i:4;" || r4.Version < versionHashBit || len(r4.Meta) != 0 {
		t.Fatalf("Load after a foreign overwrite = %q v%d meta %q", r4.Data, r4.Version, r4.Meta)
	}
	v5, err := s.Save(ctx, "foreign1", handlers.Record{Data: []byte("a|i:5;"), Expires: time.Now().Add(time.Hour)}, r4.Version)
	if err != nil || v5 <= v {
		t.Fatalf("counter after a foreign overwrite = v%d (before v%d), %v; want it to keep growing", v5, v, err)
	}
	// A foreign TTL refresh does not change the version.
	if err := raw.Expire(ctx, key, 2*time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	if r, _ := s.Load(ctx, "foreign1"); r.Version != v5 {
		t.Fatalf("version %d after a foreign EXPIRE, want %d", r.Version, v5)
	}
}

// TestSaveReplay: a save re-sent after a lost reply reports the version it
// already stored instead of a mismatch, and a different writer still loses.
func TestSaveReplay(t *testing.T) {
	srv := startRedis(t)
	s := srv.openStore(t, "")
	ctx := ctxT(t)
	rec := handlers.Record{Data: []byte("r|i:1;"), Expires: time.Now().Add(time.Hour)}
	for _, expect := range []uint64{0, 1} {
		if expect == 1 {
			cur, err := s.Load(ctx, "replay1")
			if err != nil {
				t.Fatal(err)
			}
			expect = cur.Version
			rec.Data = []byte("r|i:2;")
		}
		v1, err := s.save(ctx, "replay1", rec, expect, "w-"+strconv.FormatUint(expect, 10))
		if err != nil {
			t.Fatal(err)
		}
		v2, err := s.save(ctx, "replay1", rec, expect, "w-"+strconv.FormatUint(expect, 10))
		if err != nil || v2 != v1 {
			t.Fatalf("replayed save = v%d, %v; want v%d", v2, err, v1)
		}
		if _, err := s.save(ctx, "replay1", rec, expect, "other"); !errors.Is(err, handlers.ErrVersionMismatch) {
			t.Fatalf("a different writer with the stale version = %v, want ErrVersionMismatch", err)
		}
	}
}

// TestCASTwoClients runs the lost-update check across two stores with
// separate connection pools, the way two daemons share one Redis.
func TestCASTwoClients(t *testing.T) {
	srv := startRedis(t)
	stores := []*Store{srv.openStore(t, ""), srv.openStore(t, "")}
	ctx := ctxT(t)
	const workers, increments = 8, 25
	var (
		wg        sync.WaitGroup
		conflicts atomic.Int64
		failed    atomic.Value
	)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(s *Store) {
			defer wg.Done()
			for i := 0; i < increments; i++ {
				for attempt := 0; ; attempt++ {
					if attempt > 1000 {
						failed.Store(errors.New("no progress"))
						return
					}
					n, expect := 0, uint64(0)
					rec, err := s.Load(ctx, "casrace")
					if err == nil {
						n, _ = strconv.Atoi(string(rec.Data))
						expect = rec.Version
					} else if !errors.Is(err, handlers.ErrNotFound) {
						failed.Store(err)
						return
					}
					_, err = s.Save(ctx, "casrace", handlers.Record{Data: []byte(strconv.Itoa(n + 1)), Expires: time.Now().Add(time.Hour)}, expect)
					if errors.Is(err, handlers.ErrVersionMismatch) {
						conflicts.Add(1)
						continue
					}
					if err != nil {
						failed.Store(err)
						return
					}
					break
				}
			}
		}(stores[w%2])
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		t.Fatal(err)
	}
	rec, err := stores[0].Load(ctx, "casrace")
	if err != nil || string(rec.Data) != strconv.Itoa(workers*increments) {
		t.Fatalf("counter = %q, %v; want %d (lost updates)", rec.Data, err, workers*increments)
	}
	t.Logf("%d increments, %d CAS conflicts retried, 0 lost", workers*increments, conflicts.Load())
}

// TestUnavailable checks that a dead Redis is reported as ErrUnavailable
// within the call's deadline, and that the store recovers by itself.
func TestRestartUnderLoad(t *testing.T) {
	srv := startRedis(t, "--appendonly", "yes", "--appendfsync", "always")
	s := srv.openStore(t, "dial_timeout=200ms&read_timeout=500ms&max_retries=0&op_timeout=1s")
	raw := srv.newClient(t)
	ctx := ctxT(t)

	stop := make(chan struct{})
	var (
		wg                 sync.WaitGroup
		ok, unavail, other atomic.Int64
		otherErr           atomic.Value
	)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("restart%d-%d", w, i%20)
				rec, err := s.Load(ctx, id)
				expect := rec.Version
				if errors.Is(err, handlers.ErrNotFound) {
					expect, err = 0, nil
				}
				if err == nil {
					_, err = s.Save(ctx, id, handlers.Record{Data: []byte(strings.Repeat("x", 100+i%50)), Expires: time.Now().Add(time.Hour)}, expect)
				}
				switch {
				case err == nil, errors.Is(err, handlers.ErrVersionMismatch):
					ok.Add(1)
				case errors.Is(err, handlers.ErrUnavailable):
					unavail.Add(1)
					time.Sleep(10 * time.Millisecond)
				default:
					other.Add(1)
					otherErr.Store(err)
				}
			}
		}(w)
	}
	time.Sleep(300 * time.Millisecond)
	srv.Kill()
	time.Sleep(500 * time.Millisecond)
	start := time.Now()
	_, err := s.Load(context.Background(), "restart0-0")
	if !errors.Is(err, handlers.ErrUnavailable) || time.Since(start) > 1500*time.Millisecond {
		t.Fatalf("Load with Redis down = %v after %v, want ErrUnavailable within the op timeout", err, time.Since(start))
	}
	if err := srv.Restart(); err != nil {
		t.Fatalf("restart redis-server: %v", err)
	}
	before := ok.Load()
	deadline := time.Now().Add(10 * time.Second)
	for ok.Load() < before+50 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if ok.Load() < before+50 {
		t.Fatalf("store did not recover after the restart (%d ok since)", ok.Load()-before)
	}
	if other.Load() > 0 {
		t.Fatalf("%d errors that were neither success nor ErrUnavailable, e.g. %v", other.Load(), otherErr.Load())
	}
	if unavail.Load() == 0 {
		t.Fatal("no ErrUnavailable during the outage")
	}
	// Every session that survived in the append-only file is whole: data
	// and meta were written by one script, so the meta describes the data.
	checked := 0
	err = s.Scan(ctx, func(id string, _ time.Time) error {
		rec, err := s.Load(ctx, id)
		if err != nil {
			return err
		}
		if rec.Version >= versionHashBit {
			return fmt.Errorf("session %s has data without matching meta (half-written)", id)
		}
		checked++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := raw.DBSize(ctx).Result(); checked == 0 || n < int64(checked) {
		t.Fatalf("checked %d sessions, dbsize %d", checked, n)
	}
	t.Logf("ok=%d unavailable=%d sessions checked=%d", ok.Load(), unavail.Load(), checked)
}

// TestSentinel opens the store through a sentinel URL and runs the suite.
func TestSentinel(t *testing.T) {
	master := startRedis(t)
	sen := startSentinel(t, master)
	u := "redis+sentinel://" + sen.Addr + "/0?master=sessions"
	storetest.RunWith(t, func(t *testing.T) handlers.Store { return openURL(t, u) }, storetest.Options{NativeExpiry: true})
	s := openURL(t, u)
	lk, err := s.Locker().AcquireLock(ctxT(t), "sentinel1", "t", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if got := master.newClient(t).Get(ctxT(t), "PHPREDIS_SESSION:sentinel1_LOCK").Val(); got != lk.Token() {
		t.Fatalf("lock not on the master the sentinel names: %q", got)
	}
	_ = lk.Release()
}

func TestSlogAdapter(t *testing.T) {
	var buf strings.Builder
	p := slogPrintf{slog.New(slog.NewTextHandler(&buf, nil))}
	p.Printf(context.Background(), "dial %s failed", "127.0.0.1:1")
	if !strings.Contains(buf.String(), `msg="dial 127.0.0.1:1 failed"`) || !strings.Contains(buf.String(), "component=go-redis") {
		t.Fatalf("logged %q", buf.String())
	}
	slogPrintf{}.Printf(context.Background(), "dropped") // nil logger: silent, no panic
}
