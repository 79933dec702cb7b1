package phpserialize

import (
	"math"
	"strconv"
)

// AppendNull appends "N;".
func AppendNull(dst []byte) []byte { return append(dst, 'N', ';') }

// AppendBool appends "b:1;" or "b:0;".
func AppendBool(dst []byte, b bool) []byte {
	if b {
		return append(dst, "b:1;"...)
	}
	return append(dst, "b:0;"...)
}

// AppendInt appends "i:<i>;".
func AppendInt(dst []byte, i int64) []byte {
	dst = append(dst, 'i', ':')
	if i < 0 {
		if i == math.MinInt64 {
			dst = append(dst, "-9223372036854775808"...)
			return append(dst, ';')
		}
		dst = append(dst, '-')
		i = -i
	}
	dst = appendUint(dst, uint64(i))
	return append(dst, ';')
}

// AppendString appends `s:<len>:"<s>";`. s may hold any bytes.
func AppendString(dst []byte, s string) []byte {
	dst = append(dst, 's', ':')
	dst = appendUint(dst, uint64(len(s)))
	dst = append(dst, ':', '"')
	dst = append(dst, s...)
	return append(dst, '"', ';')
}

// AppendStringBytes is AppendString for a byte slice.
func AppendStringBytes(dst []byte, s []byte) []byte {
	dst = append(dst, 's', ':')
	dst = appendUint(dst, uint64(len(s)))
	dst = append(dst, ':', '"')
	dst = append(dst, s...)
	return append(dst, '"', ';')
}

const digitPairs = "00010203040506070809101112131415161718192021222324252627282930313233343536373839" +
	"404142434445464748495051525354555657585960616263646566676869707172737475767778798081828384858687888990919293949596979899"

// appendUint is strconv.AppendUint(dst, n, 10) with the common small
// cases (lengths, counts, keys) inlined.
func appendUint(dst []byte, n uint64) []byte {
	switch {
	case n < 10:
		return append(dst, byte('0'+n))
	case n < 100:
		return append(dst, digitPairs[2*n], digitPairs[2*n+1])
	case n < 1000:
		q := n / 100
		r := n - q*100
		return append(dst, byte('0'+q), digitPairs[2*r], digitPairs[2*r+1])
	case n < 10000:
		q := n / 100
		r := n - q*100
		return append(dst, digitPairs[2*q], digitPairs[2*q+1], digitPairs[2*r], digitPairs[2*r+1])
	}
	return strconv.AppendUint(dst, n, 10)
}

// AppendFloat appends "d:<f>;" with f written exactly as PHP 8 does with
// serialize_precision=-1.
func AppendFloat(dst []byte, f float64) []byte {
	dst = append(dst, 'd', ':')
	dst = AppendFloatText(dst, f)
	return append(dst, ';')
}

// AppendFloatText appends f as PHP 8 prints it with precision -1 (the text
// inside "d:...;", also what var_export and json_encode use): the shortest
// digits that read back to f; plain notation while the decimal exponent is
// in [-4, 15] for the leading digit (1.0E-5 and 1.0E+17 switch to exponent
// form, 0.0001 and 10000000000000000 do not); "1.0E+25" keeps a ".0" when
// there is a single digit; INF, -INF, NAN and -0 as such.
func AppendFloatText(dst []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(dst, "NAN"...)
	case math.IsInf(f, 1):
		return append(dst, "INF"...)
	case math.IsInf(f, -1):
		return append(dst, "-INF"...)
	case f == 0:
		if math.Signbit(f) {
			return append(dst, '-', '0')
		}
		return append(dst, '0')
	}
	// strconv gives the shortest round-trip digits, the same digit string
	// PHP's zend_dtoa mode 0 produces; only the layout differs.
	var tmp [32]byte
	e := strconv.AppendFloat(tmp[:0], f, 'e', -1, 64)
	neg := e[0] == '-'
	if neg {
		e = e[1:]
		dst = append(dst, '-')
	}
	// e is d[.ddd]e±XX
	var digits [24]byte
	nd := 0
	i := 0
	for ; i < len(e) && e[i] != 'e'; i++ {
		if e[i] != '.' {
			digits[nd] = e[i]
			nd++
		}
	}
	exp := 0
	expNeg := e[i+1] == '-'
	for j := i + 2; j < len(e); j++ {
		exp = exp*10 + int(e[j]-'0')
	}
	if expNeg {
		exp = -exp
	}
	// decpt is the position of the decimal point relative to the digits,
	// the quantity PHP's formatter tests: 0.d1d2... × 10^decpt.
	decpt := exp + 1
	const ndigit = 17
	switch {
	case decpt < -3 || decpt > ndigit:
		dst = append(dst, digits[0], '.')
		if nd == 1 {
			dst = append(dst, '0')
		} else {
			dst = append(dst, digits[1:nd]...)
		}
		dst = append(dst, 'E')
		x := decpt - 1
		if x < 0 {
			dst = append(dst, '-')
			x = -x
		} else {
			dst = append(dst, '+')
		}
		return strconv.AppendInt(dst, int64(x), 10)
	case decpt <= 0:
		dst = append(dst, '0', '.')
		for k := decpt; k < 0; k++ {
			dst = append(dst, '0')
		}
		return append(dst, digits[:nd]...)
	default:
		if nd <= decpt {
			dst = append(dst, digits[:nd]...)
			for k := nd; k < decpt; k++ {
				dst = append(dst, '0')
			}
			return dst
		}
		dst = append(dst, digits[:decpt]...)
		dst = append(dst, '.')
		return append(dst, digits[decpt:nd]...)
	}
}

