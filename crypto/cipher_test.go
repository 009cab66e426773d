package crypto

import (
	"bytes"
	"crypto/cipher"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
)

// Vectors from wechat-protocol.md section 3: the official mini-program page
// (V1), Tencent's WXBizMsgCrypt sample (V2) and Tencent's Java sample (V4).
const (
	v1Token          = "AAAAA"
	v1Key            = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	v1AppID          = "wxba5fad812f8e6fb9"
	v1Timestamp      = "1714112445"
	v1Nonce          = "415670741"
	v1MsgSignature   = "046e02f8204d34f8ba5fa3b1db94908f3df2e9b3"
	v1URLSignature   = "6c5c811b55cc85e0e1b54100749188c20beb3f5d"
	v1Encrypt        = "+qdx1OKCy+5JPCBFWw70tm0fJGb2Jmeia4FCB7kao+/Q5c/ohsOzQHi8khUOb05JCpj0JB4RvQMkUyus8TPxLKJGQqcvZqzDpVzazhZv6JsXUnnR8XGT740XgXZUXQ7vJVnAG+tE8NUd4yFyjPy7GgiaviNrlCTj+l5kdfMuFUPpRSrfMZuMcp3Fn2Pede2IuQrKEYwKSqFIZoNqJ4M8EajAsjLY2km32IIjdf8YL/P50F7mStwntrA2cPDrM1kb6mOcfBgRtWygb3VIYnSeOBrebufAlr7F9mFUPAJGj04="
	v1Message        = `{"ToUserName":"gh_97417a04a28d","FromUserName":"o9AgO5Kd5ggOC-bXrbNODIiE3bGY","CreateTime":1714112445,"MsgType":"event","Event":"debug_demo","debug_str":"hello world"}`
	v1ReplyRandom    = "707722b803182950"
	v1ReplyMessage   = `{"demo_resp":"good luck"}`
	v1ReplyEncrypt   = "ELGduP2YcVatjqIS+eZbp80MNLoAUWvzzyJxgGzxZO/5sAvd070Bs6qrLARC9nVHm48Y4hyRbtzve1L32tmxSQ=="
	v1ReplyTimestamp = "1713424427"
	// v1ReplyMsgSignature signs the reply with the push's nonce.
	v1ReplyMsgSignature = "1b9339964ed2e271e7c7b6ff2b0ef902fc94dea1"

	v2Token        = "spamtest"
	v2Key          = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
	v2AppID        = "wx2c2769f8efd9abc2"
	v2Timestamp    = "1409735669"
	v2Nonce        = "1320562132"
	v2MsgSignature = "5d197aaffba7e9b25a30732f161a50dee96bd5fa"
	v2Encrypt      = "hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655HuD0m8KUePWB3+LrPXo87wzQ1QLvbeUgmBM4x6F8PGHQHFVAFmOD2LdJF9FrXpbUAh0B5GIItb52sn896wVsMSHGuPE328HnRGBcrS7C41IzDWyWNlZkyyXwon8T332jisa+h6tEDYsVticbSnyU8dKOIbgU6ux5VTjg3yt+WGzjlpKn6NPhRjpA912xMezR4kw6KWwMrCVKSVCZciVGCgavjIQ6X8tCOp3yZbGpy0VxpAe+77TszTfRd5RJSVO/HTnifJpXgCSUdUue1v6h0EIBYYI1BD1DlD+C0CR8e6OewpusjZ4uBl9FyJvnhvQl+q5rv1ixrcpCumEPo5MJSgM9ehVsNPfUM669WuMyVWQLCzpu9GhglF2PE="

	v4Key     = v2Key
	v4AppID   = "wxb11529c136998cb6"
	v4Random  = "aaaabbbbccccdddd"
	v4Message = "我是中文abcd123"
	v4Encrypt = "jn1L23DB+6ELqJ+6bruv21Y6MD7KeIfP82D6gU39rmkgczbWwt5+3bnyg5K55bgVtVzd832WzZGMhkP72vVOfg=="

	// Two more keys for rotation tests.
	keyC = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFG"
	keyD = "ZYXWVUTSRQPONMLKJIHGFEDCBAzyxwvutsrqponmlkj"
)

func newTestCipher(t testing.TB, appID, key, previous string) *Cipher {
	t.Helper()
	c, err := NewCipher(appID, key, previous)
	if err != nil {
		t.Fatalf("NewCipher(%q, key, previous) = %v", appID, err)
	}
	return c
}

