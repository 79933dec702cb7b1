package protocol

import (
	"errors"
	"fmt"
	"strings"
)

// ProtocolError reports a frame that breaks the RESP2 grammar or a
// structural limit. After one, the byte stream cannot be trusted, so the
// server answers with -PROTO and closes the connection.
type ProtocolError struct {
	Reason string
}

func (e *ProtocolError) Error() string { return "protocol error: " + e.Reason }

// TooBigError reports a frame whose announced size exceeds the frame limit.
// It is distinct from ProtocolError because the peer may be well-behaved
// and only configured with a larger limit; the server answers -TOOBIG.
type TooBigError struct {
	What  string // "frame", "reply", …
	Size  int64  // bytes the frame would have reached
	Limit int64
}

func (e *TooBigError) Error() string {
	return fmt.Sprintf("%s too big: at least %d bytes, limit %d", e.What, e.Size, e.Limit)
}

// ServerError is an error reply ("-CODE message") as a Go error, so clients
// can switch on Code with errors.As.
type ServerError struct {
	Code    string
	Message string
}

func (e *ServerError) Error() string {
	if e.Message == "" {
		return e.Code
	}
	return e.Code + " " + e.Message
}

// ParseServerError splits an error reply line into code and message.
func ParseServerError(line string) *ServerError {
	code, msg, _ := strings.Cut(line, " ")
	return &ServerError{Code: code, Message: msg}
}

// IsCode reports whether err is a ServerError with the given code.
func IsCode(err error, code string) bool {
	var se *ServerError
	return errors.As(err, &se) && se.Code == code
}

func protoErr(format string, a ...any) error {
	return &ProtocolError{Reason: fmt.Sprintf(format, a...)}
}
