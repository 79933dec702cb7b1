package redis

import (
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/phpsessd/phpsessd/handlers"
)

func init() {
	for _, scheme := range []string{
		"redis", "rediss", "redis+unix",
		"redis+sentinel", "rediss+sentinel", "sentinel",
		"redis+cluster", "rediss+cluster",
	} {
		handlers.Register(scheme, open)
	}
}

func open(ctx context.Context, u *url.URL) (handlers.Store, error) {
	cfg, err := parseURL(u)
	if err != nil {
		return nil, err
	}
	client := cfg.newClient()
	cfg.store.OwnsClient = true
	s, err := New(client, cfg.store)
	if err != nil {
		_ = client.Close()
		return nil, err
	}
	// A wrong address or password should fail at start-up, not on the first
	// PHP request; a Redis that is merely down right now is still accepted
	// so the daemon can start before it and recover once it is up.
	pctx, cancel := s.opContext(ctx)
	defer cancel()
	if err := client.Ping(pctx).Err(); err != nil && isAuthError(err) {
		_ = client.Close()
		return nil, fmt.Errorf("redis %s: %w", u.Redacted(), err)
	}
	return s, nil
}

func isAuthError(err error) bool {
	var re goredis.Error
	if !errors.As(err, &re) {
		return false
	}
	msg := re.Error()
	for _, p := range []string{"NOAUTH", "WRONGPASS", "NOPERM", "ERR invalid password", "ERR AUTH", "ERR DB index"} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

// versionHashBit marks versions derived from content (sessions written by
// phpredis, which keeps no meta). Counter versions stay below it; content
// versions are the bit plus the first 52 bits of the data's SHA-1, all
// exactly representable in Lua's doubles.
const (
	versionHashBit  = uint64(1) << 52
	versionHashMask = versionHashBit - 1
)

// Store is a handlers.Store on Redis, Valkey, Sentinel or Cluster.
// It is no handlers.Sizer: Redis keeps no per-prefix byte count, so sizing
// the sessions would take a MEMORY USAGE round trip for every key of every
// master, a full keyspace walk on top of the SCAN that counts them.
type Store struct {
	client      goredis.UniversalClient
	ks          keyspace
	opts        Options
	readTimeout time.Duration

	writePrefix string
	writeSeq    atomic.Uint64

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

// writeID names one Save call uniquely across daemons: a random per-store
// prefix and a sequence number, cheaper than fresh randomness per call.
func (s *Store) writeID() string {
	return s.writePrefix + strconv.FormatUint(s.writeSeq.Add(1), 36)
}

var _ handlers.Store = (*Store)(nil)

// New wraps an existing client. The client should have
// ContextTimeoutEnabled set so deadlines reach the socket.
func New(client goredis.UniversalClient, opts Options) (*Store, error) {
	opts.fill()
	ks, err := newKeyspace(opts.Prefix, opts.Layout)
	if err != nil {
		return nil, err
	}
	var rnd [8]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, fmt.Errorf("redis store: random write prefix: %w", err)
	}
	s := &Store{client: client, ks: ks, opts: opts, readTimeout: 3 * time.Second,
		writePrefix: hex.EncodeToString(rnd[:]) + "."}
	switch c := client.(type) {
	case *goredis.Client:
		s.readTimeout = c.Options().ReadTimeout
	case *goredis.ClusterClient:
		s.readTimeout = c.Options().ReadTimeout
	}
	return s, nil
}

// Client exposes the underlying client, for tools such as the migrate
// command and for tests.
func (s *Store) Client() goredis.UniversalClient { return s.client }

// Keys reports the data and meta key of a session, for operators and tests.
func (s *Store) Keys(id string) (data, meta string) {
	k := s.ks.forID(id)
	return k.data, k.meta
}

// errClosed is reported (wrapped in ErrUnavailable) after Close, also when
// the client belongs to the caller and stays open.
var errClosed = errors.New("store closed")

// checkCall refuses work for an already-finished context, so a cancelled
// caller gets its context error rather than a wrapped network error.
func (s *Store) checkCall(ctx context.Context, op, id string) error {
	if s.closed.Load() {
		return fmt.Errorf("redis %s %q: %w: %w", op, id, handlers.ErrUnavailable, errClosed)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("redis %s %q: %w", op, id, err)
	}
	return nil
}

func (s *Store) opContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, s.opts.OpTimeout)
}

// unavailable wraps a client error so the engine sees ErrUnavailable and
// callers still find context errors with errors.Is. Error replies that
// mean "this data is wrong" rather than "Redis cannot serve now" (a key of
// the wrong type under our name, a script bug) are not ErrUnavailable:
// retrying elsewhere or later would not help.
func unavailable(op, id string, err error) error {
	var re goredis.Error
	if errors.As(err, &re) {
		msg := re.Error()
		if strings.HasPrefix(msg, "WRONGTYPE") || strings.HasPrefix(msg, "ERR") {
			return fmt.Errorf("redis %s %q: %w", op, id, err)
		}
	}
	if id == "" {
		return fmt.Errorf("redis %s: %w: %w", op, handlers.ErrUnavailable, err)
	}
	return fmt.Errorf("redis %s %q: %w: %w", op, id, handlers.ErrUnavailable, err)
}

