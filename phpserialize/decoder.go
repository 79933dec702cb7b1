package phpserialize

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// Decoder decodes serialize() data into Values. It keeps its node arena,
// reference table and key cache between calls, so decoding payloads of a
// similar shape again allocates nothing. The Values it returns are valid
// until the next Decode, DecodeSession or Reset on the same Decoder.
// A Decoder is not safe for concurrent use; the zero value is ready.
type Decoder struct {
	Limits

	// The arena is a list of chunks; each array's entries are contiguous
	// in one chunk and chunks never move, so Values can point into them
	// while the decode goes on, and are reused by the next decode.
	chunks  [][]Entry
	cur     int // chunk being filled
	used    int // entries used in chunks[cur]
	top     []Entry
	topSlot []int32 // slot index of each top-level value, -1 for R:
	slotTab []*Value
	root    Value
	keys    *[keyCacheSize]string
	p       parser
}

// NewDecoder returns a Decoder with the given limits.
func NewDecoder(l Limits) *Decoder { return &Decoder{Limits: l} }

const minChunk = 256

// alloc returns n contiguous, reusable entries from the arena.
func (d *Decoder) alloc(n int) []Entry {
	if d.chunks != nil {
		if c := d.chunks[d.cur]; n <= len(c)-d.used {
			es := c[d.used : d.used+n : d.used+n]
			d.used += n
			return es
		}
		// Move on to the next chunk, replacing it when too small.
		d.cur++
		if d.cur < len(d.chunks) && n <= len(d.chunks[d.cur]) {
			d.used = n
			return d.chunks[d.cur][:n:n]
		}
	}
	size := minChunk
	if len(d.chunks) > 0 {
		size = 2 * len(d.chunks[len(d.chunks)-1])
	}
	if size < n {
		size = n
	}
	c := make([]Entry, size)
	if d.cur < len(d.chunks) {
		d.chunks[d.cur] = c
	} else {
		d.chunks = append(d.chunks, c)
		d.cur = len(d.chunks) - 1
	}
	d.used = n
	return c[:n:n]
}

// keyCacheSize is the number of key cache slots. Session data repeats a
// small vocabulary of key names ("sku", "qty", property names) and a few
// hundred distinct ones (ids, SKUs), so with two candidate slots per key
// almost every key of a repeated decode is a hit and allocates nothing.
const (
	keyCacheSize   = 4096
	maxInternedLen = 64
)

// intern returns b as a string, reusing an earlier equal string when the
// cache holds one.
func (d *Decoder) intern(b []byte) string {
	n := len(b)
	if n > maxInternedLen || n == 0 {
		return string(b)
	}
	if d.keys == nil {
		d.keys = new([keyCacheSize]string)
	}
	h := keyHash(b)
	s1 := &d.keys[h&(keyCacheSize-1)]
	if *s1 == string(b) {
		return *s1
	}
	s2 := &d.keys[(h>>32)&(keyCacheSize-1)]
	if *s2 == string(b) {
		return *s2
	}
	s := string(b)
	if *s1 == "" || *s2 != "" && h&(1<<20) == 0 {
		*s1 = s
	} else {
		*s2 = s
	}
	return s
}

// keyHash mixes the length and the first and last eight bytes of a key
// (fewer for short keys). Keys that differ only in the middle of a long
// name share a hash; that costs a cache miss, never a wrong key.
func keyHash(b []byte) uint64 {
	n := len(b)
	h := uint64(n) * 0x9E3779B97F4A7C15
	switch {
	case n >= 8:
		h ^= binary.LittleEndian.Uint64(b)
		h *= 0xBF58476D1CE4E5B9
		h ^= binary.LittleEndian.Uint64(b[n-8:])
	case n >= 4:
		h ^= uint64(binary.LittleEndian.Uint32(b)) | uint64(binary.LittleEndian.Uint32(b[n-4:]))<<32
	default:
		h ^= uint64(b[0]) | uint64(b[n/2])<<8 | uint64(b[n-1])<<16
	}
	h *= 0x94D049BB133111EB
	h ^= h >> 29
	h *= 0xBF58476D1CE4E5B9
	h ^= h >> 32
	return h
}

// Reset drops the Decoder's references to the last input (keeping its
// buffers), so the input can be garbage collected.
func (d *Decoder) Reset() {
	for _, c := range d.chunks {
		clear(c)
	}
	clear(d.top[:cap(d.top)])
	clear(d.slotTab[:cap(d.slotTab)])
	d.begin(nil)
}

