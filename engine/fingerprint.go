package engine

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"time"

	"github.com/phpsessd/phpsessd/handlers"
)

// Fingerprint binding: a session remembers who created it (user agent, IP
// prefix) as salted, optionally keyed hashes, and a later READ that sends
// a different user agent or an address outside the prefix gets nothing,
// or, under FingerprintRegenerate, gets the session moved to a new id.
// It raises the bar for a stolen cookie replayed from another browser or
// network; it is not authentication (a user agent is easy to copy).
//
// Only the creating request's inputs are recorded, and only a READ that
// carries inputs is checked, so clients that send none (older shims, CLI
// scripts) keep working. A session created before binding was enabled, or
// by a request without inputs, is never checked.

const (
	defaultFPv4Bits = 24
	defaultFPv6Bits = 64
	fpHashLen       = 16
)

func (e *Engine) fingerprintOn() bool { return e.cfg.FingerprintUA || e.cfg.FingerprintIP }

func (e *Engine) fpBits(a netip.Addr) int {
	if a.Is4() {
		if b := e.cfg.FingerprintIPv4Prefix; b > 0 && b <= 32 {
			return b
		}
		return defaultFPv4Bits
	}
	if b := e.cfg.FingerprintIPv6Prefix; b > 0 && b <= 128 {
		return b
	}
	return defaultFPv6Bits
}

// ipPrefix returns the network part of a REMOTE_ADDR as text ("v4/24
// 192.0.2.0"), or "" when it is not an address. IPv4-mapped IPv6
// addresses count as IPv4, so a dual-stack socket does not flip families.
func (e *Engine) ipPrefix(raw string) string {
	a, err := netip.ParseAddr(raw)
	if err != nil {
		return ""
	}
	a = a.Unmap().WithZone("")
	bits := e.fpBits(a)
	p, err := a.Prefix(bits)
	if err != nil {
		return ""
	}
	fam := "v6/"
	if a.Is4() {
		fam = "v4/"
	}
	return fam + strconv.Itoa(bits) + " " + p.Addr().String()
}

func (e *Engine) fpHash(salt []byte, kind, value string) []byte {
	h := hmac.New(sha256.New, e.cfg.FingerprintKey)
	h.Write(salt)
	h.Write([]byte{0})
	h.Write([]byte(kind))
	h.Write([]byte{0})
	h.Write([]byte(value))
	return h.Sum(nil)[:fpHashLen]
}

// newFingerprint is the meta a session created by request r starts with.
func (e *Engine) newFingerprint(r ReadRequest) sessionMeta {
	var m sessionMeta
	if !e.fingerprintOn() {
		return m
	}
	salt := make([]byte, 8)
	if _, err := rand.Read(salt); err != nil {
		// Without a salt the binding would be guessable from the store;
		// rather not bind this session.
		e.log.Warn("no randomness for a fingerprint salt; session not bound", "err", err)
		return m
	}
	if e.cfg.FingerprintUA && r.HasUA {
		m.FPUA = e.fpHash(salt, "ua", r.UA)
	}
	if e.cfg.FingerprintIP {
		if p := e.ipPrefix(r.IP); p != "" {
			m.FPIP = e.fpHash(salt, "ip", p)
		}
	}
	if m.FPUA != nil || m.FPIP != nil {
		m.FPSalt = salt
	}
	return m
}

// FingerprintAction is what a READ whose fingerprint does not match gets.
type FingerprintAction string

const (
	// FingerprintRefuse: the read fails with ErrFingerprint (the default).
	FingerprintRefuse FingerprintAction = "refuse"
	// FingerprintRegenerate: when only the IP prefix changed (the user
	// agent matched or is not bound) and the client said it can follow a
	// move, the session moves to a new id, the old id is gone at once and
	// the new session is bound to the new inputs. Mobile users hop
	// between networks; refusing would log them out, while rotating the
	// id still takes it away from whoever saw it on the old network. A
	// user agent mismatch (another browser with the same cookie) is
	// always refused.
	FingerprintRegenerate FingerprintAction = "regenerate"
)

// FingerprintMovedReason is the mismatch reason reported for a read that
// moved its session rather than being refused.
const FingerprintMovedReason = "IP prefix changed; session moved to a new id"

// fingerprintMismatch says why r does not match the session's binding (""
// when it does), and whether the IP prefix is the only part that differs
// with the user agent vouched for: bound and equal, or not bound at all.
func (e *Engine) fingerprintMismatch(r ReadRequest, res resolved) (reason string, ipOnly bool) {
	if !e.fingerprintOn() || !res.found || len(res.meta.FPSalt) == 0 {
		return "", false
	}
	uaBound := e.cfg.FingerprintUA && res.meta.FPUA != nil
	if uaBound && r.HasUA && !hmac.Equal(res.meta.FPUA, e.fpHash(res.meta.FPSalt, "ua", r.UA)) {
		return "user agent changed", false
	}
	if e.cfg.FingerprintIP && res.meta.FPIP != nil {
		// A prefix length change in the config makes every address look
		// foreign; that is the safe direction.
		if p := e.ipPrefix(r.IP); p != "" && !hmac.Equal(res.meta.FPIP, e.fpHash(res.meta.FPSalt, "ip", p)) {
			// A bound user agent the request did not send cannot vouch
			// for it.
			return "IP prefix changed", !uaBound || r.HasUA
		}
	}
	return "", false
}

