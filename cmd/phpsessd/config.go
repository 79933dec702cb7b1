package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/phpsessd/phpsessd/engine"
	"github.com/phpsessd/phpsessd/security"
)

// serveConfig is the resolved configuration of `phpsessd serve`.
type serveConfig struct {
	ConfigFile      string
	Listen          []string
	SocketMode      fs.FileMode
	SocketGroup     string
	Token           string
	TokenFile       string
	InsecureNoAuth  bool
	Store           string
	MigrateFrom     string
	MigrateUntil    time.Time
	DataDir         string
	CacheEntries    int
	ModeRules       []engine.ModeRule
	KeyRules        []engine.KeyRule
	Counters        []string
	LockWait        time.Duration
	LockLease       time.Duration
	RegenerateGrace time.Duration
	DefaultTTL      time.Duration
	Strict          bool
	MaxFrame        int64
	IdleTimeout     time.Duration
	EventLoops      int // -1: auto
	ShutdownTimeout time.Duration
	LogLevel        string
	LogFormat       string

	KeysFile         string
	CompressOver     int64
	RequireEncrypted bool
	MetricsListen    string
	SecurityHook     string

	SingleSessionRefs  []string
	FingerprintUA      bool
	FingerprintIP      bool
	FingerprintIPv4    int
	FingerprintIPv6    int
	FingerprintKeyFile string
	FingerprintAction  engine.FingerprintAction
}

// option is one setting. Every source (defaults, config file, environment,
// flags) goes through the same set function, so a value means the same
// thing wherever it is written. List options take one value per set call;
// a source that sets a list replaces what lower sources set.
type option struct {
	name   string // flag name and config-file key
	env    string
	arg    string // placeholder in --help
	def    string // default shown in --help ("" for none)
	help   string
	isBool bool
	isList bool
	// split separates several values in one env or flag string.
	split string
	set   func(c *serveConfig, v string) error
	reset func(c *serveConfig) // clears a list before a source sets it
}