// decryptRaw returns the padded plaintext of encrypt under c's current key.
func decryptRaw(t testing.TB, c *Cipher, encrypt string) []byte {
	t.Helper()
	ct, err := base64.StdEncoding.DecodeString(encrypt)
	if err != nil || len(ct)%16 != 0 {
		t.Fatalf("decryptRaw: bad ciphertext %q: %v", encrypt, err)
	}
	cipher.NewCBCDecrypter(c.current.block, c.current.iv[:]).CryptBlocks(ct, ct)
	return ct
}

// seal encrypts plain, which must be a whole number of AES blocks, with c's
// current key and no padding of its own, so tests can forge any plaintext.
func seal(t testing.TB, c *Cipher, plain []byte) string {
	t.Helper()
	if len(plain)%16 != 0 {
		t.Fatalf("seal: %d bytes is not a multiple of 16", len(plain))
	}
	ct := bytes.Clone(plain)
	cipher.NewCBCEncrypter(c.current.block, c.current.iv[:]).CryptBlocks(ct, ct)
	return base64.StdEncoding.EncodeToString(ct)
}

// layout builds random | n | msg | appid without padding.
func layout(n uint32, msg, appID string) []byte {
	b := []byte("0123456789abcdef")
	b = binary.BigEndian.AppendUint32(b, n)
	b = append(b, msg...)
	return append(b, appID...)
}

func TestDecryptV1(t *testing.T) {
	if err := VerifySignature(v1Token, v1Timestamp, v1Nonce, v1URLSignature); err != nil {
		t.Fatalf("VerifySignature(V1) = %v, want nil", err)
	}
	if err := VerifyMsgSignature(v1Token, v1Timestamp, v1Nonce, v1Encrypt, v1MsgSignature); err != nil {
		t.Fatalf("VerifyMsgSignature(V1) = %v, want nil", err)
	}
	c := newTestCipher(t, v1AppID, v1Key, "")
	got, err := c.Decrypt(v1Encrypt)
	if err != nil || string(got) != v1Message {
		t.Fatalf("Decrypt(V1) = %q, %v, want %q, nil", got, err, v1Message)
	}
	if cap(got) != len(got) {
		t.Errorf("Decrypt(V1) returned cap %d > len %d: an append would overwrite the appid", cap(got), len(got))
	}
	raw := decryptRaw(t, c, v1Encrypt)
	if pad := raw[len(raw)-1]; pad != 19 {
		t.Errorf("V1 pad = %d, want 19 (a value a 16-byte unpadder rejects)", pad)
	}
}

func TestDecryptV2(t *testing.T) {
	if err := VerifyMsgSignature(v2Token, v2Timestamp, v2Nonce, v2Encrypt, v2MsgSignature); err != nil {
		t.Fatalf("VerifyMsgSignature(V2) = %v, want nil", err)
	}
	c := newTestCipher(t, v2AppID, v2Key, "")
	got, err := c.Decrypt(v2Encrypt)
	if err != nil {
		t.Fatalf("Decrypt(V2) = %v, want nil", err)
	}
	for _, want := range []string{
		"<ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName>",
		"<FromUserName><![CDATA[oyORnuP8q7ou2gfYjqLzSIWZf0rs]]></FromUserName>",
		"<CreateTime>1409735668</CreateTime>",
		"<MsgType><![CDATA[text]]></MsgType>",
		"<Content><![CDATA[abcdteT]]></Content>",
		"<MsgId>6054768590064713728</MsgId>",
	} {
		if !bytes.Contains(got, []byte(want)) {
			t.Errorf("Decrypt(V2) = %q, want it to contain %q", got, want)
		}
	}
	raw := decryptRaw(t, c, v2Encrypt)
	if pad := raw[len(raw)-1]; pad != 2 {
		t.Errorf("V2 pad = %d, want 2", pad)
	}
}

