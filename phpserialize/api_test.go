package phpserialize

import (
	"errors"
	"math"
	"strings"
	"testing"
)

func TestSplitSessionFormats(t *testing.T) {
	cases := []struct {
		format string
		data   string
		keys   []Key
		raws   []string
	}{
		{FormatPHP, "", nil, nil},
		{FormatPHPBinary, "", nil, nil},
		{FormatPHPSerialize, "", nil, nil},
		{FormatPHP, `a|i:1;b|s:3:"x|y";c|a:1:{i:0;N;}`, []Key{StringKey("a"), StringKey("b"), StringKey("c")}, []string{"i:1;", `s:3:"x|y";`, "a:1:{i:0;N;}"}},
		{FormatPHP, `5|i:1;|b:0;`, []Key{StringKey("5"), StringKey("")}, []string{"i:1;", "b:0;"}},
		{FormatPHP, `a|i:1;b|R:1;`, []Key{StringKey("a"), StringKey("b")}, []string{"i:1;", "R:1;"}},
		{FormatPHPBinary, "\x01ai:1;\x02bcs:1:\"|\";", []Key{StringKey("a"), StringKey("bc")}, []string{"i:1;", `s:1:"|";`}},
		{FormatPHPBinary, "\x81ai:1;", []Key{StringKey("a")}, []string{"i:1;"}},
		{FormatPHPSerialize, `a:2:{s:1:"5";i:1;s:1:"x";a:0:{}}`, []Key{IntKey(5), StringKey("x")}, []string{"i:1;", "a:0:{}"}},
		{FormatPHPSerialize, `a:2:{i:0;O:8:"stdClass":0:{}i:1;r:2;}`, []Key{IntKey(0), IntKey(1)}, []string{`O:8:"stdClass":0:{}`, "r:2;"}},
	}
	for _, c := range cases {
		got, err := SplitSession([]byte(c.data), c.format)
		if err != nil {
			t.Errorf("%s %q: %v", c.format, c.data, err)
			continue
		}
		if len(got) != len(c.keys) {
			t.Errorf("%s %q: got %d entries, want %d", c.format, c.data, len(got), len(c.keys))
			continue
		}
		for i := range got {
			if !got[i].Key.Equal(c.keys[i]) || string(got[i].Raw) != c.raws[i] {
				t.Errorf("%s %q entry %d: got %v %q, want %v %q", c.format, c.data, i, got[i].Key, got[i].Raw, c.keys[i], c.raws[i])
			}
		}
		if c.format == FormatPHPBinary && strings.HasPrefix(c.data, "\x81") {
			continue // the masked high bit does not come back
		}
		if c.format == FormatPHPSerialize && (c.data == "" || strings.Contains(c.data, `"5"`)) {
			continue
		}
		back, err := AppendSession(nil, c.format, got)
		if err != nil || string(back) != c.data {
			t.Errorf("%s %q: AppendSession gave %q, %v", c.format, c.data, back, err)
		}
	}
}

func TestSplitSessionErrors(t *testing.T) {
	cases := []struct {
		format, data string
		off          int64
	}{
		{FormatPHP, "a|i:1;junk", 6},
		{FormatPHP, "a|i:1", 5},
		{FormatPHP, "a|R:1;", 4},
		{FormatPHP, "a|i:1;b|R:2;", 10},
		{FormatPHPBinary, "\x05ab", 0},
		{FormatPHPBinary, "\x01a", 2},
		{FormatPHPSerialize, "a:1:{i:0;i:1;}junk", 14},
		{FormatPHPSerialize, "a:1:{i:0;i:1;", 13},
		{FormatPHPSerialize, "a:9:{i:0;i:1;}", 2},
	}
	for _, c := range cases {
		_, err := SplitSession([]byte(c.data), c.format)
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("%s %q: want SyntaxError, got %v", c.format, c.data, err)
			continue
		}
		if se.Offset != c.off {
			t.Errorf("%s %q: offset %d, want %d (%v)", c.format, c.data, se.Offset, c.off, err)
		}
	}
	for _, s := range []string{"i:5;", "N;", `s:1:"a";`, `O:8:"stdClass":0:{}`} {
		if _, err := SplitSession([]byte(s), FormatPHPSerialize); !errors.Is(err, ErrNotArray) {
			t.Errorf("%q: want ErrNotArray, got %v", s, err)
		}
		if _, err := SplitArray([]byte(s)); !errors.Is(err, ErrNotArray) {
			t.Errorf("SplitArray %q: want ErrNotArray, got %v", s, err)
		}
	}
	if _, err := SplitSession([]byte("x"), "msgpack"); err == nil {
		t.Error("unknown format accepted")
	}
}

