package phpserialize

import (
	"fmt"
	"strconv"
	"strings"
)

// AppendSerialize appends the serialize() form of v. For decoded Values
// this reproduces the input (apart from spellings PHP never writes, such
// as "i:+5;", lengths with leading zeros or the escaped S: string form,
// which come out in the form serialize() uses).
// Array and object counts are written from len(Entries); keys as given.
func AppendSerialize(dst []byte, v *Value) []byte {
	switch v.Kind {
	case KindNull:
		return append(dst, 'N', ';')
	case KindBool:
		return AppendBool(dst, v.Int != 0)
	case KindInt:
		return AppendInt(dst, v.Int)
	case KindFloat:
		if len(v.Bytes) == 0 {
			return AppendFloat(dst, v.Float)
		}
		dst = append(dst, 'd', ':')
		dst = append(dst, v.Bytes...)
		return append(dst, ';')
	case KindString:
		return AppendStringBytes(dst, v.Bytes)
	case KindArray:
		dst = append(dst, 'a', ':')
		dst = appendUint(dst, uint64(len(v.Entries)))
		dst = append(dst, ':', '{')
		return appendEntries(dst, v.Entries)
	case KindObject:
		dst = appendClass(dst, 'O', v.Class)
		dst = append(dst, ':')
		dst = appendUint(dst, uint64(len(v.Entries)))
		dst = append(dst, ':', '{')
		return appendEntries(dst, v.Entries)
	case KindCustom:
		dst = appendClass(dst, 'C', v.Class)
		dst = append(dst, ':')
		dst = appendUint(dst, uint64(len(v.Bytes)))
		dst = append(dst, ':', '{')
		dst = append(dst, v.Bytes...)
		return append(dst, '}')
	case KindEnum:
		dst = append(dst, 'E', ':')
		dst = strconv.AppendInt(dst, int64(len(v.Class)+1+len(v.Bytes)), 10)
		dst = append(dst, ':', '"')
		dst = append(dst, v.Class...)
		dst = append(dst, ':')
		dst = append(dst, v.Bytes...)
		return append(dst, '"', ';')
	case KindRef, KindObjectRef:
		c := byte('R')
		if v.Kind == KindObjectRef {
			c = 'r'
		}
		dst = append(dst, c, ':')
		dst = strconv.AppendInt(dst, v.Int, 10)
		return append(dst, ';')
	}
	return append(dst, 'N', ';')
}

func appendClass(dst []byte, c byte, class []byte) []byte {
	dst = append(dst, c, ':')
	dst = appendUint(dst, uint64(len(class)))
	dst = append(dst, ':', '"')
	dst = append(dst, class...)
	return append(dst, '"')
}

func appendEntries(dst []byte, es []Entry) []byte {
	for i := range es {
		dst = appendKey(dst, es[i].Key)
		dst = AppendSerialize(dst, &es[i].Value)
	}
	return append(dst, '}')
}

func appendKey(dst []byte, k Key) []byte {
	if k.IsString {
		return AppendString(dst, k.Str)
	}
	return AppendInt(dst, k.Int)
}

// AppendSessionValue encodes v, a $_SESSION array as DecodeSession returns
// it, in the given format. php skips int keys and refuses names containing
// '|' (as PHP does); php_binary skips int keys and refuses names longer
// than 127 bytes (PHP drops those silently); php_serialize writes the
// value as is, so a scalar root stays scalar.
func AppendSessionValue(dst []byte, format string, v *Value) ([]byte, error) {
	if format == FormatPHPSerialize {
		return AppendSerialize(dst, v), nil
	}
	if format != FormatPHP && format != FormatPHPBinary {
		return dst, &UnsupportedError{Msg: fmt.Sprintf("unknown session format %q", format)}
	}
	if v.Kind != KindArray {
		return dst, fmt.Errorf("encode %s session: %w", format, ErrNotArray)
	}
	for i := range v.Entries {
		e := &v.Entries[i]
		var err error
		var ok bool
		if dst, ok, err = appendSessionName(dst, format, e.Key); err != nil {
			return dst, err
		}
		if ok {
			dst = AppendSerialize(dst, &e.Value)
		}
	}
	return dst, nil
}

func appendSessionName(dst []byte, format string, k Key) ([]byte, bool, error) {
	if !k.IsString {
		return dst, false, nil
	}
	if format == FormatPHP {
		if strings.IndexByte(k.Str, '|') >= 0 {
			return dst, false, &UnsupportedError{Msg: fmt.Sprintf("php session format cannot encode name %q: it contains '|'", k.Str)}
		}
		dst = append(dst, k.Str...)
		return append(dst, '|'), true, nil
	}
	if len(k.Str) > 127 {
		return dst, false, &UnsupportedError{Msg: fmt.Sprintf("php_binary session format cannot encode a %d-byte name (max 127)", len(k.Str))}
	}
	dst = append(dst, byte(len(k.Str)))
	return append(dst, k.Str...), true, nil
}
