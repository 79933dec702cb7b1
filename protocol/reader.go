package protocol

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// Default limits, as PROTOCOL.md lists them.
const (
	DefaultMaxFrame = 16 << 20
	DefaultMaxArgs  = 64
	// maxLine bounds simple-string and error lines in replies; headers
	// ("*3", "$12") are bounded far lower by maxDigits.
	maxLine = 64 << 10
	// maxDigits is enough for any int64 plus a sign.
	maxDigits = 20
	// chunk is the most a Reader allocates ahead of bytes actually
	// received, so a peer announcing a 16 MiB bulk and then going quiet
	// costs 64 KiB, not 16 MiB.
	chunk = 64 << 10
	// maxDepth bounds nested arrays in replies.
	maxDepth = 8
)

// Limits bound what one Reader call may consume. Zero fields mean the
// defaults above.
type Limits struct {
	// MaxFrame is the most bytes one request or reply may span, headers
	// and CRLFs included.
	MaxFrame int64
	// MaxArgs is the most elements in a request array, or in one reply
	// array when reading replies.
	MaxArgs int
}

func (l Limits) withDefaults() Limits {
	if l.MaxFrame <= 0 {
		l.MaxFrame = DefaultMaxFrame
	}
	if l.MaxArgs <= 0 {
		l.MaxArgs = DefaultMaxArgs
	}
	return l
}

// Reader reads RESP2 requests or replies from a byte stream.
type Reader struct {
	br   *bufio.Reader
	lim  Limits
	used int64 // bytes of the frame being read

	// With reuse, the argument list and the arena the arguments are cut
	// from belong to the Reader and serve every request.
	reuse bool
	args  [][]byte
	arena []byte
}

// NewReader returns a Reader over r with the given limits.
func NewReader(r io.Reader, lim Limits) *Reader {
	return &Reader{br: bufio.NewReaderSize(r, 16<<10), lim: lim.withDefaults()}
}

// Buffered reports how many bytes are already read from the stream but not
// parsed yet: a server flushes its replies only when this is zero, which
// batches the replies of pipelined requests into one write.
func (r *Reader) Buffered() int { return r.br.Buffered() }

// ReuseArgs makes ReadRequest return arguments that are valid only until
// the next call: the argument list and the bytes of every argument that
// fits a per-Reader arena are reused for the next request. A server that
// answers each request before reading the next and keeps no argument
// beyond that (copying what it stores) saves an allocation per request.
func (r *Reader) ReuseArgs() {
	r.reuse = true
	r.arena = make([]byte, 0, arenaSize)
}

// Reset makes r read from src as if it were new, keeping its buffers and
// ReuseArgs, so a server can hand them from a closed connection to the
// next one instead of allocating them for every connection.
func (r *Reader) Reset(src io.Reader) {
	r.br.Reset(src)
	r.used = 0
	// Arguments too big for the arena are the caller's; drop them.
	clear(r.args[:cap(r.args)])
}

// Limits returns the effective limits.
func (r *Reader) Limits() Limits { return r.lim }