func TestAppendSession(t *testing.T) {
	es := []RawEntry{{StringKey("a"), []byte("i:1;")}, {IntKey(5), []byte("i:2;")}, {StringKey("b"), []byte("N;")}}
	got, err := AppendSession(nil, FormatPHP, es)
	if err != nil || string(got) != "a|i:1;b|N;" {
		t.Errorf("php: %q %v", got, err)
	}
	got, err = AppendSession(nil, FormatPHPBinary, es)
	if err != nil || string(got) != "\x01ai:1;\x01bN;" {
		t.Errorf("php_binary: %q %v", got, err)
	}
	got, err = AppendSession(nil, FormatPHPSerialize, es)
	if err != nil || string(got) != `a:3:{s:1:"a";i:1;i:5;i:2;s:1:"b";N;}` {
		t.Errorf("php_serialize: %q %v", got, err)
	}
	for _, f := range []string{FormatPHP, FormatPHPBinary} {
		got, err = AppendSession(nil, f, nil)
		if err != nil || len(got) != 0 {
			t.Errorf("%s empty: %q %v", f, got, err)
		}
	}
	got, _ = AppendSession(nil, FormatPHPSerialize, nil)
	if string(got) != "a:0:{}" {
		t.Errorf("php_serialize empty: %q", got)
	}
	if _, err := AppendSession(nil, FormatPHP, []RawEntry{{StringKey("a|b"), []byte("N;")}}); err == nil {
		t.Error("php: '|' in name accepted")
	}
	if _, err := AppendSession(nil, FormatPHPBinary, []RawEntry{{StringKey(strings.Repeat("x", 128)), []byte("N;")}}); err == nil {
		t.Error("php_binary: 128-byte name accepted")
	}
	got, err = AppendSession(nil, FormatPHPBinary, []RawEntry{{StringKey(strings.Repeat("x", 127)), []byte("N;")}})
	if err != nil || got[0] != 127 {
		t.Errorf("php_binary 127: %v", err)
	}
}

func TestSplitArray(t *testing.T) {
	raw := []byte(`a:3:{i:0;s:1:"x";s:2:"05";a:1:{i:0;R:1;}s:2:"-7";d:0.5;}`)
	es, err := SplitArray(raw)
	if err != nil {
		t.Fatal(err)
	}
	want := []RawEntry{{IntKey(0), []byte(`s:1:"x";`)}, {StringKey("05"), []byte(`a:1:{i:0;R:1;}`)}, {IntKey(-7), []byte("d:0.5;")}}
	for i := range want {
		if !es[i].Key.Equal(want[i].Key) || string(es[i].Raw) != string(want[i].Raw) {
			t.Errorf("entry %d: %v %q", i, es[i].Key, es[i].Raw)
		}
	}
	back := AppendArray(nil, es)
	if string(back) != strings.Replace(string(raw), `s:2:"-7";`, "i:-7;", 1) {
		t.Errorf("AppendArray: %q", back)
	}
	if got := AppendArray(nil, []RawEntry{{StringKey("5"), []byte("N;")}}); string(got) != "a:1:{i:5;N;}" {
		t.Errorf("numeric string key: %q", got)
	}
	if _, err := SplitArray([]byte("a:1:{i:0;N;")); err == nil {
		t.Error("truncated array accepted")
	}
	// A fragment may refer to slots outside itself.
	if _, err := SplitArray([]byte("a:1:{i:0;R:9;}")); err != nil {
		t.Errorf("fragment with outer reference: %v", err)
	}
}