// metaBlob is what the meta hash's "m" field holds, msgpack-encoded so
// fields can be added without breaking older daemons.
type metaBlob struct {
	Meta    []byte `msgpack:"m,omitempty"`
	SavedMs int64  `msgpack:"t,omitempty"`
}

func contentVersion(sum [sha1.Size]byte) uint64 {
	return versionHashBit | binary.BigEndian.Uint64(sum[:8])>>12
}

// Load implements handlers.Store.
func (s *Store) Load(ctx context.Context, id string) (handlers.Record, error) {
	if err := s.ks.validID(id); err != nil {
		return handlers.Record{}, err
	}
	if err := s.checkCall(ctx, "load", id); err != nil {
		return handlers.Record{}, err
	}
	k := s.ks.forID(id)
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	res, err := loadScript.Run(ctx, s.client, []string{k.data, k.meta}).Slice()
	if err != nil {
		return handlers.Record{}, unavailable("load", id, err)
	}
	if len(res) == 0 {
		return handlers.Record{}, handlers.ErrNotFound
	}
	if len(res) != 5 {
		return handlers.Record{}, fmt.Errorf("redis load %q: unexpected reply of %d elements", id, len(res))
	}
	data, _ := res[0].(string)
	pttl, _ := res[1].(int64)
	v, _ := res[2].(string)
	h, _ := res[3].(string)
	m, _ := res[4].(string)
	if pttl == -2 {
		return handlers.Record{}, handlers.ErrNotFound
	}
	rec := handlers.Record{Data: []byte(data)}
	if pttl >= 0 {
		rec.Expires = time.Now().Add(time.Duration(pttl) * time.Millisecond)
	}
	sum := sha1.Sum(rec.Data)
	if v != "" && h == hex.EncodeToString(sum[:]) {
		n, perr := strconv.ParseUint(v, 10, 64)
		if perr == nil && n > 0 && n < versionHashBit {
			rec.Version = n
			if m != "" {
				var mb metaBlob
				if err := msgpack.Unmarshal([]byte(m), &mb); err != nil {
					return handlers.Record{}, fmt.Errorf("redis load %q: meta: %w", id, err)
				}
				rec.Meta = mb.Meta
			}
			return rec, nil
		}
	}
	// No meta, or meta describing other bytes (phpredis wrote since): the
	// version follows the content, which the save script can recompute.
	rec.Version = contentVersion(sum)
	return rec, nil
}

// ExactVersion implements handlers.ExactVersioner. Counter versions are
// exact: every save by a daemon moves the counter (by one, or up to its
// time-based seed), and a counter is only accepted while the stored hash
// still matches the data, so phpredis writing in between is caught.
// Content versions are not: a daemon's save that changes only the meta of
// a record phpredis wrote would keep the hash.
func (s *Store) ExactVersion(v uint64) bool { return v != 0 && v < versionHashBit }

// Save implements handlers.Store.
func (s *Store) Save(ctx context.Context, id string, rec handlers.Record, expect uint64) (uint64, error) {
	return s.save(ctx, id, rec, expect, s.writeID())
}

func (s *Store) save(ctx context.Context, id string, rec handlers.Record, expect uint64, writeID string) (uint64, error) {
	if err := s.ks.validID(id); err != nil {
		return 0, err
	}
	var kind, want string
	switch {
	case expect == 0:
		kind, want = "0", ""
	case expect < versionHashBit:
		kind, want = "c", strconv.FormatUint(expect, 10)
	case expect < versionHashBit<<1:
		kind, want = "h", fmt.Sprintf("%013x", expect&versionHashMask)
	default:
		return 0, handlers.ErrVersionMismatch // never handed out
	}
	now := time.Now()
	var px int64
	if !rec.Expires.IsZero() {
		px = rec.Expires.Sub(now).Milliseconds()
		if px <= 0 {
			px = -1
		}
	}
	blob, err := msgpack.Marshal(metaBlob{Meta: rec.Meta, SavedMs: now.UnixMilli()})
	if err != nil {
		return 0, fmt.Errorf("redis save %q: meta: %w", id, err)
	}
	sum := sha1.Sum(rec.Data)
	// A fresh counter starts at the current time in microseconds, so a
	// session deleted and created again never reuses an old version.
	seed := uint64(now.UnixMicro())
	if seed >= versionHashBit {
		seed %= versionHashBit
	}
	if seed == 0 {
		seed = 1
	}
	if err := s.checkCall(ctx, "save", id); err != nil {
		return 0, err
	}
	k := s.ks.forID(id)
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	n, err := saveScript.Run(ctx, s.client, []string{k.data, k.meta},
		kind, want, rec.Data, hex.EncodeToString(sum[:]), blob, px,
		s.opts.MetaGrace.Milliseconds(), seed, writeID).Int64()
	if err != nil {
		return 0, unavailable("save", id, err)
	}
	if n < 0 {
		return 0, handlers.ErrVersionMismatch
	}
	return uint64(n), nil
}

