// Package memcached is a read-only session store over the keys PHP's
// memcached extension writes (memcached.sess_prefix, "memc.sess.key." by
// default), so `phpsessd migrate` can move sessions out of memcached. It
// never writes: memcached offers no compare-and-swap that fits the store
// contract across a server list, and evicts live sessions under memory
// pressure, so it is a source only. Values are read with gomemcache.
// Memcached has no SCAN; sessions are enumerated with the text-protocol
// command "lru_crawler metadump all" (memcached 1.4.31 and later), which
// lists every key with its absolute expiry, over a plain TCP connection
// because gomemcache does not wrap it. Load reports the expiry the last
// Scan saw for the id; for an id no Scan has reported it assumes the
// session was just written with the ttl option (session.gc_maxlifetime),
// which is as long as PHP could have let it live.
package memcached

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/phpsessd/phpsessd/handlers"
)

func init() {
	handlers.Register("memcached", open)
}

// Defaults; DefaultPrefix is php-memcached's memcached.sess_prefix.
const (
	DefaultPrefix    = "memc.sess.key."
	DefaultPort      = "11211"
	DefaultTTL       = 1440 * time.Second
	DefaultOpTimeout = 5 * time.Second
	// maxIDLength keeps prefix+id within memcached's 250-byte key limit for
	// the default prefix and above PHP's longest session ids.
	maxIDLength = 230
)

// ErrReadOnly is returned by every write: this store is a migration source.
var ErrReadOnly = errors.New("memcached store is read-only (a source for phpsessd migrate)")

// Options configure a Store.
type Options struct {
	// Servers are host:port addresses, as in php-memcached's save_path.
	Servers []string
	// Prefix is memcached.sess_prefix.
	Prefix string
	// TTL is the lifetime assumed for a session whose expiry no Scan has
	// reported (session.gc_maxlifetime). 0 means DefaultTTL.
	TTL time.Duration
	// OpTimeout bounds each network call; 0 means DefaultOpTimeout.
	OpTimeout time.Duration
}

// Store reads php-memcached sessions.
type Store struct {
	opts    Options
	clients []*memcache.Client

	mu      sync.Mutex
	expires map[string]int64 // id → unix seconds from the last Scan, 0 = never

	closed atomic.Bool
}

var _ handlers.Store = (*Store)(nil)

// New returns a store reading the given servers. It does not connect.
func New(o Options) (*Store, error) {
	if len(o.Servers) == 0 {
		return nil, errors.New("memcached store: no server given")
	}
	if o.TTL <= 0 {
		o.TTL = DefaultTTL
	}
	if o.OpTimeout <= 0 {
		o.OpTimeout = DefaultOpTimeout
	}
	if len(o.Prefix)+1 > 250 {
		return nil, fmt.Errorf("memcached store: prefix of %d bytes leaves no room for ids", len(o.Prefix))
	}
	s := &Store{opts: o, expires: map[string]int64{}}
	// One client per server: php-memcached (libmemcached) and gomemcache
	// distribute keys differently, so a key is looked for on every server
	// rather than on the one gomemcache's hash would pick.
	for _, addr := range o.Servers {
		c := memcache.New(addr)
		c.Timeout = o.OpTimeout
		c.MaxIdleConns = 8
		s.clients = append(s.clients, c)
	}
	return s, nil
}

// open reads memcached://host:port[,host:port...]?prefix=…&ttl=…&op_timeout=….
func open(ctx context.Context, u *url.URL) (handlers.Store, error) {
	o := Options{Prefix: DefaultPrefix}
	for _, h := range strings.Split(u.Host, ",") {
		if h = strings.TrimSpace(h); h == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(h); err != nil {
			h = net.JoinHostPort(strings.Trim(h, "[]"), DefaultPort)
		}
		o.Servers = append(o.Servers, h)
	}
	if len(o.Servers) == 0 {
		return nil, errors.New("memcached store: url names no server: memcached://127.0.0.1:11211")
	}
	if u.Path != "" && u.Path != "/" {
		return nil, fmt.Errorf("memcached store: unexpected path %q", u.Path)
	}
	q := u.Query()
	for k, vs := range q {
		v := vs[len(vs)-1]
		switch k {
		case "prefix":
			o.Prefix = v
		case "ttl":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n <= 0 || n > 1<<31 {
				return nil, fmt.Errorf("memcached store: ttl %q: want seconds > 0", v)
			}
			o.TTL = time.Duration(n) * time.Second
		case "op_timeout":
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return nil, fmt.Errorf("memcached store: op_timeout %q: want a duration such as 5s", v)
			}
			o.OpTimeout = d
		default:
			return nil, fmt.Errorf("memcached store: unknown option %q", k)
		}
	}
	return New(o)
}

