package sealed

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/phpsessd/phpsessd/handlers"
)

// Key is one AES-256 key and the id records name it by.
type Key struct {
	ID     string
	Secret [32]byte
}

// DefaultMaxSize bounds a decoded record: a compressed record claiming to
// inflate beyond it is refused instead of exhausting memory.
const DefaultMaxSize = 64 << 20

// Options configure a sealed store. With no keys and CompressOver <= 0 the
// store passes records through unchanged (it still reads sealed ones it
// can, so sealing can be turned off again without losing compressed data).
type Options struct {
	// Keys: Keys[0] is the current key and encrypts every write; all keys
	// decrypt. Ids must be unique. Empty: no encryption.
	Keys []Key
	// CompressOver: records whose PHP data is longer than this many bytes
	// are zstd-compressed (kept only when that makes them smaller).
	// 0 or negative: never compress.
	CompressOver int
	// RequireEncrypted refuses to load records that are not encrypted
	// (plain data written before sealing, or compressed-only records).
	// Turn it on once Reseal has converted every record.
	RequireEncrypted bool
	// MaxSize bounds a decompressed record; 0 means DefaultMaxSize.
	MaxSize int
}

// Store seals records on the way into an inner store and opens them on the
// way out. Safe for concurrent use.
type Store struct {
	inner   handlers.Store
	opts    Options
	aeads   map[string]cipher.AEAD
	current string

	enc *zstd.Encoder
	dec *zstd.Decoder

	closeOnce sync.Once
}

var _ handlers.Store = (*Store)(nil)

// New wraps inner. Keys are validated here (unique, well-formed ids) so
// that a bad key file stops the daemon at start rather than at the first
// write.
func New(inner handlers.Store, o Options) (*Store, error) {
	if inner == nil {
		return nil, errors.New("sealed: no inner store")
	}
	if o.MaxSize <= 0 {
		o.MaxSize = DefaultMaxSize
	}
	s := &Store{inner: inner, opts: o, aeads: make(map[string]cipher.AEAD, len(o.Keys))}
	for i, k := range o.Keys {
		if err := checkKeyID(k.ID); err != nil {
			return nil, fmt.Errorf("sealed: key %d: %w", i+1, err)
		}
		if _, dup := s.aeads[k.ID]; dup {
			return nil, fmt.Errorf("sealed: key id %q listed twice", k.ID)
		}
		if k.Secret == ([32]byte{}) {
			return nil, fmt.Errorf("sealed: key %q is all zeros", k.ID)
		}
		block, err := aes.NewCipher(k.Secret[:])
		if err != nil {
			return nil, fmt.Errorf("sealed: key %q: %w", k.ID, err)
		}
		gcm, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("sealed: key %q: %w", k.ID, err)
		}
		s.aeads[k.ID] = gcm
	}
	if len(o.Keys) > 0 {
		s.current = o.Keys[0].ID
	}
	var err error
	// EncodeAll/DecodeAll only: no stream goroutines are started, and the
	// decoder refuses frames that would inflate beyond MaxSize.
	s.enc, err = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(2))
	if err != nil {
		return nil, fmt.Errorf("sealed: zstd encoder: %w", err)
	}
	s.dec, err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(2), zstd.WithDecoderMaxMemory(uint64(o.MaxSize)))
	if err != nil {
		s.enc.Close()
		return nil, fmt.Errorf("sealed: zstd decoder: %w", err)
	}
	return s, nil
}

// CurrentKeyID is the id new writes are encrypted under ("" without keys).
func (s *Store) CurrentKeyID() string { return s.current }

// Inner returns the wrapped store (Reseal and tools read raw records).
func (s *Store) Inner() handlers.Store { return s.inner }

// Load implements handlers.Store.
func (s *Store) Load(ctx context.Context, id string) (handlers.Record, error) {
	rec, err := s.inner.Load(ctx, id)
	if err != nil {
		return rec, err
	}
	data, err := s.open(id, rec.Data)
	if err != nil {
		return handlers.Record{}, fmt.Errorf("sealed: load session %s: %w", id, err)
	}
	rec.Data = data
	return rec, nil
}

// Save implements handlers.Store.
func (s *Store) Save(ctx context.Context, id string, rec handlers.Record, expect uint64) (uint64, error) {
	sealed, err := s.seal(id, rec.Data)
	if err != nil {
		return 0, fmt.Errorf("sealed: save session %s: %w", id, err)
	}
	rec.Data = sealed
	return s.inner.Save(ctx, id, rec, expect)
}

// Touch implements handlers.Store.
func (s *Store) Touch(ctx context.Context, id string, expires time.Time) error {
	return s.inner.Touch(ctx, id, expires)
}

// Delete implements handlers.Store.
func (s *Store) Delete(ctx context.Context, id string) (bool, error) {
	return s.inner.Delete(ctx, id)
}

