package protocol

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func readOne(t *testing.T, in string, lim Limits) ([][]byte, error) {
	t.Helper()
	return NewReader(strings.NewReader(in), lim).ReadRequest()
}

func TestReadRequestValid(t *testing.T) {
	in := "*3\r\n$4\r\nREAD\r\n$3\r\nabc\r\n$0\r\n\r\n"
	args, err := readOne(t, in, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"READ", "abc", ""}
	if len(args) != len(want) {
		t.Fatalf("got %d args, want %d", len(args), len(want))
	}
	for i := range want {
		if string(args[i]) != want[i] {
			t.Errorf("arg %d = %q, want %q", i, args[i], want[i])
		}
	}
}

func TestReadRequestBinarySafe(t *testing.T) {
	data := []byte("a\r\nb\x00c*$-1\r\n")
	var buf bytes.Buffer
	w := NewWriter(&buf)
	w.WriteRequest([]byte("WRITE"), []byte("id"), data)
	w.Flush()
	args, err := NewReader(&buf, Limits{}).ReadRequest()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(args[2], data) {
		t.Fatalf("data = %q, want %q", args[2], data)
	}
}

func TestReadRequestLargeBulkGrows(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 3*chunk+17)
	var buf bytes.Buffer
	w := NewWriter(&buf)
	w.WriteRequest([]byte("WRITE"), big)
	w.Flush()
	args, err := NewReader(&buf, Limits{}).ReadRequest()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(args[1], big) || cap(args[1]) != len(big) {
		t.Fatalf("len %d cap %d, want %d", len(args[1]), cap(args[1]), len(big))
	}
}

func TestReadRequestPipelined(t *testing.T) {
	r := NewReader(strings.NewReader("*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nPING\r\n$2\r\nhi\r\n"), Limits{})
	for i := 0; i < 2; i++ {
		if _, err := r.ReadRequest(); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	if _, err := r.ReadRequest(); !errors.Is(err, io.EOF) {
		t.Fatalf("after last request: %v, want io.EOF", err)
	}
}

func TestReadRequestErrors(t *testing.T) {
	cases := []struct {
		name   string
		in     string
		lim    Limits
		tooBig bool
		eof    bool
	}{
		{name: "inline", in: "PING\r\n"},
		{name: "bad type byte", in: "+OK\r\n"},
		{name: "arg not bulk", in: "*1\r\n:5\r\n"},
		{name: "negative array", in: "*-1\r\n"},
		{name: "empty array", in: "*0\r\n"},
		{name: "negative bulk", in: "*1\r\n$-1\r\n"},
		{name: "huge bulk", in: "*1\r\n$99999999999\r\n", tooBig: true},
		{name: "overflow", in: "*1\r\n$99999999999999999999999\r\n"},
		{name: "no digits", in: "*\r\n"},
		{name: "letters in length", in: "*1x\r\n"},
		{name: "missing CR", in: "*1\n$4\r\nPING\r\n"},
		{name: "CR without LF", in: "*1\rx"},
		{name: "bulk not followed by CRLF", in: "*1\r\n$4\r\nPINGxx"},
		{name: "too many args", in: "*65\r\n"},
		{name: "too many args custom", in: "*3\r\n", lim: Limits{MaxArgs: 2}},
		{name: "frame too big", in: "*2\r\n$4\r\nPING\r\n$100\r\n", lim: Limits{MaxFrame: 64}, tooBig: true},
		{name: "truncated", in: "*2\r\n$4\r\nPI", eof: true},
		{name: "truncated header", in: "*2", eof: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := readOne(t, tc.in, tc.lim)
			var pe *ProtocolError
			var tb *TooBigError
			switch {
			case tc.eof:
				if !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("err = %v, want io.ErrUnexpectedEOF", err)
				}
			case tc.tooBig:
				if !errors.As(err, &tb) {
					t.Fatalf("err = %v (%T), want *TooBigError", err, err)
				}
				if code, _ := Describe(err); code != "TOOBIG" {
					t.Fatalf("Describe code = %s", code)
				}
			default:
				if !errors.As(err, &pe) {
					t.Fatalf("err = %v (%T), want *ProtocolError", err, err)
				}
				if code, msg := Describe(err); code != "PROTO" || msg == "" {
					t.Fatalf("Describe = %s %q", code, msg)
				}
			}
		})
	}
}