func serveOptions() []*option {
	return []*option{
		{name: "config", env: "PHPSESSD_CONFIG", arg: "FILE", help: "read settings from FILE: 'key = value' lines named like the flags, '#' comments, list keys repeated",
			set: func(c *serveConfig, v string) error { c.ConfigFile = v; return nil }},
		{name: "listen", env: "PHPSESSD_LISTEN", arg: "ADDR", isList: true, split: ",",
			def:  "unix://<runtime dir>/phpsessd.sock",
			help: "address to serve: unix:///path or tcp://host:port; repeatable or comma-separated. Runtime dir: /run/phpsessd as root, else $XDG_RUNTIME_DIR/phpsessd, else the data dir",
			set: func(c *serveConfig, v string) error {
				if v = strings.TrimSpace(v); v != "" {
					c.Listen = append(c.Listen, v)
				}
				return nil
			},
			reset: func(c *serveConfig) { c.Listen = nil }},
		{name: "socket-mode", env: "PHPSESSD_SOCKET_MODE", arg: "OCTAL", def: "0660", help: "permissions of unix socket files; the PHP workers' user or group needs write access",
			set: func(c *serveConfig, v string) error {
				m, err := strconv.ParseUint(v, 8, 32)
				if err != nil || m > 0o777 {
					return fmt.Errorf("want an octal mode like 0660, got %q", v)
				}
				c.SocketMode = fs.FileMode(m)
				return nil
			}},
		{name: "socket-group", env: "PHPSESSD_SOCKET_GROUP", arg: "GROUP", help: "group (name or id) of unix socket files, e.g. www-data, so PHP workers can connect to a daemon running as root",
			set: func(c *serveConfig, v string) error { c.SocketGroup = v; return nil }},
		{name: "token", env: "PHPSESSD_TOKEN", arg: "TOKEN", help: "shared secret clients send with HELLO/AUTH; required for TCP listeners. Prefer --token-file: arguments are visible in ps",
			set: func(c *serveConfig, v string) error { c.Token = v; return nil }},
		{name: "token-file", env: "PHPSESSD_TOKEN_FILE", arg: "FILE", help: "read the token from FILE (surrounding whitespace trimmed)",
			set: func(c *serveConfig, v string) error { c.TokenFile = v; return nil }},
		{name: "insecure-no-auth", env: "PHPSESSD_INSECURE_NO_AUTH", isBool: true, def: "false", help: "allow TCP without a token, on loopback addresses only",
			set: func(c *serveConfig, v string) (err error) { c.InsecureNoAuth, err = parseBool(v); return }},
		{name: "store", env: "PHPSESSD_STORE", arg: "URL", def: "files://<data dir>/sessions + read cache",
			help: "session store URL: memory://, files:///dir, redis://host:port/db, …",
			set:  func(c *serveConfig, v string) error { c.Store = v; return nil }},
		{name: "migrate-from", env: "PHPSESSD_MIGRATE_FROM", arg: "URL",
			help: "live rollout: old store read as a fallback (and copied into --store on first read) until --migrate-until; writes go to --store",
			set:  func(c *serveConfig, v string) error { c.MigrateFrom = v; return nil }},
		{name: "migrate-until", env: "PHPSESSD_MIGRATE_UNTIL", arg: "TIME",
			help: "RFC 3339 cut-over time of --migrate-from; after it the old store is ignored",
			set: func(c *serveConfig, v string) (err error) {
				c.MigrateUntil, err = time.Parse(time.RFC3339, v)
				return err
			}},
		{name: "data-dir", env: "PHPSESSD_DATA_DIR", arg: "DIR", def: "/var/lib/phpsessd as root, else $XDG_STATE_HOME/phpsessd or ~/.local/state/phpsessd",
			help: "directory of the default store",
			set:  func(c *serveConfig, v string) error { c.DataDir = v; return nil }},
		{name: "cache-entries", env: "PHPSESSD_CACHE_ENTRIES", arg: "N", def: "10000", help: "sessions kept in the LRU read cache of the default store; 0 disables it",
			set: func(c *serveConfig, v string) error {
				n, err := strconv.Atoi(v)
				if err != nil || n < 0 {
					return fmt.Errorf("want a non-negative integer, got %q", v)
				}
				c.CacheEntries = n
				return nil
			}},
		{name: "mode-rule", env: "PHPSESSD_MODE_RULES", arg: "RULE", isList: true, split: ";", def: "* optimistic",
			help: "\"METHOD PATH MODE\" (or \"PATH MODE\"), e.g. \"POST /checkout/* locked\"; first match wins; repeatable, ';'-separated in the environment",
			set: func(c *serveConfig, v string) error {
				r, err := parseModeRule(v)
				if err == nil {
					c.ModeRules = append(c.ModeRules, r)
				}
				return err
			},
			reset: func(c *serveConfig) { c.ModeRules = nil }},
		{name: "key-rule", env: "PHPSESSD_KEY_RULES", arg: "RULE", isList: true, split: ";", def: "mine for every key",
			help: "\"PATTERN mine|theirs|fail\": who wins when two requests changed the same key; repeatable, ';'-separated in the environment",
			set: func(c *serveConfig, v string) error {
				r, err := parseKeyRule(v)
				if err == nil {
					c.KeyRules = append(c.KeyRules, r)
				}
				return err
			},
			reset: func(c *serveConfig) { c.KeyRules = nil }},
		{name: "counter", env: "PHPSESSD_COUNTERS", arg: "PATTERN", isList: true, split: ",",
			help: "key path merged by deltas (base + both changes); repeatable or comma-separated",
			set: func(c *serveConfig, v string) error {
				if v = strings.TrimSpace(v); v != "" {
					c.Counters = append(c.Counters, v)
				}
				return nil
			},
			reset: func(c *serveConfig) { c.Counters = nil }},
		durationOption("lock-wait", "PHPSESSD_LOCK_WAIT", engine.DefaultLockWait, "how long a locked read waits for the lock", func(c *serveConfig) *time.Duration { return &c.LockWait }),
		durationOption("lock-lease", "PHPSESSD_LOCK_LEASE", engine.DefaultLockLease, "a lock is released after this long even if its holder hangs", func(c *serveConfig) *time.Duration { return &c.LockLease }),
		durationOption("regenerate-grace", "PHPSESSD_REGENERATE_GRACE", engine.DefaultRegenerateGrace, "how long an old id stays an alias after session_regenerate_id", func(c *serveConfig) *time.Duration { return &c.RegenerateGrace }),
		durationOption("default-ttl", "PHPSESSD_DEFAULT_TTL", engine.DefaultTTL, "session lifetime when the client sends no TTL", func(c *serveConfig) *time.Duration { return &c.DefaultTTL }),
		{name: "single-session-ref", env: "PHPSESSD_SINGLE_SESSION_REFS", arg: "PATTERN", isList: true, split: ",",
			help: "session references with one session at most, e.g. 'user:*': tagging a session ends the others; repeatable or comma-separated",
			set: func(c *serveConfig, v string) error {
				if v = strings.TrimSpace(v); v != "" {
					c.SingleSessionRefs = append(c.SingleSessionRefs, v)
				}
				return nil
			},
			reset: func(c *serveConfig) { c.SingleSessionRefs = nil }},
		{name: "fingerprint", env: "PHPSESSD_FINGERPRINT", arg: "ua,ip", def: "off",
			help: "bind sessions to their creator's user agent (ua) and/or IP prefix (ip); a READ from another one gets -FINGERPRINT",
			set: func(c *serveConfig, v string) error {
				c.FingerprintUA, c.FingerprintIP = false, false
				for _, part := range strings.Split(v, ",") {
					switch strings.ToLower(strings.TrimSpace(part)) {
					case "ua":
						c.FingerprintUA = true
					case "ip":
						c.FingerprintIP = true
					case "", "off", "none":
					default:
						return fmt.Errorf("want ua, ip, ua,ip or off, got %q", v)
					}
				}
				return nil
			}},
		{name: "fingerprint-ipv4-prefix", env: "PHPSESSD_FINGERPRINT_IPV4_PREFIX", arg: "BITS", def: "24", help: "IPv4 prefix length --fingerprint ip compares",
			set: func(c *serveConfig, v string) (err error) { c.FingerprintIPv4, err = parsePrefixBits(v, 32); return }},
		{name: "fingerprint-ipv6-prefix", env: "PHPSESSD_FINGERPRINT_IPV6_PREFIX", arg: "BITS", def: "64", help: "IPv6 prefix length --fingerprint ip compares",
			set: func(c *serveConfig, v string) (err error) { c.FingerprintIPv6, err = parsePrefixBits(v, 128); return }},
		{name: "fingerprint-action", env: "PHPSESSD_FINGERPRINT_ACTION", arg: "ACTION", def: "refuse",
			help: "what a fingerprint mismatch does: refuse (-FINGERPRINT), or regenerate: when only the IP prefix changed, move the session to a new id and retire the old one (user agent mismatches are always refused)",
			set: func(c *serveConfig, v string) error {
				switch a := engine.FingerprintAction(strings.ToLower(strings.TrimSpace(v))); a {
				case engine.FingerprintRefuse, engine.FingerprintRegenerate:
					c.FingerprintAction = a
					return nil
				}
				return fmt.Errorf("want refuse or regenerate, got %q", v)
			}},
		{name: "fingerprint-key-file", env: "PHPSESSD_FINGERPRINT_KEY_FILE", arg: "FILE", help: "secret that keys the stored fingerprint hashes (same file on every daemon sharing a store)",
			set: func(c *serveConfig, v string) error { c.FingerprintKeyFile = v; return nil }},
		{name: "strict", env: "PHPSESSD_STRICT", isBool: true, def: "true", help: "strict ids: VALIDATE refuses ids that name no session (session.use_strict_mode)",
			set: func(c *serveConfig, v string) (err error) { c.Strict, err = parseBool(v); return }},
		{name: "max-frame", env: "PHPSESSD_MAX_FRAME", arg: "SIZE", def: "16MiB", help: "largest request in bytes; suffixes K, KiB, M, MiB",
			set: func(c *serveConfig, v string) (err error) { c.MaxFrame, err = parseSize(v); return }},
		durationOption("idle-timeout", "PHPSESSD_IDLE_TIMEOUT", 10*time.Minute, "close connections idle this long", func(c *serveConfig) *time.Duration { return &c.IdleTimeout }),
		{name: "event-loops", env: "PHPSESSD_EVENT_LOOPS", arg: "N", def: "auto",
			help: "serve connections on N epoll loops that run commands in place instead of a goroutine each (Linux, memory:// store only); auto: one per CPU with memory://, none otherwise; 0: never",
			set: func(c *serveConfig, v string) error {
				if strings.EqualFold(strings.TrimSpace(v), "auto") {
					c.EventLoops = -1
					return nil
				}
				n, err := strconv.Atoi(v)
				if err != nil || n < 0 || n > 1024 {
					return fmt.Errorf("want auto or a count from 0 to 1024, got %q", v)
				}
				c.EventLoops = n
				return nil
			}},
		durationOption("shutdown-timeout", "PHPSESSD_SHUTDOWN_TIMEOUT", 10*time.Second, "on SIGTERM/SIGINT, how long commands in flight may finish", func(c *serveConfig) *time.Duration { return &c.ShutdownTimeout }),
		{name: "log-level", env: "PHPSESSD_LOG_LEVEL", arg: "LEVEL", def: "info", help: "debug, info, warn or error",
			set: func(c *serveConfig, v string) error {
				switch strings.ToLower(v) {
				case "debug", "info", "warn", "error":
					c.LogLevel = strings.ToLower(v)
					return nil
				}
				return fmt.Errorf("want debug, info, warn or error, got %q", v)
			}},
		{name: "keys-file", env: "PHPSESSD_KEYS_FILE", arg: "FILE",
			help: "encrypt sessions at rest (AES-256-GCM) with the keys in FILE: one id:base64key per line, the first encrypts, all decrypt; $PHPSESSD_KEYS may hold the same entries comma-separated",
			set:  func(c *serveConfig, v string) error { c.KeysFile = v; return nil }},
		{name: "compress-over", env: "PHPSESSD_COMPRESS_OVER", arg: "SIZE", def: "0 (off)", help: "zstd-compress stored sessions larger than SIZE",
			set: func(c *serveConfig, v string) (err error) { c.CompressOver, err = parseSize(v); return }},
		{name: "require-encrypted", env: "PHPSESSD_REQUIRE_ENCRYPTED", isBool: true, def: "false", help: "refuse to load sessions that are not encrypted (once every session was resealed)",
			set: func(c *serveConfig, v string) (err error) { c.RequireEncrypted, err = parseBool(v); return }},
		{name: "metrics-listen", env: "PHPSESSD_METRICS_LISTEN", arg: "HOST:PORT", help: "serve Prometheus /metrics and /healthz over HTTP, e.g. 127.0.0.1:9464",
			set: func(c *serveConfig, v string) error { c.MetricsListen = v; return nil }},
		{name: "security-hook", env: "PHPSESSD_SECURITY_HOOK", arg: "URL|CMD", help: "send security events (JSON) to a loopback http(s) URL, or to an absolute command path on stdin",
			set: func(c *serveConfig, v string) error { c.SecurityHook = v; return security.ValidateHook(v) }},
		{name: "log-format", env: "PHPSESSD_LOG_FORMAT", arg: "FORMAT", def: "text", help: "text or json",
			set: func(c *serveConfig, v string) error {
				switch strings.ToLower(v) {
				case "text", "json":
					c.LogFormat = strings.ToLower(v)
					return nil
				}
				return fmt.Errorf("want text or json, got %q", v)
			}},
	}
}

