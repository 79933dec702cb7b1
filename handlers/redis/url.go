package redis

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Defaults for the store. DefaultPrefix and DefaultClusterPrefix are the
// prefixes phpredis's "redis" and "rediscluster" session handlers use, so a
// URL without prefix= reads the sessions those handlers wrote.
const (
	DefaultPrefix        = "PHPREDIS_SESSION:"
	DefaultClusterPrefix = "PHPREDIS_CLUSTER_SESSION:"
	DefaultOpTimeout     = 5 * time.Second
	DefaultMetaGrace     = 10 * time.Minute
	DefaultLockClaim     = 3 * time.Second
	DefaultLockRenew     = 15 * time.Second
)

// Options configure a Store opened with New.
type Options struct {
	// Prefix is put in front of every key; "" is allowed.
	Prefix string
	// Layout chooses the key names (LayoutPHPRedis by default).
	Layout Layout
	// OpTimeout bounds a call whose context has no deadline.
	OpTimeout time.Duration
	// MetaGrace is how much longer than the data the meta hash lives, so a
	// session whose TTL phpredis alone refreshes keeps its counter version
	// a while; correctness never depends on it.
	MetaGrace time.Duration
	// LockClaim is how long a lock handed to a waiter stays reserved for it
	// before the waiter confirms; a waiter that died meanwhile costs the
	// queue at most this long.
	LockClaim time.Duration
	// LockRenew caps the TTL of the lock key: a lock with a longer lease is
	// kept alive by its daemon, which extends it every LockRenew/3 until
	// the lease ends, so a daemon that dies frees its locks within
	// LockRenew instead of holding them for the whole lease. Negative
	// disables renewal (the key's TTL is the full lease).
	LockRenew time.Duration
	// OwnsClient makes Close close the client.
	OwnsClient bool
}

func (o *Options) fill() {
	if o.Layout == "" {
		o.Layout = LayoutPHPRedis
	}
	if o.OpTimeout <= 0 {
		o.OpTimeout = DefaultOpTimeout
	}
	if o.MetaGrace <= 0 {
		o.MetaGrace = DefaultMetaGrace
	}
	if o.LockClaim <= 0 {
		o.LockClaim = DefaultLockClaim
	}
	switch {
	case o.LockRenew == 0:
		o.LockRenew = DefaultLockRenew
	case o.LockRenew > 0 && o.LockRenew < time.Second:
		o.LockRenew = time.Second // renewing more often would be polling
	}
}

// urlConfig is what a store URL describes.
type urlConfig struct {
	client  goredis.UniversalOptions
	store   Options
	cluster bool
	unix    bool
}

// newClient builds the go-redis client a URL describes. It does not use
// NewUniversalClient because that turns any multi-host list into a cluster
// client and cannot dial a unix socket.
func (c *urlConfig) newClient() goredis.UniversalClient {
	switch {
	case c.client.MasterName != "":
		return goredis.NewFailoverClient(c.client.Failover())
	case c.cluster:
		return goredis.NewClusterClient(c.client.Cluster())
	default:
		o := c.client.Simple()
		if c.unix {
			o.Network = "unix"
		}
		return goredis.NewClient(o)
	}
}

// knownParams lists every query parameter; anything else is refused so a
// typo does not silently fall back to a default.
var knownParams = map[string]bool{
	"prefix": true, "layout": true, "db": true, "addr": true, "master": true,
	"sentinel_username": true, "sentinel_password": true, "password": true, "username": true,
	"pool_size": true, "min_idle_conns": true, "max_idle_conns": true, "max_retries": true,
	"dial_timeout": true, "read_timeout": true, "write_timeout": true, "pool_timeout": true,
	"conn_max_idle_time": true, "op_timeout": true, "meta_grace": true, "lock_claim": true, "lock_renew": true,
	"tls": true, "tls_skip_verify": true, "tls_server_name": true, "tls_ca": true,
	"tls_cert": true, "tls_key": true, "protocol": true, "client_name": true,
}