// A peer announcing a big bulk and then sending little must not make the
// reader allocate the announced size up front.
func TestReadRequestAllocationBounded(t *testing.T) {
	in := "*1\r\n$15000000\r\nabc"
	var ms1, ms2 runtimeMem
	ms1.read()
	for i := 0; i < 20; i++ {
		NewReader(strings.NewReader(in), Limits{}).ReadRequest()
	}
	ms2.read()
	if per := (ms2.total - ms1.total) / 20; per > 1<<20 {
		t.Fatalf("allocated %d bytes per truncated 15 MB request, want < 1 MiB", per)
	}
}

func TestReadReply(t *testing.T) {
	in := "*5\r\n+OK\r\n-ERR bad thing\r\n:-42\r\n$3\r\nabc\r\n$-1\r\n*-1\r\n"
	r := NewReader(strings.NewReader(in), Limits{})
	rep, err := r.ReadReply()
	if err != nil {
		t.Fatal(err)
	}
	if rep.Kind != KindArray || len(rep.Array) != 5 {
		t.Fatalf("reply %s", rep)
	}
	a := rep.Array
	if a[0].Kind != KindSimple || a[0].Text() != "OK" ||
		a[1].Kind != KindError || a[1].Text() != "ERR bad thing" ||
		a[2].Kind != KindInt || a[2].Int != -42 ||
		a[3].Kind != KindBulk || a[3].Text() != "abc" ||
		!a[4].IsNull() {
		t.Fatalf("reply %s", rep)
	}
	rep, err = r.ReadReply()
	if err != nil || !rep.IsNull() {
		t.Fatalf("null array: %v %s", err, rep)
	}
	se := ParseServerError("CONFLICT abc cart/items")
	if se.Code != "CONFLICT" || se.Message != "abc cart/items" || !IsCode(se, "CONFLICT") {
		t.Fatalf("ParseServerError = %+v", se)
	}
}

func TestReadReplyDepthLimit(t *testing.T) {
	in := strings.Repeat("*1\r\n", maxDepth+2) + ":1\r\n"
	_, err := NewReader(strings.NewReader(in), Limits{}).ReadReply()
	var pe *ProtocolError
	if !errors.As(err, &pe) {
		t.Fatalf("err = %v, want depth ProtocolError", err)
	}
}

func TestWriterReplies(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	w.WriteArray(6)
	w.WriteSimple("OK")
	w.WriteError("ERR", "line1\r\nline2")
	w.WriteInt(-7)
	w.WriteUint(1 << 63)
	w.WriteBulkString("x")
	w.WriteNull()
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	want := "*6\r\n+OK\r\n-ERR line1  line2\r\n:-7\r\n:9223372036854775807\r\n$1\r\nx\r\n$-1\r\n"
	if buf.String() != want {
		t.Fatalf("got %q\nwant %q", buf.String(), want)
	}
}

func TestParseAddress(t *testing.T) {
	ok := map[string]Address{
		"unix:///run/p.sock":   {"unix", "/run/p.sock"},
		"/run/p.sock":          {"unix", "/run/p.sock"},
		"tcp://127.0.0.1:6380": {"tcp", "127.0.0.1:6380"},
		"127.0.0.1:6380":       {"tcp", "127.0.0.1:6380"},
		"tcp://[::1]:1/":       {"tcp", "[::1]:1"},
	}
	for in, want := range ok {
		got, err := ParseAddress(in)
		if err != nil || got != want {
			t.Errorf("ParseAddress(%q) = %v, %v; want %v", in, got, err, want)
		}
		if err == nil {
			if again, err := ParseAddress(got.String()); err != nil || again != got {
				t.Errorf("round trip of %q: %v %v", got.String(), again, err)
			}
		}
	}
	for _, in := range []string{"unix://", "http://x:1", "tcp://nohost", "relative.sock"} {
		if _, err := ParseAddress(in); err == nil {
			t.Errorf("ParseAddress(%q) succeeded", in)
		}
	}
}

