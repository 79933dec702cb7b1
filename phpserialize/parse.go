package phpserialize

import (
	"errors"
	"math"
)

// DefaultMaxDepth is PHP's default unserialize_max_depth.
const DefaultMaxDepth = 4096

// Limits bound the work one decode may do. The zero value means the
// defaults: depth 4096 like PHP, no size or element limit beyond what the
// input itself implies (a declared element count can never exceed what the
// remaining bytes could hold, so allocation stays linear in input size).
type Limits struct {
	// MaxDepth is the deepest nesting of non-empty arrays and of objects,
	// counted like PHP's unserialize_max_depth. 0 means DefaultMaxDepth,
	// a negative value means no limit.
	MaxDepth int
	// MaxSize is the largest input accepted, in bytes. 0 means no limit.
	MaxSize int
	// MaxElements is the largest total of declared array and object
	// element counts in one input. 0 means no limit.
	MaxElements int64
}

func (l Limits) depth() int {
	switch {
	case l.MaxDepth == 0:
		return DefaultMaxDepth
	case l.MaxDepth < 0:
		return math.MaxInt
	}
	return l.MaxDepth
}

// parser walks serialize() data. With a nil out it only validates and
// counts (scan mode, no allocation); with out set it fills Values and the
// Decoder's arena (build mode).
type parser struct {
	data      []byte
	base      int   // offset of data[0] in the caller's input, for errors
	slots     int64 // reference slots used so far (PHP's var_hash size)
	depth     int
	maxDepth  int
	maxElems  int64 // 0: none
	elems     int64 // declared element counts seen so far
	elemCap   int64 // total elements the whole input could hold
	refs      bool  // an R: or r: was seen
	checkRefs bool  // reject R:/r: slot numbers outside the slots used so far
	dec       *Decoder
}

func (p *parser) init(data []byte, l Limits) error {
	p.data = data
	p.maxDepth = l.depth()
	p.maxElems = l.MaxElements
	// Every element needs a key of at least 4 bytes ("i:0;") of its own,
	// so no valid input declares more than len/4 elements in total.
	p.elemCap = int64(len(data)) / 4
	if l.MaxSize > 0 && len(data) > l.MaxSize {
		return &LimitError{Offset: int64(l.MaxSize), Limit: "size", Max: int64(l.MaxSize)}
	}
	return nil
}

func (p *parser) err(pos int, msg string) error {
	return &SyntaxError{Offset: int64(p.base + pos), Msg: msg}
}

// readLen parses the unsigned decimal at pos ([0-9]+). Values beyond the
// input size saturate, which later length checks reject.
func (p *parser) readLen(pos int) (int, int, bool) {
	data := p.data
	start := pos
	n := 0
	lim := len(data) + 1
	for pos < len(data) {
		c := data[pos] - '0'
		if c > 9 {
			break
		}
		if n <= lim {
			n = n*10 + int(c)
		}
		pos++
	}
	return n, pos, pos > start
}

func (p *parser) expect2(pos int, a, b byte) bool {
	return pos+1 < len(p.data) && p.data[pos] == a && p.data[pos+1] == b
}

// header parses `<n>:"<name>"` at pos (after "O:", "C:" or "E:") and returns
// the name span and the position after the closing quote.
func (p *parser) classHeader(pos int, what string) (int, int, int, error) {
	n, q, ok := p.readLen(pos)
	if !ok {
		return 0, 0, q, p.err(q, "expected "+what+" name length")
	}
	if !p.expect2(q, ':', '"') {
		return 0, 0, q, p.err(q, "expected ':\"' before "+what+" name")
	}
	start := q + 2
	if n > len(p.data)-start {
		return 0, 0, q, p.err(pos, what+" name length exceeds input")
	}
	end := start + n
	if end >= len(p.data) || p.data[end] != '"' {
		return 0, 0, end, p.err(end, "expected '\"' after "+what+" name")
	}
	return start, end, end + 1, nil
}

// classAndCount reads the `N:"Class":count:{` head that O: and C: share and
// returns the class name span, where the count starts (for errors about
// it), the count, and the position after the '{'. On error the fifth
// result is the position the caller reports.
func (p *parser) classAndCount(pos int, what string) (ns, ne, countAt, n, body int, err error) {
	ns, ne, q, err := p.classHeader(pos, "class")
	if err != nil {
		return 0, 0, 0, 0, q, err
	}
	if !validClassName(p.data[ns:ne]) {
		return 0, 0, 0, 0, q, p.err(ns, "invalid class name")
	}
	if q >= len(p.data) || p.data[q] != ':' {
		return 0, 0, 0, 0, q, p.err(q, "expected ':' after class name")
	}
	n, q2, ok := p.readLen(q + 1)
	if !ok {
		return 0, 0, 0, 0, q2, p.err(q2, "expected "+what)
	}
	if !p.expect2(q2, ':', '{') {
		return 0, 0, 0, 0, q2, p.err(q2, "expected ':{' after "+what)
	}
	return ns, ne, q + 1, n, q2 + 2, nil
}

