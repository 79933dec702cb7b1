package phpserialize

import (
	"bytes"
	"fmt"
	"strconv"
)

// Session serializer formats (PHP's session.serialize_handler).
const (
	FormatPHP          = "php"
	FormatPHPBinary    = "php_binary"
	FormatPHPSerialize = "php_serialize"
)

// RawEntry is one entry of a session or an array with its value's
// serialized bytes: a sub-slice of the input, not copied and not decoded,
// but checked to be syntactically well-formed.
type RawEntry struct {
	Key Key
	Raw []byte
}

// SplitSession splits session data in the given format into its top-level
// entries, in document order, duplicates included (PHP keeps the first
// position and the last value of a duplicated name). Empty data gives no
// entries in every format. The whole input is validated, including R:/r:
// slot numbers, which in the php and php_binary formats count from the
// first value across all entries. A php_serialize session whose root is
// not an array returns an error wrapping ErrNotArray. Keys of php and
// php_binary sessions are always strings; php_serialize keys follow array
// key rules.
func SplitSession(data []byte, format string) ([]RawEntry, error) {
	if format != FormatPHP && format != FormatPHPBinary && format != FormatPHPSerialize {
		return nil, &UnsupportedError{Msg: fmt.Sprintf("unknown session format %q", format)}
	}
	if len(data) == 0 {
		return nil, nil
	}
	if format == FormatPHPSerialize {
		return splitArray(data, true)
	}
	var p parser
	p.checkRefs = true
	if err := p.init(data, Limits{}); err != nil {
		return nil, err
	}
	out := make([]RawEntry, 0, 8)
	err := eachSessionEntry(&p, data, format, func(name []byte, vs int) (int, error) {
		end, err := p.parseValue(vs, nil)
		if err != nil {
			return end, err
		}
		out = append(out, RawEntry{Key: StringKey(string(name)), Raw: data[vs:end:end]})
		return end, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// AppendSession encodes entries in the given format by concatenating their
// raw values (not re-validated; R:/r: numbers inside are not renumbered).
// php: int keys are skipped like PHP does, a name containing '|' is an
// error like in PHP. php_binary: int keys are skipped, names longer than
// 127 bytes are an error (PHP silently drops them). php_serialize: one
// "a:N:{...}" array; zero entries give "a:0:{}" there and "" in the other
// formats.
func AppendSession(dst []byte, format string, entries []RawEntry) ([]byte, error) {
	switch format {
	case FormatPHPSerialize:
		return AppendArray(dst, entries), nil
	case FormatPHP, FormatPHPBinary:
	default:
		return dst, &UnsupportedError{Msg: fmt.Sprintf("unknown session format %q", format)}
	}
	for i := range entries {
		var ok bool
		var err error
		if dst, ok, err = appendSessionName(dst, format, entries[i].Key); err != nil {
			return dst, err
		}
		if ok {
			dst = append(dst, entries[i].Raw...)
		}
	}
	return dst, nil
}

// SplitArray splits one serialized array value ("a:N:{...}") into its
// entries without decoding them. Keys follow PHP's array key rules ("5"
// becomes int 5). A well-formed value that is not an array returns an
// error wrapping ErrNotArray. R:/r: numbers are not checked: a value cut
// out of a larger document may legitimately point outside itself.
func SplitArray(raw []byte) ([]RawEntry, error) {
	return splitArray(raw, false)
}

func splitArray(raw []byte, root bool) ([]RawEntry, error) {
	var p parser
	p.checkRefs = root
	if err := p.init(raw, Limits{}); err != nil {
		return nil, err
	}
	if len(raw) == 0 || raw[0] != 'a' {
		end, err := p.parseValue(0, nil)
		if err != nil {
			return nil, err
		}
		if end != len(raw) {
			return nil, p.err(end, "unexpected data after the value")
		}
		return nil, fmt.Errorf("split %s value: %w", Kind(kindOfLetter(raw[0])), ErrNotArray)
	}
	// The array itself takes slot 1.
	p.slots = 1
	n, q, ok := p.readLen(2)
	if len(raw) < 2 || raw[1] != ':' || !ok {
		return nil, p.err(q, "malformed array header")
	}
	if !p.expect2(q, ':', '{') {
		return nil, p.err(q, "expected ':{' after array element count")
	}
	q += 2
	if n > (len(raw)-q)/2 {
		return nil, p.err(2, "array element count exceeds input")
	}
	var out []RawEntry
	if n > 0 {
		if err := p.enter(q, n); err != nil {
			return nil, err
		}
		out = make([]RawEntry, 0, n)
	}
	for i := 0; i < n; i++ {
		k, vs, err := p.key(q, true, true)
		if err != nil {
			return nil, err
		}
		end, err := p.parseValue(vs, nil)
		if err != nil {
			return nil, err
		}
		out = append(out, RawEntry{Key: k, Raw: raw[vs:end:end]})
		q = end
	}
	if q >= len(raw) || raw[q] != '}' {
		return nil, p.err(q, "expected '}' after last element")
	}
	if q+1 != len(raw) {
		return nil, p.err(q+1, "unexpected data after the value")
	}
	return out, nil
}

func kindOfLetter(c byte) Kind {
	switch c {
	case 'N':
		return KindNull
	case 'b':
		return KindBool
	case 'i':
		return KindInt
	case 'd':
		return KindFloat
	case 's', 'S':
		return KindString
	case 'a':
		return KindArray
	case 'O':
		return KindObject
	case 'C':
		return KindCustom
	case 'E':
		return KindEnum
	case 'R':
		return KindRef
	case 'r':
		return KindObjectRef
	}
	return KindNull
}

// AppendArray encodes entries as "a:N:{...}" with N = len(entries). A
// string key that PHP would treat as an integer ("5") is written as the
// int key, as serialize() would.
func AppendArray(dst []byte, entries []RawEntry) []byte {
	dst = append(dst, 'a', ':')
	dst = strconv.AppendInt(dst, int64(len(entries)), 10)
	dst = append(dst, ':', '{')
	for i := range entries {
		k := entries[i].Key
		if k.IsString {
			if n, ok := numericKey(k.Str); ok {
				k = IntKey(n)
			}
		}
		dst = appendKey(dst, k)
		dst = append(dst, entries[i].Raw...)
	}
	return append(dst, '}')
}

// Valid reports whether raw is exactly one well-formed serialized value,
// as unserialize() would read it on its own (R:/r: numbers must name slots
// used before them). Whether classes and enum cases exist is not checked.
func Valid(raw []byte) error {
	var p parser
	p.checkRefs = true
	if err := p.init(raw, Limits{}); err != nil {
		return err
	}
	end, err := p.parseValue(0, nil)
	if err != nil {
		return err
	}
	if end != len(raw) {
		return p.err(end, "unexpected data after the value")
	}
	return nil
}

// HasReferences reports whether a serialized value or a session contains
// R: or r: back-references, found structurally (bytes inside strings do
// not count). Data that is one value is read as such; otherwise it is read
// as a php, then a php_binary session. A C: payload counts when any part
// of it parses as a reference. For data that parses in none of these ways
// the answer is a conservative true when "R:" or "r:" occurs anywhere.
// When this is true, reordering, dropping or inserting values changes what
// the references point at.
func HasReferences(raw []byte) bool {
	if len(raw) == 0 {
		return false
	}
	var p parser
	p.init(raw, Limits{MaxDepth: -1})
	if end, err := p.parseValue(0, nil); err == nil && end == len(raw) {
		return p.refs
	}
	for _, f := range [...]string{FormatPHP, FormatPHPBinary} {
		p = parser{}
		p.init(raw, Limits{MaxDepth: -1})
		err := eachSessionEntry(&p, raw, f, func(_ []byte, vs int) (int, error) {
			return p.parseValue(vs, nil)
		})
		if err == nil {
			return p.refs
		}
	}
	return bytes.Contains(raw, []byte("R:")) || bytes.Contains(raw, []byte("r:"))
}
