package phpserialize

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
)

// Seeds beyond the corpus in testdata/fuzz (which holds PHP-written
// payloads of every kind).
var fuzzSeeds = []string{
	"N;", "b:1;", "i:-5;", "d:0.1;", "d:-INF;", `s:3:"a;b";`, `S:3:"a\62c";`, "a:0:{}",
	`a:2:{i:0;s:1:"x";s:1:"k";a:1:{i:0;N;}}`, `O:8:"stdClass":1:{s:1:"a";i:1;}`,
	`C:11:"ArrayObject":21:{x:i:0;a:0:{};m:a:0:{}}`, `E:11:"Suit:Hearts";`,
	`a:2:{i:0;O:8:"stdClass":0:{}i:1;r:2;}`, `a:2:{i:0;a:0:{}i:1;R:2;}`,
	`a|i:1;b|R:1;`, "\x01ai:1;\x01bR:1;", `a:3:{s:1:"x";i:1;s:1:"y";i:2;s:1:"x";i:3;}`,
}

func FuzzUnserialize(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var d Decoder
		v, err := d.Decode(data)
		verr := Valid(data)
		if (err == nil) != (verr == nil) {
			t.Fatalf("Decode error %v but Valid error %v", err, verr)
		}
		HasReferences(data)
		if err != nil {
			if Offset(err) < 0 {
				t.Fatalf("error without offset: %v", err)
			}
			return
		}
		enc := AppendSerialize(nil, v)
		var d2 Decoder
		v2, err := d2.Decode(enc)
		if err != nil {
			t.Fatalf("re-decoding %q (from %q): %v", enc, data, err)
		}
		if enc2 := AppendSerialize(nil, v2); !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding not stable: %q then %q", enc, enc2)
		}
		j, err := JSON(data)
		if err != nil || !json.Valid(j) {
			t.Fatalf("JSON view %q: %v", j, err)
		}
		var x any
		Unmarshal(data, &x)
		if v.Kind == KindArray {
			es, err := SplitArray(data)
			if err != nil {
				t.Fatalf("SplitArray of a valid array: %v", err)
			}
			if len(es) != len(v.Entries) {
				t.Fatalf("SplitArray: %d entries, Decode %d", len(es), len(v.Entries))
			}
		}
	})
}

var formatByIndex = [...]string{FormatPHP, FormatPHPBinary, FormatPHPSerialize}

func FuzzSplitSession(f *testing.F) {
	for _, s := range fuzzSeeds {
		for i := range formatByIndex {
			f.Add([]byte(s), uint8(i))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, fi uint8) {
		format := formatByIndex[int(fi)%len(formatByIndex)]
		es, err := SplitSession(data, format)
		var d Decoder
		v, derr := d.DecodeSession(data, format)
		if (err == nil) != (derr == nil) && !(errors.Is(err, ErrNotArray) && derr == nil) {
			t.Fatalf("SplitSession error %v but DecodeSession error %v", err, derr)
		}
		HasReferences(data)
		if err != nil {
			return
		}
		if len(es) != len(v.Entries) {
			t.Fatalf("SplitSession %d entries, DecodeSession %d", len(es), len(v.Entries))
		}
		out, err := AppendSession(nil, format, es)
		if err != nil {
			t.Fatalf("AppendSession: %v", err)
		}
		if format == FormatPHP && !bytes.Equal(out, data) {
			t.Fatalf("php: split/append changed %q to %q", data, out)
		}
		es2, err := SplitSession(out, format)
		if err != nil {
			t.Fatalf("re-splitting %q: %v", out, err)
		}
		if len(es2) != len(es) {
			t.Fatalf("re-split: %d entries, want %d", len(es2), len(es))
		}
		for i := range es {
			if !es[i].Key.Equal(es2[i].Key) || !bytes.Equal(es[i].Raw, es2[i].Raw) {
				t.Fatalf("entry %d changed: %v %q -> %v %q", i, es[i].Key, es[i].Raw, es2[i].Key, es2[i].Raw)
			}
		}
		enc, err := AppendSessionValue(nil, format, v)
		if err != nil {
			t.Fatalf("AppendSessionValue: %v", err)
		}
		if _, err := (&Decoder{}).DecodeSession(enc, format); err != nil {
			t.Fatalf("re-decoding %q: %v", enc, err)
		}
		if j, err := SessionJSON(data, format); err != nil || !json.Valid(j) {
			t.Fatalf("SessionJSON %q: %v", j, err)
		}
	})
}

func FuzzSplitArray(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		es, err := SplitArray(data)
		if err != nil {
			return
		}
		out := AppendArray(nil, es)
		es2, err := SplitArray(out)
		if err != nil || len(es2) != len(es) {
			t.Fatalf("re-splitting %q: %v", out, err)
		}
		for i := range es {
			if !es[i].Key.Equal(es2[i].Key) || !bytes.Equal(es[i].Raw, es2[i].Raw) {
				t.Fatalf("entry %d changed", i)
			}
		}
	})
}

func FuzzParseScalars(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if i, ok := ParseInt(data); ok {
			if v, err := (&Decoder{}).Decode(data); err != nil || v.Kind != KindInt || v.Int != i {
				t.Fatalf("ParseInt %d disagrees with Decode: %v", i, err)
			}
			if got, _ := ParseInt(AppendInt(nil, i)); got != i {
				t.Fatal("AppendInt/ParseInt")
			}
		}
		if s, ok := ParseString(data); ok {
			if got, ok := ParseString(AppendStringBytes(nil, s)); !ok || !bytes.Equal(got, s) {
				t.Fatal("AppendString/ParseString")
			}
		}
		if f, ok := ParseFloat(data); ok {
			g, ok := ParseFloat(AppendFloat(nil, f))
			if !ok || !(g == f || f != f && g != g) {
				t.Fatalf("float %v does not survive AppendFloat: %v", f, g)
			}
		}
	})
}
