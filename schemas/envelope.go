package schemas

// Envelope is what the gateway needs from a POST body before decrypting it.
// In secure mode the body is only ToUserName and Encrypt; in compatible mode
// it also carries the plaintext fields; in plaintext mode Encrypt is empty and
// the body is the message itself, for ParseEvent.
//
// ToUserName is not covered by msg_signature, which signs Encrypt alone, so
// it is informational: decisions rest on the decrypted message.
type Envelope struct {
	Format     Format
	ToUserName string
	Encrypt    string
}

// ParseEnvelope reads the format, ToUserName and Encrypt of a push body. Both
// fields may be absent; a body that is not one well-formed XML document with
// an <xml> root, or one JSON object, is ErrMalformed, as is a field sent
// twice. It is safe for concurrent use.
func ParseEnvelope(body []byte) (Envelope, error) {
	f, err := DetectFormat(body)
	if err != nil {
		return Envelope{}, err
	}
	root, err := parseDocument(f, body)
	if err != nil {
		return Envelope{}, err
	}
	env := Envelope{Format: f}
	if env.ToUserName, err = root.scalar("ToUserName"); err != nil {
		return Envelope{}, err
	}
	if env.Encrypt, err = root.scalar("Encrypt"); err != nil {
		return Envelope{}, err
	}
	return env, nil
}
