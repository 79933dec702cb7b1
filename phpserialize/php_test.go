package phpserialize

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"fmt"
	"math"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// phpBinary returns the php-cli to run differential tests against. Without
// php the tests skip, unless PHPSESSD_REQUIRE_PHP is set, which makes a
// missing php a failure (the project's test command sets it).
func phpBinary(t *testing.T) string {
	t.Helper()
	if runtime.GOOS == "wasip1" || runtime.GOOS == "js" {
		t.Skip("no subprocesses on " + runtime.GOOS)
	}
	path, err := exec.LookPath("php")
	if err != nil {
		if os.Getenv("PHPSESSD_REQUIRE_PHP") != "" {
			t.Fatalf("php not found on PATH and PHPSESSD_REQUIRE_PHP is set: %v", err)
		}
		t.Skip("php not found on PATH (set PHPSESSD_REQUIRE_PHP=1 to make this a failure)")
	}
	return path
}

func genScript(t *testing.T) string {
	p, err := filepath.Abs(filepath.Join("..", "scripts", "php", "gen-payloads.php"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("generator script: %v", err)
	}
	return p
}

func runPHP(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	php := phpBinary(t)
	cmd := exec.Command(php, append([]string{genScript(t)}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("php %v: %v\n%s", args, err, stderr.String())
	}
	return string(out)
}

type phpCase struct {
	name, kind string
	data       []byte
}

func phpCases(t *testing.T) []phpCase {
	out := runPHP(t, "", "cases")
	var cs []phpCase
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 3 {
			t.Fatalf("bad line from generator: %q", line)
		}
		b, err := base64.StdEncoding.DecodeString(f[2])
		if err != nil {
			t.Fatal(err)
		}
		cs = append(cs, phpCase{f[0], f[1], b})
	}
	if len(cs) < 100 {
		t.Fatalf("only %d cases", len(cs))
	}
	return cs
}

func walkHasRefs(v *Value) bool {
	switch v.Kind {
	case KindRef, KindObjectRef:
		return true
	case KindCustom:
		return bytes.Contains(v.Bytes, []byte("R:")) || bytes.Contains(v.Bytes, []byte("r:"))
	}
	for i := range v.Entries {
		if walkHasRefs(&v.Entries[i].Value) {
			return true
		}
	}
	return false
}

// TestPHPRoundTrip decodes everything PHP produced and re-encodes it with
// every API level; each must give PHP's bytes back exactly.
func TestPHPRoundTrip(t *testing.T) {
	var d Decoder
	for _, c := range phpCases(t) {
		name := c.name + "/" + c.kind
		if c.kind == "value" {
			if err := Valid(c.data); err != nil {
				t.Errorf("%s: Valid: %v", name, err)
				continue
			}
			v, err := d.Decode(c.data)
			if err != nil {
				t.Errorf("%s: Decode: %v", name, err)
				continue
			}
			if got := AppendSerialize(nil, v); !bytes.Equal(got, c.data) {
				t.Errorf("%s: re-encoded\n got %q\nwant %q", name, got, c.data)
			}
			if HasReferences(c.data) != walkHasRefs(v) {
				t.Errorf("%s: HasReferences = %v", name, HasReferences(c.data))
			}
			checkSlots(t, name, &d)
			if v.Kind == KindArray {
				es, err := SplitArray(c.data)
				if err != nil {
					t.Errorf("%s: SplitArray: %v", name, err)
				} else if got := AppendArray(nil, es); !bytes.Equal(got, c.data) {
					t.Errorf("%s: AppendArray differs", name)
				}
			}
			if _, err := JSON(c.data); err != nil {
				t.Errorf("%s: JSON: %v", name, err)
			}
			continue
		}
		es, err := SplitSession(c.data, c.kind)
		if err != nil {
			t.Errorf("%s: SplitSession: %v", name, err)
			continue
		}
		got, err := AppendSession(nil, c.kind, es)
		if err != nil || !bytes.Equal(got, c.data) {
			t.Errorf("%s: AppendSession: %v\n got %q\nwant %q", name, err, got, c.data)
		}
		v, err := d.DecodeSession(c.data, c.kind)
		if err != nil {
			t.Errorf("%s: DecodeSession: %v", name, err)
			continue
		}
		if len(v.Entries) != len(es) {
			t.Errorf("%s: DecodeSession has %d entries, SplitSession %d", name, len(v.Entries), len(es))
		}
		got, err = AppendSessionValue(nil, c.kind, v)
		if err != nil || !bytes.Equal(got, c.data) {
			t.Errorf("%s: AppendSessionValue: %v\n got %q\nwant %q", name, err, got, c.data)
		}
		checkSlots(t, name, &d)
		if _, err := SessionJSON(c.data, c.kind); err != nil {
			t.Errorf("%s: SessionJSON: %v", name, err)
		}
	}
}

// checkSlots verifies that every R:/r: in the last decode resolves, and
// that r: lands on an object or enum as PHP requires.
func checkSlots(t *testing.T, name string, d *Decoder) {
	var walk func(v *Value)
	walk = func(v *Value) {
		switch v.Kind {
		case KindRef, KindObjectRef:
			target := d.Slot(v.Int)
			if target == nil {
				// Slots inside C: payloads have no Value.
				return
			}
			if v.Kind == KindObjectRef {
				for target != nil && (target.Kind == KindRef || target.Kind == KindObjectRef) {
					target = d.Slot(target.Int)
				}
				if target != nil && target.Kind != KindObject && target.Kind != KindEnum && target.Kind != KindCustom {
					t.Errorf("%s: r:%d resolves to a %v", name, v.Int, target.Kind)
				}
			}
		}
		for i := range v.Entries {
			walk(&v.Entries[i].Value)
		}
	}
	for n := int64(1); n <= int64(d.Slots()); n++ {
		if v := d.Slot(n); v != nil && (v.Kind == KindRef) {
			t.Errorf("%s: slot %d holds an R:", name, n)
		}
	}
	if d.Slots() > 0 {
		if v := d.Slot(1); v != nil {
			walk(v)
		}
	}
}

// phpCheck sends encodings to PHP, which unserializes each and serializes
// it again; it returns PHP's bytes or an error string per input.
func phpCheck(t *testing.T, kinds []string, inputs [][]byte) []string {
	var sb strings.Builder
	for i, in := range inputs {
		fmt.Fprintf(&sb, "%s\t%s\n", kinds[i], base64.StdEncoding.EncodeToString(in))
	}
	out := runPHP(t, sb.String(), "check")
	var res []string
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		f := strings.SplitN(sc.Text(), "\t", 2)
		if f[0] != "OK" {
			res = append(res, "FAIL: "+f[len(f)-1])
			continue
		}
		b, _ := base64.StdEncoding.DecodeString(f[1])
		res = append(res, string(b))
	}
	if len(res) != len(inputs) {
		t.Fatalf("php check answered %d of %d inputs", len(res), len(inputs))
	}
	return res
}