func durationOption(name, env string, def time.Duration, help string, field func(*serveConfig) *time.Duration) *option {
	return &option{name: name, env: env, arg: "DURATION", def: def.String(), help: help + " (Go duration: 500ms, 30s, 5m)",
		set: func(c *serveConfig, v string) error {
			d, err := time.ParseDuration(v)
			if err != nil || d < 0 {
				return fmt.Errorf("want a duration like 30s, got %q", v)
			}
			*field(c) = d
			return nil
		}}
}

func parsePrefixBits(v string, most int) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > most {
		return 0, fmt.Errorf("want a prefix length 1..%d, got %q", most, v)
	}
	return n, nil
}

func parseBool(v string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "1", "true", "yes", "on":
		return true, nil
	case "0", "false", "no", "off":
		return false, nil
	}
	return false, fmt.Errorf("want true or false, got %q", v)
}

func parseSize(v string) (int64, error) {
	s := strings.TrimSpace(v)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"B", 1}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 || n > (1<<40)/mult {
		return 0, fmt.Errorf("want a size like 16MiB, got %q", v)
	}
	return n * mult, nil
}

func parseModeRule(v string) (engine.ModeRule, error) {
	f := strings.Fields(v)
	var r engine.ModeRule
	switch len(f) {
	case 2:
		r = engine.ModeRule{Method: "*", Path: f[0], Mode: engine.Mode(strings.ToLower(f[1]))}
	case 3:
		r = engine.ModeRule{Method: strings.ToUpper(f[0]), Path: f[1], Mode: engine.Mode(strings.ToLower(f[2]))}
	default:
		return r, fmt.Errorf("mode rule %q: want \"METHOD PATH MODE\"", v)
	}
	switch r.Mode {
	case engine.ModeOptimistic, engine.ModeReadonly, engine.ModeLocked:
		return r, nil
	}
	return r, fmt.Errorf("mode rule %q: mode must be optimistic, readonly or locked", v)
}