// ReadRequest reads one request: an array of one or more bulk strings. It
// returns io.EOF when the stream ends cleanly between frames,
// io.ErrUnexpectedEOF when it ends inside one, *ProtocolError for a grammar
// violation or too many arguments, *TooBigError when the frame would exceed
// MaxFrame, and the underlying error for I/O failures (timeouts included).
func (r *Reader) ReadRequest() ([][]byte, error) {
	r.used = 0
	b, err := r.br.ReadByte()
	if err != nil {
		return nil, err
	}
	if b != '*' {
		if isInlineStart(b) {
			return nil, protoErr("inline commands are not supported, send a RESP array")
		}
		return nil, protoErr("expected '*' at the start of a request, got %q", b)
	}
	r.used++
	n, err := r.readInt("array length")
	if err != nil {
		return nil, eofInFrame(err)
	}
	if n < 1 {
		return nil, protoErr("request array length %d, need at least 1", n)
	}
	if n > int64(r.lim.MaxArgs) {
		return nil, protoErr("too many arguments: %d, limit %d", n, r.lim.MaxArgs)
	}
	// Small arguments share one allocation: a request is a handful of
	// short words and an id around its one payload, and one allocation
	// per word showed in the daemon's profile. Without ReuseArgs nothing
	// is reused, so the slices stay valid as long as a caller holds them.
	var args [][]byte
	var slab []byte
	cut := int64(slabArg)
	if r.reuse {
		if cap(r.args) < int(n) {
			r.args = make([][]byte, n, r.lim.MaxArgs)
		}
		args = r.args[:n]
		clear(args)
		slab, cut = r.arena[:0], arenaSize
	} else {
		args = make([][]byte, n)
	}
	for i := range args {
		b, err := r.br.ReadByte()
		if err != nil {
			return nil, eofInFrame(err)
		}
		if b != '$' {
			return nil, protoErr("argument %d: expected '$' (bulk string), got %q", i+1, b)
		}
		r.used++
		l, err := r.readInt("bulk length")
		if err != nil {
			return nil, eofInFrame(err)
		}
		if l < 0 {
			return nil, protoErr("argument %d: negative bulk length %d", i+1, l)
		}
		if l <= cut {
			if slab == nil {
				slab = make([]byte, 0, slabSize)
			}
			if int64(cap(slab)-len(slab)) >= l {
				if err := r.charge(l, "frame"); err != nil {
					return nil, err
				}
				start := len(slab)
				slab = slab[:start+int(l)]
				if _, err := io.ReadFull(r.br, slab[start:]); err != nil {
					return nil, eofInFrame(err)
				}
				if err := r.expectCRLF("frame"); err != nil {
					return nil, eofInFrame(err)
				}
				r.used += l + 2
				args[i] = slab[start:len(slab):len(slab)]
				continue
			}
		}
		if args[i], err = r.readBulkBody(l, "frame"); err != nil {
			return nil, eofInFrame(err)
		}
	}
	return args, nil
}

