package engine

import (
	"bytes"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// The shortcut for plain metas must produce and accept exactly what
// msgpack does, or daemons of different builds sharing a store disagree.
func TestPlainMetaMatchesMsgpack(t *testing.T) {
	for _, m := range []sessionMeta{
		{}, {Format: "php"}, {Format: "php_binary"}, {Format: "php_serialize"},
		{Format: "igbinary"}, {Format: "php", Alias: "abc"}, {Format: "php", Refs: []string{"user:1"}},
		{Format: "php", FPSalt: []byte{1}, FPUA: []byte{2}, FPIP: []byte{3}},
	} {
		got := encodeMeta(m)
		want := m
		want.V = metaVersion
		ref, err := msgpack.Marshal(&want)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, ref) {
			t.Errorf("encodeMeta(%+v) = %x, msgpack gives %x", m, got, ref)
		}
		back, err := decodeMeta(got)
		if err != nil {
			t.Fatalf("decodeMeta(%x): %v", got, err)
		}
		var viaMsgpack sessionMeta
		if err := msgpack.Unmarshal(ref, &viaMsgpack); err != nil {
			t.Fatal(err)
		}
		if !metaEqual(back, viaMsgpack) {
			t.Errorf("decodeMeta(%x) = %+v, msgpack gives %+v", got, back, viaMsgpack)
		}
	}
	// The returned bytes are the caller's: changing them must not change
	// what the next session gets.
	b := encodeMeta(sessionMeta{Format: "php"})
	b[len(b)-1] ^= 0xff
	if m, err := decodeMeta(encodeMeta(sessionMeta{Format: "php"})); err != nil || m.Format != "php" {
		t.Fatalf("plain meta changed through a returned slice: %+v, %v", m, err)
	}
}

func metaEqual(a, b sessionMeta) bool {
	return a.V == b.V && a.Format == b.Format && a.Alias == b.Alias &&
		len(a.Refs) == len(b.Refs) && bytes.Equal(a.FPSalt, b.FPSalt) &&
		bytes.Equal(a.FPUA, b.FPUA) && bytes.Equal(a.FPIP, b.FPIP)
}
