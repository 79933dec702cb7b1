package security

import (
	"testing"
	"time"
)

// FuzzDecodeEvent: any payload either fails with ErrBadEvent or decodes to
// an event that encodes and decodes back to itself. Never panics.
func FuzzDecodeEvent(f *testing.F) {
	f.Add([]byte(`{"v":1,"time":"2026-11-22T05:00:00Z","kind":"invalid_id","source":"unix","id":"a/b","id_hash":"0123456789abcdef","reason":"bad","count":3,"suppressed":2,"host":"web1"}`))
	f.Add([]byte(`{"v":2,"kind":"x"}`))
	f.Add([]byte(`{"v":1,"kind":""}`))
	f.Add([]byte(`{"v":1,"kind":"a"} {"v":1,"kind":"b"}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := DecodeEvent(b)
		if err != nil {
			return
		}
		enc, err := EncodeEvent(ev)
		if err != nil {
			t.Fatalf("decoded event does not encode: %+v: %v", ev, err)
		}
		back, err := DecodeEvent(enc)
		if err != nil || back != ev {
			t.Fatalf("re-decode: %+v vs %+v, %v", back, ev, err)
		}
	})
}

// FuzzHookPayload: whatever a client managed to put into an event's
// fields, the encoder produces a bounded payload that the decoder accepts
// and that equals the normalized event.
func FuzzHookPayload(f *testing.F) {
	f.Add("invalid_id", "tcp:203.0.113.7", "../../etc/passwd", "byte 0x2f at 2", int64(1700000000123456789), uint64(5))
	f.Add("unknown_id", "unix", "", "", int64(0), uint64(0))
	f.Add("auth_failure", "\x00\xff\u2028", "\xf0\x9f\x98", "<script>", int64(-1), uint64(1<<63))
	f.Add("", "", "", "", int64(0), uint64(0))
	f.Fuzz(func(t *testing.T, kind, source, id, reason string, unixNano int64, count uint64) {
		ev := Event{Time: time.Unix(0, unixNano), Kind: Kind(kind), Source: source, ID: id, IDHash: HashID(id), Reason: reason, Count: count}
		payload, err := EncodeEvent(ev)
		if err != nil {
			if ev.normalize().Kind == "" {
				return
			}
			t.Fatalf("encode %+v: %v", ev, err)
		}
		if len(payload) > MaxPayloadLen {
			t.Fatalf("payload %d bytes", len(payload))
		}
		got, err := DecodeEvent(payload)
		if err != nil {
			t.Fatalf("decode own payload %q: %v", payload, err)
		}
		if want := ev.normalize(); got != want {
			t.Fatalf("round trip: got %+v want %+v", got, want)
		}
	})
}