// ReadOnly tells tools such as migrate that this store cannot be a target.
func (s *Store) ReadOnly() bool { return true }

func validID(id string) error {
	if id == "" || len(id) > maxIDLength {
		return fmt.Errorf("memcached store: session id of length %d: want 1..%d characters", len(id), maxIDLength)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == ',' || c == '-') {
			return fmt.Errorf("memcached store: session id %q: character %q outside [A-Za-z0-9,-]", id, c)
		}
	}
	return nil
}

func (s *Store) begin(ctx context.Context, op, id string) error {
	if s.closed.Load() {
		return fmt.Errorf("memcached store: %s: %w: store closed", op, handlers.ErrUnavailable)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memcached store: %s %s: %w", op, id, err)
	}
	return nil
}

type getResult struct {
	item *memcache.Item
	err  error
}

// get looks the key up on each server in turn. gomemcache takes no
// context, so the lookup runs in a goroutine bounded by OpTimeout per
// server and the caller stops waiting as soon as ctx ends.
func (s *Store) get(ctx context.Context, key string) (*memcache.Item, error) {
	done := make(chan getResult, 1)
	go func() {
		var firstErr error
		for _, c := range s.clients {
			it, err := c.Get(key)
			if err == nil {
				done <- getResult{item: it}
				return
			}
			if !errors.Is(err, memcache.ErrCacheMiss) && firstErr == nil {
				firstErr = err
			}
		}
		if firstErr == nil {
			firstErr = memcache.ErrCacheMiss
		}
		done <- getResult{err: firstErr}
	}()
	select {
	case r := <-done:
		return r.item, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Load implements handlers.Store. Version is derived from the bytes, as
// memcached's own CAS value is per server and not visible through get.
func (s *Store) Load(ctx context.Context, id string) (handlers.Record, error) {
	if err := validID(id); err != nil {
		return handlers.Record{}, err
	}
	if err := s.begin(ctx, "load", id); err != nil {
		return handlers.Record{}, err
	}
	it, err := s.get(ctx, s.opts.Prefix+id)
	switch {
	case errors.Is(err, memcache.ErrCacheMiss):
		return handlers.Record{}, handlers.ErrNotFound
	case ctx.Err() != nil:
		return handlers.Record{}, fmt.Errorf("memcached store: load %s: %w", id, ctx.Err())
	case err != nil:
		return handlers.Record{}, fmt.Errorf("memcached store: load %s: %w: %w", id, handlers.ErrUnavailable, err)
	}
	now := time.Now()
	rec := handlers.Record{Data: it.Value, Version: contentVersion(it.Value)}
	s.mu.Lock()
	exp, seen := s.expires[id]
	s.mu.Unlock()
	switch {
	case !seen:
		rec.Expires = now.Add(s.opts.TTL)
	case exp != 0:
		rec.Expires = time.Unix(exp, 0)
		if !rec.Expires.After(now) {
			return handlers.Record{}, handlers.ErrNotFound
		}
	}
	return rec, nil
}

// contentVersion is FNV-1a of the data, never 0.
func contentVersion(b []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	if h == 0 {
		h = 1
	}
	return h
}

func (s *Store) readOnly(ctx context.Context, op, id string) error {
	if err := validID(id); err != nil {
		return err
	}
	if err := s.begin(ctx, op, id); err != nil {
		return err
	}
	return fmt.Errorf("memcached store: %s %s: %w", op, id, ErrReadOnly)
}

// Save implements handlers.Store; it always fails with ErrReadOnly.
func (s *Store) Save(ctx context.Context, id string, _ handlers.Record, _ uint64) (uint64, error) {
	return 0, s.readOnly(ctx, "save", id)
}

// Touch implements handlers.Store; it always fails with ErrReadOnly.
func (s *Store) Touch(ctx context.Context, id string, _ time.Time) error {
	return s.readOnly(ctx, "touch", id)
}

// Delete implements handlers.Store; it always fails with ErrReadOnly.
func (s *Store) Delete(ctx context.Context, id string) (bool, error) {
	return false, s.readOnly(ctx, "delete", id)
}

// Sweep implements handlers.Store; memcached expires items itself.
func (s *Store) Sweep(ctx context.Context, _ time.Time) (int, error) {
	if err := s.begin(ctx, "sweep", ""); err != nil {
		return 0, err
	}
	return 0, nil
}

// Close implements handlers.Store.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	for _, c := range s.clients {
		_ = c.Close()
	}
	return nil
}