// TestPHPAcceptsOurEncodings builds encodings in Go (edited decoded
// values, reordered session entries, Marshal output) and checks that PHP
// accepts each and serializes the value it sees back to the same bytes.
func TestPHPAcceptsOurEncodings(t *testing.T) {
	var kinds []string
	var inputs [][]byte
	add := func(kind string, b []byte) {
		kinds = append(kinds, kind)
		inputs = append(inputs, append([]byte(nil), b...))
	}
	var d Decoder
	for _, c := range phpCases(t) {
		if c.kind == "value" {
			v, err := d.Decode(c.data)
			if err != nil {
				t.Fatal(err)
			}
			if v.Kind == KindArray && !walkHasRefs(v) {
				// Append an entry and edit scalars in place.
				e := append(append([]Entry(nil), v.Entries...), Entry{StringKey("added"), NewFloat(0.1)})
				for i := range e {
					switch e[i].Value.Kind {
					case KindInt:
						e[i].Value.Int++
					case KindString:
						e[i].Value = NewString(string(e[i].Value.Bytes) + "…")
					}
				}
				nv := Value{Kind: KindArray, Entries: e}
				add("value", AppendSerialize(nil, &nv))
			}
			continue
		}
		es, err := SplitSession(c.data, c.kind)
		if err != nil {
			t.Fatal(err)
		}
		if HasReferences(c.data) {
			continue
		}
		// Reverse the entries and drop one: fine without references.
		var rev []RawEntry
		for i := len(es) - 1; i >= 1; i-- {
			rev = append(rev, es[i])
		}
		b, err := AppendSession(nil, c.kind, rev)
		if err != nil {
			t.Fatal(err)
		}
		add(c.kind, b)
	}
	for _, v := range marshalSamples() {
		b, err := Marshal(v)
		if err != nil {
			t.Fatalf("Marshal(%#v): %v", v, err)
		}
		add("value", b)
	}
	res := phpCheck(t, kinds, inputs)
	for i := range inputs {
		if res[i] != string(inputs[i]) {
			t.Errorf("%s %q:\nphp gave %q", kinds[i], inputs[i], res[i])
		}
	}
}

