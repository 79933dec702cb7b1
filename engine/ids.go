package engine

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/phpsessd/phpsessd/handlers"
)

// idAlphabet is PHP's own: the first 16 characters serve 4 bits per
// character, the first 32 serve 5, all 64 serve 6.
const idAlphabet = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ,-"

// maxCreateAttempts bounds the search for an unused id; with at least 88
// random bits a collision is already practically impossible.
const maxCreateAttempts = 8

func validIDChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == ',' || c == '-'
}

// checkID applies the id rules before anything touches the store, so an id
// can never be a path trick or a key in another namespace.
func (e *Engine) checkID(id string) error {
	bad := ""
	switch {
	case id == "":
		bad = "empty"
	case len(id) > e.cfg.MaxIDLength:
		bad = fmt.Sprintf("longer than %d bytes", e.cfg.MaxIDLength)
	case IsReservedID(id):
		bad = "reserved prefix " + reservedIDPrefix
	default:
		for i := 0; i < len(id); i++ {
			if !validIDChar(id[i]) {
				bad = fmt.Sprintf("byte 0x%02x at %d outside [A-Za-z0-9,-]", id[i], i)
				break
			}
		}
	}
	if bad == "" {
		return nil
	}
	e.st.invalidIDs.Add(1)
	if e.cfg.OnInvalidID != nil {
		e.cfg.OnInvalidID(id, bad)
	}
	if ok, suppressed := e.invalidLog.allow(); ok {
		shown := id
		if len(shown) > 64 {
			shown = shown[:64] + "…"
		}
		e.log.Warn("invalid session id refused", "id", fmt.Sprintf("%q", shown), "reason", bad, "suppressed_since_last", suppressed)
	}
	return fmt.Errorf("%w: %s", ErrInvalidID, bad)
}

func newID(opt IDOptions) (string, error) {
	n, bits := opt.Length, opt.BitsPerChar
	if n == 0 {
		n = 32
	}
	if bits == 0 {
		bits = 4
	}
	if n < 22 || n > 256 {
		return "", fmt.Errorf("%w: id length %d outside 22..256", ErrBadRequest, n)
	}
	if bits < 4 || bits > 6 {
		return "", fmt.Errorf("%w: bits per character %d not 4, 5 or 6", ErrBadRequest, bits)
	}
	buf := make([]byte, n)
	if _, err := rand.Read(buf); err != nil {
		return "", fmt.Errorf("create session id: %w", err)
	}
	// 2^bits divides 256, so masking one random byte per character is
	// uniform over the alphabet.
	mask := byte(1<<bits - 1)
	for i, b := range buf {
		buf[i] = idAlphabet[b&mask]
	}
	return string(buf), nil
}

// CreateID makes a new crypto-random id that is not in use.
func (e *Engine) CreateID(ctx context.Context, opt IDOptions) (string, error) {
	if err := e.enter(); err != nil {
		return "", err
	}
	if opt.Length > e.cfg.MaxIDLength {
		return "", fmt.Errorf("%w: id length %d over the limit %d", ErrBadRequest, opt.Length, e.cfg.MaxIDLength)
	}
	for i := 0; i < maxCreateAttempts; i++ {
		id, err := newID(opt)
		if err != nil {
			return "", err
		}
		if IsReservedID(id) {
			continue
		}
		_, err = e.store.Load(ctx, id)
		if errors.Is(err, handlers.ErrNotFound) {
			return id, nil
		}
		if err != nil {
			return "", fmt.Errorf("create session id: check %s: %w", id, err)
		}
	}
	return "", fmt.Errorf("create session id: %d candidates in a row were taken", maxCreateAttempts)
}

// ValidateID reports whether id is well-formed and names a live session or
// a live regenerate alias. A malformed id returns an error wrapping
// ErrInvalidID. With StrictIDs off every well-formed id is accepted, which
// is what PHP does without session.use_strict_mode.
func (e *Engine) ValidateID(ctx context.Context, id string) (bool, error) {
	if err := e.enter(); err != nil {
		return false, err
	}
	if err := e.checkID(id); err != nil {
		return false, err
	}
	if !e.cfg.StrictIDs {
		return true, nil
	}
	_, err := e.store.Load(ctx, id)
	if errors.Is(err, handlers.ErrNotFound) {
		e.st.unknownIDs.Add(1)
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("validate session %s: %w", id, err)
	}
	// A live alias record counts: requests still carrying the old cookie
	// during a regenerate grace must keep their session.
	return true, nil
}

