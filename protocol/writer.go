package protocol

import (
	"bufio"
	"io"
	"strconv"
	"strings"
)

// Writer writes RESP2 replies and requests into a buffer; nothing reaches
// the underlying stream until Flush (or until the buffer fills). Write
// errors are sticky: the first one is returned by every later call, so
// reply code can write a whole reply and check once.
type Writer struct {
	bw      *bufio.Writer
	scratch [32]byte
}

// NewWriter returns a Writer over w.
func NewWriter(w io.Writer) *Writer {
	return &Writer{bw: bufio.NewWriterSize(w, 16<<10)}
}

// Reset discards unflushed bytes and a sticky error and makes w write to
// dst, keeping its buffer.
func (w *Writer) Reset(dst io.Writer) { w.bw.Reset(dst) }

// Flush writes buffered bytes to the stream.
func (w *Writer) Flush() error { return w.bw.Flush() }

// Buffered reports the bytes waiting for Flush.
func (w *Writer) Buffered() int { return w.bw.Buffered() }

func (w *Writer) header(t byte, n int64) error {
	b := append(w.scratch[:0], t)
	b = strconv.AppendInt(b, n, 10)
	b = append(b, '\r', '\n')
	_, err := w.bw.Write(b)
	return err
}

// cleanLine keeps simple strings and error messages on one line: CR and LF
// would end the line early and desynchronise the peer.
func cleanLine(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	return strings.NewReplacer("\r", " ", "\n", " ").Replace(s)
}

// WriteSimple writes a simple string ("+OK").
func (w *Writer) WriteSimple(s string) error {
	w.bw.WriteByte('+')
	w.bw.WriteString(cleanLine(s))
	_, err := w.bw.WriteString("\r\n")
	return err
}

// WriteError writes "-CODE message".
func (w *Writer) WriteError(code, msg string) error {
	w.bw.WriteByte('-')
	w.bw.WriteString(code)
	if msg != "" {
		w.bw.WriteByte(' ')
		w.bw.WriteString(cleanLine(msg))
	}
	_, err := w.bw.WriteString("\r\n")
	return err
}

// WriteInt writes an integer reply.
func (w *Writer) WriteInt(n int64) error { return w.header(':', n) }

// WriteUint writes an integer reply from an unsigned value (versions);
// values beyond int64 are clamped rather than wrapped negative.
func (w *Writer) WriteUint(n uint64) error {
	if n > 1<<63-1 {
		n = 1<<63 - 1
	}
	return w.header(':', int64(n))
}

// WriteBulk writes a bulk string.
func (w *Writer) WriteBulk(b []byte) error {
	w.header('$', int64(len(b)))
	w.bw.Write(b)
	_, err := w.bw.WriteString("\r\n")
	return err
}

// WriteBulkString writes a bulk string from a string without copying it
// into a []byte first.
func (w *Writer) WriteBulkString(s string) error {
	w.header('$', int64(len(s)))
	w.bw.WriteString(s)
	_, err := w.bw.WriteString("\r\n")
	return err
}

// WriteNull writes a null bulk string.
func (w *Writer) WriteNull() error {
	_, err := w.bw.WriteString("$-1\r\n")
	return err
}

// WriteArray writes an array header; the caller writes n elements next.
func (w *Writer) WriteArray(n int) error { return w.header('*', int64(n)) }

// WriteRequest writes a request: an array of bulk strings.
func (w *Writer) WriteRequest(args ...[]byte) error {
	w.WriteArray(len(args))
	var err error
	for _, a := range args {
		err = w.WriteBulk(a)
	}
	return err
}

// WriteRequestStrings is WriteRequest for string arguments.
func (w *Writer) WriteRequestStrings(args ...string) error {
	w.WriteArray(len(args))
	var err error
	for _, a := range args {
		err = w.WriteBulkString(a)
	}
	return err
}