// parseURL turns a store URL into client and store options. The forms are
// documented in README.md.
func parseURL(u *url.URL) (*urlConfig, error) {
	cfg := &urlConfig{}
	q := u.Query()
	for k := range q {
		if !knownParams[k] {
			return nil, fmt.Errorf("unknown query parameter %q", k)
		}
	}
	co := &cfg.client
	var useTLS, sentinel bool
	switch u.Scheme {
	case "redis":
	case "rediss":
		useTLS = true
	case "redis+sentinel", "sentinel":
		sentinel = true
	case "rediss+sentinel":
		sentinel, useTLS = true, true
	case "redis+cluster":
		cfg.cluster = true
	case "rediss+cluster":
		cfg.cluster, useTLS = true, true
	case "redis+unix":
	default:
		return nil, fmt.Errorf("unsupported scheme %q", u.Scheme)
	}

	if u.User != nil {
		co.Username = u.User.Username()
		co.Password, _ = u.User.Password()
	}
	if v := q.Get("username"); v != "" {
		co.Username = v
	}
	if v := q.Get("password"); v != "" {
		co.Password = v
	}

	path := u.Path
	if u.Scheme == "redis+unix" {
		if path == "" {
			return nil, errors.New("redis+unix needs a socket path: redis+unix:///run/redis/redis.sock")
		}
		co.Addrs = []string{path}
		cfg.unix = true
		path = ""
	} else {
		for _, h := range strings.Split(u.Host, ",") {
			if h = strings.TrimSpace(h); h != "" {
				co.Addrs = append(co.Addrs, withPort(h, sentinel))
			}
		}
		for _, h := range q["addr"] {
			co.Addrs = append(co.Addrs, withPort(h, sentinel))
		}
		if len(co.Addrs) == 0 {
			co.Addrs = []string{withPort("127.0.0.1", sentinel)}
		}
	}

	db := strings.Trim(path, "/")
	if v := q.Get("db"); v != "" {
		db = v
	}
	if db != "" {
		n, err := strconv.Atoi(db)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("db %q: not a database number", db)
		}
		if cfg.cluster && n != 0 {
			return nil, errors.New("redis cluster has only database 0")
		}
		co.DB = n
	}

	if sentinel {
		co.MasterName = q.Get("master")
		if co.MasterName == "" {
			return nil, errors.New("sentinel URL needs master=<name>")
		}
		co.SentinelUsername = q.Get("sentinel_username")
		co.SentinelPassword = q.Get("sentinel_password")
	} else if q.Has("master") {
		return nil, errors.New("master= is only for redis+sentinel URLs")
	}
	if !cfg.cluster && !sentinel && len(co.Addrs) > 1 {
		return nil, fmt.Errorf("%s:// takes one host; use redis+cluster:// or redis+sentinel:// for several", u.Scheme)
	}

	ints := []struct {
		name string
		dst  *int
	}{
		{"pool_size", &co.PoolSize}, {"min_idle_conns", &co.MinIdleConns},
		{"max_idle_conns", &co.MaxIdleConns}, {"max_retries", &co.MaxRetries},
		{"protocol", &co.Protocol},
	}
	for _, p := range ints {
		if v := q.Get(p.name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				return nil, fmt.Errorf("%s=%q: %w", p.name, v, err)
			}
			*p.dst = n
		}
	}
	durs := []struct {
		name string
		dst  *time.Duration
	}{
		{"dial_timeout", &co.DialTimeout}, {"read_timeout", &co.ReadTimeout},
		{"write_timeout", &co.WriteTimeout}, {"pool_timeout", &co.PoolTimeout},
		{"conn_max_idle_time", &co.ConnMaxIdleTime}, {"op_timeout", &cfg.store.OpTimeout},
		{"meta_grace", &cfg.store.MetaGrace}, {"lock_claim", &cfg.store.LockClaim},
		{"lock_renew", &cfg.store.LockRenew},
	}
	for _, p := range durs {
		if v := q.Get(p.name); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil {
				return nil, fmt.Errorf("%s=%q: %w", p.name, v, err)
			}
			*p.dst = d
		}
	}
	co.ClientName = q.Get("client_name")

	if v := q.Get("tls"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, fmt.Errorf("tls=%q: %w", v, err)
		}
		useTLS = useTLS || b
	}
	if useTLS {
		tc, err := tlsConfig(q, co.Addrs[0])
		if err != nil {
			return nil, err
		}
		co.TLSConfig = tc
	}

	if q.Has("prefix") {
		cfg.store.Prefix = q.Get("prefix")
	} else if cfg.cluster {
		cfg.store.Prefix = DefaultClusterPrefix
	} else {
		cfg.store.Prefix = DefaultPrefix
	}
	switch l := Layout(q.Get("layout")); l {
	case "", LayoutPHPRedis, LayoutHashTag:
		cfg.store.Layout = l
	default:
		return nil, fmt.Errorf("layout=%q: want %q or %q", l, LayoutPHPRedis, LayoutHashTag)
	}
	// Context deadlines must reach the socket, or a dead Redis would hold a
	// PHP request for the full read timeout times the retries.
	co.ContextTimeoutEnabled = true
	return cfg, nil
}

func withPort(h string, sentinel bool) string {
	if _, _, err := net.SplitHostPort(h); err == nil {
		return h
	}
	if sentinel {
		return net.JoinHostPort(strings.Trim(h, "[]"), "26379")
	}
	return net.JoinHostPort(strings.Trim(h, "[]"), "6379")
}

func tlsConfig(q url.Values, firstAddr string) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if host, _, err := net.SplitHostPort(firstAddr); err == nil {
		tc.ServerName = host
	}
	if v := q.Get("tls_server_name"); v != "" {
		tc.ServerName = v
	}
	if v := q.Get("tls_skip_verify"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, fmt.Errorf("tls_skip_verify=%q: %w", v, err)
		}
		tc.InsecureSkipVerify = b
	}
	if path := q.Get("tls_ca"); path != "" {
		pem, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("tls_ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls_ca %s: no PEM certificate found", path)
		}
		tc.RootCAs = pool
	}
	cert, key := q.Get("tls_cert"), q.Get("tls_key")
	if (cert == "") != (key == "") {
		return nil, errors.New("tls_cert and tls_key go together")
	}
	if cert != "" {
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, fmt.Errorf("tls client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{pair}
	}
	return tc, nil
}