func parseKeyRule(v string) (engine.KeyRule, error) {
	f := strings.Fields(v)
	if len(f) != 2 {
		return engine.KeyRule{}, fmt.Errorf("key rule %q: want \"PATTERN mine|theirs|fail\"", v)
	}
	r := engine.KeyRule{Pattern: f[0], Rule: engine.Rule(strings.ToLower(f[1]))}
	switch r.Rule {
	case engine.RuleMine, engine.RuleTheirs, engine.RuleFail:
		return r, nil
	}
	return r, fmt.Errorf("key rule %q: rule must be mine, theirs or fail", v)
}

// layer holds the raw values one source gave, per option name, in order.
type layer map[string][]string

// flagValue collects a flag's raw values into the flag layer.
type flagValue struct {
	opt *option
	l   layer
}

func (f *flagValue) String() string   { return "" }
func (f *flagValue) IsBoolFlag() bool { return f.opt.isBool }
func (f *flagValue) Set(v string) error {
	vals := []string{v}
	if f.opt.split != "" {
		vals = strings.Split(v, f.opt.split)
	}
	// Validate now so the error names the flag and exits 2.
	var scratch serveConfig
	for _, x := range vals {
		if err := f.opt.set(&scratch, strings.TrimSpace(x)); err != nil {
			return err
		}
	}
	f.l[f.opt.name] = append(f.l[f.opt.name], vals...)
	return nil
}

