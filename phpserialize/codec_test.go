package phpserialize

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"os"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

var goldenNames = []string{"session-4k", "session-64k"}
var allFormats = []string{FormatPHP, FormatPHPBinary, FormatPHPSerialize}

func readGolden(t testing.TB, name, format string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name + "." + format)
	if err != nil {
		t.Fatalf("golden payload (regenerate with scripts/php/gen-payloads.php golden phpserialize/testdata): %v", err)
	}
	return b
}

func TestGoldenRoundTrip(t *testing.T) {
	var d Decoder
	for _, name := range goldenNames {
		for _, f := range allFormats {
			data := readGolden(t, name, f)
			es, err := SplitSession(data, f)
			if err != nil {
				t.Fatalf("%s.%s: %v", name, f, err)
			}
			if got, _ := AppendSession(nil, f, es); !bytes.Equal(got, data) {
				t.Errorf("%s.%s: split/append differs", name, f)
			}
			v, err := d.DecodeSession(data, f)
			if err != nil {
				t.Fatalf("%s.%s: %v", name, f, err)
			}
			got, err := AppendSessionValue(nil, f, v)
			if err != nil || !bytes.Equal(got, data) {
				t.Errorf("%s.%s: decode/encode differs: %v", name, f, err)
			}
			// Every format holds the same variables.
			if f != FormatPHPSerialize {
				for _, e := range es {
					if err := Valid(e.Raw); err != nil && !HasReferences(e.Raw) {
						t.Errorf("%s.%s %s: %v", name, f, e.Key, err)
					}
				}
			}
			if _, err := SessionJSON(data, f); err != nil {
				t.Errorf("%s.%s JSON: %v", name, f, err)
			}
		}
	}
}

func TestSlotNumbering(t *testing.T) {
	var d Decoder
	// Value: the root is slot 1.
	v, err := d.Decode([]byte(`a:3:{i:0;O:8:"stdClass":1:{s:1:"p";i:7;}i:1;r:2;i:2;R:3;}`))
	if err != nil {
		t.Fatal(err)
	}
	if d.Slot(1) != v || d.Slot(2).Kind != KindObject || d.Slot(3).Int != 7 || d.Slot(4).Kind != KindObjectRef {
		t.Errorf("value slots wrong: %d slots", d.Slots())
	}
	if d.Slots() != 4 || d.Slot(5) != nil || d.Slot(0) != nil {
		t.Errorf("slots = %d", d.Slots())
	}
	// php session: rootless, numbering runs across variables.
	s, err := d.DecodeSession([]byte(`a|i:1;b|a:1:{i:0;s:1:"x";}c|R:3;`), FormatPHP)
	if err != nil {
		t.Fatal(err)
	}
	if d.Slots() != 3 || d.Slot(1) != &s.Entries[0].Value || d.Slot(3).Kind != KindString {
		t.Errorf("session slots wrong: %d", d.Slots())
	}
	// C: payload slots count: root 1, C 2, inner array 3, stdClass 4,
	// inner r: 5; the outer r:4 is 6, the array 7, its element 8; R:7.
	data := `a:4:{i:0;C:2:"SS":37:{a:2:{i:0;O:8:"stdClass":0:{}i:1;r:4;}}i:1;r:4;i:2;a:1:{i:0;i:1;}i:3;R:7;}`
	v, err = d.Decode([]byte(data))
	if err != nil {
		t.Fatal(err)
	}
	if v.Entries[0].Value.Int != 3 || d.Slots() != 8 || d.Slot(4) != nil || d.Slot(7).Kind != KindArray {
		t.Errorf("custom payload slots: inner %d, total %d", v.Entries[0].Value.Int, d.Slots())
	}
	if err := Valid([]byte(data)); err != nil {
		t.Error(err)
	}
	if err := Valid([]byte(strings.Replace(data, "R:7;", "R:9;", 1))); err == nil {
		t.Error("R:9 accepted")
	}
	// Enums take slots and r: may point at them.
	if _, err := d.Decode([]byte(`a:2:{i:0;E:11:"Suit:Hearts";i:1;r:2;}`)); err != nil {
		t.Error(err)
	}
}

func TestDuplicates(t *testing.T) {
	var d Decoder
	data := []byte(`a:3:{s:1:"x";i:1;s:1:"y";i:2;s:1:"x";i:3;}`)
	v, err := d.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	if got := AppendSerialize(nil, v); !bytes.Equal(got, data) {
		t.Errorf("duplicates not kept: %s", got)
	}
	if v.Get(StringKey("x")).Int != 3 {
		t.Error("Get: last should win")
	}
	v.Dedupe()
	if got := string(AppendSerialize(nil, v)); got != `a:2:{s:1:"x";i:3;s:1:"y";i:2;}` {
		t.Errorf("Dedupe: %s", got)
	}
	j, _ := JSON(data)
	if string(j) != `{"x":3,"y":2}` {
		t.Errorf("JSON: %s", j)
	}
	var m map[string]int
	if err := Unmarshal(data, &m); err != nil || m["x"] != 3 {
		t.Errorf("Unmarshal: %v %v", m, err)
	}
}

