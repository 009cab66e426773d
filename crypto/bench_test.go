package crypto

import "testing"

func BenchmarkDecrypt(b *testing.B) {
	c := newTestCipher(b, v1AppID, v1Key, "")
	b.ReportAllocs()
	b.SetBytes(int64(len(v1Encrypt)))
	for b.Loop() {
		if _, err := c.Decrypt(v1Encrypt); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecryptPreviousKey measures the rotation fallback: the current key
// fails first, so a message under the previous key costs two decryptions.
func BenchmarkDecryptPreviousKey(b *testing.B) {
	c := newTestCipher(b, v1AppID, keyC, v1Key)
	b.ReportAllocs()
	b.SetBytes(int64(len(v1Encrypt)))
	for b.Loop() {
		if _, err := c.Decrypt(v1Encrypt); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncrypt(b *testing.B) {
	c := newTestCipher(b, v1AppID, v1Key, "")
	msg := []byte(v1Message)
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		if _, err := c.Encrypt(msg); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMsgSignature(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if MsgSignature(v1Token, v1Timestamp, v1Nonce, v1Encrypt) != v1MsgSignature {
			b.Fatal("signature mismatch")
		}
	}
}
