// Package files is the files:// session store: one sess_<id> file per
// session holding exactly the bytes PHP's session serializer produced, laid
// out like PHP's own files handler (session.save_path "N;MODE;/dir"), so
// phpsessd can serve an existing save_path directory and PHP's files handler
// can read what phpsessd wrote and the other way round. Writes replace the
// file atomically (temp file + rename) while holding the same flock PHP
// takes, versions are a 64-bit hash of the content (so files written by PHP
// itself carry a version too), and expiry is the file's mtime + TTL, as for
// PHP's gc. What PHP's format has no room for (engine metadata, "never
// expires") is a small msgpack record set as the user.phpsessd extended
// attribute of the temp file before the rename, so one file replacement
// publishes data and record together; a session with neither needs no
// record. Where the filesystem takes no user attributes (or the record is
// too large for them) the record goes to a sidecar file under .phpsessd/,
// which PHP never looks at; sidecar files of earlier versions are read and
// replaced on the next write. See handlers/README.md for the options, the
// layout and the caveats.
//
// URL: files:///var/lib/php/sessions?depth=2&mode=0600&ttl=1440&fsync=0
package files