func TestLimits(t *testing.T) {
	deep := func(n int) []byte {
		return []byte(strings.Repeat("a:1:{i:0;", n) + "N;" + strings.Repeat("}", n))
	}
	if err := Valid(deep(DefaultMaxDepth)); err != nil {
		t.Errorf("depth 4096: %v", err)
	}
	var le *LimitError
	if err := Valid(deep(DefaultMaxDepth + 1)); !errors.As(err, &le) || le.Limit != "depth" {
		t.Errorf("depth 4097: %v", err)
	}
	d := NewDecoder(Limits{MaxDepth: 2})
	if _, err := d.Decode(deep(2)); err != nil {
		t.Error(err)
	}
	if _, err := d.Decode(deep(3)); !errors.As(err, &le) {
		t.Errorf("MaxDepth 2: %v", err)
	}
	d = NewDecoder(Limits{MaxDepth: -1})
	if _, err := d.Decode(deep(10000)); err != nil {
		t.Errorf("unlimited depth: %v", err)
	}
	d = NewDecoder(Limits{MaxSize: 10})
	if _, err := d.Decode([]byte(`s:10:"0123456789";`)); !errors.As(err, &le) || le.Limit != "size" {
		t.Errorf("MaxSize: %v", err)
	}
	d = NewDecoder(Limits{MaxElements: 3})
	if _, err := d.Decode([]byte(`a:2:{i:0;a:2:{i:0;N;i:1;N;}i:1;N;}`)); !errors.As(err, &le) || le.Limit != "elements" {
		t.Errorf("MaxElements: %v", err)
	}
	// Counts beyond what the input can hold fail before any allocation.
	var se *SyntaxError
	for _, s := range []string{"a:999999999999:{}", "a:4:{i:0;N;}", `O:8:"stdClass":100:{}`, "a:1:{i:0;a:1000000:{" + strings.Repeat("N", 100)} {
		if _, err := (&Decoder{}).Decode([]byte(s)); !errors.As(err, &se) {
			t.Errorf("%q: %v", s, err)
		}
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := 0; i < 10; i++ {
		(&Decoder{}).Decode([]byte("a:2147483647:{i:0;N;}"))
	}
	runtime.ReadMemStats(&after)
	if d := after.TotalAlloc - before.TotalAlloc; d > 1<<20 {
		t.Errorf("rejected huge counts allocated %d bytes", d)
	}
}

func TestErrorOffsets(t *testing.T) {
	cases := map[string]int64{
		`a:1:{i:0;s:5:"abc";}`: 19,
		`a:1:{i:0;x}`:          9,
		`i:12x`:                4,
		`a:1:{i:0;N;`:          11,
		`O:3:"Foo":1:{i:0;}`:   17,
	}
	for in, off := range cases {
		err := Valid([]byte(in))
		if got := Offset(err); got != off {
			t.Errorf("%q: offset %d, want %d (%v)", in, got, off, err)
		}
	}
	if Offset(errors.New("x")) != -1 {
		t.Error("Offset of a plain error")
	}
}

func TestDecoderReuseAllocs(t *testing.T) {
	data := readGolden(t, "session-64k", FormatPHP)
	var d Decoder
	buf := make([]byte, 0, len(data)*2)
	for i := 0; i < 2; i++ {
		v, err := d.DecodeSession(data, FormatPHP)
		if err != nil {
			t.Fatal(err)
		}
		buf, _ = AppendSessionValue(buf[:0], FormatPHP, v)
	}
	allocs := testing.AllocsPerRun(20, func() {
		v, _ := d.DecodeSession(data, FormatPHP)
		buf, _ = AppendSessionValue(buf[:0], FormatPHP, v)
	})
	if allocs != 0 {
		t.Errorf("steady-state round trip allocates %v times", allocs)
	}
}

func TestMarshalUnmarshal(t *testing.T) {
	type Inner struct {
		N int `php:"n"`
	}
	type Doc struct {
		Name  string            `php:"name"`
		List  []Inner           `php:"list"`
		Map   map[string]string `php:"map"`
		Ints  map[int]bool      `php:"ints"`
		F     float64           `php:"f"`
		P     *Inner            `php:"p"`
		Nil   *Inner            `php:"nil"`
		Bytes []byte            `php:"bytes"`
		Any   any               `php:"any"`
		Raw   RawValue          `php:"raw"`
		U8    uint8             `php:"u8"`
	}
	in := Doc{Name: "x", List: []Inner{{1}, {2}}, Map: map[string]string{"b": "2", "a": "1"}, Ints: map[int]bool{2: true, -1: false},
		F: 0.1, P: &Inner{9}, Bytes: []byte{0, 255}, Any: []any{int64(1), "s", map[string]any{"k": nil}}, Raw: RawValue("b:1;"), U8: 200}
	b, err := Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	want := `a:11:{s:4:"name";s:1:"x";s:4:"list";a:2:{i:0;a:1:{s:1:"n";i:1;}i:1;a:1:{s:1:"n";i:2;}}s:3:"map";a:2:{s:1:"a";s:1:"1";s:1:"b";s:1:"2";}` +
		`s:4:"ints";a:2:{i:-1;b:0;i:2;b:1;}s:1:"f";d:0.1;s:1:"p";a:1:{s:1:"n";i:9;}s:3:"nil";N;s:5:"bytes";s:2:"` + "\x00\xff" + `";` +
		`s:3:"any";a:3:{i:0;i:1;i:1;s:1:"s";i:2;a:1:{s:1:"k";N;}}s:3:"raw";b:1;s:2:"u8";i:200;}`
	if string(b) != want {
		t.Errorf("Marshal:\n got %q\nwant %q", b, want)
	}
	var out Doc
	if err := Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Errorf("Unmarshal:\n got %#v\nwant %#v", out, in)
	}
	var x any
	if err := Unmarshal([]byte(`a:2:{i:0;O:3:"Foo":2:{s:6:"`+"\x00*\x00pro"+`";i:1;s:1:"s";r:2;}i:1;r:2;}`), &x); err != nil {
		t.Fatal(err)
	}
	l := x.([]any)
	o := l[0].(*Object)
	if o.Class != "Foo" || o.Get("pro") != int64(1) || o.Props[1].Value.(*Object) != o || l[1].(*Object) != o {
		t.Errorf("objects not shared: %#v", l)
	}
	var i8 int8
	var te *UnmarshalTypeError
	if err := Unmarshal([]byte("i:300;"), &i8); !errors.As(err, &te) {
		t.Errorf("overflow: %v", err)
	}
	var s string
	if err := Unmarshal([]byte("i:3;"), &s); !errors.As(err, &te) {
		t.Errorf("type mismatch: %v", err)
	}
	if err := Unmarshal([]byte("i:3;"), s); err == nil {
		t.Error("non-pointer accepted")
	}
	type Priv struct {
		Secret string
		Prot   int
	}
	var p Priv
	if err := Unmarshal([]byte(`O:1:"P":2:{s:9:"`+"\x00P\x00secret"+`";s:1:"x";s:7:"`+"\x00*\x00prot"+`";i:4;}`), &p); err != nil || p.Secret != "x" || p.Prot != 4 {
		t.Errorf("unmangled props: %+v %v", p, err)
	}
	if _, err := Marshal(make(chan int)); err == nil {
		t.Error("chan marshaled")
	}
	if _, err := Marshal(uint64(math.MaxUint64)); err == nil {
		t.Error("huge uint marshaled")
	}
	cyc := map[string]any{}
	cyc["self"] = cyc
	if _, err := Marshal(cyc); err == nil {
		t.Error("cycle marshaled")
	}
	var list any
	if err := Unmarshal([]byte(`a:1:{i:0;R:1;}`), &list); err == nil {
		t.Error("self-referencing list decoded into any")
	}
}