func isInlineStart(b byte) bool {
	return (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') || b == ' ' || b == '\r' || b == '\n'
}

// eofInFrame turns a clean EOF inside a frame into ErrUnexpectedEOF, so
// callers can tell "peer went away between requests" from "peer cut a
// request short".
func eofInFrame(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// readInt reads the decimal integer and CRLF that follow a type byte. It
// reads byte by byte from the bufio buffer so a line can never be longer
// than maxDigits, whatever the peer sends.
func (r *Reader) readInt(what string) (int64, error) {
	var (
		v    int64
		neg  bool
		nd   int
		read int
	)
	for {
		b, err := r.br.ReadByte()
		if err != nil {
			return 0, err
		}
		read++
		switch {
		case b >= '0' && b <= '9':
			if nd >= 18 && v > (1<<63-1-int64(b-'0'))/10 {
				return 0, protoErr("%s overflows", what)
			}
			v = v*10 + int64(b-'0')
			nd++
		case b == '-' && read == 1:
			neg = true
		case b == '\r':
			if nd == 0 {
				return 0, protoErr("%s: no digits", what)
			}
			nl, err := r.br.ReadByte()
			if err != nil {
				return 0, err
			}
			if nl != '\n' {
				return 0, protoErr("%s: expected LF after CR, got %q", what, nl)
			}
			r.used += int64(read + 1)
			if neg {
				v = -v
			}
			return v, nil
		case b == '\n':
			return 0, protoErr("%s: line ends with LF without CR", what)
		default:
			return 0, protoErr("%s: unexpected byte %q", what, b)
		}
		if read > maxDigits {
			return 0, protoErr("%s: too many digits", what)
		}
	}
}

// Arguments up to slabArg bytes are cut from one slabSize buffer per
// request; with ReuseArgs, any argument that still fits the arena is.
// arenaSize holds a typical PHP session with its id and keywords.
const (
	slabArg   = 128
	slabSize  = 256
	arenaSize = 4 << 10
)

// charge checks that n more bytes and their CRLF fit the frame budget.
func (r *Reader) charge(n int64, what string) error {
	if n > r.lim.MaxFrame {
		// Checked first so the sum below cannot overflow.
		return &TooBigError{What: what, Size: n, Limit: r.lim.MaxFrame}
	}
	if need := r.used + n + 2; need > r.lim.MaxFrame {
		return &TooBigError{What: what, Size: need, Limit: r.lim.MaxFrame}
	}
	return nil
}

// readBulkBody reads n bytes and the CRLF after them, charging them to the
// frame budget before allocating anything.
func (r *Reader) readBulkBody(n int64, what string) ([]byte, error) {
	if err := r.charge(n, what); err != nil {
		return nil, err
	}
	var buf []byte
	if n <= chunk {
		buf = make([]byte, n)
		if _, err := io.ReadFull(r.br, buf); err != nil {
			return nil, err
		}
	} else {
		// Grow with the data that actually arrives, never past n.
		buf = make([]byte, 0, chunk)
		for int64(len(buf)) < n {
			if len(buf) == cap(buf) {
				nc := int64(cap(buf)) * 2
				if nc > n {
					nc = n
				}
				grown := make([]byte, len(buf), nc)
				copy(grown, buf)
				buf = grown
			}
			m, err := r.br.Read(buf[len(buf):cap(buf)])
			buf = buf[:len(buf)+m]
			if err != nil {
				if errors.Is(err, io.EOF) && int64(len(buf)) < n {
					return nil, io.ErrUnexpectedEOF
				}
				if int64(len(buf)) < n {
					return nil, err
				}
			}
		}
	}
	if err := r.expectCRLF(what); err != nil {
		return nil, err
	}
	r.used += n + 2
	return buf, nil
}

func (r *Reader) expectCRLF(what string) error {
	cr, err := r.br.ReadByte()
	if err != nil {
		return err
	}
	lf, err := r.br.ReadByte()
	if err != nil {
		return err
	}
	if cr != '\r' || lf != '\n' {
		return protoErr("bulk string in %s not followed by CRLF (got %q)", what, []byte{cr, lf})
	}
	return nil
}

// Kind is the type of a reply.
type Kind byte

// Reply kinds, named after their RESP2 type bytes. Null bulk strings and
// null arrays both read as KindNull.
const (
	KindSimple Kind = '+'
	KindError  Kind = '-'
	KindInt    Kind = ':'
	KindBulk   Kind = '$'
	KindArray  Kind = '*'
	KindNull   Kind = '_'
)

// Reply is one parsed RESP2 reply.
type Reply struct {
	Kind  Kind
	Str   []byte  // simple, error and bulk
	Int   int64   // integer
	Array []Reply // array
}

// Text returns a string, simple-string or error payload as a string, and an
// integer in decimal.
func (r Reply) Text() string {
	if r.Kind == KindInt {
		return strconv.FormatInt(r.Int, 10)
	}
	return string(r.Str)
}

// IsNull reports a null bulk string or null array.
func (r Reply) IsNull() bool { return r.Kind == KindNull }

// String renders the reply for logs and CLI output.
func (r Reply) String() string {
	switch r.Kind {
	case KindNull:
		return "(nil)"
	case KindInt:
		return "(integer) " + strconv.FormatInt(r.Int, 10)
	case KindError:
		return "(error) " + string(r.Str)
	case KindArray:
		s := "["
		for i, e := range r.Array {
			if i > 0 {
				s += " "
			}
			s += e.String()
		}
		return s + "]"
	case KindBulk:
		return strconv.Quote(string(r.Str))
	default:
		return string(r.Str)
	}
}

// ReadReply reads one reply. Errors are as for ReadRequest; an error reply
// is returned as a Reply of KindError, not as a Go error.
func (r *Reader) ReadReply() (Reply, error) {
	r.used = 0
	b, err := r.br.ReadByte()
	if err != nil {
		return Reply{}, err
	}
	rep, err := r.readReplyBody(b, 0)
	if err != nil {
		return Reply{}, eofInFrame(err)
	}
	return rep, nil
}

func (r *Reader) readReplyBody(t byte, depth int) (Reply, error) {
	r.used++
	switch t {
	case '+', '-':
		line, err := r.readLine()
		if err != nil {
			return Reply{}, err
		}
		return Reply{Kind: Kind(t), Str: line}, nil
	case ':':
		v, err := r.readInt("integer")
		if err != nil {
			return Reply{}, err
		}
		return Reply{Kind: KindInt, Int: v}, nil
	case '$':
		n, err := r.readInt("bulk length")
		if err != nil {
			return Reply{}, err
		}
		if n == -1 {
			return Reply{Kind: KindNull}, nil
		}
		if n < 0 {
			return Reply{}, protoErr("negative bulk length %d", n)
		}
		s, err := r.readBulkBody(n, "reply")
		if err != nil {
			return Reply{}, err
		}
		return Reply{Kind: KindBulk, Str: s}, nil
	case '*':
		n, err := r.readInt("array length")
		if err != nil {
			return Reply{}, err
		}
		if n == -1 {
			return Reply{Kind: KindNull}, nil
		}
		if n < 0 {
			return Reply{}, protoErr("negative array length %d", n)
		}
		if n > int64(r.lim.MaxArgs) {
			return Reply{}, protoErr("reply array of %d elements, limit %d", n, r.lim.MaxArgs)
		}
		if depth >= maxDepth {
			return Reply{}, protoErr("reply arrays nested deeper than %d", maxDepth)
		}
		arr := make([]Reply, 0, min(n, 1024))
		for i := int64(0); i < n; i++ {
			b, err := r.br.ReadByte()
			if err != nil {
				return Reply{}, err
			}
			e, err := r.readReplyBody(b, depth+1)
			if err != nil {
				return Reply{}, err
			}
			arr = append(arr, e)
		}
		return Reply{Kind: KindArray, Array: arr}, nil
	default:
		return Reply{}, protoErr("unknown reply type byte %q", t)
	}
}

// readLine reads a CRLF-terminated line without the CRLF, bounded by
// maxLine and the frame budget.
func (r *Reader) readLine() ([]byte, error) {
	var line []byte
	for {
		b, err := r.br.ReadByte()
		if err != nil {
			return nil, err
		}
		if b == '\r' {
			nl, err := r.br.ReadByte()
			if err != nil {
				return nil, err
			}
			if nl != '\n' {
				return nil, protoErr("expected LF after CR in a line, got %q", nl)
			}
			r.used += int64(len(line)) + 2
			return line, nil
		}
		if b == '\n' {
			return nil, protoErr("line ends with LF without CR")
		}
		line = append(line, b)
		if len(line) > maxLine || r.used+int64(len(line)) > r.lim.MaxFrame {
			return nil, &TooBigError{What: "reply line", Size: r.used + int64(len(line)), Limit: min(maxLine, r.lim.MaxFrame)}
		}
	}
}

// Describe renders a reader error as the message of the -PROTO or -TOOBIG
// reply a server sends before closing the connection.
func Describe(err error) (code, msg string) {
	var pe *ProtocolError
	var tb *TooBigError
	switch {
	case errors.As(err, &tb):
		return "TOOBIG", tb.Error()
	case errors.As(err, &pe):
		return "PROTO", pe.Reason
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "PROTO", "connection closed inside a frame"
	default:
		return "PROTO", fmt.Sprint(err)
	}
}
