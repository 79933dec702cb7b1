package phpserialize

import "strconv"

// Key is an array key or a session variable name. PHP array keys are ints
// or strings; PHP itself turns a canonical decimal string key ("5", "-3")
// into the int key, which ArrayKey does too.
type Key struct {
	IsString bool
	Int      int64
	Str      string
}

// IntKey returns the integer key i.
func IntKey(i int64) Key { return Key{Int: i} }

// StringKey returns the string key s exactly as given (no numeric
// conversion: session variable names in the php and php_binary formats stay
// strings even when they look like numbers).
func StringKey(s string) Key { return Key{IsString: true, Str: s} }

// ArrayKey returns the key PHP uses when s is written as an array key:
// canonical decimal integers in int64 range become int keys.
func ArrayKey(s string) Key {
	if i, ok := numericKey(s); ok {
		return IntKey(i)
	}
	return StringKey(s)
}

// String returns the key as text ("5" or the string), for key paths in logs.
func (k Key) String() string {
	if k.IsString {
		return k.Str
	}
	return strconv.FormatInt(k.Int, 10)
}

// Equal reports whether k and o are the same key.
func (k Key) Equal(o Key) bool {
	if k.IsString != o.IsString {
		return false
	}
	if k.IsString {
		return k.Str == o.Str
	}
	return k.Int == o.Int
}

// numericKey reports whether PHP treats s as an integer array key: "0" or
// an optional '-' followed by a digit 1-9 and more digits, within int64.
// "05", "-0", "+5", " 5" and out-of-range numbers stay strings.
func numericKey[T string | []byte](s T) (int64, bool) {
	n := len(s)
	if n == 0 || n > 20 {
		return 0, false
	}
	i := 0
	neg := false
	if s[0] == '-' {
		neg = true
		i = 1
		if n == 1 {
			return 0, false
		}
	}
	if s[i] == '0' {
		if n == 1 {
			return 0, true
		}
		return 0, false
	}
	var u uint64
	for ; i < n; i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		if u > (1<<63)/10 {
			return 0, false
		}
		u = u*10 + uint64(c-'0')
	}
	if neg {
		if u > 1<<63 {
			return 0, false
		}
		return -int64(u), true
	}
	if u > 1<<63-1 {
		return 0, false
	}
	return int64(u), true
}