// enforceFingerprint refuses a read whose inputs do not match the ones the
// session was created with or, under FingerprintRegenerate, moves the
// session to a new id and returns it resolved there with that id.
func (c *Client) enforceFingerprint(ctx context.Context, r ReadRequest, res resolved) (resolved, string, error) {
	e := c.e
	reason, ipOnly := e.fingerprintMismatch(r, res)
	if reason == "" {
		return res, "", nil
	}
	if ipOnly && r.Movable && e.cfg.FingerprintAction == FingerprintRegenerate {
		moved, err := c.moveForFingerprint(ctx, r)
		if errors.Is(err, errMovedMeanwhile) {
			return c.refuseFingerprint(r, reason)
		}
		if err != nil {
			return resolved{}, "", fmt.Errorf("read session %s: move after a fingerprint mismatch: %w", r.ID, err)
		}
		if e.cfg.OnFingerprintMismatch != nil {
			e.cfg.OnFingerprintMismatch(r.ID, FingerprintMovedReason)
		}
		if ok, suppressed := e.fpLog.allow(); ok {
			e.log.Warn("session fingerprint mismatch; session moved to a new id", "session", shortID(r.ID),
				"new", shortID(moved.id), "reason", reason, "suppressed_since_last", suppressed)
		}
		return moved, moved.id, nil
	}
	return c.refuseFingerprint(r, reason)
}

func (c *Client) refuseFingerprint(r ReadRequest, reason string) (resolved, string, error) {
	e := c.e
	if e.cfg.OnFingerprintMismatch != nil {
		e.cfg.OnFingerprintMismatch(r.ID, reason)
	}
	if ok, suppressed := e.fpLog.allow(); ok {
		e.log.Warn("session fingerprint mismatch; read refused", "session", shortID(r.ID), "reason", reason, "suppressed_since_last", suppressed)
	}
	return resolved{}, "", &FingerprintError{ID: r.ID, Reason: reason}
}

// errMovedMeanwhile: the session left the id while a move waited its turn.
var errMovedMeanwhile = errors.New("session moved meanwhile")

// moveForFingerprint is a regenerate whose old id does not outlive it: the
// alias Regenerate leaves expires as it is written (its compare-and-swap
// still catches a write that lands during the copy) and is then deleted.
// The copy is then rebound to r's inputs.
func (c *Client) moveForFingerprint(ctx context.Context, r ReadRequest) (resolved, error) {
	e := c.e
	// Parallel requests of one page after a network change would each
	// move the session, the later ones moving it away from the id the
	// first was just given. The write slot makes them take turns (within
	// this daemon); the later ones then find the old id gone and are
	// refused like any unknown session.
	unlock, err := e.lockShard(ctx, r.ID)
	if err != nil {
		return resolved{}, err
	}
	defer unlock.unlock()
	res, err := e.resolve(ctx, r.ID)
	if err != nil {
		return resolved{}, err
	}
	if !res.found {
		return resolved{}, errMovedMeanwhile
	}
	nid, err := c.Regenerate(ctx, r.ID, sameShapeID(r.ID, e.cfg.MaxIDLength))
	if err != nil {
		return resolved{}, err
	}
	for _, old := range append(res.aliases, res.id) {
		// The records are already dead (expired, or aliases of one that
		// is); deleting only saves stores without native expiry the wait
		// for the sweep.
		if _, err := e.store.Delete(ctx, old); err != nil {
			e.log.Warn("could not delete a session id retired by a fingerprint move", "session", shortID(old), "err", err)
		}
	}
	fp := e.newFingerprint(r)
	for attempt := 0; attempt < maxCASRetries; attempt++ {
		cur, err := e.resolve(ctx, nid)
		if err == nil && !cur.found {
			err = handlers.ErrNotFound
		}
		if err != nil {
			_ = c.Release(ctx, nid)
			return resolved{}, fmt.Errorf("rebind %s: %w", shortID(nid), err)
		}
		m := cur.meta
		m.FPSalt, m.FPUA, m.FPIP = fp.FPSalt, fp.FPUA, fp.FPIP
		rec := cur.rec
		rec.Meta = encodeMeta(keepMeta(m, m.Format))
		v, err := e.store.Save(ctx, nid, rec, cur.rec.Version)
		if errors.Is(err, handlers.ErrVersionMismatch) {
			continue
		}
		if err != nil {
			_ = c.Release(ctx, nid)
			return resolved{}, fmt.Errorf("rebind %s: %w", shortID(nid), err)
		}
		cur.rec.Version, cur.rec.Meta, cur.meta = v, rec.Meta, m
		return cur, nil
	}
	_ = c.Release(ctx, nid)
	return resolved{}, fmt.Errorf("rebind %s: %w", shortID(nid), handlers.ErrVersionMismatch)
}

// sameShapeID asks for a new id of the old one's length and alphabet, so
// it fits whatever sid_length and sid_bits_per_character the app uses.
func sameShapeID(old string, maxLen int) IDOptions {
	// Regenerate reads a zero grace as the configured one; a nanosecond
	// has passed before anyone can load the alias.
	opt := IDOptions{Grace: time.Nanosecond}
	if n := len(old); n >= 22 && n <= 256 && n <= maxLen {
		opt.Length = n
	}
	opt.BitsPerChar = 4
	for i := 0; i < len(old); i++ {
		switch ch := old[i]; {
		case ch >= 'w' && ch <= 'z', ch >= 'A' && ch <= 'Z', ch == ',', ch == '-':
			opt.BitsPerChar = 6
		case ch >= 'g' && ch <= 'v':
			opt.BitsPerChar = max(opt.BitsPerChar, 5)
		}
	}
	return opt
}

// FingerprintError wraps ErrFingerprint with the session and the reason.
type FingerprintError struct {
	ID     string
	Reason string
}

func (e *FingerprintError) Error() string {
	// The message reaches PHP warnings and logs: a whole session id there
	// would hand the session to whoever reads them.
	return "session " + shortID(e.ID) + ": fingerprint mismatch: " + e.Reason
}

func (e *FingerprintError) Unwrap() error { return ErrFingerprint }