func validClassName(b []byte) bool {
	if len(b) == 0 || b[0] == '\\' {
		return false
	}
	for _, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '\\' || c >= 0x80) {
			return false
		}
	}
	return true
}

// stringBody parses the s:/S: value at pos (data[pos] is 's' or 'S') and
// returns the body span as written (escaped for S:) and the end position.
func (p *parser) stringBody(pos int) (bs, be, end int, err error) {
	data := p.data
	if pos+1 >= len(data) || data[pos+1] != ':' {
		return 0, 0, pos, p.err(pos+1, "expected ':' after string type")
	}
	n, q, ok := p.readLen(pos + 2)
	if !ok {
		return 0, 0, q, p.err(q, "expected string length")
	}
	if !p.expect2(q, ':', '"') {
		return 0, 0, q, p.err(q, "expected ':\"' after string length")
	}
	bs = q + 2
	if n > len(data)-bs {
		return 0, 0, bs, p.err(pos+2, "string length exceeds input")
	}
	if data[pos] == 's' {
		be = bs + n
	} else {
		// S: counts decoded bytes; each is a raw byte or \xx in hex.
		be = bs
		for i := 0; i < n; i++ {
			if be >= len(data) {
				return 0, 0, be, p.err(be, "unexpected end of escaped string")
			}
			if data[be] == '\\' {
				if be+2 >= len(data) || unhex(data[be+1]) < 0 || unhex(data[be+2]) < 0 {
					return 0, 0, be, p.err(be, "malformed escape in S: string")
				}
				be += 3
			} else {
				be++
			}
		}
	}
	if !p.expect2(be, '"', ';') {
		return 0, 0, be, p.err(be, "expected '\";' after string")
	}
	return bs, be, be + 2, nil
}