// ParseInt returns the integer of a serialized "i:N;" value; ok is false
// for anything else. Out-of-range numbers saturate like PHP's unserialize.
func ParseInt(raw []byte) (int64, bool) {
	if len(raw) < 4 || raw[0] != 'i' || raw[1] != ':' || raw[len(raw)-1] != ';' {
		return 0, false
	}
	v, end, ok := parseIntText(raw, 2)
	if !ok || end != len(raw)-1 {
		return 0, false
	}
	return v, true
}

// ParseString returns the bytes of a serialized `s:N:"...";` (or S:) value;
// ok is false for anything else. For s: the result aliases raw.
func ParseString(raw []byte) ([]byte, bool) {
	if len(raw) < 6 || (raw[0] != 's' && raw[0] != 'S') {
		return nil, false
	}
	var p parser
	p.data = raw
	bs, be, end, err := p.stringBody(0)
	if err != nil || end != len(raw) {
		return nil, false
	}
	if raw[0] == 'S' {
		return unescape(make([]byte, 0, be-bs), raw[bs:be]), true
	}
	return raw[bs:be:be], true
}

// ParseFloat returns the number of a serialized "d:...;" value.
func ParseFloat(raw []byte) (float64, bool) {
	if len(raw) < 4 || raw[0] != 'd' || raw[1] != ':' || raw[len(raw)-1] != ';' {
		return 0, false
	}
	t := raw[2 : len(raw)-1]
	if !validFloatText(t) {
		return 0, false
	}
	return parseFloatText(t), true
}

// parseIntText parses [+-]?[0-9]+ at pos and saturates on overflow like
// PHP (which warns "Numerical result out of range" but still succeeds).
func parseIntText(b []byte, pos int) (v int64, end int, ok bool) {
	neg := false
	if pos < len(b) && (b[pos] == '-' || b[pos] == '+') {
		neg = b[pos] == '-'
		pos++
	}
	start := pos
	var u uint64
	over := false
	for pos < len(b) {
		c := b[pos] - '0'
		if c > 9 {
			break
		}
		if u > (math.MaxUint64-9)/10 {
			over = true
		} else {
			u = u*10 + uint64(c)
		}
		pos++
	}
	if pos == start {
		return 0, pos, false
	}
	if neg {
		if over || u > 1<<63 {
			return math.MinInt64, pos, true
		}
		return -int64(u), pos, true
	}
	if over || u > math.MaxInt64 {
		return math.MaxInt64, pos, true
	}
	return int64(u), pos, true
}

// validFloatText reports whether t matches PHP's d: grammar:
// NAN | -?INF | iv | nv | nvexp.
func validFloatText(t []byte) bool {
	switch string(t) {
	case "NAN", "INF", "-INF":
		return true
	}
	i := 0
	if i < len(t) && (t[i] == '+' || t[i] == '-') {
		i++
	}
	intDigits := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
		intDigits++
	}
	fracDigits := 0
	if i < len(t) && t[i] == '.' {
		i++
		for i < len(t) && t[i] >= '0' && t[i] <= '9' {
			i++
			fracDigits++
		}
	}
	if intDigits == 0 && fracDigits == 0 {
		return false
	}
	if i < len(t) && (t[i] == 'e' || t[i] == 'E') {
		i++
		if i < len(t) && (t[i] == '+' || t[i] == '-') {
			i++
		}
		expDigits := 0
		for i < len(t) && t[i] >= '0' && t[i] <= '9' {
			i++
			expDigits++
		}
		if expDigits == 0 {
			return false
		}
	}
	return i == len(t)
}

// parseFloatText converts text already accepted by validFloatText.
func parseFloatText(t []byte) float64 {
	switch string(t) {
	case "NAN":
		return math.NaN()
	case "INF":
		return math.Inf(1)
	case "-INF":
		return math.Inf(-1)
	}
	// strconv rejects "1." and ".5"-style forms with a sign or exponent in
	// a few spellings PHP accepts; normalize the rare forms first.
	f, err := strconv.ParseFloat(string(t), 64)
	if err == nil {
		return f
	}
	if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
		return f // ±Inf or 0 like zend_strtod
	}
	return fixupFloat(t)
}

func fixupFloat(t []byte) float64 {
	// Insert a 0 after a bare trailing '.' before the exponent ("1.e5").
	buf := make([]byte, 0, len(t)+2)
	for i := 0; i < len(t); i++ {
		buf = append(buf, t[i])
		if t[i] == '.' && (i+1 == len(t) || t[i+1] == 'e' || t[i+1] == 'E') {
			buf = append(buf, '0')
		}
	}
	f, err := strconv.ParseFloat(string(buf), 64)
	if err != nil {
		if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
			return f
		}
		return 0
	}
	return f
}
