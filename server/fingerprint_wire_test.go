package server

import (
	"sync"
	"testing"

	"github.com/phpsessd/phpsessd/engine"
)

func TestReadFingerprintOverTheWire(t *testing.T) {
	var mu sync.Mutex
	var kinds []string
	env := startServer(t, func(c *Config, e *engine.Config) {
		e.FingerprintUA, e.FingerprintIP = true, true
		c.Security = func(kind, source, id, reason string) {
			mu.Lock()
			defer mu.Unlock()
			kinds = append(kinds, kind+" "+reason)
		}
	})
	c := dial(t, env.unix)
	id := do(t, c, "CREATEID").Text()
	session(t, do(t, c, "READ", id, "FORMAT", "php", "UA", "Firefox", "IP", "192.0.2.10"), "optimistic")
	writeReply(t, do(t, c, "WRITE", id, "secret|i:1;", "FORMAT", "php"), "written")
	do(t, c, "CLOSE", id)

	data, _ := session(t, do(t, c, "READ", id, "FORMAT", "php", "UA", "Firefox", "IP", "192.0.2.99"), "optimistic")
	if data != "secret|i:1;" {
		t.Fatalf("same agent, same /24: %q", data)
	}
	do(t, c, "CLOSE", id)
	doErr(t, c, "FINGERPRINT", "READ", id, "FORMAT", "php", "UA", "curl", "IP", "192.0.2.10")
	doErr(t, c, "FINGERPRINT", "READ", id, "UA", "", "IP", "192.0.2.10")
	doErr(t, c, "FINGERPRINT", "READ", id, "MODE", "locked", "UA", "Firefox", "IP", "198.51.100.1")
	// Old clients without the keywords are never refused.
	data, _ = session(t, do(t, c, "READ", id, "FORMAT", "php"), "optimistic")
	if data != "secret|i:1;" {
		t.Fatalf("read without inputs: %q", data)
	}
	doErr(t, c, "ERR", "READ", id, "UA")
	mu.Lock()
	defer mu.Unlock()
	if len(kinds) != 3 || kinds[0] != "fingerprint_mismatch user agent changed" || kinds[2] != "fingerprint_mismatch IP prefix changed" {
		t.Fatalf("security signals %q", kinds)
	}
}