// TestPHPFloatFormat compares AppendFloat with PHP's serialize() on
// special values, powers of ten at the notation boundaries and random bit
// patterns.
func TestPHPFloatFormat(t *testing.T) {
	var fs []float64
	for e := -330; e <= 310; e++ {
		fs = append(fs, math.Pow(10, float64(e)), 1.5*math.Pow(10, float64(e)), -math.Pow(10, float64(e))*1.2345)
	}
	fs = append(fs, 0, math.Copysign(0, -1), math.Inf(1), math.Inf(-1), math.NaN(), 5e-324, math.MaxFloat64,
		math.SmallestNonzeroFloat64, 2.2250738585072014e-308, 0.1, 0.2, 0.3, 1.0/3, 2.0/3, 9007199254740993, 1e21, 123456789012345678)
	r := rand.New(rand.NewSource(1))
	for i := 0; i < 20000; i++ {
		fs = append(fs, math.Float64frombits(r.Uint64()))
		fs = append(fs, float64(r.Int63n(1e12))/float64(int64(1)<<uint(r.Intn(40))))
	}
	var sb strings.Builder
	for _, f := range fs {
		var b [8]byte
		bits := math.Float64bits(f)
		for i := 0; i < 8; i++ {
			b[i] = byte(bits >> (56 - 8*i))
		}
		fmt.Fprintf(&sb, "%x\n", b)
	}
	out := strings.Split(strings.TrimSpace(runPHP(t, sb.String(), "floats")), "\n")
	if len(out) != len(fs) {
		t.Fatalf("php printed %d floats, want %d", len(out), len(fs))
	}
	bad := 0
	for i, f := range fs {
		if got := string(AppendFloat(nil, f)); got != out[i] {
			if bad++; bad < 20 {
				t.Errorf("%v (bits %016x): got %s, php %s", f, math.Float64bits(f), got, out[i])
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d floats differ", bad, len(fs))
	}
}

type marshalSample struct {
	Name    string           `php:"name"`
	Age     int              `php:"age"`
	Tags    []string         `php:"tags"`
	Score   float64          `php:"score"`
	Skip    string           `php:"-"`
	Empty   string           `php:"empty,omitempty"`
	Nested  map[string]int   `php:"nested"`
	Ptr     *int             `php:"ptr"`
	ByIndex map[int64]string `php:"by_index"`
	Any     map[string]any   `php:"any"`
}

func marshalSamples() []any {
	seven := 7
	return []any{
		nil, true, false, 0, -1, int64(math.MaxInt64), int64(math.MinInt64), uint32(7), 0.1, 1e100, 5e-324,
		math.Copysign(0, -1), math.Inf(1), math.Inf(-1), float32(0.1), "", "héllo", []byte{0, 1, 255},
		[]int{1, 2, 3}, [2]string{"a", "b"}, map[string]any{"b": 1, "a": []any{nil, "x"}, "5": "five", "05": "zero-five"},
		map[int]string{3: "c", -1: "m"},
		marshalSample{Name: "ann", Age: 41, Tags: []string{"x"}, Score: 2.5, Nested: map[string]int{"k": 1}, Ptr: &seven,
			ByIndex: map[int64]string{10: "ten"}, Any: map[string]any{"o": &Object{Class: "stdClass", Props: []Prop{{StringKey("p"), 1}}}}},
		&Object{Class: "PlainObj", Props: []Prop{{StringKey("a"), 2}, {StringKey("\x00*\x00b"), "B"}, {StringKey("\x00PlainObj\x00c"), []int{}}, {StringKey("d"), nil}}},
		EnumCase{Class: "Suit", Case: "Spades"},
		Custom{Class: "Legacy", Data: []byte(`a:1:{i:0;s:1:"x";}`)},
		RawValue(`a:1:{s:1:"k";b:1;}`),
	}
}
