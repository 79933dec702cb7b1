// Package engine is phpsessd's session engine: it decides, per request,
// whether a PHP session is read without a lock, read-only or locked; keeps
// the base each request read so a later write can be merged three-way
// against what other requests stored meanwhile; runs FIFO locks with
// hand-off, deadlines and leases; applies lockless key operations; and owns
// session id policy (generation, validation, regenerate aliases). Stores
// (package handlers) only persist bytes; the wire protocol (package
// protocol and the server) only carries calls into this package.
package engine

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/phpsessd/phpsessd/handlers"
)

// Mode is how a request holds its session.
type Mode string

const (
	// ModeAuto asks the engine to pick a mode from its mode rules.
	ModeAuto Mode = ""
	// ModeOptimistic never waits; writes are merged.
	ModeOptimistic Mode = "optimistic"
	// ModeReadonly never waits; a write that changes data is dropped.
	ModeReadonly Mode = "readonly"
	// ModeLocked holds an exclusive lock from read to write or close.
	ModeLocked Mode = "locked"
)

// Rule is the conflict rule for a key both sides changed.
type Rule string

const (
	RuleMine   Rule = "mine"
	RuleTheirs Rule = "theirs"
	RuleFail   Rule = "fail"
)

// KeyRule maps a key path pattern to a conflict rule. Patterns match the
// slash-joined key path ("cart/items", "flash/*"); '*' matches one path
// segment or the rest of a segment, "**" any number of segments.
type KeyRule struct {
	Pattern string
	Rule    Rule
}

// ModeRule picks a mode for requests whose method and path match.
// Method "*" or "" matches any; Path is a glob where '*' matches any run of
// characters including '/'. The first matching rule wins.
type ModeRule struct {
	Method string
	Path   string
	Mode   Mode
}

// Locker hands out exclusive, FIFO, leased locks on session ids. The
// default is in-process; a Redis-backed one serves several daemons.
type Locker interface {
	// Acquire blocks until owner holds the lock on id, ctx ends (the error
	// then wraps ErrLockTimeout when the deadline passed), or fails. The
	// lock is released by Lock.Release or when lease runs out.
	Acquire(ctx context.Context, id, owner string, lease time.Duration) (Lock, error)
}

// Lock is a held lock.
type Lock interface {
	// Release gives the lock to the next waiter at once. Idempotent.
	Release() error
}

// Config configures an Engine. Zero values mean the documented defaults.
type Config struct {
	Store  handlers.Store
	Locker Locker // nil: in-process FIFO locker
	Logger *slog.Logger

	ModeRules []ModeRule // default: everything optimistic
	KeyRules  []KeyRule  // default: mine
	Counters  []string   // key path patterns merged by deltas

	LockWait        time.Duration // default 30s
	LockLease       time.Duration // default 5m
	RegenerateGrace time.Duration // default 10s
	DefaultTTL      time.Duration // default 1440s (PHP's gc_maxlifetime)
	SweepInterval   time.Duration // default 30s
	StrictIDs       bool          // refuse unknown ids; default true via NewConfig/daemon flags
	MaxIDLength     int           // default 256
	MaxDataSize     int           // default 16 MiB

	// The daemon-wide cache of recently read session values, so a write
	// from a reconnected client still merges against its exact base.
	BaseCacheSize  int           // versions kept over all sessions, default 4096
	BaseCacheBytes int           // bytes, default 64 MiB
	BaseCacheTTL   time.Duration // default 10m

	// OnInvalidID, if set, is called for every malformed id the engine
	// refuses (a hook for alerting or fail2ban-style blocking). It runs on
	// the request path: keep it fast.
	OnInvalidID func(id, reason string)

	// SingleSessionRefs are reference patterns ('*' matches any run of
	// bytes, e.g. "user:*") for which adding a reference to a session
	// ends every other session carrying it (refs.go).
	SingleSessionRefs []string

	// Fingerprint binding (fingerprint.go), off unless one of these is set:
	// a session records hashes of the user agent and/or the IP prefix its
	// creating request sent, and a READ from another one is refused with
	// ErrFingerprint (or moved, see FingerprintAction). Reads without
	// fingerprint inputs are never refused.
	FingerprintUA         bool
	FingerprintIP         bool
	FingerprintIPv4Prefix int    // bits, default 24
	FingerprintIPv6Prefix int    // bits, default 64
	FingerprintKey        []byte // optional HMAC key shared by daemons; makes stored hashes useless without it
	// OnFingerprintMismatch, if set, is called for every refused or moved
	// read (for security.Signals). It runs on the request path: keep it
	// fast.
	OnFingerprintMismatch func(id, reason string)
	// FingerprintAction is what a mismatch does (FingerprintRefuse, the
	// default, or FingerprintRegenerate; see fingerprint.go).
	FingerprintAction FingerprintAction
}

// Sentinel errors. Errors returned by the engine wrap one of these (or a
// handlers error) with context; the server maps them to protocol errors.
var (
	ErrLockTimeout = errors.New("lock wait timeout")
	ErrInvalidID   = errors.New("invalid session id")
	ErrUnknownID   = errors.New("unknown session id")
	ErrConflict    = errors.New("merge conflict")
	ErrTooLarge    = errors.New("session data too large")
	ErrBadRequest  = errors.New("bad request")
	ErrClosed      = errors.New("engine closed")
	// ErrFingerprint: the request's user agent or IP prefix is not the one
	// the session was created with; nothing of the session was returned.
	ErrFingerprint = errors.New("session fingerprint mismatch")
)

// ConflictError is returned (wrapping ErrConflict) when a key under the
// fail rule was changed by both sides.
type ConflictError struct {
	ID   string
	Path string // slash-joined key path
}