func TestEncryptWithRandomVectors(t *testing.T) {
	tests := []struct {
		name                    string
		appID, key, random, msg string
		want                    string
	}{
		{"V1 reply", v1AppID, v1Key, v1ReplyRandom, v1ReplyMessage, v1ReplyEncrypt},
		{"V4", v4AppID, v4Key, v4Random, v4Message, v4Encrypt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestCipher(t, tt.appID, tt.key, "")
			got, err := c.EncryptWithRandom([]byte(tt.random), []byte(tt.msg))
			if err != nil || got != tt.want {
				t.Fatalf("EncryptWithRandom(%q, %q) = %q, %v, want %q, nil", tt.random, tt.msg, got, err, tt.want)
			}
			back, err := c.Decrypt(got)
			if err != nil || string(back) != tt.msg {
				t.Errorf("Decrypt(%q) = %q, %v, want %q, nil", got, back, err, tt.msg)
			}
		})
	}
}

func TestEncryptWithRandomRejectsBadRandom(t *testing.T) {
	c := newTestCipher(t, v1AppID, v1Key, "")
	for _, n := range []int{0, 15, 17, 32} {
		if got, err := c.EncryptWithRandom(make([]byte, n), []byte("x")); err == nil {
			t.Errorf("EncryptWithRandom(%d random bytes) = %q, nil, want an error", n, got)
		}
	}
}

func TestEncryptIsRandomised(t *testing.T) {
	c := newTestCipher(t, v1AppID, v1Key, "")
	a, errA := c.Encrypt([]byte(v1Message))
	b, errB := c.Encrypt([]byte(v1Message))
	if errA != nil || errB != nil {
		t.Fatalf("Encrypt = %v, %v", errA, errB)
	}
	if a == b {
		t.Errorf("Encrypt of one message twice gave the same ciphertext %q", a)
	}
}

// TestRoundTripEveryPad picks message lengths that produce each pad value
// 1..32, over one and several blocks, and checks the pad really occurs.
func TestRoundTripEveryPad(t *testing.T) {
	c := newTestCipher(t, v1AppID, v1Key, "")
	fixed := headerLen + len(v1AppID)
	for pad := 1; pad <= padBlock; pad++ {
		// fixed + n + pad must be a multiple of padBlock.
		base := ((-(fixed + pad))%padBlock + padBlock) % padBlock
		for _, n := range []int{base, base + 2*padBlock} {
			t.Run(fmt.Sprintf("pad %d len %d", pad, n), func(t *testing.T) {
				msg := bytes.Repeat([]byte{'m'}, n)
				enc, err := c.EncryptWithRandom([]byte(v4Random), msg)
				if err != nil {
					t.Fatalf("EncryptWithRandom(%d bytes) = %v", n, err)
				}
				raw := decryptRaw(t, c, enc)
				if got := int(raw[len(raw)-1]); got != pad {
					t.Fatalf("pad of a %d-byte message = %d, want %d", n, got, pad)
				}
				got, err := c.Decrypt(enc)
				if err != nil || !bytes.Equal(got, msg) {
					t.Errorf("Decrypt(EncryptWithRandom(%d bytes)) = %d bytes, %v, want %d bytes, nil", n, len(got), err, n)
				}
			})
		}
	}
}

func TestPKCS7(t *testing.T) {
	for n := range 3 * padBlock {
		in := bytes.Repeat([]byte{0xAA}, n)
		padded := pkcs7Pad(bytes.Clone(in))
		if len(padded)%padBlock != 0 || len(padded) <= n || len(padded) > n+padBlock {
			t.Fatalf("pkcs7Pad(%d bytes) = %d bytes, want the next multiple of %d above %d", n, len(padded), padBlock, n)
		}
		got, err := pkcs7Unpad(padded)
		if err != nil || !bytes.Equal(got, in) {
			t.Fatalf("pkcs7Unpad(pkcs7Pad(%d bytes)) = %d bytes, %v, want %d bytes, nil", n, len(got), err, n)
		}
	}

	bad := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"pad 0", append(bytes.Repeat([]byte{1}, 31), 0)},
		{"pad 33", bytes.Repeat([]byte{33}, 48)},
		{"pad longer than input", []byte{5, 5, 5, 5}},
		{"pad bytes differ", append(bytes.Repeat([]byte{1}, 30), 3, 2)},
		{"pad bytes differ at the far end", append([]byte{31}, bytes.Repeat([]byte{32}, 31)...)},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := pkcs7Unpad(tt.in); !errors.Is(err, ErrBadPadding) {
				t.Errorf("pkcs7Unpad(%v) = %v, %v, want %v", tt.in, got, err, ErrBadPadding)
			}
		})
	}
}

