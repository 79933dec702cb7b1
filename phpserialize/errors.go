package phpserialize

import (
	"errors"
	"strconv"
)

// ErrNotArray is returned (wrapped) when an array was required but the data
// holds another value, e.g. a php_serialize session whose root is a scalar.
// Callers can fall back to treating such data as opaque bytes.
var ErrNotArray = errors.New("phpserialize: value is not an array")

// SyntaxError reports malformed input and where it was found.
type SyntaxError struct {
	Offset int64  // byte offset in the input where the problem was detected
	Msg    string // what was expected or found
}

func (e *SyntaxError) Error() string {
	return "phpserialize: " + e.Msg + " at offset " + strconv.FormatInt(e.Offset, 10)
}

// LimitError reports input that is well-formed so far but exceeds a
// configured limit (depth, size, element count).
type LimitError struct {
	Offset int64  // byte offset where the limit was hit
	Limit  string // "depth", "size" or "elements"
	Max    int64  // the configured maximum
}

func (e *LimitError) Error() string {
	return "phpserialize: " + e.Limit + " limit of " + strconv.FormatInt(e.Max, 10) +
		" exceeded at offset " + strconv.FormatInt(e.Offset, 10)
}

// UnsupportedError is returned when a value cannot be encoded in the
// requested format (a '|' in a php session name, a php_binary name longer
// than 127 bytes, an unknown format, a Go type Marshal cannot represent).
type UnsupportedError struct {
	Msg string
}

func (e *UnsupportedError) Error() string { return "phpserialize: " + e.Msg }

func syntaxErr(off int, msg string) error {
	return &SyntaxError{Offset: int64(off), Msg: msg}
}

// Offset returns the byte offset carried by a SyntaxError or LimitError
// inside err, or -1.
func Offset(err error) int64 {
	var se *SyntaxError
	if errors.As(err, &se) {
		return se.Offset
	}
	var le *LimitError
	if errors.As(err, &le) {
		return le.Offset
	}
	return -1
}
