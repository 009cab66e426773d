package crypto

import (
	"bytes"
	"errors"
	"testing"
)

// decryptErrors are the only errors Decrypt may return.
var decryptErrors = []error{ErrBadCiphertext, ErrBadPadding, ErrBadLength, ErrAppIDMismatch}

// checkDecrypt decrypts encrypt and, when that succeeds, checks that the
// message re-encrypts and decrypts to itself.
func checkDecrypt(t *testing.T, c *Cipher, encrypt string) {
	t.Helper()
	msg, err := c.Decrypt(encrypt)
	if err != nil {
		for _, want := range decryptErrors {
			if errors.Is(err, want) {
				return
			}
		}
		t.Fatalf("Decrypt(%q) = %v, want one of %v", encrypt, err, decryptErrors)
	}
	again, err := c.EncryptWithRandom([]byte(v4Random), msg)
	if err != nil {
		t.Fatalf("EncryptWithRandom(Decrypt(%q)) = %v", encrypt, err)
	}
	back, err := c.Decrypt(again)
	if err != nil || !bytes.Equal(back, msg) {
		t.Fatalf("Decrypt(EncryptWithRandom(%q)) = %q, %v, want %q, nil", msg, back, err, msg)
	}
}

// FuzzDecrypt feeds arbitrary Encrypt values to a cipher with a previous key.
func FuzzDecrypt(f *testing.F) {
	for _, s := range []string{v1Encrypt, v1ReplyEncrypt, v2Encrypt, "", "!!!!", "AAAA", v1Encrypt[:44], v1Encrypt[24:]} {
		f.Add(s)
	}
	c := newTestCipher(f, v1AppID, v1Key, v2Key)
	f.Fuzz(func(t *testing.T, encrypt string) {
		checkDecrypt(t, c, encrypt)
	})
}

// FuzzPlaintext reaches the padding, length and appid checks, which random
// ciphertext almost never gets past, by encrypting the fuzzed plaintext
// itself (cut to whole AES blocks) without adding padding.
func FuzzPlaintext(f *testing.F) {
	c := newTestCipher(f, v1AppID, v1Key, "")
	f.Add(pkcs7Pad(layout(5, "hello", v1AppID)))
	f.Add(pkcs7Pad(layout(0, "", v1AppID)))
	f.Add(pkcs7Pad(layout(0xFFFFFFFF, "hello", v1AppID)))
	f.Add(bytes.Repeat([]byte{32}, 32))
	f.Fuzz(func(t *testing.T, plain []byte) {
		plain = plain[:len(plain)-len(plain)%16]
		if len(plain) == 0 {
			return
		}
		checkDecrypt(t, c, seal(t, c, plain))
	})
}

// FuzzVerifySignature checks that a computed signature always verifies, that
// argument order does not matter, and that any other string is rejected.
func FuzzVerifySignature(f *testing.F) {
	f.Add(v1Token, v1Timestamp, v1Nonce, v1URLSignature)
	f.Add("", "", "", "")
	f.Fuzz(func(t *testing.T, token, timestamp, nonce, sig string) {
		want := Signature(token, timestamp, nonce)
		if err := VerifySignature(token, timestamp, nonce, want); err != nil {
			t.Fatalf("VerifySignature(%q, %q, %q, Signature(...)) = %v, want nil", token, timestamp, nonce, err)
		}
		if err := VerifySignature(nonce, token, timestamp, want); err != nil {
			t.Fatalf("VerifySignature with parts reordered = %v, want nil", err)
		}
		err := VerifySignature(token, timestamp, nonce, sig)
		if (sig == want) != (err == nil) || (err != nil && !errors.Is(err, ErrBadSignature)) {
			t.Fatalf("VerifySignature(%q, %q, %q, %q) = %v, want a match only for %q", token, timestamp, nonce, sig, err, want)
		}
	})
}
