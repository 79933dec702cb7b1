package protocol

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// FuzzReadRequest checks that arbitrary input never panics the reader, that
// every request it accepts respects the limits, and that every failure is
// one of the documented error kinds.
func FuzzReadRequest(f *testing.F) {
	f.Add([]byte("*1\r\n$4\r\nPING\r\n"))
	f.Add([]byte("*3\r\n$4\r\nREAD\r\n$3\r\nabc\r\n$4\r\nMODE\r\n"))
	f.Add([]byte("PING\r\n"))
	f.Add([]byte("*1\r\n$-1\r\n"))
	f.Add([]byte("*9999\r\n"))
	f.Add([]byte("*1\r\n$999999999\r\nx"))
	lim := Limits{MaxFrame: 4096, MaxArgs: 8}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewReader(bytes.NewReader(data), lim)
		// A reader that reuses its buffers must read exactly the same.
		reused := NewReader(bytes.NewReader(data), lim)
		reused.ReuseArgs()
		for i := 0; i < 64; i++ {
			args, err := r.ReadRequest()
			rargs, rerr := reused.ReadRequest()
			if (err == nil) != (rerr == nil) || (err != nil && err.Error() != rerr.Error()) {
				t.Fatalf("request %d: error %v, with ReuseArgs %v", i, err, rerr)
			}
			if len(args) != len(rargs) {
				t.Fatalf("request %d: %d args, with ReuseArgs %d", i, len(args), len(rargs))
			}
			for k := range args {
				if !bytes.Equal(args[k], rargs[k]) {
					t.Fatalf("request %d arg %d: %q, with ReuseArgs %q", i, k, args[k], rargs[k])
				}
			}
			if err != nil {
				var pe *ProtocolError
				var tb *TooBigError
				if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) &&
					!errors.As(err, &pe) && !errors.As(err, &tb) {
					t.Fatalf("unexpected error type %T: %v", err, err)
				}
				return
			}
			if len(args) == 0 || len(args) > lim.MaxArgs {
				t.Fatalf("%d args, limit %d", len(args), lim.MaxArgs)
			}
			total := 0
			for _, a := range args {
				total += len(a)
			}
			if int64(total) > lim.MaxFrame {
				t.Fatalf("request of %d payload bytes, limit %d", total, lim.MaxFrame)
			}
		}
	})
}
