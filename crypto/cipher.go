package crypto

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

var (
	// ErrBadKey means an EncodingAESKey is not 43 base64 characters that
	// decode to a 32-byte AES-256 key.
	ErrBadKey = errors.New("crypto: invalid EncodingAESKey")
	// ErrBadCiphertext means an Encrypt value is empty, not base64, or does
	// not decode to a whole number of AES blocks long enough for the header.
	ErrBadCiphertext = errors.New("crypto: malformed ciphertext")
	// ErrBadPadding means the decrypted plaintext does not end in valid
	// PKCS#7 padding for a 32-byte block. It is the usual result of
	// decrypting with the wrong key.
	ErrBadPadding = errors.New("crypto: invalid padding")
	// ErrBadLength means the plaintext's 4-byte length prefix does not fit
	// the plaintext, or the plaintext is too short to hold one.
	ErrBadLength = errors.New("crypto: invalid message length")
	// ErrAppIDMismatch means the AppID at the end of the plaintext is not the
	// app's own: the message was encrypted for another mini program that
	// shares the key.
	ErrAppIDMismatch = errors.New("crypto: appid mismatch")
)

const (
	// encodingAESKeyLen is the length of an EncodingAESKey: 32 bytes in
	// base64 without the final "=".
	encodingAESKeyLen = 43
	keyLen            = 32 // AES-256
	randomLen         = 16 // random prefix of every plaintext
	lengthLen         = 4  // big-endian message length after the random prefix
	headerLen         = randomLen + lengthLen
	// padBlock is the PKCS#7 block size WXBizMsgCrypt pads to. It is twice
	// AES's block size, so pad bytes run from 1 to 32.
	padBlock = 32
	// minCiphertextLen is the smallest ciphertext that can hold the header:
	// 20 bytes padded to 32.
	minCiphertextLen = padBlock
)

// Cipher encrypts and decrypts messages for one mini program. Create it with
// [NewCipher]; it is immutable afterwards and safe for concurrent use.
type Cipher struct {
	appID    string
	current  *aesKey
	previous *aesKey // nil when there is no previous key
}

// aesKey is a decoded EncodingAESKey. The block holds only the expanded key
// and is read-only, so one aesKey serves concurrent calls; the CBC state is
// created per call.
type aesKey struct {
	block cipher.Block
	iv    [aes.BlockSize]byte // the key's first 16 bytes, by the scheme's definition
}

// NewCipher returns a Cipher for the mini program appID. encodingAESKey is
// the current EncodingAESKey from the console; previousEncodingAESKey is the
// one it replaced, or "" when there is none. Errors about a key wrap
// [ErrBadKey] and never contain the key.
func NewCipher(appID, encodingAESKey, previousEncodingAESKey string) (*Cipher, error) {
	if appID == "" {
		return nil, errors.New("crypto: empty appid")
	}
	cur, err := parseKey(encodingAESKey)
	if err != nil {
		return nil, fmt.Errorf("current key: %w", err)
	}
	c := &Cipher{appID: appID, current: cur}
	if previousEncodingAESKey != "" && previousEncodingAESKey != encodingAESKey {
		if c.previous, err = parseKey(previousEncodingAESKey); err != nil {
			return nil, fmt.Errorf("previous key: %w", err)
		}
	}
	return c, nil
}

func parseKey(encodingAESKey string) (*aesKey, error) {
	if len(encodingAESKey) != encodingAESKeyLen {
		return nil, fmt.Errorf("%w: %d characters, want %d", ErrBadKey, len(encodingAESKey), encodingAESKeyLen)
	}
	// The 43rd character carries 2 bits beyond the 256 the key needs; the
	// console does not zero them (Tencent's sample key ends in "G"), so the
	// lenient decoder is required here, not base64.StdEncoding.Strict().
	raw, err := base64.StdEncoding.DecodeString(encodingAESKey + "=")
	if err != nil || len(raw) != keyLen {
		return nil, fmt.Errorf("%w: not base64 of a %d-byte key", ErrBadKey, keyLen)
	}
	block, err := aes.NewCipher(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadKey, err)
	}
	k := &aesKey{block: block}
	copy(k.iv[:], raw)
	return k, nil
}

// AppID returns the AppID the cipher writes into and expects at the end of
// every plaintext.
func (c *Cipher) AppID() string { return c.appID }

// Decrypt decodes and decrypts the base64 Encrypt field of a push and returns
// the message. It checks the base64, the ciphertext's size (a non-zero
// multiple of 16 bytes, at least 32), the PKCS#7 padding, the length prefix
// and the trailing AppID. When the current key fails with a padding, length
// or AppID error it tries the previous key, and if that fails too it returns
// the current key's error. Verify the msg_signature first: see the package
// documentation.
func (c *Cipher) Decrypt(encrypt string) ([]byte, error) {
	ct, err := decodeCiphertext(encrypt)
	if err != nil {
		return nil, err
	}
	msg, err := c.open(c.current, ct)
	if err == nil || c.previous == nil {
		return msg, err
	}
	if msg, errPrev := c.open(c.previous, ct); errPrev == nil {
		return msg, nil
	}
	return nil, err
}

