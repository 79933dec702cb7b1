package main

import (
	"slices"
	"testing"
)

func TestServeFingerprintAndRefFlags(t *testing.T) {
	opts := serveOptions()
	env, _, _ := testEnv(map[string]string{"PHPSESSD_SINGLE_SESSION_REFS": "user:*,admin:*"})
	fs := newFlagSet(env, "serve", "")
	flags := registerFlags(fs, opts)
	if err := fs.Parse([]string{"--fingerprint", "ua,ip", "--fingerprint-ipv4-prefix", "16", "--fingerprint-ipv6-prefix", "48"}); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadServeConfig(opts, flags, env.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.FingerprintUA || !cfg.FingerprintIP || cfg.FingerprintIPv4 != 16 || cfg.FingerprintIPv6 != 48 ||
		!slices.Equal(cfg.SingleSessionRefs, []string{"user:*", "admin:*"}) {
		t.Fatalf("%+v", cfg)
	}
	for _, args := range [][]string{
		{"--fingerprint", "ua,cookie"},
		{"--fingerprint-ipv4-prefix", "33"},
		{"--fingerprint-ipv6-prefix", "0"},
		{"--fingerprint-key-file", "/nonexistent/key", "--listen", "unix:///nonexistent/p.sock"},
	} {
		env, _, errb := testEnv(nil)
		if code := run(env, append([]string{"serve"}, args...)); code == exitOK {
			t.Errorf("serve %v: exit 0 (stderr %q)", args, errb.String())
		}
	}
}
