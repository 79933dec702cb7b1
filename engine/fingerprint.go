package engine

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"net/netip"
	"strconv"
)

// Fingerprint binding: a session remembers who created it (user agent, IP
// prefix) as salted, optionally keyed hashes, and a later READ that sends
// a different user agent or an address outside the prefix gets nothing.
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

// checkFingerprint refuses a read whose inputs do not match the ones the
// session was created with.
func (e *Engine) checkFingerprint(r ReadRequest, res resolved) error {
	if !e.fingerprintOn() || !res.found || len(res.meta.FPSalt) == 0 {
		return nil
	}
	reason := ""
	if e.cfg.FingerprintUA && r.HasUA && res.meta.FPUA != nil &&
		!hmac.Equal(res.meta.FPUA, e.fpHash(res.meta.FPSalt, "ua", r.UA)) {
		reason = "user agent changed"
	}
	if reason == "" && e.cfg.FingerprintIP && res.meta.FPIP != nil {
		// A prefix length change in the config makes every address look
		// foreign; that is the safe direction.
		if p := e.ipPrefix(r.IP); p != "" && !hmac.Equal(res.meta.FPIP, e.fpHash(res.meta.FPSalt, "ip", p)) {
			reason = "IP prefix changed"
		}
	}
	if reason == "" {
		return nil
	}
	if e.cfg.OnFingerprintMismatch != nil {
		e.cfg.OnFingerprintMismatch(r.ID, reason)
	}
	if ok, suppressed := e.fpLog.allow(); ok {
		e.log.Warn("session fingerprint mismatch; read refused", "session", shortID(r.ID), "reason", reason, "suppressed_since_last", suppressed)
	}
	return &FingerprintError{ID: r.ID, Reason: reason}
}

// FingerprintError wraps ErrFingerprint with the session and the reason.
type FingerprintError struct {
	ID     string
	Reason string
}

func (e *FingerprintError) Error() string {
	return "session " + e.ID + ": fingerprint mismatch: " + e.Reason
}

func (e *FingerprintError) Unwrap() error { return ErrFingerprint }
