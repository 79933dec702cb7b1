package redis

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/phpsessd/phpsessd/handlers"
	"github.com/phpsessd/phpsessd/handlers/storetest"
)

// TestCluster runs everything that needs a cluster against one 3-master
// cluster, since creating one costs seconds.
func TestCluster(t *testing.T) {
	c := startCluster(t)
	for _, layout := range []string{"phpredis", "hashtag"} {
		t.Run("suite/"+layout, func(t *testing.T) {
			storetest.RunWith(t, func(t *testing.T) handlers.Store {
				return openURL(t, c.url("layout="+layout))
			}, storetest.Options{NativeExpiry: true})
		})
		t.Run("oneslot/"+layout, func(t *testing.T) { clusterOneSlot(t, c, layout) })
	}
	t.Run("scan", func(t *testing.T) { clusterScan(t, c) })
	t.Run("locks", func(t *testing.T) { clusterLocks(t, c) })
	t.Run("phpredis", func(t *testing.T) { phpRedisClusterInterop(t, c) })
}

// clusterOneSlot checks that every key of a session lives in one slot, so
// the Lua scripts never hit CROSSSLOT.
func clusterOneSlot(t *testing.T, c *cluster, layout string) {
	s := openURL(t, c.url("layout="+layout))
	cc := s.client.(*goredis.ClusterClient)
	ctx := ctxT(t)
	for i := 0; i < 20; i++ {
		id := "slot" + strconv.Itoa(i)
		if _, err := s.Save(ctx, id, handlers.Record{Data: []byte("x|i:1;"), Meta: []byte("m"), Expires: time.Now().Add(time.Hour)}, 0); err != nil {
			t.Fatal(err)
		}
		lk, err := s.Locker().AcquireLock(ctx, id, "t", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		k := s.ks.forID(id)
		// Scripts touch either the data group or the lock group, never
		// both; each group must sit in one slot. In the hashtag layout the
		// two groups share the slot too.
		groups := [][]string{{k.data, k.meta}, {k.lock, k.lockTag + ":q", k.lockTag + ":a:x", k.lockTag + ":w:x"}}
		if layout == "hashtag" {
			groups = [][]string{append(groups[0], groups[1]...)}
		}
		for _, g := range groups {
			want := cc.ClusterKeySlot(ctx, g[0]).Val()
			for _, n := range g[1:] {
				if got := cc.ClusterKeySlot(ctx, n).Val(); got != want {
					t.Fatalf("%s layout: %s in slot %d, %s in slot %d", layout, n, got, g[0], want)
				}
			}
		}
		want := cc.ClusterKeySlot(ctx, k.data).Val()
		if n := cc.Exists(ctx, k.meta).Val(); n != 1 {
			t.Fatalf("meta key %s missing", k.meta)
		}
		if layout == "hashtag" && want != cc.ClusterKeySlot(ctx, id).Val() {
			t.Fatalf("hashtag layout: slot %d is not the id's slot", want)
		}
		if err := lk.Release(); err != nil {
			t.Fatal(err)
		}
	}
}

func clusterScan(t *testing.T, c *cluster) {
	s := openURL(t, c.url(""))
	ctx := ctxT(t)
	const n = 60
	for i := 0; i < n; i++ {
		if _, err := s.Save(ctx, "cscan"+strconv.Itoa(i), handlers.Record{Data: []byte("x")}, 0); err != nil {
			t.Fatal(err)
		}
	}
	// The ids spread over the masters, so Scan must visit all of them.
	cc := s.client.(*goredis.ClusterClient)
	var emptyMasters atomic.Int32
	_ = cc.ForEachMaster(ctx, func(ctx context.Context, m *goredis.Client) error {
		if m.DBSize(ctx).Val() == 0 {
			emptyMasters.Add(1)
		}
		return nil
	})
	if emptyMasters.Load() > 0 {
		t.Fatalf("%d masters hold no session; the test would not cover multi-master Scan", emptyMasters.Load())
	}
	seen := 0
	err := s.Scan(ctx, func(id string, exp time.Time) error {
		if len(id) > 5 && id[:5] == "cscan" {
			seen++
		}
		return nil
	})
	if err != nil || seen != n {
		t.Fatalf("Scan across masters saw %d of %d, %v", seen, n, err)
	}
}

func clusterLocks(t *testing.T, c *cluster) {
	la, lb := openURL(t, c.url("")).Locker(), openURL(t, c.url("")).Locker()
	var inside, bad atomic.Int32
	done := make(chan error, 4)
	for w := 0; w < 4; w++ {
		l := []*Locker{la, lb}[w%2]
		go func() {
			for i := 0; i < 10; i++ {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				lk, err := l.AcquireLock(ctx, "clock1", "w", 10*time.Second)
				cancel()
				if err != nil {
					done <- err
					return
				}
				if inside.Add(1) != 1 {
					bad.Add(1)
				}
				time.Sleep(time.Millisecond)
				inside.Add(-1)
				if err := lk.Release(); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	for w := 0; w < 4; w++ {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if bad.Load() != 0 {
		t.Fatalf("%d overlapping holders on the cluster", bad.Load())
	}
	lat := handoffRounds(t, la, lb, 30)
	var sum time.Duration
	for _, d := range lat {
		sum += d
	}
	t.Logf("cluster hand-off mean %v over %d rounds", sum/time.Duration(len(lat)), len(lat))
}
