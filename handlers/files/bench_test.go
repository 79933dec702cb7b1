//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package files

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/phpsessd/phpsessd/handlers"
	"github.com/phpsessd/phpsessd/handlers/cache"
)

// BenchmarkSaveLoad is one READ+WRITE of the daemon's default store per
// iteration: a Load, then a Save of changed data with the engine's kind of
// meta, on sessions of their own per goroutine. "cached" is what the daemon
// embeds (the files store behind the LRU read cache).
func BenchmarkSaveLoad(b *testing.B) {
	meta := []byte("\x82\xa1v\x01\xa1f\xa3php") // as engine.encodeMeta writes it
	for _, cached := range []bool{false, true} {
		name := "files"
		if cached {
			name = "cached"
		}
		b.Run(name, func(b *testing.B) {
			fs, err := New(Options{Dir: b.TempDir()})
			if err != nil {
				b.Fatal(err)
			}
			var st handlers.Store = fs
			if cached {
				if st, err = cache.New(fs, 10000); err != nil {
					b.Fatal(err)
				}
			}
			ctx := context.Background()
			var next atomic.Int64
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				id := fmt.Sprintf("bench%020d", next.Add(1))
				data := make([]byte, 0, 1024)
				for k := 0; pb.Next(); k++ {
					rec, err := st.Load(ctx, id)
					var expect uint64
					switch err {
					case nil:
						expect = rec.Version
					case handlers.ErrNotFound:
					default:
						b.Error(err)
						return
					}
					data = append(data[:0], "n|i:"...)
					data = strconv.AppendInt(data, int64(k), 10)
					data = append(data, ";pad|s:600:\""...)
					for len(data) < 640 {
						data = append(data, 'x')
					}
					data = append(data, "\";"...)
					_, err = st.Save(ctx, id, handlers.Record{Data: data, Meta: meta, Expires: time.Now().Add(24 * time.Minute)}, expect)
					if err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkSaveNew creates a session per iteration (a WRITE on a fresh id):
// the hard-link path of Save.
func BenchmarkSaveNew(b *testing.B) {
	meta := []byte("\x82\xa1v\x01\xa1f\xa3php")
	s, err := New(Options{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	var next atomic.Int64
	data := []byte("n|i:1;")
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			id := "new" + strconv.FormatInt(next.Add(1), 10)
			rec := handlers.Record{Data: data, Meta: meta, Expires: time.Now().Add(24 * time.Minute)}
			if _, err := s.Save(ctx, id, rec, 0); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
