package crypto

import (
	"errors"
	"testing"
	"time"
)

func TestSignature(t *testing.T) {
	tests := []struct {
		name                    string
		token, timestamp, nonce string
		want                    string
	}{
		{"V1 GET verify", v1Token, "1714036504", "1514711492", "f464b24fc39322e44b38aa78f5edd27bd1441696"},
		{"V1 POST signature", v1Token, v1Timestamp, v1Nonce, "6c5c811b55cc85e0e1b54100749188c20beb3f5d"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Signature(tt.token, tt.timestamp, tt.nonce); got != tt.want {
				t.Errorf("Signature(%q, %q, %q) = %q, want %q", tt.token, tt.timestamp, tt.nonce, got, tt.want)
			}
			if err := VerifySignature(tt.token, tt.timestamp, tt.nonce, tt.want); err != nil {
				t.Errorf("VerifySignature(%q, %q, %q, %q) = %v, want nil", tt.token, tt.timestamp, tt.nonce, tt.want, err)
			}
		})
	}
}

func TestSignatureSortsParts(t *testing.T) {
	// The sort makes the argument order irrelevant: the sender and the
	// receiver only need to agree on the set of strings.
	if a, b := Signature("b", "c", "a"), Signature("a", "b", "c"); a != b {
		t.Errorf("Signature(b, c, a) = %q, Signature(a, b, c) = %q, want equal", a, b)
	}
	// Byte-wise order puts upper case before lower case and "1" before "10".
	if a, b := MsgSignature("a", "B", "10", "1"), MsgSignature("1", "10", "B", "a"); a != b {
		t.Errorf("MsgSignature orders differ: %q != %q", a, b)
	}
}

func TestMsgSignature(t *testing.T) {
	tests := []struct {
		name                             string
		token, timestamp, nonce, encrypt string
		want                             string
	}{
		{"V1 push", v1Token, v1Timestamp, v1Nonce, v1Encrypt, v1MsgSignature},
		{"V1 reply", v1Token, v1ReplyTimestamp, v1Nonce, v1ReplyEncrypt, v1ReplyMsgSignature},
		{"V2 push", v2Token, v2Timestamp, v2Nonce, v2Encrypt, v2MsgSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := MsgSignature(tt.token, tt.timestamp, tt.nonce, tt.encrypt); got != tt.want {
				t.Errorf("MsgSignature(%q, %q, %q, ...) = %q, want %q", tt.token, tt.timestamp, tt.nonce, got, tt.want)
			}
		})
	}
}

func TestVerifySignatureRejects(t *testing.T) {
	good := Signature(v1Token, v1Timestamp, v1Nonce)
	tests := []struct {
		name                               string
		token, timestamp, nonce, signature string
	}{
		{"wrong token", "BBBBB", v1Timestamp, v1Nonce, good},
		{"wrong timestamp", v1Token, "1714112446", v1Nonce, good},
		{"wrong nonce", v1Token, v1Timestamp, "415670742", good},
		{"empty signature", v1Token, v1Timestamp, v1Nonce, ""},
		{"truncated", v1Token, v1Timestamp, v1Nonce, good[:39]},
		{"extra character", v1Token, v1Timestamp, v1Nonce, good + "0"},
		{"upper case", v1Token, v1Timestamp, v1Nonce, "6C5C811B55CC85E0E1B54100749188C20BEB3F5D"},
		{"text moved between parts", v1Token + v1Timestamp, "", v1Nonce, good},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := VerifySignature(tt.token, tt.timestamp, tt.nonce, tt.signature)
			if !errors.Is(err, ErrBadSignature) {
				t.Errorf("VerifySignature(%q, %q, %q, %q) = %v, want %v", tt.token, tt.timestamp, tt.nonce, tt.signature, err, ErrBadSignature)
			}
		})
	}
}

func TestVerifyMsgSignature(t *testing.T) {
	tests := []struct {
		name    string
		encrypt string
		sig     string
		wantErr error
	}{
		{"V1", v1Encrypt, v1MsgSignature, nil},
		{"URL signature is not msg_signature", v1Encrypt, "6c5c811b55cc85e0e1b54100749188c20beb3f5d", ErrBadSignature},
		{"body changed", v1Encrypt[1:], v1MsgSignature, ErrBadSignature},
		{"empty", v1Encrypt, "", ErrBadSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := VerifyMsgSignature(v1Token, v1Timestamp, v1Nonce, tt.encrypt, tt.sig)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Errorf("VerifyMsgSignature(..., %q) = %v, want %v", tt.sig, err, tt.wantErr)
			}
		})
	}
}

func TestCheckTimestamp(t *testing.T) {
	now := time.Unix(1714112445, 400_000_000)
	const skew = 5 * time.Minute
	tests := []struct {
		name      string
		timestamp string
		maxSkew   time.Duration
		wantErr   bool
	}{
		{"now", "1714112445", skew, false},
		{"300s ago", "1714112145", skew, false},
		{"300s ahead", "1714112745", skew, false},
		{"301s ago", "1714112144", skew, true},
		{"301s ahead", "1714112746", skew, true},
		{"zero", "0", skew, true},
		{"negative", "-1714112445", skew, true},
		{"int64 min", "-9223372036854775808", skew, true},
		{"int64 max", "9223372036854775807", skew, true},
		{"overflows int64", "99999999999999999999", skew, true},
		{"empty", "", skew, true},
		{"letters", "abc", skew, true},
		{"space", " 1714112445", skew, true},
		{"fraction", "1714112445.0", skew, true},
		{"milliseconds", "1714112445000", skew, true},
		{"sub-second window rounds down", "1714112444", 1500 * time.Millisecond, false},
		{"sub-second window rejects 2s", "1714112443", 1500 * time.Millisecond, true},
		{"disabled accepts old", "0", 0, false},
		{"disabled accepts non-number", "abc", 0, false},
		{"negative window disables", "abc", -time.Second, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckTimestamp(tt.timestamp, now, tt.maxSkew)
			if tt.wantErr != errors.Is(err, ErrStaleTimestamp) || (!tt.wantErr && err != nil) {
				t.Errorf("CheckTimestamp(%q, now, %v) = %v, want error %v", tt.timestamp, tt.maxSkew, err, tt.wantErr)
			}
		})
	}
}
