package sealed

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/phpsessd/phpsessd/handlers"
)

// ResealStats reports what Reseal did.
type ResealStats struct {
	Scanned  int // sessions Scan listed
	Resealed int // rewritten under the current key
	Current  int // already sealed under the current key
	Vanished int // deleted or expired before they could be rewritten
	Failed   int // could not be opened (unknown key, tampered, corrupt)
}

// resealAttempts bounds the load-reseal-save loop per session; a session
// that keeps changing is being written by the daemon, which seals it under
// the current key anyway.
const resealAttempts = 8

// Reseal rewrites every record of s that is not encrypted under the current
// key (plain records from before sealing, compressed-only ones, records of
// older keys), so that old keys can be dropped and RequireEncrypted turned
// on. Each rewrite is a compare-and-swap on the version it read, so it is
// safe while the daemon serves: a session written meanwhile is re-read (and
// is then usually current already). Data and meta are kept; a Touch racing
// with the rewrite may lose its expiry extension (the session then expires
// at the time read here, never earlier than before the Touch).
//
// The ids are listed first (one string per session in memory) because
// some stores' Scan must not be re-entered with writes. Records that fail
// to open are counted and reported in the returned error, not rewritten.
func Reseal(ctx context.Context, s *Store) (ResealStats, error) {
	var st ResealStats
	if s.current == "" {
		return st, errors.New("sealed: reseal: no keys configured")
	}
	var ids []string
	err := s.inner.Scan(ctx, func(id string, _ time.Time) error {
		ids = append(ids, id)
		return nil
	})
	if err != nil {
		return st, fmt.Errorf("sealed: reseal: scan: %w", err)
	}
	st.Scanned = len(ids)
	var failures []error
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return st, fmt.Errorf("sealed: reseal: %w", err)
		}
		outcome, err := s.resealOne(ctx, id)
		switch outcome {
		case resealDone:
			st.Resealed++
		case resealCurrent:
			st.Current++
		case resealVanished:
			st.Vanished++
		case resealFailed:
			st.Failed++
			if len(failures) < 10 {
				failures = append(failures, err)
			}
		case resealAbort:
			return st, fmt.Errorf("sealed: reseal session %s: %w", id, err)
		}
	}
	if st.Failed > 0 {
		return st, fmt.Errorf("sealed: reseal: %d sessions could not be opened (first %d: %w)", st.Failed, len(failures), errors.Join(failures...))
	}
	return st, nil
}

type resealOutcome int

const (
	resealDone resealOutcome = iota
	resealCurrent
	resealVanished
	resealFailed
	resealAbort
)

func (s *Store) resealOne(ctx context.Context, id string) (resealOutcome, error) {
	for attempt := 0; attempt < resealAttempts; attempt++ {
		rec, err := s.inner.Load(ctx, id)
		if errors.Is(err, handlers.ErrNotFound) {
			return resealVanished, nil
		}
		if err != nil {
			return resealAbort, fmt.Errorf("load: %w", err)
		}
		if kid, _, herr := keyOf(rec.Data); herr == nil && kid == s.current {
			return resealCurrent, nil
		}
		plain, err := s.open(id, rec.Data)
		if err != nil {
			if errors.Is(err, ErrNotEncrypted) {
				// RequireEncrypted must not stop the conversion it needs.
				plain, err = s.openAny(id, rec.Data)
			}
			if err != nil {
				return resealFailed, fmt.Errorf("session %s: %w", id, err)
			}
		}
		rec.Data, err = s.seal(id, plain)
		if err != nil {
			return resealAbort, err
		}
		_, err = s.inner.Save(ctx, id, rec, rec.Version)
		if errors.Is(err, handlers.ErrVersionMismatch) {
			continue
		}
		if err != nil {
			return resealAbort, fmt.Errorf("save: %w", err)
		}
		return resealDone, nil
	}
	// Still changing after every attempt: it is being written right now,
	// and those writes are sealed under the current key.
	return resealCurrent, nil
}

// openAny opens a record ignoring RequireEncrypted.
func (s *Store) openAny(id string, raw []byte) ([]byte, error) {
	return s.openWith(id, raw, false)
}