func unhex(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// unescape appends the decoded body of an S: string.
func unescape(dst, body []byte) []byte {
	for i := 0; i < len(body); i++ {
		if body[i] == '\\' && i+2 < len(body) {
			dst = append(dst, byte(unhex(body[i+1])<<4|unhex(body[i+2])))
			i += 2
		} else {
			dst = append(dst, body[i])
		}
	}
	return dst
}

// key parses an array or property key (i:, s: or S:) at pos. With want it
// returns the key; array keys that PHP treats as integers become int keys.
func (p *parser) key(pos int, isArray, want bool) (Key, int, error) {
	data := p.data
	if pos >= len(data) {
		return Key{}, pos, p.err(pos, "unexpected end of data, expected a key")
	}
	switch data[pos] {
	case 'i':
		if pos+1 >= len(data) || data[pos+1] != ':' {
			return Key{}, pos, p.err(pos+1, "expected ':' after i")
		}
		v, end, ok := parseIntText(data, pos+2)
		if !ok || end >= len(data) || data[end] != ';' {
			return Key{}, end, p.err(end, "malformed integer key")
		}
		return Key{Int: v}, end + 1, nil
	case 's', 'S':
		bs, be, end, err := p.stringBody(pos)
		if err != nil {
			return Key{}, end, err
		}
		if !want && !isArray {
			return Key{}, end, nil
		}
		body := data[bs:be]
		var tmp []byte
		if data[pos] == 'S' {
			tmp = unescape(nil, body)
			body = tmp
		}
		if isArray {
			if i, ok := numericKey(body); ok {
				return Key{Int: i}, end, nil
			}
		}
		if !want {
			return Key{}, end, nil
		}
		if p.dec != nil {
			return Key{IsString: true, Str: p.dec.intern(body)}, end, nil
		}
		return Key{IsString: true, Str: string(body)}, end, nil
	}
	return Key{}, pos, p.err(pos, "array and property keys must be i:, s: or S:")
}

// enter accounts for the contents of one array or object being entered.
func (p *parser) enter(pos int, n int) error {
	if p.depth >= p.maxDepth {
		return &LimitError{Offset: int64(p.base + pos), Limit: "depth", Max: int64(p.maxDepth)}
	}
	p.elems += int64(n)
	if p.maxElems > 0 && p.elems > p.maxElems {
		return &LimitError{Offset: int64(p.base + pos), Limit: "elements", Max: p.maxElems}
	}
	if p.elems > p.elemCap {
		return p.err(pos, "element counts exceed what the input can hold")
	}
	p.depth++
	return nil
}

// parseValue parses one value at pos and returns the position after it.
// In build mode (out != nil) the value is stored in *out, which lives in
// the Decoder's arena and stays put while nested values are parsed.
func (p *parser) parseValue(pos int, out *Value) (int, error) {
	data := p.data
	build := out != nil
	if pos >= len(data) {
		return pos, p.err(pos, "unexpected end of data, expected a value")
	}
	c := data[pos]
	if c != 'R' {
		// Every value takes a reference slot except R: itself (keys are
		// parsed separately and take none).
		p.slots++
		if build {
			p.dec.slotTab = append(p.dec.slotTab, out)
		}
	}
	if c != 'N' && (pos+1 >= len(data) || data[pos+1] != ':') {
		if c == '}' {
			return pos, p.err(pos, "unexpected '}', fewer elements than declared")
		}
		if isTypeLetter(c) {
			return pos, p.err(pos+1, "expected ':' after type letter")
		}
		return pos, p.err(pos, "unknown value type")
	}
	switch c {
	case 'N':
		if pos+1 < len(data) && data[pos+1] == ';' {
			if build {
				*out = Value{Kind: KindNull}
			}
			return pos + 2, nil
		}
		return pos, p.err(pos+1, "expected ';' after N")

	case 'b':
		if pos+3 < len(data) && (data[pos+2] == '0' || data[pos+2] == '1') && data[pos+3] == ';' {
			if build {
				*out = Value{Kind: KindBool, Int: int64(data[pos+2] - '0')}
			}
			return pos + 4, nil
		}
		return pos, p.err(pos+2, "malformed boolean, expected b:0; or b:1;")

	case 'i':
		v, end, ok := parseIntText(data, pos+2)
		if !ok || end >= len(data) || data[end] != ';' {
			return end, p.err(end, "malformed integer")
		}
		if build {
			*out = Value{Kind: KindInt, Int: v}
		}
		return end + 1, nil

	case 'd':
		end := pos + 2
		for end < len(data) && isFloatChar(data[end]) {
			end++
		}
		if end >= len(data) || data[end] != ';' || !validFloatText(data[pos+2:end]) {
			return end, p.err(end, "malformed float")
		}
		if build {
			*out = Value{Kind: KindFloat, Bytes: data[pos+2 : end : end]}
		}
		return end + 1, nil

	case 's', 'S':
		bs, be, end, err := p.stringBody(pos)
		if err != nil {
			return end, err
		}
		if build {
			if c == 's' {
				*out = Value{Kind: KindString, Bytes: data[bs:be:be]}
			} else {
				body := data[bs:be:be]
				*out = Value{Kind: KindString, Bytes: unescape(make([]byte, 0, be-bs), body)}
			}
		}
		return end, nil

	case 'a':
		n, q, ok := p.readLen(pos + 2)
		if !ok {
			return q, p.err(q, "expected array element count")
		}
		if !p.expect2(q, ':', '{') {
			return q, p.err(q, "expected ':{' after array element count")
		}
		q += 2
		if n > (len(data)-q)/2 {
			return q, p.err(pos+2, "array element count exceeds input")
		}
		return p.entries(q, n, nil, out)

	case 'O':
		ns, ne, countAt, n, q2, err := p.classAndCount(pos+2, "property count")
		if err != nil {
			return q2, err
		}
		if n > (len(data)-q2)/2 {
			return q2, p.err(countAt, "property count exceeds input")
		}
		return p.entries(q2, n, data[ns:ne:ne], out)

	case 'C':
		ns, ne, countAt, n, q2, err := p.classAndCount(pos+2, "payload length")
		if err != nil {
			return q2, err
		}
		if n >= len(data)-q2 {
			return q2, p.err(countAt, "payload length exceeds input")
		}
		if data[q2+n] != '}' {
			return q2 + n, p.err(q2+n, "expected '}' after payload")
		}
		before := p.slots
		if err := p.scanPayload(q2, q2+n); err != nil {
			return q2, err
		}
		if build {
			inner := p.slots - before
			for i := int64(0); i < inner; i++ {
				p.dec.slotTab = append(p.dec.slotTab, nil)
			}
			*out = Value{Kind: KindCustom, Class: data[ns:ne:ne], Bytes: data[q2 : q2+n : q2+n], Int: inner}
		}
		return q2 + n + 1, nil

	case 'E':
		ns, ne, q, err := p.classHeader(pos+2, "enum")
		if err != nil {
			return q, err
		}
		if q >= len(data) || data[q] != ';' {
			return q, p.err(q, "expected ';' after enum name")
		}
		name := data[ns:ne]
		colon := -1
		for i, ch := range name {
			if ch == ':' {
				colon = i
				break
			}
		}
		if colon < 0 || !validClassName(name[:colon]) || colon == len(name)-1 {
			return q, p.err(ns, "malformed enum name, expected Class:Case")
		}
		if build {
			*out = Value{Kind: KindEnum, Class: name[:colon:colon], Bytes: name[colon+1:]}
		}
		return q + 1, nil

	case 'R', 'r':
		n, q, ok := p.readLen(pos + 2)
		if !ok || q >= len(data) || data[q] != ';' {
			return q, p.err(q, "malformed reference")
		}
		p.refs = true
		if p.checkRefs {
			// r: has taken a slot of its own and may not point at it.
			max := p.slots
			if c == 'r' {
				max--
			}
			if n < 1 || int64(n) > max {
				return pos, p.err(pos+2, "reference to an unknown slot")
			}
		}
		if build {
			k := KindRef
			if c == 'r' {
				k = KindObjectRef
			}
			*out = Value{Kind: k, Int: int64(n)}
		}
		return q + 1, nil
	}
	return pos, p.err(pos, "unknown value type")
}

// entries parses n key/value pairs starting at q and the closing '}' of
// an array (class == nil) or an object.
func (p *parser) entries(q, n int, class []byte, out *Value) (int, error) {
	data := p.data
	isArray := class == nil
	if n == 0 && isArray {
		// PHP skips the depth check for empty arrays but not for objects.
		if q >= len(data) || data[q] != '}' {
			return q, p.err(q, "expected '}' to close empty array")
		}
		if out != nil {
			*out = Value{Kind: KindArray}
		}
		return q + 1, nil
	}
	if err := p.enter(q, n); err != nil {
		return q, err
	}
	var err error
	if out == nil {
		for i := 0; i < n; i++ {
			if _, q, err = p.key(q, isArray, false); err != nil {
				return q, err
			}
			if q, err = p.parseValue(q, nil); err != nil {
				return q, err
			}
		}
	} else {
		es := p.dec.alloc(n)
		for i := range es {
			e := &es[i]
			if e.Key, q, err = p.key(q, isArray, true); err != nil {
				return q, err
			}
			if q, err = p.parseValue(q, &e.Value); err != nil {
				return q, err
			}
		}
		kind := KindArray
		if !isArray {
			kind = KindObject
		}
		*out = Value{Kind: kind, Class: class, Entries: es}
	}
	p.depth--
	if q >= len(data) || data[q] != '}' {
		return q, p.err(q, "expected '}' after last element")
	}
	return q + 1, nil
}

// scanPayload counts the slots PHP would use while a Serializable class
// unserializes its C: payload. PHP shares the reference table with nested
// unserialize() calls, so values inside the payload take slots. The
// payload format belongs to the class: this reads it as a run of
// serialized values and skips bytes that do not parse (the "x:" and "m:"
// framing of ArrayObject and SplObjectStorage in old PHP versions). Each
// failed attempt resumes at the offset where it failed, keeping the scan
// linear.
func (p *parser) scanPayload(start, end int) error {
	savedData, savedBase := p.data, p.base
	p.data = savedData[start:end]
	p.base = savedBase + start
	defer func() { p.data, p.base = savedData, savedBase }()
	pos := 0
	for pos < len(p.data) {
		slots, depth, elems, refs := p.slots, p.depth, p.elems, p.refs
		e, err := p.parseValue(pos, nil)
		if err == nil {
			pos = e
			continue
		}
		var le *LimitError
		if errors.As(err, &le) {
			return err
		}
		p.slots, p.depth, p.elems = slots, depth, elems
		p.refs = refs || p.refs
		next := pos + 1
		if se, ok := err.(*SyntaxError); ok {
			if off := int(se.Offset) - p.base; off > next {
				next = off
			}
		}
		pos = next
	}
	return nil
}

func isTypeLetter(c byte) bool {
	switch c {
	case 'N', 'b', 'i', 'd', 's', 'S', 'a', 'O', 'C', 'E', 'R', 'r':
		return true
	}
	return false
}

func isFloatChar(c byte) bool {
	return c >= '0' && c <= '9' || c == '.' || c == '-' || c == '+' || c == 'e' || c == 'E' ||
		c == 'N' || c == 'A' || c == 'I' || c == 'F'
}