// envLayer reads PHPSESSD_* variables.
func envLayer(opts []*option, getenv func(string) string) layer {
	l := layer{}
	for _, o := range opts {
		v := getenv(o.env)
		if v == "" {
			continue
		}
		if o.split != "" {
			l[o.name] = strings.Split(v, o.split)
		} else {
			l[o.name] = []string{v}
		}
	}
	return l
}

// fileLayer parses a config file: "key = value" per line, keys named like
// the flags (without dashes in front), '#' starts a comment line, values
// may be double-quoted, list keys may repeat.
func fileLayer(opts []*option, r io.Reader, name string) (layer, error) {
	known := map[string]*option{}
	for _, o := range opts {
		known[o.name] = o
	}
	l := layer{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("%s:%d: want 'key = value'", name, n)
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
			v = v[1 : len(v)-1]
		}
		o, ok := known[k]
		if !ok || k == "config" {
			return nil, fmt.Errorf("%s:%d: unknown setting %q", name, n, k)
		}
		if _, dup := l[k]; dup && !o.isList {
			return nil, fmt.Errorf("%s:%d: %q set twice", name, n, k)
		}
		l[k] = append(l[k], v)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return l, nil
}

// defaultConfig is the configuration before any source applies.
func defaultConfig() serveConfig {
	return serveConfig{
		SocketMode:      0o660,
		CacheEntries:    10000,
		LockWait:        engine.DefaultLockWait,
		LockLease:       engine.DefaultLockLease,
		RegenerateGrace: engine.DefaultRegenerateGrace,
		DefaultTTL:      engine.DefaultTTL,
		Strict:          true,
		MaxFrame:        16 << 20,
		IdleTimeout:     10 * time.Minute,
		EventLoops:      -1,
		ShutdownTimeout: 10 * time.Second,
		LogLevel:        "info",
		LogFormat:       "text",

		FingerprintAction: engine.FingerprintRefuse,
	}
}