// Regenerate moves the session old to a new id, keeps old as an alias of it
// for the grace period, and returns the new id.
//
// It only uses the Store interface (load, compare-and-swap save), so it is
// safe when several daemons share one store: a write that lands on the old
// record between the copy and the alias makes the alias save fail its
// compare-and-swap, and the copy is redone with that write included.
func (c *Client) Regenerate(ctx context.Context, old string, opt IDOptions) (string, error) {
	if err := c.enter(); err != nil {
		return "", err
	}
	e := c.e
	if err := e.checkID(old); err != nil {
		return "", err
	}
	grace := opt.Grace
	if grace <= 0 {
		grace = e.cfg.RegenerateGrace
	}
	newID, err := e.CreateID(ctx, opt)
	if err != nil {
		return "", fmt.Errorf("regenerate %s: %w", old, err)
	}
	b := c.base(old)
	done := false
	defer func() {
		if !done {
			// A lock taken on the new id must not outlive a failed move.
			c.releaseLocks(newID)
		}
	}()
	var newVersion uint64
	var target string
	var format string
	var copied []byte
	for attempt := 0; ; attempt++ {
		if attempt >= maxCASRetries {
			return "", fmt.Errorf("regenerate %s: session kept changing: %w", old, handlers.ErrVersionMismatch)
		}
		res, err := e.resolve(ctx, old)
		if err != nil {
			return "", fmt.Errorf("regenerate %s: %w", old, err)
		}
		target = res.id
		if !res.found {
			// Nothing stored yet: there is nothing for old-cookie requests
			// to keep, so no alias; the request writes to the new id.
			break
		}
		if attempt == 0 && c.holds(target) {
			// The lock moves with the session; nobody else knows newID yet,
			// so this does not wait.
			if err := c.acquire(ctx, newID, e.cfg.LockWait); err != nil {
				return "", fmt.Errorf("regenerate %s: %w", old, err)
			}
		}
		format = res.meta.Format
		expires := res.rec.Expires
		if expires.IsZero() {
			expires = time.Now().Add(e.cfg.DefaultTTL)
		}
		// References and fingerprint move with the session; the new id is
		// indexed before it exists so that a KILL never misses it.
		for _, ref := range res.meta.Refs {
			if err := e.indexAdd(ctx, ref, newID, expires); err != nil {
				return "", fmt.Errorf("regenerate %s: index reference %q: %w", old, ref, err)
			}
		}
		v, err := e.store.Save(ctx, newID, handlers.Record{
			Data: res.rec.Data, Expires: expires, Meta: encodeMeta(keepMeta(res.meta, format)),
		}, newVersion)
		if err != nil {
			if newVersion == 0 && errors.Is(err, handlers.ErrVersionMismatch) {
				return "", fmt.Errorf("regenerate %s: new id was taken meanwhile: %w", old, err)
			}
			return "", fmt.Errorf("regenerate %s: copy to new id: %w", old, err)
		}
		newVersion = v
		copied = res.rec.Data
		_, err = e.store.Save(ctx, target, handlers.Record{
			Expires: time.Now().Add(grace), Meta: encodeMeta(sessionMeta{Format: format, Alias: newID}),
		}, res.rec.Version)
		if errors.Is(err, handlers.ErrVersionMismatch) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("regenerate %s: make alias: %w", old, err)
		}
		break
	}
	done = true
	e.st.regenerates.Add(1)
	e.log.Info("session regenerated", "new", shortID(newID), "old", shortID(old), "grace", grace)

	// The request goes on under the new id: its base moves there so its
	// final write merges correctly, and a lock it held comes along.
	// The base stays what the request read, not the copy: writes other
	// requests made since then are in the copy but not in the request's
	// $_SESSION, and must not look like removals to the final merge.
	nb := &clientBase{target: newID, version: newVersion, exact: true, data: copied, mode: ModeOptimistic}
	if b != nil {
		nb.mode, nb.ttl, nb.format = b.mode, b.ttl, b.format
		nb.data = b.data
		nb.exact = b.exact && bytes.Equal(b.data, copied)
	}
	if nb.format == "" {
		nb.format = effectiveFormat(format)
	}
	c.mu.Lock()
	if !c.closed {
		delete(c.bases, old)
		c.bases[newID] = nb
	}
	c.mu.Unlock()
	c.releaseLocks(target, old)
	return newID, nil
}

// shortID keeps session ids out of logs in full: a prefix is enough to
// correlate and not enough to hijack.
func shortID(id string) string {
	if len(id) > 8 {
		return id[:8] + "…"
	}
	return id
}