// Short arguments share one buffer per request; each must still behave as
// a slice of its own: right bytes whatever the mix of sizes, appends that
// never run into the next argument, and no sharing between requests.
func TestReadRequestArgumentsAreIndependent(t *testing.T) {
	long := strings.Repeat("L", slabArg+1)
	fill := strings.Repeat("f", slabArg)
	want := [][]string{
		{"READ", "abc", "FORMAT", "php"},
		{"WRITE", "abc", long, "BASE", "17"},
		// More short bytes than one buffer holds: the rest spill over.
		{"SET", fill, fill, fill, fill, fill, "x", ""},
	}
	in := encodeRequests(t, want)
	r := NewReader(in, Limits{})
	var got [][][]byte
	for range want {
		args, err := r.ReadRequest()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, args)
	}
	for _, args := range got {
		for i := range args {
			args[i] = append(args[i], '!')
		}
	}
	for k, req := range want {
		for i, a := range req {
			if string(got[k][i]) != a+"!" {
				t.Errorf("request %d arg %d = %q, want %q", k, i, got[k][i], a+"!")
			}
		}
	}
}

// With ReuseArgs, a request's arguments are right whatever the mix of
// sizes, including arguments too big for the arena and requests with more
// arguments than the one before, and appending to one never overwrites
// the next.
func TestReadRequestReuseArgs(t *testing.T) {
	big := strings.Repeat("B", arenaSize+1)
	fill := strings.Repeat("f", arenaSize/3)
	want := [][]string{
		{"READ", "abc", "FORMAT", "php"},
		{"WRITE", "abc", big, "BASE", "17"},
		{"SET", fill, fill, fill, fill, "x", ""},
		{"PING"},
		{"WRITE", "abcd", "n|i:1;", "BASE", "18", "FORMAT", "php", "TTL", "60"},
	}
	in := encodeRequests(t, want)
	r := NewReader(in, Limits{})
	r.ReuseArgs()
	for k, req := range want {
		args, err := r.ReadRequest()
		if err != nil {
			t.Fatal(err)
		}
		if len(args) != len(req) {
			t.Fatalf("request %d: %d arguments, want %d", k, len(args), len(req))
		}
		for i := range args {
			args[i] = append(args[i], '!')
		}
		for i, a := range req {
			if string(args[i]) != a+"!" {
				t.Errorf("request %d arg %d = %.40q, want %.40q", k, i, args[i], a+"!")
			}
		}
	}
	if _, err := r.ReadRequest(); err != io.EOF {
		t.Fatalf("after the last request: %v, want io.EOF", err)
	}
}

// encodeRequests writes each request as a RESP array of bulk strings.
func encodeRequests(t *testing.T, reqs [][]string) *bytes.Buffer {
	t.Helper()
	var in bytes.Buffer
	w := NewWriter(&in)
	for _, req := range reqs {
		args := make([][]byte, len(req))
		for i, a := range req {
			args[i] = []byte(a)
		}
		if err := w.WriteRequest(args...); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return &in
}

// A Reader and Writer handed from one stream to the next carry nothing
// over: not the bytes the first stream had buffered, not an unfinished
// request, not unflushed output.
func TestResetStartsClean(t *testing.T) {
	first := encodeRequests(t, [][]string{{"PING"}, {"ECHO", "left"}})
	first.WriteString("*2\r\n$4\r\nECHO\r\n$9\r\nhalf") // cut mid-frame
	r := NewReader(first, Limits{})
	r.ReuseArgs()
	if args, err := r.ReadRequest(); err != nil || string(args[0]) != "PING" {
		t.Fatalf("first request %q, %v", args, err)
	}
	var out1 bytes.Buffer
	w := NewWriter(&out1)
	w.WriteSimple("never sent")

	r.Reset(encodeRequests(t, [][]string{{"ECHO", "next"}}))
	args, err := r.ReadRequest()
	if err != nil || len(args) != 2 || string(args[1]) != "next" {
		t.Fatalf("after Reset: %q, %v; want ECHO next", args, err)
	}
	if _, err := r.ReadRequest(); err != io.EOF {
		t.Fatalf("after the second stream's request: %v, want io.EOF", err)
	}

	var out2 bytes.Buffer
	w.Reset(&out2)
	w.WriteSimple("OK")
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if out1.Len() != 0 || out2.String() != "+OK\r\n" {
		t.Fatalf("writer: first stream got %q, second %q; want nothing and +OK", out1.String(), out2.String())
	}
}