func (e *ConflictError) Error() string {
	return "merge conflict on session " + e.ID + " key " + e.Path
}

func (e *ConflictError) Unwrap() error { return ErrConflict }

// ReadRequest is PHP's read callback.
type ReadRequest struct {
	ID       string
	Mode     Mode   // ModeAuto: from ModeRules
	Format   string // session.serialize_handler: php, php_binary, php_serialize, or other (opaque)
	TTL      time.Duration
	Method   string
	Path     string
	LockWait time.Duration // 0: Config.LockWait

	// Fingerprint inputs (protocol keywords UA and IP). HasUA tells an
	// empty user agent apart from a client that sends none; IP "" means
	// none was sent.
	UA    string
	HasUA bool
	IP    string
	// Movable: the client can continue under another id if the read
	// moves the session (FingerprintRegenerate); without it a mismatch
	// is refused whatever the action.
	Movable bool
}

// ReadResult is what a read hands out.
type ReadResult struct {
	Data    []byte
	Version uint64 // 0: the session does not exist yet
	Mode    Mode   // the mode granted
	// MovedTo is the session's new id when the read moved it away from a
	// mismatching fingerprint; the request must go on under that id.
	MovedTo string
}

// WriteStatus says what a write did.
type WriteStatus string

const (
	StatusWritten   WriteStatus = "written"   // stored as sent
	StatusMerged    WriteStatus = "merged"    // merged with a concurrent change
	StatusUnchanged WriteStatus = "unchanged" // same bytes as read: expiry touched only
	StatusDropped   WriteStatus = "dropped"   // read-only request changed data: not stored
)

// WriteRequest is PHP's write callback.
type WriteRequest struct {
	ID          string
	Data        []byte
	BaseVersion uint64 // the version the request read
	Format      string
	TTL         time.Duration
}

// WriteResult reports the outcome of a write.
type WriteResult struct {
	Status    WriteStatus
	Version   uint64
	Conflicts int // same-key conflicts resolved by a rule
}

// LockRequest upgrades an optimistic request to locked mid-request. Data is
// the request's current encoded session: it is merged onto the fresh
// stored value under the lock and the result is returned.
type LockRequest struct {
	ID       string
	Data     []byte
	Format   string
	TTL      time.Duration
	LockWait time.Duration
}

// OpKind is a lockless operation on one top-level session key.
type OpKind string

const (
	OpIncr   OpKind = "INCR"
	OpAppend OpKind = "APPEND"
	OpPush   OpKind = "PUSH"
	OpSet    OpKind = "SET"
	OpUnset  OpKind = "UNSET"
)

// OpRequest is a lockless operation applied atomically in the daemon.
type OpRequest struct {
	ID     string
	Kind   OpKind
	Key    string
	Value  []byte // APPEND: raw string; PUSH, SET: one serialize()d value
	Delta  int64  // INCR
	Format string // used when the session does not exist yet
	TTL    time.Duration
}

// OpResult is the key's new value, serialized, and for INCR the integer.
type OpResult struct {
	Value   []byte
	Int     int64 // INCR: new value; APPEND: new length; PUSH: new count; UNSET: 1 if removed
	Version uint64
}

// IDOptions mirror PHP's session.sid_length and sid_bits_per_character.
type IDOptions struct {
	Length      int // 22..256, default 32
	BitsPerChar int // 4, 5 or 6, default 4
	// Grace is how long Regenerate keeps the old id as an alias;
	// 0: Config.RegenerateGrace. Ignored by CreateID.
	Grace time.Duration
}

// Info describes one session for admins (JSON-friendly).
type Info struct {
	ID         string    `json:"id"`
	Exists     bool      `json:"exists"`
	Version    uint64    `json:"version"`
	Size       int       `json:"size"`
	Format     string    `json:"format,omitempty"`
	Expires    time.Time `json:"expires,omitempty"`
	AliasOf    string    `json:"alias_of,omitempty"`
	LockHolder string    `json:"lock_holder,omitempty"`
	Refs       []string  `json:"refs,omitempty"`
	Data       any       `json:"data,omitempty"` // decoded JSON view when the format is known
}

// Stats are engine counters for the STATS command and metrics. It is a
// plain value, copied on every scrape, so it holds no maps or slices.
// The JSON names are part of the wire protocol (STATS, PROTOCOL.md) and
// snake_case like the server's half of that reply, so scripts need not
// know Go's field names.
type Stats struct {
	Reads     uint64 `json:"reads"`
	Writes    uint64 `json:"writes"`
	Merges    uint64 `json:"merges"`
	Conflicts uint64 `json:"conflicts"`
	Dropped   uint64 `json:"dropped"`
	Unchanged uint64 `json:"unchanged"`
	// Conflicts split by how they were resolved; they add up to Conflicts.
	// A key removed by one side and changed by the other counts under
	// theirs whatever its rule, because a removal never wins.
	ConflictsMine   uint64 `json:"conflicts_mine"`
	ConflictsTheirs uint64 `json:"conflicts_theirs"`
	ConflictsFail   uint64 `json:"conflicts_fail"`
	LockWaits       uint64 `json:"lock_waits"`
	LockTimeouts    uint64 `json:"lock_timeouts"`
	LockHandOffs    uint64 `json:"lock_hand_offs"`
	InvalidIDs      uint64 `json:"invalid_ids"`
	UnknownIDs      uint64 `json:"unknown_ids"`
	Regenerates     uint64 `json:"regenerates"`
	Swept           uint64 `json:"swept"`
	LocksHeld       int64  `json:"locks_held"`
	Clients         int64  `json:"clients"`
}
