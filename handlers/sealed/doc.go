// Package sealed is a handlers.Store decorator that encrypts session records
// at rest (AES-256-GCM with rotating keys) and compresses large ones (zstd),
// transparently: the engine above it loads and saves plain PHP-encoded bytes,
// the store below it only ever sees sealed records. Each record carries a
// small versioned header (magic, flags, key id, nonce) so that keys can be
// rotated without a flag day, records written before sealing was enabled
// still load, and a wrong key, a corrupt header or a tampered ciphertext is
// reported as a clear error instead of handing garbage to PHP. Sealing
// gives up PHP-native interop of the sealed store: PHP's own files or redis
// handler cannot read what this package writes. See docs/operations.md for
// the record format, the key file and rotation.
package sealed
