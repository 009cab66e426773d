package schemas

import (
	"errors"
	"fmt"
)

// Sentinel errors of parsing and validation. Every error returned by ParseEvent,
// ParseEnvelope, DetectFormat, Validate and DecodeCloudEvent for bad input wraps
// ErrMalformed, so a caller maps all of them with one errors.Is check (the
// gateway answers 400, a consumer terminates the message). The detail after the
// sentinel names fields and positions, never field values.
var (
	// ErrMalformed means a body or message is not parseable XML or JSON, or
	// lacks or breaks a required field.
	ErrMalformed = errors.New("malformed message")
	// ErrNotEncrypted means a body has no Encrypt field where one is required
	// (a push whose query says encrypt_type=aes). ParseEnvelope never returns
	// it, since a plaintext body is valid in plaintext mode; a caller that
	// requires encryption returns it. It wraps ErrMalformed.
	ErrNotEncrypted = fmt.Errorf("%w: no Encrypt field", ErrMalformed)
)

// malformedf returns an error wrapping ErrMalformed with a detail. Callers pass
// field names and positions only: the detail may reach logs, and a value may be
// personal data.
func malformedf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}
