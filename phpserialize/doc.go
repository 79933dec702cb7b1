// Package phpserialize reads and writes PHP's serialize() format and the
// three session encodings built on it (php, php_binary, php_serialize)
// byte-exactly, so phpsessd can split a PHP session into its top-level
// entries, merge them and hand PHP back bytes it accepts, re-emitting
// every unchanged value verbatim. It offers three levels: zero-copy
// splitting into raw entries (SplitSession, SplitArray, AppendSession,
// AppendArray); an ordered, lossless Value model decoded by a reusable
// Decoder (keys in document order, int and string keys kept apart, class
// names, mangled property names, C: payloads, enums and R:/r: references
// with PHP's slot numbering); and Go-friendly Marshal/Unmarshal plus a
// JSON view for readers that do not speak PHP. Malformed input returns a
// *SyntaxError or *LimitError carrying the byte offset; no input panics.
package phpserialize
