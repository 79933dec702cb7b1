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

func encodeMeta(m sessionMeta) []byte {
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
	var m sessionMeta
	if len(b) == 0 {
		return m, nil
	}
	if err := msgpack.Unmarshal(b, &m); err != nil {
		return sessionMeta{}, fmt.Errorf("decode session meta: %w", err)
	}
	if m.V > metaVersion {
		return m, fmt.Errorf("session meta version %d is newer than %d", m.V, metaVersion)
	}
	return m, nil
}