// Scan implements handlers.Store.
func (s *Store) Scan(ctx context.Context, fn func(id string, expires time.Time) error) error {
	return s.inner.Scan(ctx, fn)
}

// Sweep implements handlers.Store.
func (s *Store) Sweep(ctx context.Context, now time.Time) (int, error) {
	return s.inner.Sweep(ctx, now)
}

var _ handlers.Sizer = (*Store)(nil)

// Size implements handlers.Sizer by asking the inner store, so the bytes
// are the sealed records as stored (ciphertext, compressed, with headers),
// not the PHP data the engine sees: that is what occupies the backend.
func (s *Store) Size(ctx context.Context) (sessions, bytes int64, err error) {
	sz, ok := s.inner.(handlers.Sizer)
	if !ok {
		return 0, 0, fmt.Errorf("sealed: %w", handlers.ErrSizeUnsupported)
	}
	return sz.Size(ctx)
}

// Close closes the inner store and releases the codecs.
func (s *Store) Close() error {
	err := s.inner.Close()
	s.closeOnce.Do(func() {
		s.enc.Close()
		s.dec.Close()
	})
	return err
}

// seal turns PHP data into the stored form for session id.
func (s *Store) seal(id string, data []byte) ([]byte, error) {
	payload := data
	var flags byte
	if s.opts.CompressOver > 0 && len(data) > s.opts.CompressOver {
		if c := s.enc.EncodeAll(data, make([]byte, 0, len(data)/2)); len(c) < len(data) {
			payload, flags = c, flagZstd
		}
	}
	if s.current != "" {
		flags |= flagEncrypted
		aead := s.aeads[s.current]
		hdrLen := baseLen + 1 + len(s.current) + nonceSize
		out := make([]byte, hdrLen, hdrLen+len(payload)+tagSize)
		copy(out, magic[:])
		out[len(magic)] = formatVersion
		out[len(magic)+1] = flags
		out[baseLen] = byte(len(s.current))
		copy(out[baseLen+1:], s.current)
		if _, err := rand.Read(out[hdrLen-nonceSize : hdrLen]); err != nil {
			return nil, fmt.Errorf("nonce: %w", err)
		}
		return aead.Seal(out, out[hdrLen-nonceSize:hdrLen], payload, additionalData(out[:hdrLen], id)), nil
	}
	if flags == 0 && !isSealed(data) {
		// Plain PHP bytes, exactly as PHP would have stored them.
		return data, nil
	}
	out := make([]byte, baseLen, baseLen+len(payload))
	copy(out, magic[:])
	out[len(magic)] = formatVersion
	out[len(magic)+1] = flags
	return append(out, payload...), nil
}

// open turns a stored record back into PHP data. It never panics and
// never returns data that failed authentication.
func (s *Store) open(id string, raw []byte) ([]byte, error) {
	return s.openWith(id, raw, s.opts.RequireEncrypted)
}

func (s *Store) openWith(id string, raw []byte, requireEnc bool) ([]byte, error) {
	if !isSealed(raw) {
		if requireEnc {
			return nil, fmt.Errorf("%w: plain record and RequireEncrypted is set", ErrNotEncrypted)
		}
		return raw, nil
	}
	h, err := parseHeader(raw)
	if err != nil {
		return nil, err
	}
	payload := h.payload
	if h.flags&flagEncrypted != 0 {
		aead, ok := s.aeads[h.keyID]
		if !ok {
			return nil, fmt.Errorf("%w: key id %q (configured: %v)", ErrUnknownKey, h.keyID, s.keyIDs())
		}
		pt, err := aead.Open(nil, h.nonce, payload, additionalData(raw[:h.hdrLen], id))
		if err != nil {
			return nil, fmt.Errorf("%w: key id %q", ErrAuth, h.keyID)
		}
		payload = pt
	} else if requireEnc {
		return nil, fmt.Errorf("%w: compressed-only record and RequireEncrypted is set", ErrNotEncrypted)
	}
	if h.flags&flagZstd != 0 {
		out, err := s.dec.DecodeAll(payload, nil)
		if err != nil {
			return nil, fmt.Errorf("%w: zstd: %v", ErrCorrupt, err)
		}
		if len(out) > s.opts.MaxSize {
			return nil, fmt.Errorf("%w: decompressed size %d over limit %d", ErrCorrupt, len(out), s.opts.MaxSize)
		}
		return out, nil
	}
	return payload, nil
}

func (s *Store) keyIDs() []string {
	ids := make([]string, 0, len(s.opts.Keys))
	for _, k := range s.opts.Keys {
		ids = append(ids, k.ID)
	}
	return ids
}

// keyOf reports how a stored record is sealed: its key id ("" when not
// encrypted) and whether it carries the sealed header at all.
func keyOf(raw []byte) (keyID string, sealed bool, err error) {
	if !isSealed(raw) {
		return "", false, nil
	}
	h, err := parseHeader(raw)
	if err != nil {
		return "", true, err
	}
	return h.keyID, true, nil
}
