package redis

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/phpsessd/phpsessd/handlers"
)

// BenchmarkSaveLoad compares a Save+Load pair through the store (two Lua
// scripts with CAS and meta) with a plain go-redis SET+GET pair of the same
// bytes, on the same server in the same run. pairs/s is the figure to
// compare; the ratio is the price of versioned, compare-and-swap writes.
func BenchmarkSaveLoad(b *testing.B) {
	srv := startRedis(b)
	s := srv.openStore(b, "")
	raw := srv.newClient(b)
	data := []byte(`user|a:2:{s:2:"id";i:42;s:4:"name";s:5:"Alice";}cart|a:3:{i:0;s:3:"tea";i:1;s:6:"coffee";i:2;s:4:"milk";}`)
	ctx := context.Background()
	for _, par := range []bool{false, true} {
		name := "serial"
		if par {
			name = "parallel"
		}
		b.Run("store/"+name, func(b *testing.B) {
			run(b, par, func(i int) error {
				id := "bench" + strconv.Itoa(i%64)
				rec, err := s.Load(ctx, id)
				expect := rec.Version
				if err != nil {
					expect = 0
				}
				_, err = s.Save(ctx, id, handlers.Record{Data: data, Expires: time.Now().Add(time.Hour)}, expect)
				if errors.Is(err, handlers.ErrVersionMismatch) {
					return nil // parallel runs collide on purpose; still a round trip pair
				}
				return err
			})
		})
		b.Run("raw/"+name, func(b *testing.B) {
			run(b, par, func(i int) error {
				key := "rawbench" + strconv.Itoa(i%64)
				if err := raw.Get(ctx, key).Err(); err != nil && !errors.Is(err, goredis.Nil) {
					return err
				}
				return raw.Set(ctx, key, data, time.Hour).Err()
			})
		})
	}
}

func run(b *testing.B, parallel bool, op func(i int) error) {
	b.ReportAllocs()
	start := time.Now()
	if parallel {
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				if err := op(i); err != nil {
					b.Error(err)
					return
				}
				i++
			}
		})
	} else {
		for i := 0; i < b.N; i++ {
			if err := op(i); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "pairs/s")
}

// BenchmarkLockHandoff measures release-to-acquired latency between two
// clients (two daemons): the waiter is blocked in BLPOP when the holder
// releases.
func BenchmarkLockHandoff(b *testing.B) {
	srv := startRedis(b)
	la, lb := srv.openStore(b, "").Locker(), srv.openStore(b, "").Locker()
	b.ResetTimer()
	lat := handoffRounds(b, la, lb, b.N)
	b.StopTimer()
	var sum time.Duration
	for _, d := range lat {
		sum += d
	}
	b.ReportMetric(float64(sum.Microseconds())/float64(len(lat)), "µs/handoff")
}