func TestHasReferences(t *testing.T) {
	cases := map[string]bool{
		"":                                      false,
		"i:1;":                                  false,
		`s:4:"R:1;";`:                           false,
		`a:2:{i:0;i:1;i:1;R:2;}`:                true,
		`a:2:{i:0;O:8:"stdClass":0:{}i:1;r:2;}`: true,
		`a|s:4:"R:1;";`:                         false,
		`a|i:1;b|R:1;`:                          true,
		"\x01ai:1;\x01bR:1;":                    true,
		"\x01as:4:\"r:1;\";":                    false,
		`C:2:"SS":18:{a:1:{i:0;R:2;}}`:          true,
		`C:2:"SS":12:{a:1:{i:0;N;}}`:            false,
		"garbage R:1":                           true,
		"garbage":                               false,
	}
	for in, want := range cases {
		if got := HasReferences([]byte(in)); got != want {
			t.Errorf("HasReferences(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestValid(t *testing.T) {
	good := []string{
		"N;", "b:0;", "b:1;", "i:0;", "i:-5;", "i:+5;", "i:99999999999999999999;", "d:0.5;", "d:1.;", "d:.5;",
		"d:-1.5E-7;", "d:1e5;", "d:INF;", "d:-INF;", "d:NAN;", "d:5;", `s:0:"";`, `s:3:"a"b";`,
		`S:3:"a\62c";`, "a:0:{}", `a:1:{s:1:"k";a:0:{}}`, `O:8:"stdClass":0:{}`,
		`O:3:"Foo":2:{s:6:"` + "\x00*\x00abc" + `";i:1;s:8:"` + "\x00Foo\x00abc" + `";i:2;}`,
		`C:11:"ArrayObject":21:{x:i:0;a:0:{};m:a:0:{}}`, `E:11:"Suit:Hearts";`,
		`a:2:{i:0;a:0:{}i:1;R:2;}`, `a:2:{i:0;O:8:"stdClass":0:{}i:1;r:2;}`,
		`a:1:{i:0;R:1;}`,
	}
	for _, s := range good {
		if err := Valid([]byte(s)); err != nil {
			t.Errorf("Valid(%q) = %v", s, err)
		}
	}
	bad := []string{
		"", "N", "n;", "b:2;", "b:1", "i:;", "i:1", "i:1.5;", "d:;", "d:1e;", "d:e5;", "d:inf;", "d:.;",
		`s:1:"";`, `s:2:"a";`, `s:-1:"";`, `S:1:"\6";`, "a:1:{}", "a:0:{", "a:1:{N;N;}", "a:1:{d:1;N;}",
		`a:1:{a:0:{}N;}`, `O:0:"":0:{}`, `O:1:"\":0:{}`, `O:3:"a b":0:{}`, `O:8:"stdClass"::{}`,
		`C:3:"Foo":5:{abc}`, `E:4:"Suit";`, `E:5:"Suit:";`, "R:0;", "R:1;", "r:1;",
		`a:1:{i:0;r:2;}`, `a:1:{i:0;R:3;}`, "i:1;i:2;", "x",
	}
	for _, s := range bad {
		if err := Valid([]byte(s)); err == nil {
			t.Errorf("Valid(%q) accepted", s)
		}
	}
}

func TestParseScalars(t *testing.T) {
	if v, ok := ParseInt([]byte("i:-42;")); !ok || v != -42 {
		t.Error("ParseInt")
	}
	if v, ok := ParseInt([]byte("i:99999999999999999999;")); !ok || v != math.MaxInt64 {
		t.Error("ParseInt saturation")
	}
	for _, s := range []string{"i:;", "i:1", "s:1:\"1\";", "i:1;x", ""} {
		if _, ok := ParseInt([]byte(s)); ok {
			t.Errorf("ParseInt(%q) ok", s)
		}
	}
	if b, ok := ParseString([]byte(`s:3:"a"b";`)); !ok || string(b) != `a"b` {
		t.Error("ParseString")
	}
	if b, ok := ParseString([]byte(`S:3:"a\62c";`)); !ok || string(b) != "abc" {
		t.Errorf("ParseString S: %q", b)
	}
	for _, s := range []string{`s:3:"ab";`, "i:1;", `s:1:"a";x`} {
		if _, ok := ParseString([]byte(s)); ok {
			t.Errorf("ParseString(%q) ok", s)
		}
	}
	if got := string(AppendString(nil, "héllo")); got != `s:6:"héllo";` {
		t.Error(got)
	}
	if got := string(AppendInt(nil, math.MinInt64)); got != "i:-9223372036854775808;" {
		t.Error(got)
	}
}

func TestAppendFloat(t *testing.T) {
	// Verified against PHP 8.2's serialize(): see the differential test for
	// the full sweep.
	sure := map[float64]string{
		1e16: "10000000000000000", 1e17: "1.0E+17", 1.5e-7: "1.5E-7", 0.0001: "0.0001",
		0.00001: "1.0E-5", 1e15: "1000000000000000", 1e25: "1.0E+25",
		123456789012345680000.0: "1.2345678901234568E+20", 5e-324: "5.0E-324",
	}
	for f, want := range sure {
		if got := string(AppendFloatText(nil, f)); got != want {
			t.Errorf("%v: got %s want %s", f, got, want)
		}
	}
	for f, want := range map[float64]string{math.Inf(1): "INF", math.Inf(-1): "-INF", math.NaN(): "NAN", math.Copysign(0, -1): "-0"} {
		if got := string(AppendFloatText(nil, f)); got != want {
			t.Errorf("%v: got %s want %s", f, got, want)
		}
	}
}
