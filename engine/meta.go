package engine

import (
	"fmt"

	"github.com/vmihailenco/msgpack/v5"
)

// metaVersion is bumped when sessionMeta changes incompatibly; older
// daemons sharing a store then treat the record's meta as unknown.
const metaVersion = 1

// sessionMeta is what the engine keeps beside the data in Record.Meta.
// Short msgpack field names keep it a few bytes per session.
type sessionMeta struct {
	V      int    `msgpack:"v"`
	Format string `msgpack:"f,omitempty"`
	// Alias, when set, makes the record a regenerate alias: the session
	// lives under this id and the record carries no data.
	Alias string `msgpack:"a,omitempty"`
	// Refs are the session's references (refs.go); each one also has an
	// index record that lists this session.
	Refs []string `msgpack:"r,omitempty"`
	// Fingerprint binding (fingerprint.go): a random salt and keyed hashes
	// of the creator's user agent and IP prefix, never the raw values.
	FPSalt []byte `msgpack:"fs,omitempty"`
	FPUA   []byte `msgpack:"fu,omitempty"`
	FPIP   []byte `msgpack:"fi,omitempty"`
}

// keepMeta is the meta a save of session data stores: what the session had
// (references, fingerprint) with the format the save decided on. Saves
// used to rebuild meta from the format alone, which would drop references.
func keepMeta(old sessionMeta, format string) sessionMeta {
	m := old
	m.Alias = ""
	m.Format = format
	return m
}

// plainMeta holds the encodings of the meta nearly every session has: a
// format and nothing else. Saving and loading a session is the hot path
// of every request, and matching these bytes skips msgpack's reflection.
var plainMeta = func() []plainEncoding {
	var p []plainEncoding
	for _, f := range []string{"php", "php_serialize", "php_binary", ""} {
		b, err := msgpack.Marshal(&sessionMeta{V: metaVersion, Format: f})
		if err != nil {
			panic(fmt.Sprintf("encode plain session meta: %v", err))
		}
		p = append(p, plainEncoding{f, b})
	}
	return p
}()

type plainEncoding struct {
	format string
	enc    []byte
}

func isPlain(m sessionMeta) bool {
	return m.Alias == "" && len(m.Refs) == 0 && len(m.FPSalt) == 0 && len(m.FPUA) == 0 && len(m.FPIP) == 0
}

func encodeMeta(m sessionMeta) []byte {
	if isPlain(m) {
		for _, p := range plainMeta {
			if p.format == m.Format {
				// Shared, capacity-capped so an append cannot reach it:
				// stores keep none of a saved Record's slices.
				return p.enc[:len(p.enc):len(p.enc)]
			}
		}
	}
	m.V = metaVersion
	b, err := msgpack.Marshal(&m)
	if err != nil {
		// A struct of two strings always encodes; keep the session usable
		// rather than failing the write over its metadata.
		return nil
	}
	return b
}

func decodeMeta(b []byte) (sessionMeta, error) {
	if len(b) == 0 {
		return sessionMeta{}, nil
	}
	for _, p := range plainMeta {
		if string(b) == string(p.enc) {
			return sessionMeta{V: metaVersion, Format: p.format}, nil
		}
	}
	return decodeMetaSlow(b)
}

// decodeMetaSlow is apart from decodeMeta because the value msgpack
// decodes into escapes to the heap, which would cost the plain path above
// an allocation too.
func decodeMetaSlow(b []byte) (sessionMeta, error) {
	var m sessionMeta
	if err := msgpack.Unmarshal(b, &m); err != nil {
		return sessionMeta{}, fmt.Errorf("decode session meta: %w", err)
	}
	if m.V > metaVersion {
		return m, fmt.Errorf("session meta version %d is newer than %d", m.V, metaVersion)
	}
	return m, nil
}