func TestDecryptErrors(t *testing.T) {
	c := newTestCipher(t, v1AppID, v1Key, "")
	v1ct, err := base64.StdEncoding.DecodeString(v1Encrypt)
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.StdEncoding.EncodeToString
	msg := "hello"

	tests := []struct {
		name    string
		encrypt string
		want    error
	}{
		{"empty", "", ErrBadCiphertext},
		{"not base64", "!!!!", ErrBadCiphertext},
		{"URL-safe base64", strings.NewReplacer("+", "-", "/", "_").Replace(v1Encrypt), ErrBadCiphertext},
		{"base64 cut mid-quantum", v1Encrypt[:len(v1Encrypt)-1], ErrBadCiphertext},
		{"one block", b64(v1ct[:16]), ErrBadCiphertext},
		{"not a block multiple", b64(v1ct[:40]), ErrBadCiphertext},
		// The remaining last block ends in 3 of the 19 pad bytes.
		{"last block dropped", b64(v1ct[:len(v1ct)-16]), ErrBadPadding},
		// The length prefix now reads message text as a huge number.
		{"first block dropped", b64(v1ct[16:]), ErrBadLength},
		{"pad byte 0", seal(t, c, append(layout(5, msg, v1AppID), make([]byte, 5)...)), ErrBadPadding},
		{"pad byte 33", seal(t, c, append(layout(5, msg, v1AppID), bytes.Repeat([]byte{33}, 5)...)), ErrBadPadding},
		{"pad bytes differ", seal(t, c, append(layout(5, msg, v1AppID), 1, 2, 3, 4, 5)), ErrBadPadding},
		{"pad covers everything", seal(t, c, bytes.Repeat([]byte{32}, 32)), ErrBadLength},
		{"no room for the length prefix", seal(t, c, pkcs7Pad([]byte("0123456789abcdef012"))), ErrBadLength},
		{"length past the end", seal(t, c, pkcs7Pad(layout(uint32(len(msg)+len(v1AppID)+1), msg, v1AppID))), ErrBadLength},
		{"length 2^32-1", seal(t, c, pkcs7Pad(layout(0xFFFFFFFF, msg, v1AppID))), ErrBadLength},
		{"length swallows the appid", seal(t, c, pkcs7Pad(layout(uint32(len(msg)+len(v1AppID)), msg, v1AppID))), ErrAppIDMismatch},
		{"length one short", seal(t, c, pkcs7Pad(layout(uint32(len(msg)-1), msg, v1AppID))), ErrAppIDMismatch},
		{"other appid", seal(t, c, pkcs7Pad(layout(uint32(len(msg)), msg, v2AppID))), ErrAppIDMismatch},
		{"appid prefix", seal(t, c, pkcs7Pad(layout(uint32(len(msg)), msg, v1AppID[:len(v1AppID)-1]))), ErrAppIDMismatch},
		{"appid with suffix", seal(t, c, pkcs7Pad(layout(uint32(len(msg)), msg, v1AppID+"x"))), ErrAppIDMismatch},
		{"V2 under the V1 key", v2Encrypt, ErrBadPadding},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := c.Decrypt(tt.encrypt)
			if !errors.Is(err, tt.want) {
				t.Errorf("Decrypt(%.40q) = %q, %v, want %v", tt.encrypt, got, err, tt.want)
			}
			if got != nil {
				t.Errorf("Decrypt(%.40q) returned %q with an error", tt.encrypt, got)
			}
		})
	}

	// The sealed layout itself is valid, so the cases above fail for the
	// reason they name and not another.
	if got, err := c.Decrypt(seal(t, c, pkcs7Pad(layout(uint32(len(msg)), msg, v1AppID)))); err != nil || string(got) != msg {
		t.Fatalf("Decrypt(valid forged layout) = %q, %v, want %q, nil", got, err, msg)
	}
}

