package codecs

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	elliotchance "github.com/elliotchance/phpserialize"
	"github.com/leeqvip/gophp"
	"github.com/phpsessd/phpsessd/phpserialize"
	trim21 "github.com/trim21/go-phpserialize"
	yvasiyarov "github.com/yvasiyarov/php_session_decoder/php_serialize"
)

// codec is one library's generic use: decode into its own value type,
// encode that back. A nil encode means the library cannot encode what its
// generic decode returns.
type codec struct {
	name   string
	decode func(data []byte) (any, error)
	encode func(v any) ([]byte, error)
}

func (c codec) round(data []byte) (out []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	v, err := c.decode(data)
	if err != nil {
		return nil, err
	}
	if c.encode == nil {
		return nil, errNoEncode
	}
	return c.encode(v)
}

var errNoEncode = fmt.Errorf("cannot encode its decoded value")

var (
	ourDecoder phpserialize.Decoder
	ourBuf     []byte
)

var codecs = []codec{
	{"phpsessd Value (reused Decoder)",
		func(data []byte) (any, error) { return ourDecoder.Decode(data) },
		func(v any) ([]byte, error) {
			ourBuf = phpserialize.AppendSerialize(ourBuf[:0], v.(*phpserialize.Value))
			return ourBuf, nil
		}},
	{"phpsessd SplitArray + AppendArray",
		func(data []byte) (any, error) { return phpserialize.SplitArray(data) },
		func(v any) ([]byte, error) {
			ourBuf = phpserialize.AppendArray(ourBuf[:0], v.([]phpserialize.RawEntry))
			return ourBuf, nil
		}},
	{"phpsessd Unmarshal(any) + Marshal",
		func(data []byte) (any, error) {
			var x any
			err := phpserialize.Unmarshal(data, &x)
			return x, err
		},
		phpserialize.Marshal},
	{"elliotchance/phpserialize v1.4.0",
		func(data []byte) (any, error) { return elliotchance.UnmarshalAssociativeArray(data) },
		func(v any) ([]byte, error) { return elliotchance.Marshal(v, nil) }},
	{"trim21/go-phpserialize v0.1.0",
		func(data []byte) (any, error) {
			var x any
			err := trim21.Unmarshal(data, &x)
			return x, err
		},
		nil},
	{"leeqvip/gophp v1.0.0",
		func(data []byte) (any, error) { return gophp.Unserialize(data) },
		gophp.Serialize},
	{"yvasiyarov/php_session_decoder",
		func(data []byte) (any, error) { return yvasiyarov.UnSerialize(string(data)) },
		func(v any) ([]byte, error) {
			s, err := yvasiyarov.Serialize(v.(yvasiyarov.PhpValue))
			return []byte(s), err
		}},
}

var payloads = []string{"plain-4k", "plain-64k", "session-4k", "session-64k"}

func load(tb testing.TB, name string) []byte {
	b, err := os.ReadFile(filepath.Join("..", "..", "phpserialize", "testdata", name+".php_serialize"))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// TestFidelity reports, per library and payload, whether the round trip
// works and returns PHP's bytes. The plain payloads hold only arrays and
// scalars; the session payloads also objects, private and protected
// properties, __serialize() bodies and an enum.
func TestFidelity(t *testing.T) {
	var sb strings.Builder
	fmt.Fprintf(&sb, "\n%-36s", "library")
	for _, p := range payloads {
		fmt.Fprintf(&sb, " %-14s", p)
	}
	sb.WriteString("\n")
	for _, c := range codecs {
		fmt.Fprintf(&sb, "%-36s", c.name)
		for _, p := range payloads {
			data := load(t, p)
			out, err := c.round(data)
			res := "same bytes"
			switch {
			case err == errNoEncode:
				res = "decode only"
			case err != nil:
				res = "error"
			case !bytes.Equal(out, data):
				res = "differs"
			}
			fmt.Fprintf(&sb, " %-14s", res)
			if strings.HasPrefix(c.name, "phpsessd Value") && res != "same bytes" {
				t.Errorf("%s on %s: %s %v", c.name, p, res, err)
			}
		}
		sb.WriteString("\n")
	}
	t.Log(sb.String())
}

func bench(b *testing.B, op string) {
	for _, p := range payloads {
		data := load(b, p)
		for _, c := range codecs {
			b.Run(p+"/"+c.name, func(b *testing.B) {
				run := c.round
				if op == "decode" {
					run = func(data []byte) ([]byte, error) {
						_, err := c.decode(data)
						return nil, err
					}
				}
				if _, err := run(data); err != nil {
					b.Skipf("%v", err)
				}
				b.SetBytes(int64(len(data)))
				b.ReportAllocs()
				b.ResetTimer()
				c0 := processCPU()
				for i := 0; i < b.N; i++ {
					run(data)
				}
				if c1 := processCPU(); c0 > 0 && c1 > c0 {
					b.ReportMetric(float64(len(data))*float64(b.N)/(float64(c1-c0)/1e9)/1e6, "cpuMB/s")
				}
			})
		}
	}
}

func BenchmarkRoundTrip(b *testing.B) { bench(b, "roundtrip") }
func BenchmarkDecode(b *testing.B)    { bench(b, "decode") }
