package signer

import (
	"fmt"
	"time"
)

// Error is an S3 error answer: the HTTP status and S3 code S3 answers the same fault with,
// and a message for the client. It is signet's one type for them: a body or a signature
// that does not verify here, and the proxy's own refusals. Message never holds a signature
// or a secret.
type Error struct {
	Status  int
	Code    string
	Message string
	// RetryAfter, with a 503, is sent as Retry-After (whole seconds, at least 1).
	RetryAfter time.Duration
	// Err is the cause, if any: io.ErrUnexpectedEOF for a body that ended early, or the
	// error a verification callback returned.
	Err error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return e.Code + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// newError is an Error with a formatted message and its cause (nil for none).
func newError(status int, code string, err error, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...), Err: err}
}
