package cache

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/phpsessd/phpsessd/handlers"
	"github.com/phpsessd/phpsessd/handlers/files"
	"github.com/phpsessd/phpsessd/handlers/memory"
	"github.com/phpsessd/phpsessd/handlers/storetest"
)

func overMemory(t *testing.T) *Cache {
	m, err := memory.New(memory.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(m, 1000)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func overFiles(t *testing.T, dir string) *Cache {
	f, err := files.New(files.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(f, 1000)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestSuiteOverMemory(t *testing.T) {
	storetest.Run(t, func(t *testing.T) handlers.Store { return overMemory(t) })
}

func TestSuiteOverFiles(t *testing.T) {
	storetest.Run(t, func(t *testing.T) handlers.Store { return overFiles(t, t.TempDir()) })
}

func TestNew(t *testing.T) {
	if _, err := New(nil, 10); err == nil {
		t.Error("New(nil) succeeded")
	}
	m, _ := memory.New(memory.Options{})
	if _, err := New(m, 0); err == nil {
		t.Error("New(store, 0) succeeded")
	}
}

func TestHits(t *testing.T) {
	for name, c := range map[string]*Cache{"memory": overMemory(t), "files": overFiles(t, t.TempDir())} {
		ctx := context.Background()
		v, err := c.Save(ctx, "hit", handlers.Record{Data: []byte("a"), Expires: time.Now().Add(time.Hour)}, 0)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 3; i++ {
			rec, err := c.Load(ctx, "hit")
			if err != nil || rec.Version != v || string(rec.Data) != "a" {
				t.Fatalf("%s: Load = %+v, %v", name, rec, err)
			}
		}
		hits, misses := c.Stats()
		if hits < 2 || hits+misses != 3 {
			t.Fatalf("%s: %d hits, %d misses", name, hits, misses)
		}
		c.Close()
	}
}

// Another process changing the files is seen at once: PHP writing in
// place, and a second daemon replacing the file.
func TestForeignChangesVisible(t *testing.T) {
	dir := t.TempDir()
	c := overFiles(t, dir)
	defer c.Close()
	other, err := files.New(files.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	v, err := c.Save(ctx, "shared", handlers.Record{Data: []byte("n|i:1;"), Expires: time.Now().Add(time.Hour)}, 0)
	if err != nil {
		t.Fatal(err)
	}
	c.Load(ctx, "shared")
	c.Load(ctx, "shared")

	v2, err := other.Save(ctx, "shared", handlers.Record{Data: []byte("n|i:2;"), Expires: time.Now().Add(time.Hour)}, v)
	if err != nil {
		t.Fatal(err)
	}
	if rec, err := c.Load(ctx, "shared"); err != nil || rec.Version != v2 {
		t.Fatalf("after another daemon's save: %q v%d, %v", rec.Data, rec.Version, err)
	}
	c.Load(ctx, "shared")
	// PHP's files handler truncates and rewrites in place.
	f, err := os.OpenFile(filepath.Join(dir, "sess_shared"), os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("n|i:3;")
	f.Close()
	if rec, err := c.Load(ctx, "shared"); err != nil || string(rec.Data) != "n|i:3;" {
		t.Fatalf("after an in-place write: %q, %v", rec.Data, err)
	}
	os.Remove(filepath.Join(dir, "sess_shared"))
	if _, err := c.Load(ctx, "shared"); !errors.Is(err, handlers.ErrNotFound) {
		t.Fatalf("after removal: %v", err)
	}
}

// Readers racing a CAS writer never see a counter older than the last
// save that had completed before their Load began.
func TestNoStaleReads(t *testing.T) {
	for name, open := range map[string]func() *Cache{
		"memory": func() *Cache { return overMemory(t) },
		"files":  func() *Cache { return overFiles(t, t.TempDir()) },
	} {
		t.Run(name, func(t *testing.T) {
			c := open()
			defer c.Close()
			ctx := context.Background()
			const writes = 150
			var done atomic.Int64
			var wg sync.WaitGroup
			stop := make(chan struct{})
			errs := make(chan error, 8)
			for r := 0; r < 4; r++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						select {
						case <-stop:
							return
						default:
						}
						min := done.Load()
						rec, err := c.Load(ctx, "ctr")
						if errors.Is(err, handlers.ErrNotFound) {
							if min > 0 {
								errs <- errors.New("session vanished")
								return
							}
							continue
						}
						if err != nil {
							errs <- err
							return
						}
						n, _ := strconv.ParseInt(string(rec.Data), 10, 64)
						if n < min {
							errs <- errors.New("stale read: " + string(rec.Data) + " < " + strconv.FormatInt(min, 10))
							return
						}
					}
				}()
			}
			var v uint64
			for i := int64(1); i <= writes; i++ {
				var err error
				v, err = c.Save(ctx, "ctr", handlers.Record{Data: []byte(strconv.FormatInt(i, 10)), Expires: time.Now().Add(time.Hour)}, v)
				if err != nil {
					t.Fatal(err)
				}
				done.Store(i)
			}
			close(stop)
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
		})
	}
}

func TestSweepDropsFutureExpired(t *testing.T) {
	c := overMemory(t)
	defer c.Close()
	ctx := context.Background()
	c.Save(ctx, "soon", handlers.Record{Data: []byte("x"), Expires: time.Now().Add(time.Minute)}, 0)
	c.Load(ctx, "soon")
	if n, err := c.Sweep(ctx, time.Now().Add(time.Hour)); n != 1 || err != nil {
		t.Fatalf("Sweep = %d, %v", n, err)
	}
	if _, err := c.Load(ctx, "soon"); !errors.Is(err, handlers.ErrNotFound) {
		t.Fatalf("cache served a swept record: %v", err)
	}
}
