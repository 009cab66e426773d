// Package crypto implements WeChat's WXBizMsgCrypt scheme: the signatures and
// the AES encryption that protect mini-program message pushes.
//
// # The scheme in plain words
//
// A mini program and its server share two secrets, set in the mini program's
// console: a Token and a 43-character EncodingAESKey.
//
// When WeChat calls the server it adds a timestamp and a random nonce to the
// URL and signs them: it sorts the Token, the timestamp and the nonce as byte
// strings, joins them without a separator, and sends the lower-case hex SHA-1
// of the result as "signature" (see [Signature]). Anyone who knows the Token
// can check that the call came from WeChat; the body is not covered.
//
// In compatible and secure mode the message itself travels encrypted in an
// "Encrypt" field. WeChat builds a plaintext of 16 random bytes, the message's
// length as 4 big-endian bytes, the message, and the mini program's AppID;
// pads it to a multiple of 32 bytes with PKCS#7 (so a pad byte is 1 to 32,
// not 1 to 16 as with AES's own block size); encrypts it with AES-256-CBC
// using the decoded EncodingAESKey as the key and its first 16 bytes as the
// IV; and sends the base64 of the ciphertext. A second signature,
// "msg_signature", is computed like the first over four strings: Token,
// timestamp, nonce and the Encrypt value (see [MsgSignature]). It is the one
// that covers the body, so it must be checked before anything is decrypted.
//
// The random prefix makes equal messages encrypt differently, the trailing
// AppID ties a ciphertext to one mini program, and the length prefix lets the
// receiver find where the message ends and the AppID begins. The scheme has
// no MAC of its own: CBC ciphertexts are malleable and the distinct padding,
// length and AppID errors would make a padding oracle, so only a request whose
// msg_signature verifies may reach [Cipher.Decrypt], and the errors below are
// for logs and metrics, never for the caller.
//
// # What this package adds
//
// Signatures are compared in constant time. [CheckTimestamp] rejects pushes
// whose timestamp is far from the server's clock, which bounds how long a
// captured request can be replayed. [NewCipher] accepts the previous
// EncodingAESKey during a key rotation, and [Cipher.Decrypt] falls back to it
// for messages encrypted before the change. Every length is checked before it
// is used to slice.
//
// # Errors
//
// Failures wrap one of the sentinel errors ([ErrBadSignature],
// [ErrStaleTimestamp], [ErrBadKey], [ErrBadCiphertext], [ErrBadPadding],
// [ErrBadLength], [ErrAppIDMismatch]); test for them with [errors.Is]. Error
// strings never contain the Token or a key.
//
// The package is pure: no I/O, no logging, and no imports of wxgate's other
// packages. It does not bound the size of its inputs; callers bound request
// bodies before they get here.
package crypto