// loadServeConfig resolves the configuration with precedence
// flags > environment > config file > defaults. The config file path
// itself comes from --config or PHPSESSD_CONFIG.
func loadServeConfig(opts []*option, flags layer, getenv func(string) string) (serveConfig, error) {
	env := envLayer(opts, getenv)
	cfg := defaultConfig()
	path := ""
	if v := env["config"]; len(v) > 0 {
		path = v[len(v)-1]
	}
	if v := flags["config"]; len(v) > 0 {
		path = v[len(v)-1]
	}
	file := layer{}
	if path != "" {
		f, err := os.Open(path)
		if err != nil {
			return cfg, fmt.Errorf("config file: %w", err)
		}
		file, err = fileLayer(opts, f, path)
		f.Close()
		if err != nil {
			return cfg, err
		}
		cfg.ConfigFile = path
	}
	for _, o := range opts {
		if o.name == "config" {
			continue
		}
		var vals []string
		src := ""
		for _, s := range []struct {
			name string
			l    layer
		}{{"flag --" + o.name, flags}, {"environment " + o.env, env}, {"config file " + path, file}} {
			if v, ok := s.l[o.name]; ok {
				vals, src = v, s.name
				break
			}
		}
		if src == "" {
			continue
		}
		if o.reset != nil {
			o.reset(&cfg)
		}
		for _, v := range vals {
			if !o.isList {
				v = strings.TrimSpace(v)
			}
			if err := o.set(&cfg, v); err != nil {
				return cfg, fmt.Errorf("%s: %w", src, err)
			}
		}
	}
	if (cfg.MigrateFrom == "") != cfg.MigrateUntil.IsZero() {
		return cfg, errors.New("--migrate-from and --migrate-until go together")
	}
	if cfg.Token != "" && cfg.TokenFile != "" {
		return cfg, errors.New("--token and --token-file are mutually exclusive")
	}
	if cfg.TokenFile != "" {
		b, err := os.ReadFile(cfg.TokenFile)
		if err != nil {
			return cfg, fmt.Errorf("token file: %w", err)
		}
		cfg.Token = strings.TrimSpace(string(b))
		if cfg.Token == "" {
			return cfg, fmt.Errorf("token file %s is empty", cfg.TokenFile)
		}
	}
	return cfg, nil
}

// defaultDataDir follows the FHS for root and the XDG base directory spec
// for everyone else, so `phpsessd serve` works with no setup either way.
func defaultDataDir(getenv func(string) string, euid int) string {
	if euid == 0 {
		return "/var/lib/phpsessd"
	}
	if x := getenv("XDG_STATE_HOME"); filepath.IsAbs(x) {
		return filepath.Join(x, "phpsessd")
	}
	if h := getenv("HOME"); filepath.IsAbs(h) {
		return filepath.Join(h, ".local", "state", "phpsessd")
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("phpsessd-%d", euid))
}

// defaultRuntimeDir holds the default socket: /run for root (cleared at
// boot, like the socket's lifetime), $XDG_RUNTIME_DIR for a user session,
// and the data dir as the fallback that always exists.
func defaultRuntimeDir(getenv func(string) string, euid int, dataDir string) string {
	if euid == 0 {
		return "/run/phpsessd"
	}
	if x := getenv("XDG_RUNTIME_DIR"); filepath.IsAbs(x) {
		return filepath.Join(x, "phpsessd")
	}
	return dataDir
}

// registerFlags adds every option to fs, collecting values into a layer.
func registerFlags(fs *flag.FlagSet, opts []*option) layer {
	l := layer{}
	for _, o := range opts {
		fs.Var(&flagValue{opt: o, l: l}, o.name, o.help)
	}
	return l
}

// printServeUsage lists every option with its environment variable and
// default.
func printServeUsage(w io.Writer, opts []*option) {
	fmt.Fprintln(w, "Usage: phpsessd serve [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Runs the daemon. Settings come from flags, then PHPSESSD_* environment")
	fmt.Fprintln(w, "variables, then the --config file, then the defaults (first found wins; a")
	fmt.Fprintln(w, "list set by a source replaces the lists of the sources below it).")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Flags:")
	for _, o := range opts {
		head := "  --" + o.name
		if o.arg != "" {
			head += " " + o.arg
		}
		fmt.Fprintln(w, head)
		fmt.Fprintf(w, "        %s\n", o.help)
		meta := "env " + o.env
		if o.def != "" {
			meta += "; default: " + o.def
		}
		if o.isList {
			meta += "; repeatable"
		}
		fmt.Fprintf(w, "        (%s)\n", meta)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Config file example (/etc/phpsessd.conf):")
	fmt.Fprintln(w, "    # phpsessd")
	fmt.Fprintln(w, "    listen = unix:///run/phpsessd/phpsessd.sock")
	fmt.Fprintln(w, "    listen = tcp://10.0.0.5:6390")
	fmt.Fprintln(w, "    token-file = /etc/phpsessd.token")
	fmt.Fprintln(w, "    mode-rule = POST /checkout/* locked")
	fmt.Fprintln(w, "    mode-rule = GET /api/* readonly")
	fmt.Fprintln(w, "    lock-wait = 10s")
}
