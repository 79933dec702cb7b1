package engine

import (
	"math/rand"
	"testing"
)

// mutate flips, drops or duplicates a few bytes of valid session data so
// the merge sees almost-valid input, the kind most likely to trip a parser.
func mutate(r *rand.Rand, b []byte) []byte {
	out := append([]byte(nil), b...)
	for n := r.Intn(3); n >= 0 && len(out) > 0; n-- {
		i := r.Intn(len(out))
		switch r.Intn(3) {
		case 0:
			out[i] = byte(r.Intn(256))
		case 1:
			out = append(out[:i], out[i+1:]...)
		default:
			out = append(out[:i], append([]byte{out[i]}, out[i:]...)...)
		}
	}
	return out
}

// TestMergeNeverPanics feeds the merge and the key operations corrupt and
// random data: they must return an answer or an error, never panic, and a
// merge that cannot decode must hand back the write unchanged.
func TestMergeNeverPanics(t *testing.T) {
	e := newTestEngine(t, func(c *Config) { c.Counters = []string{"**"} })
	r := rand.New(rand.NewSource(1))
	for i := 0; i < 3000; i++ {
		format := []string{"php", "php_binary", "php_serialize"}[r.Intn(3)]
		pc := genCase(r)
		pc.init.format = format
		good := pc.init.encode(t)
		base, mine, theirs := mutate(r, good), mutate(r, good), mutate(r, good)
		out, _, err := e.merge("fuzz", format, baseState{data: base, known: r.Intn(2) == 0}, mine, theirs)
		if err != nil {
			t.Fatalf("merge error %v", err)
		}
		if out == nil && len(mine) > 0 && len(theirs) > 0 {
			t.Fatalf("nil merge result for %q / %q", mine, theirs)
		}
		for _, k := range []OpKind{OpIncr, OpAppend, OpPush, OpSet, OpUnset} {
			_, _, _, _ = applyOp(theirs, format, OpRequest{Kind: k, Key: "c0", Delta: 1, Value: []byte("i:1;")})
		}
	}
}

func FuzzMerge(f *testing.F) {
	f.Add([]byte(sess("a", pi(1))), []byte(sess("a", pi(2))), []byte(sess("a", pi(3), "b", plist(ps("x")))), true)
	f.Add([]byte("a:1:{i:0;i:1;}"), []byte("a:2:{i:0;i:1;i:1;R:2;}"), []byte("a:0:{}"), false)
	e := newTestEngine(f, func(c *Config) { c.Counters = []string{"c*"} })
	f.Fuzz(func(t *testing.T, base, mine, theirs []byte, known bool) {
		for _, format := range []string{"php", "php_binary", "php_serialize"} {
			_, _, _ = e.merge("fuzz", format, baseState{data: base, known: known}, mine, theirs)
		}
	})
}