func TestJSONView(t *testing.T) {
	cases := map[string]string{
		`N;`:                       `null`,
		`d:0.1;`:                   `0.1`,
		`d:5;`:                     `5.0`,
		`d:-0;`:                    `-0.0`,
		`d:1.0E+25;`:               `1.0E+25`,
		`d:.5;`:                    `0.5`,
		`d:NAN;`:                   `{"__float":"NAN"}`,
		`s:2:"` + "\x00\n" + `";`:  `"\u0000\n"`,
		`a:0:{}`:                   `[]`,
		`a:1:{i:1;i:1;}`:           `{"1":1}`,
		`C:3:"Foo":3:{abc}`:        `{"__class":"Foo","__serialized":"abc"}`,
		`a:2:{i:0;a:0:{}i:1;R:2;}`: `[[],{"__ref":2}]`,
	}
	for in, want := range cases {
		got, err := JSON([]byte(in))
		if err != nil || string(got) != want {
			t.Errorf("%q: %s %v, want %s", in, got, err, want)
		}
		if !json.Valid(got) {
			t.Errorf("%q: invalid JSON %s", in, got)
		}
	}
	got, err := SessionJSON([]byte(`0|i:1;1|i:2;`), FormatPHP)
	if err != nil || string(got) != `{"0":1,"1":2}` {
		t.Errorf("session with list-like names: %s %v", got, err)
	}
}

func TestDecodeNext(t *testing.T) {
	var d Decoder
	data := []byte(`i:1;s:1:"x";a:1:{i:0;N;}`)
	var got []string
	for len(data) > 0 {
		v, n, err := d.DecodeNext(data)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(AppendSerialize(nil, v)))
		data = data[n:]
	}
	if strings.Join(got, "|") != `i:1;|s:1:"x";|a:1:{i:0;N;}` {
		t.Errorf("got %q", got)
	}
	if _, _, err := d.DecodeNext([]byte("i:1")); err == nil {
		t.Error("truncated value accepted")
	}
}
