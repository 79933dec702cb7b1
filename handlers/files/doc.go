// Package files is the files:// session store: one sess_<id> file per
// session holding exactly the bytes PHP's session serializer produced, laid
// out like PHP's own files handler (session.save_path "N;MODE;/dir"), so
// phpsessd can serve an existing save_path directory and PHP's files handler
// can read what phpsessd wrote and the other way round. Writes replace the
// file atomically (temp file + rename) while holding the same flock PHP
// takes, versions are a 64-bit hash of the content (so files written by PHP
// itself carry a version too), and expiry and engine metadata live in a
// msgpack sidecar under .phpsessd/ that PHP never looks at. See
// handlers/README.md for the options, the layout and the caveats.
//
// URL: files:///var/lib/php/sessions?depth=2&mode=0600&ttl=1440&fsync=0
package files
