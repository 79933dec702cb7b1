package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/phpsessd/phpsessd/engine"
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

func TestServeFingerprintAction(t *testing.T) {
	opts := serveOptions()
	load := func(envVars map[string]string, args ...string) (serveConfig, error) {
		env, _, _ := testEnv(envVars)
		fs := newFlagSet(env, "serve", "")
		flags := registerFlags(fs, opts)
		if err := fs.Parse(args); err != nil {
			return serveConfig{}, err
		}
		return loadServeConfig(opts, flags, env.Getenv)
	}
	for _, tc := range []struct {
		env  map[string]string
		args []string
		want engine.FingerprintAction
	}{
		{nil, nil, engine.FingerprintRefuse},
		{nil, []string{"--fingerprint-action", "regenerate"}, engine.FingerprintRegenerate},
		{nil, []string{"--fingerprint-action", " Regenerate "}, engine.FingerprintRegenerate},
		{map[string]string{"PHPSESSD_FINGERPRINT_ACTION": "regenerate"}, nil, engine.FingerprintRegenerate},
		// Flags win over the environment.
		{map[string]string{"PHPSESSD_FINGERPRINT_ACTION": "regenerate"}, []string{"--fingerprint-action", "refuse"}, engine.FingerprintRefuse},
	} {
		cfg, err := load(tc.env, tc.args...)
		if err != nil || cfg.FingerprintAction != tc.want {
			t.Errorf("env %v args %v: %q %v, want %q", tc.env, tc.args, cfg.FingerprintAction, err, tc.want)
		}
	}
	for _, bad := range []string{"ignore", "", "refuse,regenerate"} {
		if _, err := load(nil, "--fingerprint-action", bad); err == nil {
			t.Errorf("--fingerprint-action %q accepted", bad)
		}
		if _, err := load(map[string]string{"PHPSESSD_FINGERPRINT_ACTION": bad}); err == nil && bad != "" {
			t.Errorf("PHPSESSD_FINGERPRINT_ACTION=%q accepted", bad)
		}
	}
	env, _, errb := testEnv(nil)
	if code := run(env, []string{"serve", "--fingerprint-action", "log", "--listen", "unix:///nonexistent/p.sock"}); code == exitOK {
		t.Errorf("serve --fingerprint-action log: exit 0 (stderr %q)", errb.String())
	} else if !strings.Contains(errb.String(), "fingerprint-action") {
		t.Errorf("error does not name the option: %q", errb.String())
	}
}
