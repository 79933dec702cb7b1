package main

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/phpsessd/phpsessd/internal/testserver"
	"github.com/phpsessd/phpsessd/protocol"
)

// Two daemons sharing a Redis store exclude each other's locked requests
// through Redis; wrapping that store for a migration, by URL or with
// --migrate-from, must keep it so.
func TestServeMigratingSharesRedisLocks(t *testing.T) {
	r := testserver.StartRedis(t)
	redisURL := "redis://" + r.Addr + "/0"
	until := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	migratingURL := "migrating://?" + url.Values{"old": {"memory://"}, "new": {redisURL}, "until": {until}}.Encode()
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"migrating url", []string{"--store", migratingURL}},
		{"migrate-from", []string{"--store", redisURL, "--migrate-from", "memory://", "--migrate-until", until}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, err := os.MkdirTemp("", "psdl")
			if err != nil {
				t.Fatal(err)
			}
			// Removed only after the daemons stopped (cleanups run last in, first out).
			t.Cleanup(func() { os.RemoveAll(dir) })
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			dial := func(name string) *protocol.Client {
				t.Helper()
				args := append([]string{"--listen", "unix://" + filepath.Join(dir, name+".sock")}, tc.args...)
				addrs, _, _ := startServe(t, map[string]string{"PHPSESSD_DATA_DIR": filepath.Join(dir, name)}, args...)
				c, err := protocol.Dial(ctx, addrs[0])
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { c.Close() })
				return c
			}
			a, b := dial("a"), dial("b")

			id, err := a.Do(ctx, "CREATEID")
			if err != nil {
				t.Fatal(err)
			}
			sid := id.Text()
			if rep, err := a.Do(ctx, "WRITE", sid, "n|i:1;", "FORMAT", "php"); err != nil || rep.Array[0].Text() != "written" {
				t.Fatalf("WRITE: %v %v", err, rep)
			}
			if rep, err := a.Do(ctx, "READ", sid, "MODE", "locked", "FORMAT", "php"); err != nil || rep.Array[2].Text() != "locked" {
				t.Fatalf("locked READ on daemon a: %v %v", err, rep)
			}
			if rep, err := b.Do(ctx, "READ", sid, "MODE", "locked", "FORMAT", "php", "WAIT", 300); !protocol.IsCode(err, "LOCKTIMEOUT") {
				t.Fatalf("locked READ on daemon b while a holds the lock: %v %v, want LOCKTIMEOUT", err, rep)
			}
			if _, err := a.Do(ctx, "CLOSE", sid); err != nil {
				t.Fatal(err)
			}
			if rep, err := b.Do(ctx, "READ", sid, "MODE", "locked", "FORMAT", "php", "WAIT", 5000); err != nil || rep.Array[2].Text() != "locked" {
				t.Fatalf("locked READ on daemon b after a released: %v %v", err, rep)
			}
			if _, err := b.Do(ctx, "CLOSE", sid); err != nil {
				t.Fatal(err)
			}
		})
	}
}
