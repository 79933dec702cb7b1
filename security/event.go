package security

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Kind names a class of security event.
type Kind string

// Event kinds. New kinds may be added; hook consumers should ignore kinds
// they do not know.
const (
	// KindInvalidID: a malformed session id (bad charset or length) was
	// refused before any store access. Scanners and injection attempts.
	KindInvalidID Kind = "invalid_id"
	// KindUnknownID: a well-formed id that names no session, refused in
	// strict mode. Session fixation attempts or guessing.
	KindUnknownID Kind = "unknown_id"
	// KindAuthFailure: a client offered a wrong token.
	KindAuthFailure Kind = "auth_failure"
	// KindFingerprintMismatch: a session was presented with a user agent or
	// IP prefix other than the one it is bound to (possible hijacking).
	KindFingerprintMismatch Kind = "fingerprint_mismatch"
)

// SchemaVersion is the "v" field of every event.
const SchemaVersion = 1

// Limits keep one event small whatever a client sent.
const (
	MaxKindLen    = 64
	MaxSourceLen  = 256
	MaxIDLen      = 64
	MaxReasonLen  = 256
	MaxHostLen    = 256
	MaxPayloadLen = 8 << 10
)

// Event is one security signal as hooks receive it: a JSON object on a
// command's stdin or as an HTTP POST body (see docs/operations.md).
type Event struct {
	// V is SchemaVersion.
	V int `json:"v"`
	// Time is when the event was reported (RFC 3339, UTC).
	Time time.Time `json:"time"`
	Kind Kind      `json:"kind"`
	// Source is who caused it: "tcp:203.0.113.7", "unix", a client name,
	// or "engine" when the reporter does not know the peer.
	Source string `json:"source"`
	// ID is the offending session id, only for invalid_id (a malformed id
	// is not a credential); truncated to MaxIDLen and made printable.
	ID string `json:"id,omitempty"`
	// IDHash is the first 16 hex digits of SHA-256 of the session id, for
	// every kind with an id: it correlates events without ever putting a
	// possibly valid session id in logs or hook payloads.
	IDHash string `json:"id_hash,omitempty"`
	// Reason is a short human-readable detail.
	Reason string `json:"reason,omitempty"`
	// Count is how many events of this kind from this source were seen so
	// far (since the daemon started, or since the source was last evicted
	// from the bounded table).
	Count uint64 `json:"count"`
	// Suppressed is how many events of this kind from this source were
	// neither logged nor posted since the previous one that was.
	Suppressed uint64 `json:"suppressed"`
	// Host is the reporting machine's hostname.
	Host string `json:"host,omitempty"`
}

// ErrBadEvent is wrapped by DecodeEvent for payloads that are not a valid
// event.
var ErrBadEvent = errors.New("invalid security event")

// HashID returns the IDHash of a session id.
func HashID(id string) string {
	if id == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:8])
}

// clean makes s valid, printable UTF-8 of at most max bytes: control
// characters become '?', invalid bytes U+FFFD, and a cut never splits a
// rune. Applying it twice changes nothing, so an encoded event decodes to
// exactly what was encoded.
func clean(s string, max int) string {
	var b strings.Builder
	for _, r := range s {
		if r == utf8.RuneError || r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			if r == utf8.RuneError {
				r = '\uFFFD'
			} else {
				r = '?'
			}
		}
		if b.Len()+utf8.RuneLen(r) > max {
			break
		}
		b.WriteRune(r)
	}
	return b.String()
}

// normalize applies the limits and canonical forms the encoder guarantees.
func (e Event) normalize() Event {
	e.V = SchemaVersion
	e.Time = e.Time.UTC().Truncate(time.Millisecond)
	e.Kind = Kind(clean(string(e.Kind), MaxKindLen))
	e.Source = clean(e.Source, MaxSourceLen)
	e.ID = clean(e.ID, MaxIDLen)
	e.IDHash = clean(e.IDHash, 16)
	e.Reason = clean(e.Reason, MaxReasonLen)
	e.Host = clean(e.Host, MaxHostLen)
	return e
}

// EncodeEvent returns the hook payload for e: one JSON object and a
// newline, at most MaxPayloadLen bytes. Fields are normalized first
// (printable UTF-8, truncated to their limits, time in UTC to the
// millisecond), so DecodeEvent(EncodeEvent(e)) equals e normalized.
func EncodeEvent(e Event) ([]byte, error) {
	e = e.normalize()
	if e.Kind == "" {
		return nil, fmt.Errorf("%w: empty kind", ErrBadEvent)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(e); err != nil {
		return nil, fmt.Errorf("encode security event: %w", err)
	}
	if buf.Len() > MaxPayloadLen {
		return nil, fmt.Errorf("%w: %d bytes over %d", ErrBadEvent, buf.Len(), MaxPayloadLen)
	}
	return buf.Bytes(), nil
}

// DecodeEvent parses a hook payload, for hook receivers written in Go. It
// accepts exactly one JSON object of schema version 1, ignores unknown
// fields (later versions may add some) and enforces the field limits.
func DecodeEvent(b []byte) (Event, error) {
	var e Event
	if len(b) > MaxPayloadLen {
		return e, fmt.Errorf("%w: %d bytes over %d", ErrBadEvent, len(b), MaxPayloadLen)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&e); err != nil {
		return Event{}, fmt.Errorf("%w: %v", ErrBadEvent, err)
	}
	if dec.More() {
		return Event{}, fmt.Errorf("%w: trailing data after the event", ErrBadEvent)
	}
	switch {
	case e.V != SchemaVersion:
		return Event{}, fmt.Errorf("%w: schema version %d, want %d", ErrBadEvent, e.V, SchemaVersion)
	case e.Kind == "":
		return Event{}, fmt.Errorf("%w: empty kind", ErrBadEvent)
	}
	if n := e.normalize(); n != e {
		return Event{}, fmt.Errorf("%w: fields outside their limits or not printable", ErrBadEvent)
	}
	return e, nil
}
