package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	hredis "github.com/phpsessd/phpsessd/handlers/redis"
	"github.com/phpsessd/phpsessd/internal/testserver"
)

var benchSessions = flag.Int("migrate.sessions", 2000, "sessions BenchmarkMigrateFilesToRedis copies (the issue's target is 100000)")

// BenchmarkMigrateFilesToRedis measures sessions/s for 2 KB PHP sessions
// moving from a files directory into a private redis-server, as the
// command runs by default (precheck read pass) and without the precheck.
// Size it with -migrate.sessions=100000; each iteration starts from an
// empty Redis database.
//
//	go test ./cmd/phpsessd -run '^$' -bench MigrateFilesToRedis -benchtime 1x -timeout 30m -migrate.sessions=100000
func BenchmarkMigrateFilesToRedis(b *testing.B) {
	n := *benchSessions
	dir := b.TempDir()
	// Written directly, as PHP's files handler would leave them: sess_<id>
	// with the bytes and an mtime of "just written".
	pad := strings.Repeat("x", 2048-64)
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("bench%08d", i)
		data := `uid|i:` + strconv.Itoa(i) + `;blob|s:` + strconv.Itoa(len(pad)) + `:"` + pad + `";`
		if err := os.WriteFile(filepath.Join(dir, "sess_"+id), []byte(data), 0o600); err != nil {
			b.Fatal(err)
		}
	}
	addr := testserver.StartRedis(b).Addr
	src := openT(b, filesURL(dir, ""))
	dst := openT(b, redisURL(addr)).(*hredis.Store)
	for _, precheck := range []bool{true, false} {
		b.Run(fmt.Sprintf("n=%d/precheck=%v", n, precheck), func(b *testing.B) {
			var total time.Duration
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				if err := dst.Client().FlushDB(context.Background()).Err(); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				start := time.Now()
				st, err := migrateStores(context.Background(), src, dst,
					migrateOptions{Precheck: precheck, Concurrency: 8}, quietLog(), nil)
				total += time.Since(start)
				if err != nil || st.Copied != int64(n) {
					b.Fatalf("copied %d of %d: %v", st.Copied, n, err)
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/total.Seconds(), "sessions/s")
		})
	}
}
