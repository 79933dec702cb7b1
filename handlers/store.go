// Package handlers holds the session stores phpsessd keeps session data in:
// one small Store interface and its backends (memory, PHP-compatible files,
// Redis). A store only persists bytes with a version and an expiry; locking,
// merging and id policy live in the engine above it, so every backend stays
// a thin, testable piece that the shared suite in handlers/storetest checks.
package handlers

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"sync"
	"time"
)

// ErrNotFound reports a session that does not exist or has expired.
var ErrNotFound = errors.New("session not found")

// ErrVersionMismatch reports a compare-and-swap that lost: the stored
// version is not the one the caller expected. The caller re-reads, re-merges
// and tries again.
var ErrVersionMismatch = errors.New("session version mismatch")

// ErrUnavailable wraps backend failures (I/O errors, a dead Redis) so the
// engine can tell "the store is down" from "the session is absent".
var ErrUnavailable = errors.New("session store unavailable")

// Record is one stored session.
type Record struct {
	// Data is the session exactly as PHP encoded it.
	Data []byte
	// Version is assigned by the store on every successful Save; it is never
	// 0 for a stored record. 0 in Save's expect argument means "absent".
	Version uint64
	// Expires is when the session stops existing; the zero time means never.
	Expires time.Time
	// Meta is opaque to stores: the engine keeps its per-session metadata
	// here (serializer format, alias target, references...).
	Meta []byte
}

// Store is the interface every backend implements. Implementations must be
// safe for concurrent use, honour ctx deadlines on I/O, never return an
// expired record, and treat ids as opaque strings that the engine has
// already validated (they must still refuse ids that would escape their
// namespace, such as path separators in a files store).
type Store interface {
	// Load returns the record or ErrNotFound.
	Load(ctx context.Context, id string) (Record, error)
	// Save stores rec.Data, rec.Expires and rec.Meta if the stored version
	// equals expect (0: the session must be absent or expired) and returns
	// the new version; otherwise it returns ErrVersionMismatch and changes
	// nothing. rec.Version is ignored. The store keeps none of rec's
	// slices: the caller may reuse them as soon as Save returns.
	Save(ctx context.Context, id string, rec Record, expect uint64) (uint64, error)
	// Touch moves the expiry of an existing session without changing its
	// data or version; ErrNotFound if absent.
	Touch(ctx context.Context, id string, expires time.Time) error
	// Delete removes the session and reports whether it existed.
	Delete(ctx context.Context, id string) (bool, error)
	// Scan calls fn for every live session until fn returns an error, which
	// Scan then returns. The order is unspecified.
	Scan(ctx context.Context, fn func(id string, expires time.Time) error) error
	// Sweep deletes the sessions expired at now and returns how many it
	// removed. Stores with native expiry may return 0.
	Sweep(ctx context.Context, now time.Time) (int, error)
	// Close releases the store's resources; pending writes are flushed.
	Close() error
}

// Sizer is implemented by stores that can tell how much they hold without
// visiting every record, or by visiting each once as cheaply as Scan does.
// Metrics call it at most once a minute, in the background, in place of a
// Scan, so an implementation must be cheap enough for that: O(1) from
// counters kept anyway, or one pass over the listing Scan already walks.
// A store that would have to load records or ask its backend per key (the
// Redis store: MEMORY USAGE per key) does not implement it.
type Sizer interface {
	// Size returns the number of sessions held and the bytes they take in
	// the store's own accounting (each implementation documents which
	// bytes). Sessions expired but not yet swept may be included where
	// leaving them out would cost a read per session. A decorator whose
	// inner store is no Sizer returns an error wrapping ErrSizeUnsupported.
	Size(ctx context.Context) (sessions int64, bytes int64, err error)
}

// ExactVersioner is implemented by stores some or all of whose versions
// change with every successful Save, so an unchanged version proves that
// data and meta are both unchanged. Content-hash versions (files, records
// PHP wrote itself) do not qualify: a save that changes only the meta
// keeps the hash. ExactVersion answers for one version the store handed
// out, since a store may hand out both kinds. With this guarantee a writer
// that knows the version it read can save against it at once, without
// loading the record first: a mismatch still refuses the save and the
// writer falls back to loading and merging.
type ExactVersioner interface {
	ExactVersion(v uint64) bool
}

// ErrSizeUnsupported is returned by Size of a decorator (cache, sealed)
// when the store it wraps cannot size itself; callers fall back to Scan.
var ErrSizeUnsupported = fmt.Errorf("store size: %w", errors.ErrUnsupported)

// Opener opens a store from a parsed URL such as memory://?max_entries=1000
// or files:///var/lib/php/sessions.
type Opener func(ctx context.Context, u *url.URL) (Store, error)

var (
	openersMu sync.RWMutex
	openers   = map[string]Opener{}
)

// Register makes a store available under a URL scheme. Backends call it
// from init so the daemon can open any of them by URL.
func Register(scheme string, open Opener) {
	openersMu.Lock()
	defer openersMu.Unlock()
	if _, dup := openers[scheme]; dup {
		panic("handlers: scheme registered twice: " + scheme)
	}
	openers[scheme] = open
}

// Schemes lists the registered URL schemes.
func Schemes() []string {
	openersMu.RLock()
	defer openersMu.RUnlock()
	out := make([]string, 0, len(openers))
	for s := range openers {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// Open opens the store a URL names.
func Open(ctx context.Context, rawURL string) (Store, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("store url %q: %w", rawURL, err)
	}
	openersMu.RLock()
	open, ok := openers[u.Scheme]
	openersMu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("store url %q: unknown scheme %q (known: %v)", rawURL, u.Scheme, Schemes())
	}
	s, err := open(ctx, u)
	if err != nil {
		return nil, fmt.Errorf("open store %s://: %w", u.Scheme, err)
	}
	return s, nil
}