func TestKeyRotation(t *testing.T) {
	const msg = "rotation"
	oldC := newTestCipher(t, v1AppID, keyC, "")
	rotated := newTestCipher(t, v1AppID, keyD, keyC)
	unrelated := newTestCipher(t, v1AppID, v1Key, v2Key)

	fromOld, err := oldC.EncryptWithRandom([]byte(v4Random), []byte(msg))
	if err != nil {
		t.Fatal(err)
	}
	fromNew, err := rotated.EncryptWithRandom([]byte(v4Random), []byte(msg))
	if err != nil {
		t.Fatal(err)
	}

	for _, tt := range []struct {
		name    string
		c       *Cipher
		encrypt string
	}{
		{"previous key", rotated, fromOld},
		{"current key", rotated, fromNew},
	} {
		if got, err := tt.c.Decrypt(tt.encrypt); err != nil || string(got) != msg {
			t.Errorf("%s: Decrypt = %q, %v, want %q, nil", tt.name, got, err, msg)
		}
	}

	// A rotated cipher encrypts with the current key only.
	if got, err := oldC.Decrypt(fromNew); err == nil {
		t.Errorf("the old key decrypted a message from the rotated cipher: %q", got)
	}

	// Neither key: the error is one of the key-dependent ones.
	_, err = unrelated.Decrypt(fromOld)
	if !errors.Is(err, ErrBadPadding) && !errors.Is(err, ErrBadLength) && !errors.Is(err, ErrAppIDMismatch) {
		t.Errorf("Decrypt with neither key = %v, want a padding, length or appid error", err)
	}

	// When both keys fail, the current key's error is the one returned: here
	// the current key decrypts cleanly to another app's message and the
	// previous key produces garbage.
	otherApp := newTestCipher(t, v2AppID, keyD, "")
	forOther, err := otherApp.EncryptWithRandom([]byte(v4Random), []byte(msg))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rotated.Decrypt(forOther); !errors.Is(err, ErrAppIDMismatch) {
		t.Errorf("Decrypt(other app's message) = %v, want the current key's %v", err, ErrAppIDMismatch)
	}

	// Key-independent errors are reported without trying the previous key.
	if _, err := rotated.Decrypt("!!!!"); !errors.Is(err, ErrBadCiphertext) {
		t.Errorf("Decrypt(%q) = %v, want %v", "!!!!", err, ErrBadCiphertext)
	}
}

func TestNewCipher(t *testing.T) {
	tests := []struct {
		name, appID, key, previous string
		wantErr                    error // nil: success
	}{
		{"V1", v1AppID, v1Key, "", nil},
		{"V2 key with non-zero trailing bits", v2AppID, v2Key, "", nil},
		{"with previous", v1AppID, v1Key, v2Key, nil},
		{"previous equal to current", v1AppID, v1Key, v1Key, nil},
		{"42 characters", v1AppID, v1Key[:42], "", ErrBadKey},
		{"44 characters", v1AppID, v1Key + "A", "", ErrBadKey},
		{"already padded", v1AppID, v1Key[:42] + "=", "", ErrBadKey},
		{"not base64", v1AppID, strings.Repeat("!", 43), "", ErrBadKey},
		{"URL-safe alphabet", v1AppID, strings.Repeat("-", 43), "", ErrBadKey},
		{"bad previous", v1AppID, v1Key, "short", ErrBadKey},
		{"empty key", v1AppID, "", "", ErrBadKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewCipher(tt.appID, tt.key, tt.previous)
			if tt.wantErr == nil {
				if err != nil || c.AppID() != tt.appID {
					t.Fatalf("NewCipher(%q, key, previous) = %v, want a cipher for %q", tt.appID, err, tt.appID)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("NewCipher(%q, %q, %q) = %v, want %v", tt.appID, tt.key, tt.previous, err, tt.wantErr)
			}
			for _, secret := range []string{tt.key, tt.previous} {
				if len(secret) > 4 && strings.Contains(err.Error(), secret) {
					t.Errorf("NewCipher error %q contains the key", err)
				}
			}
		})
	}
	if _, err := NewCipher("", v1Key, ""); err == nil {
		t.Error(`NewCipher("", key, "") = nil error, want an error for the empty appid`)
	}
	c := newTestCipher(t, v1AppID, v1Key, v1Key)
	if c.previous != nil {
		t.Error("NewCipher kept a previous key equal to the current one; Decrypt would try it twice")
	}
}

func TestCipherConcurrentUse(t *testing.T) {
	c := newTestCipher(t, v1AppID, v1Key, keyC)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Go(func() {
			for j := range 50 {
				msg := fmt.Appendf(nil, "message %d/%d", i, j)
				enc, err := c.Encrypt(msg)
				if err != nil {
					errs <- err
					return
				}
				got, err := c.Decrypt(enc)
				if err != nil || !bytes.Equal(got, msg) {
					errs <- fmt.Errorf("Decrypt(Encrypt(%q)) = %q, %v", msg, got, err)
					return
				}
				if _, err := c.Decrypt(v1Encrypt); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
