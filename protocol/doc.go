// Package protocol implements phpsessd's wire format, version 1, as
// PROTOCOL.md in this directory specifies it: RESP2 framing (the Redis
// format) carrying phpsessd's own commands. It offers a bounded Reader that
// parses one request or reply at a time and never allocates more than the
// bytes a peer actually sent (capped by explicit limits), a Writer for
// replies and requests, address parsing shared by the server and clients,
// and a small Client used by tests, the command-line tools and benchmarks.
// The parsing code has no socket dependencies so it builds and runs on
// every GOOS, including js and wasip1.
package protocol