func (d *Decoder) begin(data []byte) (*parser, error) {
	d.cur, d.used = 0, 0
	d.top = d.top[:0]
	d.topSlot = d.topSlot[:0]
	d.slotTab = d.slotTab[:0]
	d.root = Value{}
	d.p = parser{dec: d, checkRefs: true}
	p := &d.p
	if err := p.init(data, d.Limits); err != nil {
		return nil, err
	}
	return p, nil
}

// Decode decodes exactly one serialized value (what unserialize() takes).
// Trailing bytes are an error.
func (d *Decoder) Decode(data []byte) (*Value, error) {
	p, err := d.begin(data)
	if err != nil {
		return nil, err
	}
	root := &d.alloc(1)[0].Value
	end, err := p.parseValue(0, root)
	if err != nil {
		return nil, err
	}
	if end != len(data) {
		return nil, p.err(end, "unexpected data after the value")
	}
	return root, nil
}

// DecodeNext decodes the value at the start of data and returns it with
// the number of bytes it used, leaving any following bytes alone. It reads
// a stream of concatenated values one at a time (each call starts a new
// slot numbering, as separate unserialize() calls do).
func (d *Decoder) DecodeNext(data []byte) (*Value, int, error) {
	p, err := d.begin(data)
	if err != nil {
		return nil, 0, err
	}
	root := &d.alloc(1)[0].Value
	end, err := p.parseValue(0, root)
	if err != nil {
		return nil, 0, err
	}
	return root, end, nil
}

// DecodeSession decodes session data in the given serializer format
// (FormatPHP, FormatPHPBinary, FormatPHPSerialize). The result is the
// $_SESSION array; for php_serialize data whose root is not an array it is
// that scalar value. Empty data decodes to an empty array in every format.
// In the php and php_binary formats keys are always strings, exactly as
// PHP restores them.
func (d *Decoder) DecodeSession(data []byte, format string) (*Value, error) {
	switch format {
	case FormatPHPSerialize:
		if len(data) == 0 {
			d.begin(nil)
			d.root = Value{Kind: KindArray}
			return &d.root, nil
		}
		return d.Decode(data)
	case FormatPHP, FormatPHPBinary:
	default:
		return nil, &UnsupportedError{Msg: fmt.Sprintf("unknown session format %q", format)}
	}
	p, err := d.begin(data)
	if err != nil {
		return nil, err
	}
	err = eachSessionEntry(p, data, format, func(name []byte, vs int) (int, error) {
		d.top = append(d.top, Entry{Key: Key{IsString: true, Str: d.intern(name)}})
		slot := int32(-1)
		if vs < len(data) && data[vs] != 'R' {
			slot = int32(len(d.slotTab))
		}
		d.topSlot = append(d.topSlot, slot)
		// d.top may move when it grows: the slot table is re-pointed below.
		return p.parseValue(vs, &d.top[len(d.top)-1].Value)
	})
	if err != nil {
		return nil, err
	}
	for i, s := range d.topSlot {
		if s >= 0 {
			d.slotTab[s] = &d.top[i].Value
		}
	}
	d.root = Value{Kind: KindArray, Entries: d.top[:len(d.top):len(d.top)]}
	return &d.root, nil
}

// eachSessionEntry walks the name/value pairs of a php or php_binary
// session; fn parses the value starting at vs and returns its end.
func eachSessionEntry(p *parser, data []byte, format string, fn func(name []byte, vs int) (int, error)) error {
	pos := 0
	for pos < len(data) {
		var name []byte
		var vs int
		if format == FormatPHP {
			bar := bytes.IndexByte(data[pos:], '|')
			if bar < 0 {
				return p.err(pos, "session variable name without '|'")
			}
			name = data[pos : pos+bar]
			vs = pos + bar + 1
		} else {
			// The high bit once marked undefined variables; PHP masks it.
			n := int(data[pos] & 0x7f)
			if pos+n >= len(data) {
				return p.err(pos, "session variable name length exceeds input")
			}
			name = data[pos+1 : pos+1+n]
			vs = pos + 1 + n
		}
		end, err := fn(name, vs)
		if err != nil {
			return err
		}
		pos = end
	}
	return nil
}

// Slot returns the value that reference slot n (as used by R:n; and r:n;)
// designates in the last decoded input, or nil when n is out of range or
// the slot belongs to the inside of a C: payload. Numbering follows PHP:
// every value takes a slot except R: entries and keys; a php_serialize or
// single value starts with the root at 1; the php and php_binary session
// formats have no root, so slot 1 is the first session variable's value.
func (d *Decoder) Slot(n int64) *Value {
	if n < 1 || n > int64(len(d.slotTab)) {
		return nil
	}
	return d.slotTab[n-1]
}

// Slots returns the number of reference slots the last decoded input used.
func (d *Decoder) Slots() int { return len(d.slotTab) }