// Touch implements handlers.Store.
func (s *Store) Touch(ctx context.Context, id string, expires time.Time) error {
	if err := s.ks.validID(id); err != nil {
		return err
	}
	var px int64
	if !expires.IsZero() {
		px = time.Until(expires).Milliseconds()
		if px <= 0 {
			px = -1
		}
	}
	if err := s.checkCall(ctx, "touch", id); err != nil {
		return err
	}
	k := s.ks.forID(id)
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	n, err := touchScript.Run(ctx, s.client, []string{k.data, k.meta}, px, s.opts.MetaGrace.Milliseconds()).Int64()
	if err != nil {
		return unavailable("touch", id, err)
	}
	if n == 0 {
		return handlers.ErrNotFound
	}
	return nil
}

// Delete implements handlers.Store.
func (s *Store) Delete(ctx context.Context, id string) (bool, error) {
	if err := s.ks.validID(id); err != nil {
		return false, err
	}
	if err := s.checkCall(ctx, "delete", id); err != nil {
		return false, err
	}
	k := s.ks.forID(id)
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	n, err := deleteScript.Run(ctx, s.client, []string{k.data, k.meta}).Int64()
	if err != nil {
		return false, unavailable("delete", id, err)
	}
	return n > 0, nil
}

// scanBatch is the SCAN COUNT hint and the size of one PTTL pipeline.
const scanBatch = 500

// Scan implements handlers.Store. It walks every master of a cluster; a
// key created or deleted during the walk may or may not be reported, as
// with SCAN itself.
func (s *Store) Scan(ctx context.Context, fn func(id string, expires time.Time) error) error {
	if err := s.checkCall(ctx, "scan", ""); err != nil {
		return err
	}
	// A cluster is walked by one goroutine per master: calls to fn are
	// serialised, and once fn fails it is not called again.
	var (
		mu      sync.Mutex
		stopErr error
	)
	call := func(id string, exp time.Time) error {
		mu.Lock()
		defer mu.Unlock()
		if stopErr != nil {
			return stopErr
		}
		if err := fn(id, exp); err != nil {
			stopErr = err
			return err
		}
		return nil
	}
	if cc, ok := s.client.(*goredis.ClusterClient); ok {
		err := cc.ForEachMaster(ctx, func(ctx context.Context, node *goredis.Client) error {
			return s.scanNode(ctx, node, call)
		})
		if stopErr != nil {
			return stopErr // fn's own error, not another master's echo of it
		}
		return err
	}
	return s.scanNode(ctx, s.client, call)
}

func (s *Store) scanNode(ctx context.Context, c goredis.Cmdable, fn func(string, time.Time) error) error {
	pattern := s.ks.scanPattern()
	var cursor uint64
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		cctx, cancel := s.opContext(ctx)
		batch, next, err := c.ScanType(cctx, cursor, pattern, scanBatch, "string").Result()
		if err != nil {
			cancel()
			return unavailable("scan", "", err)
		}
		ids := make([]string, 0, len(batch))
		cmds := make([]*goredis.DurationCmd, 0, len(batch))
		pipe := c.Pipeline()
		for _, key := range batch {
			if id, ok := s.ks.idFromKey(key); ok {
				ids = append(ids, id)
				cmds = append(cmds, pipe.PTTL(cctx, key))
			}
		}
		if len(ids) > 0 {
			if _, err := pipe.Exec(cctx); err != nil && !errors.Is(err, goredis.Nil) {
				cancel()
				return unavailable("scan", "", err)
			}
		}
		cancel()
		now := time.Now()
		for i, id := range ids {
			d, err := cmds[i].Result()
			if err != nil || d == -2 {
				continue // expired or deleted since SCAN saw it
			}
			var exp time.Time
			if d >= 0 {
				exp = now.Add(d)
			}
			if err := fn(id, exp); err != nil {
				return err
			}
		}
		cursor = next
		if cursor == 0 {
			return nil
		}
	}
}

// Sweep implements handlers.Store; Redis expires sessions natively.
func (s *Store) Sweep(ctx context.Context, _ time.Time) (int, error) { return 0, ctx.Err() }

// Close implements handlers.Store. It closes the client only when the
// store opened it (handlers.Open) or Options.OwnsClient is set.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		if s.opts.OwnsClient {
			s.closeErr = s.client.Close()
		}
	})
	return s.closeErr
}
