package phpserialize

import (
	"encoding/base64"
	"strconv"
	"unicode/utf8"
)

// The JSON view is for readers that do not speak PHP (phpsessd decode,
// admin tools). It is one-way and documented in README.md:
//
//	N; → null   b: → true/false   i: → number
//	d: → number as PHP wrote it, with ".0" added to integral values
//	     ("d:5;" → 5.0); INF, -INF and NAN → {"__float":"INF"}
//	s: → string when valid UTF-8, else {"__base64":"..."}
//	a: → [..] when the keys are 0..n-1 in order, else {..} in document
//	     order, keys as strings; duplicate keys resolved like PHP
//	O: → {"__class":"Name", props...} with mangled property names as is
//	C: → {"__class":"Name","__serialized":<payload as a string>}
//	E: → {"__enum":"Class:Case"}
//	R:n; → {"__ref":n}   r:n; → {"__objref":n}   (PHP slot numbers)

// JSON returns the JSON view of one serialized value.
func JSON(data []byte) ([]byte, error) {
	d := decoderPool.Get().(*Decoder)
	defer func() {
		d.Reset()
		decoderPool.Put(d)
	}()
	v, err := d.Decode(data)
	if err != nil {
		return nil, err
	}
	return AppendJSON(nil, v), nil
}

// SessionJSON returns the JSON view of session data: an object mapping
// variable names to values in document order (for php_serialize, the
// view of the root value, usually an object or list).
func SessionJSON(data []byte, format string) ([]byte, error) {
	d := decoderPool.Get().(*Decoder)
	defer func() {
		d.Reset()
		decoderPool.Put(d)
	}()
	v, err := d.DecodeSession(data, format)
	if err != nil {
		return nil, err
	}
	if format != FormatPHPSerialize {
		// Session variable names are keys of a JSON object even when
		// they look like list indexes.
		return appendJSONObject(nil, v, "", nil), nil
	}
	return AppendJSON(nil, v), nil
}

// AppendJSON appends the JSON view of v.
func AppendJSON(dst []byte, v *Value) []byte {
	switch v.Kind {
	case KindNull:
		return append(dst, "null"...)
	case KindBool:
		if v.Int != 0 {
			return append(dst, "true"...)
		}
		return append(dst, "false"...)
	case KindInt:
		return strconv.AppendInt(dst, v.Int, 10)
	case KindFloat:
		return appendJSONFloat(dst, v)
	case KindString:
		return appendJSONBytes(dst, v.Bytes)
	case KindArray:
		if v.IsList() {
			dst = append(dst, '[')
			for i := range v.Entries {
				if i > 0 {
					dst = append(dst, ',')
				}
				dst = AppendJSON(dst, &v.Entries[i].Value)
			}
			return append(dst, ']')
		}
		return appendJSONObject(dst, v, "", nil)
	case KindObject:
		return appendJSONObject(dst, v, "__class", v.Class)
	case KindCustom:
		dst = append(dst, `{"__class":`...)
		dst = appendJSONString(dst, v.Class)
		dst = append(dst, `,"__serialized":`...)
		dst = appendJSONBytes(dst, v.Bytes)
		return append(dst, '}')
	case KindEnum:
		dst = append(dst, `{"__enum":`...)
		s := make([]byte, 0, len(v.Class)+1+len(v.Bytes))
		s = append(append(append(s, v.Class...), ':'), v.Bytes...)
		dst = appendJSONString(dst, s)
		return append(dst, '}')
	case KindRef:
		dst = append(dst, `{"__ref":`...)
		dst = strconv.AppendInt(dst, v.Int, 10)
		return append(dst, '}')
	case KindObjectRef:
		dst = append(dst, `{"__objref":`...)
		dst = strconv.AppendInt(dst, v.Int, 10)
		return append(dst, '}')
	}
	return append(dst, "null"...)
}

func appendJSONObject(dst []byte, v *Value, tagKey string, tagVal []byte) []byte {
	dst = append(dst, '{')
	first := true
	if tagKey != "" {
		dst = appendJSONString(dst, []byte(tagKey))
		dst = append(dst, ':')
		dst = appendJSONString(dst, tagVal)
		first = false
	}
	entries := v.Entries
	if v.HasDuplicateKeys() {
		c := *v
		c.Entries = append([]Entry(nil), v.Entries...)
		c.Dedupe()
		entries = c.Entries
	}
	var num [24]byte
	for i := range entries {
		if !first {
			dst = append(dst, ',')
		}
		first = false
		k := entries[i].Key
		if k.IsString {
			dst = appendJSONString(dst, []byte(k.Str))
		} else {
			dst = appendJSONString(dst, strconv.AppendInt(num[:0], k.Int, 10))
		}
		dst = append(dst, ':')
		dst = AppendJSON(dst, &entries[i].Value)
	}
	return append(dst, '}')
}

func appendJSONFloat(dst []byte, v *Value) []byte {
	var buf [32]byte
	t := v.Bytes
	if len(t) == 0 || !jsonNumber(t) {
		// Values built in Go, and spellings PHP accepts but JSON does not
		// ("1.", ".5", "+1", "01", "1e999"): write the number PHP would
		// print for the same value.
		t = AppendFloatText(buf[:0], v.FloatValue())
	}
	switch string(t) {
	case "INF", "-INF", "NAN":
		dst = append(dst, `{"__float":"`...)
		dst = append(dst, t...)
		return append(dst, `"}`...)
	}
	dst = append(dst, t...)
	for _, c := range t {
		if c == '.' || c == 'E' || c == 'e' {
			return dst
		}
	}
	return append(dst, '.', '0')
}

// jsonNumber reports whether t is a JSON number.
func jsonNumber(t []byte) bool {
	i := 0
	if i < len(t) && t[i] == '-' {
		i++
	}
	if i >= len(t) {
		return false
	}
	if t[i] == '0' {
		i++
	} else if t[i] >= '1' && t[i] <= '9' {
		for i < len(t) && t[i] >= '0' && t[i] <= '9' {
			i++
		}
	} else {
		return false
	}
	if i < len(t) && t[i] == '.' {
		i++
		s := i
		for i < len(t) && t[i] >= '0' && t[i] <= '9' {
			i++
		}
		if i == s {
			return false
		}
	}
	if i < len(t) && (t[i] == 'e' || t[i] == 'E') {
		i++
		if i < len(t) && (t[i] == '+' || t[i] == '-') {
			i++
		}
		s := i
		for i < len(t) && t[i] >= '0' && t[i] <= '9' {
			i++
		}
		if i == s {
			return false
		}
	}
	return i == len(t)
}

// appendJSONBytes writes a PHP string: a JSON string when it is valid
// UTF-8, otherwise {"__base64":"..."} so binary data survives.
func appendJSONBytes(dst, b []byte) []byte {
	if utf8.Valid(b) {
		return appendJSONString(dst, b)
	}
	dst = append(dst, `{"__base64":"`...)
	dst = base64.StdEncoding.AppendEncode(dst, b)
	return append(dst, `"}`...)
}

const hexDigits = "0123456789abcdef"

// appendJSONString writes b as a JSON string; invalid UTF-8 (only possible
// in keys) becomes U+FFFD.
func appendJSONString(dst, b []byte) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(b); {
		c := b[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, b[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, b[start:i]...)
			dst = append(dst, "\ufffd"...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, b[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, b[start:]...)
	return append(dst, '"')
}
