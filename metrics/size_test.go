package metrics

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/phpsessd/phpsessd/engine"
	"github.com/phpsessd/phpsessd/handlers"
	"github.com/phpsessd/phpsessd/handlers/cache"
	"github.com/phpsessd/phpsessd/handlers/memory"
)

func scrapeHandler(t *testing.T, m *Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("/metrics: %d", rec.Code)
	}
	return rec.Body.String()
}

// waitFor scrapes until pred holds for the body: counts arrive from a
// background job on a later scrape.
func waitFor(t *testing.T, m *Metrics, what string, pred func(body string) bool) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		body := scrapeHandler(t, m)
		if pred(body) {
			return body
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never happened:\n%s", what, grep(body, "phpsessd_s"))
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestStoredBytesFromSizer(t *testing.T) {
	st, err := memory.New(memory.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	m, err := New(Options{Store: st, ScanEvery: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	waitFor(t, m, "an empty count", func(b string) bool {
		return strings.Contains(b, "phpsessd_stored_bytes 0\n") && strings.Contains(b, "phpsessd_sessions 0\n")
	})

	ctx := context.Background()
	for _, id := range []string{"aa", "bb"} {
		if _, err := st.Save(ctx, id, recordFor("x|s:10:\"0123456789\";"), 0); err != nil {
			t.Fatal(err)
		}
	}
	_, want, err := st.Size(ctx)
	if err != nil || want <= 0 {
		t.Fatalf("Size: %d, %v", want, err)
	}
	body := waitFor(t, m, "bytes after two writes", func(b string) bool {
		return strings.Contains(b, "phpsessd_sessions 2\n")
	})
	if v := value(t, body, "phpsessd_stored_bytes"); v != float64(want) {
		t.Fatalf("phpsessd_stored_bytes = %v, want %d", v, want)
	}

	if _, err := st.Save(ctx, "cc", recordFor(strings.Repeat("y", 4096)), 0); err != nil {
		t.Fatal(err)
	}
	waitFor(t, m, "bytes growing with a third write", func(b string) bool {
		return strings.Contains(b, "phpsessd_sessions 3\n") && value(t, b, "phpsessd_stored_bytes") > float64(want)+4096
	})
}

// scanOnly hides the memory store's Size, as a store that cannot size
// itself would.
type scanOnly struct{ handlers.Store }

func TestNoStoredBytesWithoutSizer(t *testing.T) {
	for name, wrap := range map[string]func(handlers.Store) handlers.Store{
		"plain store": func(s handlers.Store) handlers.Store { return scanOnly{s} },
		// The cache is a Sizer that answers ErrSizeUnsupported over such
		// a store: the count falls back to Scan.
		"decorator": func(s handlers.Store) handlers.Store {
			c, err := cache.New(scanOnly{s}, 10)
			if err != nil {
				t.Fatal(err)
			}
			return c
		},
	} {
		t.Run(name, func(t *testing.T) {
			mem, err := memory.New(memory.Options{})
			if err != nil {
				t.Fatal(err)
			}
			st := wrap(mem)
			defer st.Close()
			if _, err := st.Save(context.Background(), "aa", recordFor("x|i:1;"), 0); err != nil {
				t.Fatal(err)
			}
			m, err := New(Options{Store: st, ScanEvery: time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			body := waitFor(t, m, "a Scan count", func(b string) bool { return strings.Contains(b, "phpsessd_sessions 1\n") })
			if strings.Contains(body, "phpsessd_stored_bytes") {
				t.Fatalf("bytes exported without a Sizer:\n%s", grep(body, "phpsessd_stored_bytes"))
			}
			if v := value(t, body, "phpsessd_sessions_scan_errors_total"); v != 0 {
				t.Fatalf("scan errors = %v", v)
			}
		})
	}
}

func TestConflictsByRule(t *testing.T) {
	m, err := New(Options{ScanEvery: -1, Engine: func() engine.Stats {
		return engine.Stats{Conflicts: 6, ConflictsMine: 1, ConflictsTheirs: 2, ConflictsFail: 3}
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	body := scrapeHandler(t, m)
	for rule, want := range map[string]float64{"mine": 1, "theirs": 2, "fail": 3} {
		if v := value(t, body, `phpsessd_merge_conflicts_total{rule="`+rule+`"}`); v != want {
			t.Errorf("rule %s: %v, want %v", rule, v, want)
		}
	}
}
