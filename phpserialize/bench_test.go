package phpserialize

import (
	"testing"
)

// The benchmarks run on the committed golden sessions (realistic 4 KB and
// 64 KB payloads written by PHP 8.2); scripts/bench-codec.sh compares them
// with PHP's own unserialize()+serialize() on the same files.

func benchPayloads(b *testing.B, fn func(b *testing.B, data []byte, format string)) {
	for _, name := range goldenNames {
		for _, f := range allFormats {
			data := readGolden(b, name, f)
			b.Run(name[len("session-"):]+"/"+f, func(b *testing.B) {
				b.SetBytes(int64(len(data)))
				b.ReportAllocs()
				c0 := processCPU()
				fn(b, data, f)
				if c1 := processCPU(); c0 > 0 && c1 > c0 {
					// Throughput per CPU second: what scripts/bench-codec.sh
					// compares with PHP's, immune to waiting for a core.
					b.ReportMetric(float64(len(data))*float64(b.N)/(float64(c1-c0)/1e9)/1e6, "cpuMB/s")
				}
			})
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	benchPayloads(b, func(b *testing.B, data []byte, f string) {
		var d Decoder
		for i := 0; i < b.N; i++ {
			if _, err := d.DecodeSession(data, f); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkEncode(b *testing.B) {
	benchPayloads(b, func(b *testing.B, data []byte, f string) {
		var d Decoder
		v, err := d.DecodeSession(data, f)
		if err != nil {
			b.Fatal(err)
		}
		buf := make([]byte, 0, len(data))
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			buf, _ = AppendSessionValue(buf[:0], f, v)
		}
	})
}

func BenchmarkRoundTrip(b *testing.B) {
	benchPayloads(b, func(b *testing.B, data []byte, f string) {
		var d Decoder
		buf := make([]byte, 0, len(data))
		for i := 0; i < b.N; i++ {
			v, err := d.DecodeSession(data, f)
			if err != nil {
				b.Fatal(err)
			}
			buf, _ = AppendSessionValue(buf[:0], f, v)
		}
	})
}

func BenchmarkSplit(b *testing.B) {
	benchPayloads(b, func(b *testing.B, data []byte, f string) {
		for i := 0; i < b.N; i++ {
			if _, err := SplitSession(data, f); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkSplitAppend(b *testing.B) {
	benchPayloads(b, func(b *testing.B, data []byte, f string) {
		buf := make([]byte, 0, len(data))
		for i := 0; i < b.N; i++ {
			es, err := SplitSession(data, f)
			if err != nil {
				b.Fatal(err)
			}
			buf, _ = AppendSession(buf[:0], f, es)
		}
	})
}

func BenchmarkValid(b *testing.B) {
	benchPayloads(b, func(b *testing.B, data []byte, f string) {
		if f != FormatPHPSerialize {
			b.Skip("Valid takes one value")
		}
		for i := 0; i < b.N; i++ {
			if err := Valid(data); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkUnmarshalAny(b *testing.B) {
	benchPayloads(b, func(b *testing.B, data []byte, f string) {
		if f != FormatPHPSerialize {
			b.Skip("Unmarshal takes one value")
		}
		for i := 0; i < b.N; i++ {
			var x any
			if err := Unmarshal(data, &x); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkSessionJSON(b *testing.B) {
	benchPayloads(b, func(b *testing.B, data []byte, f string) {
		for i := 0; i < b.N; i++ {
			if _, err := SessionJSON(data, f); err != nil {
				b.Fatal(err)
			}
		}
	})
}