func decodeCiphertext(encrypt string) ([]byte, error) {
	if encrypt == "" {
		return nil, fmt.Errorf("%w: empty", ErrBadCiphertext)
	}
	ct, err := base64.StdEncoding.DecodeString(encrypt)
	if err != nil {
		return nil, fmt.Errorf("%w: not base64", ErrBadCiphertext)
	}
	if len(ct) < minCiphertextLen || len(ct)%aes.BlockSize != 0 {
		return nil, fmt.Errorf("%w: %d bytes, want a multiple of %d and at least %d",
			ErrBadCiphertext, len(ct), aes.BlockSize, minCiphertextLen)
	}
	return ct, nil
}

// open decrypts ct, whose size decodeCiphertext has checked, with k and
// unpacks the plaintext layout: random | length | message | appid.
func (c *Cipher) open(k *aesKey, ct []byte) ([]byte, error) {
	plain := make([]byte, len(ct))
	cipher.NewCBCDecrypter(k.block, k.iv[:]).CryptBlocks(plain, ct)
	plain, err := pkcs7Unpad(plain)
	if err != nil {
		return nil, err
	}
	if len(plain) < headerLen {
		return nil, fmt.Errorf("%w: %d-byte plaintext has no room for the header", ErrBadLength, len(plain))
	}
	n := uint64(binary.BigEndian.Uint32(plain[randomLen:headerLen]))
	rest := uint64(len(plain) - headerLen)
	if n > rest {
		return nil, fmt.Errorf("%w: prefix says %d bytes, %d remain", ErrBadLength, n, rest)
	}
	end := headerLen + int(n)
	if string(plain[end:]) != c.appID {
		return nil, fmt.Errorf("%w: got %.32q", ErrAppIDMismatch, plain[end:])
	}
	// The full slice expression keeps a caller's append from overwriting the
	// appid behind the message.
	return plain[headerLen:end:end], nil
}

// Encrypt encrypts msg with the current key and 16 random bytes from
// crypto/rand, and returns the base64 text for an Encrypt field.
func (c *Cipher) Encrypt(msg []byte) (string, error) {
	var random [randomLen]byte
	if _, err := rand.Read(random[:]); err != nil {
		return "", fmt.Errorf("crypto: reading random bytes: %w", err)
	}
	return c.EncryptWithRandom(random[:], msg)
}

// EncryptWithRandom is [Cipher.Encrypt] with the 16-byte random prefix given
// by the caller, so its output is deterministic. Use it for test vectors;
// reusing a prefix in production lets equal messages be recognised.
func (c *Cipher) EncryptWithRandom(random, msg []byte) (string, error) {
	if len(random) != randomLen {
		return "", fmt.Errorf("crypto: random prefix is %d bytes, want %d", len(random), randomLen)
	}
	if uint64(len(msg)) > math.MaxUint32 {
		return "", fmt.Errorf("crypto: %d-byte message does not fit the 4-byte length prefix", len(msg))
	}
	n := headerLen + len(msg) + len(c.appID)
	buf := make([]byte, 0, n+padBlock-n%padBlock)
	buf = append(buf, random...)
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(msg)))
	buf = append(buf, msg...)
	buf = append(buf, c.appID...)
	buf = pkcs7Pad(buf)
	cipher.NewCBCEncrypter(c.current.block, c.current.iv[:]).CryptBlocks(buf, buf)
	return base64.StdEncoding.EncodeToString(buf), nil
}

// pkcs7Pad appends 1 to padBlock bytes, each holding the count, so that the
// length becomes a multiple of padBlock. A full block is added when b is
// already aligned, so the last byte is always a pad byte.
func pkcs7Pad(b []byte) []byte {
	pad := padBlock - len(b)%padBlock
	for range pad {
		b = append(b, byte(pad))
	}
	return b
}

// pkcs7Unpad removes the padding added by pkcs7Pad. It does not require b to
// be a multiple of padBlock: the ciphertext is only checked against AES's
// 16-byte block, and the pad byte and its repetitions carry the information.
func pkcs7Unpad(b []byte) ([]byte, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: empty plaintext", ErrBadPadding)
	}
	pad := int(b[len(b)-1])
	if pad < 1 || pad > padBlock || pad > len(b) {
		return nil, fmt.Errorf("%w: pad byte %d", ErrBadPadding, pad)
	}
	for _, v := range b[len(b)-pad:] {
		if int(v) != pad {
			return nil, fmt.Errorf("%w: pad bytes differ", ErrBadPadding)
		}
	}
	return b[:len(b)-pad], nil
}
