package sealed

import (
	"bytes"
	"errors"
	"fmt"
)

// Record format, version 1 (all integers are single bytes):
//
//	offset  size  field
//	0       4     magic 0x00 0x01 'P' 'S'
//	4       1     format version (1)
//	5       1     flags: 0x01 encrypted (AES-256-GCM), 0x02 zstd-compressed
//	                 when encrypted:
//	6       1     key id length n (1..MaxKeyIDLen)
//	7       n     key id
//	7+n     12    GCM nonce (random)
//	19+n    rest  ciphertext with its 16-byte tag; the additional data is
//	              the header (bytes 0..19+n) followed by the session id
//	                 when not encrypted:
//	6       rest  payload
//
// The payload (the plaintext under encryption) is the PHP-encoded session,
// zstd-compressed when flag 0x02 is set.
//
// Why 0x00 0x01 cannot be the start of data PHP wrote: the "php" serializer
// starts with a key name followed by '|'; a name starting with 0x00 only
// comes from an array cast of an object, and then the next byte is '*' or
// the first byte of a class name (never 0x01). "php_binary" starts with the
// key length byte; a length of 0 is followed by serialize() output, which
// starts with a letter. "php_serialize" starts with "a:". igbinary starts
// with 0x00 0x00, msgpack with 0x80..0x8f, 0xc0, 0xde or 0xdf, wddx with '<'.
// Plain records that happen to start with the magic anyway (a custom
// serializer) are written with a header (flags 0), so detection stays
// unambiguous for everything this package writes.

var magic = [4]byte{0x00, 0x01, 'P', 'S'}

const (
	formatVersion = 1

	flagEncrypted = 0x01
	flagZstd      = 0x02
	knownFlags    = flagEncrypted | flagZstd

	// MaxKeyIDLen bounds key ids so a header is always small.
	MaxKeyIDLen = 32

	nonceSize = 12
	tagSize   = 16
	baseLen   = len(magic) + 2 // magic, version, flags
)

// Errors returned by Load (wrapped with the session id and details).
var (
	// ErrCorrupt: the record has the sealed magic but a header or payload
	// that cannot be parsed (truncated, unknown version or flags, bad zstd).
	ErrCorrupt = errors.New("sealed record corrupt")
	// ErrUnknownKey: the record was encrypted with a key id that is not in
	// the configured key set (a key was dropped too early, or the wrong key
	// file was loaded).
	ErrUnknownKey = errors.New("sealed record key not configured")
	// ErrAuth: decryption failed the GCM check: the key under that id is
	// not the one the record was written with, or the record was altered
	// (including being copied to another session id).
	ErrAuth = errors.New("sealed record failed authentication (wrong key or tampered data)")
	// ErrNotEncrypted: Options.RequireEncrypted is set and the record is
	// plain or only compressed.
	ErrNotEncrypted = errors.New("record is not encrypted")
)

// header is a parsed record header.
type header struct {
	flags   byte
	keyID   string
	nonce   []byte
	hdrLen  int // bytes of raw that form the header (the GCM additional data prefix)
	payload []byte
}

// isSealed reports whether raw carries the sealed magic; everything else
// is a plain record written before sealing was enabled.
func isSealed(raw []byte) bool {
	return len(raw) >= len(magic) && bytes.Equal(raw[:len(magic)], magic[:])
}

// parseHeader splits a sealed record into its header fields and payload.
// It never panics, whatever raw holds.
func parseHeader(raw []byte) (header, error) {
	var h header
	if !isSealed(raw) {
		return h, fmt.Errorf("%w: missing magic", ErrCorrupt)
	}
	if len(raw) < baseLen {
		return h, fmt.Errorf("%w: truncated header (%d bytes)", ErrCorrupt, len(raw))
	}
	if v := raw[len(magic)]; v != formatVersion {
		return h, fmt.Errorf("%w: unsupported format version %d", ErrCorrupt, v)
	}
	h.flags = raw[len(magic)+1]
	if h.flags&^knownFlags != 0 {
		return h, fmt.Errorf("%w: unknown flags 0x%02x", ErrCorrupt, h.flags)
	}
	if h.flags&flagEncrypted == 0 {
		h.hdrLen = baseLen
		h.payload = raw[baseLen:]
		return h, nil
	}
	if len(raw) < baseLen+1 {
		return h, fmt.Errorf("%w: truncated header: no key id", ErrCorrupt)
	}
	n := int(raw[baseLen])
	if n == 0 || n > MaxKeyIDLen {
		return h, fmt.Errorf("%w: key id length %d out of range 1..%d", ErrCorrupt, n, MaxKeyIDLen)
	}
	idEnd := baseLen + 1 + n
	h.hdrLen = idEnd + nonceSize
	if len(raw) < h.hdrLen+tagSize {
		return h, fmt.Errorf("%w: truncated encrypted record (%d bytes)", ErrCorrupt, len(raw))
	}
	h.keyID = string(raw[baseLen+1 : idEnd])
	if err := checkKeyID(h.keyID); err != nil {
		return h, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	h.nonce = raw[idEnd:h.hdrLen]
	h.payload = raw[h.hdrLen:]
	return h, nil
}

// additionalData binds a ciphertext to its header and its session id, so a
// record copied under another id, or with its flags flipped, fails to open.
func additionalData(hdr []byte, id string) []byte {
	ad := make([]byte, 0, len(hdr)+len(id))
	ad = append(ad, hdr...)
	return append(ad, id...)
}

// checkKeyID keeps key ids printable and short: they end up in headers,
// logs and the key file syntax.
func checkKeyID(id string) error {
	if id == "" || len(id) > MaxKeyIDLen {
		return fmt.Errorf("key id %q: length must be 1..%d", id, MaxKeyIDLen)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("key id %q: byte 0x%02x outside [A-Za-z0-9._-]", id, c)
		}
	}
	return nil
}