// Scan implements handlers.Store with "lru_crawler metadump all" on every
// server. An id on several servers (php-memcached replicas) is reported
// once. The expiries seen are remembered for Load.
func (s *Store) Scan(ctx context.Context, fn func(id string, expires time.Time) error) error {
	if err := s.begin(ctx, "scan", ""); err != nil {
		return err
	}
	seen := map[string]int64{}
	for _, addr := range s.opts.Servers {
		err := s.metadump(ctx, addr, func(id string, exp int64) error {
			if _, dup := seen[id]; dup {
				return nil
			}
			seen[id] = exp
			s.mu.Lock()
			s.expires[id] = exp
			s.mu.Unlock()
			var t time.Time
			if exp != 0 {
				t = time.Unix(exp, 0)
			}
			return fn(id, t)
		})
		if err != nil {
			return err
		}
	}
	// Ids gone since the previous Scan fall back to the ttl rule again.
	s.mu.Lock()
	s.expires = seen
	s.mu.Unlock()
	return nil
}

// errFn carries fn's error out of metadump unwrapped.
type errFn struct{ err error }

func (e errFn) Error() string { return e.err.Error() }

// crawlerBusyRetries bounds how long Scan waits for a crawl someone else
// started (memcached runs one at a time and answers BUSY meanwhile).
const crawlerBusyRetries = 20

func (s *Store) metadump(ctx context.Context, addr string, fn func(id string, exp int64) error) error {
	for attempt := 0; ; attempt++ {
		busy, err := s.metadumpOnce(ctx, addr, fn)
		var fe errFn
		if errors.As(err, &fe) {
			return fe.err
		}
		if err != nil {
			if cerr := ctx.Err(); cerr != nil {
				return fmt.Errorf("memcached store: scan %s: %w", addr, cerr)
			}
			return fmt.Errorf("memcached store: scan %s: %w: %w", addr, handlers.ErrUnavailable, err)
		}
		if !busy {
			return nil
		}
		if attempt >= crawlerBusyRetries {
			return fmt.Errorf("memcached store: scan %s: %w: the LRU crawler stayed busy", addr, handlers.ErrUnavailable)
		}
		t := time.NewTimer(250 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("memcached store: scan %s: %w", addr, ctx.Err())
		case <-t.C:
		}
	}
}

// metadumpOnce streams one metadump. Lines look like
// "key=<uri-encoded key> exp=<unix seconds or -1> la=… cas=… fetch=… cls=… size=…"
// and the dump ends with "END".
func (s *Store) metadumpOnce(ctx context.Context, addr string, fn func(id string, exp int64) error) (busy bool, err error) {
	d := net.Dialer{Timeout: s.opts.OpTimeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return false, err
	}
	defer conn.Close()
	// Closing the connection is what interrupts a blocked read when ctx ends.
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()
	deadline := func() { _ = conn.SetDeadline(time.Now().Add(s.opts.OpTimeout)) }
	deadline()
	if _, err := conn.Write([]byte("lru_crawler metadump all\r\n")); err != nil {
		return false, err
	}
	r := bufio.NewReaderSize(conn, 64<<10)
	now := time.Now().Unix()
	for {
		deadline() // the idle limit applies per line; a dump may take long
		line, err := r.ReadString('\n')
		if err != nil {
			return false, err
		}
		line = strings.TrimRight(line, "\r\n")
		switch {
		case line == "END":
			return false, nil
		case strings.HasPrefix(line, "BUSY"):
			return true, nil
		case line == "ERROR" || strings.HasPrefix(line, "CLIENT_ERROR") || strings.HasPrefix(line, "SERVER_ERROR"):
			return false, fmt.Errorf("server refused lru_crawler metadump (%q): memcached 1.4.31+ with the LRU crawler enabled is required", line)
		case !strings.HasPrefix(line, "key="):
			continue
		}
		id, exp, ok := s.parseDumpLine(line)
		if !ok || (exp != 0 && exp <= now) {
			continue
		}
		if err := fn(id, exp); err != nil {
			return false, errFn{err}
		}
	}
}

// parseDumpLine returns the session id and absolute expiry (0 = never) of
// a dump line, or false for keys that are not sessions under our prefix
// (php-memcached's "lock." keys, other applications' keys).
func (s *Store) parseDumpLine(line string) (string, int64, bool) {
	var key, exp string
	for _, f := range strings.Fields(line) {
		switch {
		case strings.HasPrefix(f, "key="):
			key = f[4:]
		case strings.HasPrefix(f, "exp="):
			exp = f[4:]
		}
	}
	k, err := url.PathUnescape(key)
	if err != nil {
		return "", 0, false
	}
	id, ok := strings.CutPrefix(k, s.opts.Prefix)
	if !ok || validID(id) != nil {
		return "", 0, false
	}
	n, err := strconv.ParseInt(exp, 10, 64)
	if err != nil {
		return "", 0, false
	}
	if n < 0 {
		n = 0
	}
	return id, n, true
}
