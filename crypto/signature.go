package crypto

import (
	"crypto/sha1"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"
)

var (
	// ErrBadSignature means a signature or msg_signature does not match the
	// one computed from the Token and the request.
	ErrBadSignature = errors.New("crypto: signature mismatch")
	// ErrStaleTimestamp means a timestamp is not a decimal number of unix
	// seconds or lies outside the allowed window around the current time.
	ErrStaleTimestamp = errors.New("crypto: timestamp not a number or outside the allowed window")
)

// Signature returns the URL signature WeChat sends as "signature": the
// lower-case hex SHA-1 of token, timestamp and nonce, sorted byte-wise and
// joined without a separator. It is safe for concurrent use.
func Signature(token, timestamp, nonce string) string {
	parts := [...]string{token, timestamp, nonce}
	return sign(parts[:])
}

// MsgSignature returns the signature WeChat sends as "msg_signature": like
// [Signature], over token, timestamp, nonce and the Encrypt field. It is safe
// for concurrent use.
func MsgSignature(token, timestamp, nonce, encrypt string) string {
	parts := [...]string{token, timestamp, nonce, encrypt}
	return sign(parts[:])
}

// VerifySignature reports whether signature is [Signature] of token,
// timestamp and nonce, comparing in constant time. It returns nil on a match
// and an error wrapping [ErrBadSignature] otherwise. It does not check the
// timestamp's age; see [CheckTimestamp]. It is safe for concurrent use.
func VerifySignature(token, timestamp, nonce, signature string) error {
	return verify(Signature(token, timestamp, nonce), signature)
}

// VerifyMsgSignature reports whether msgSignature is [MsgSignature] of token,
// timestamp, nonce and encrypt, comparing in constant time. It returns nil on
// a match and an error wrapping [ErrBadSignature] otherwise. It is safe for
// concurrent use.
func VerifyMsgSignature(token, timestamp, nonce, encrypt, msgSignature string) error {
	return verify(MsgSignature(token, timestamp, nonce, encrypt), msgSignature)
}

// CheckTimestamp parses timestamp as decimal unix seconds and returns an
// error wrapping [ErrStaleTimestamp] if it is not a number or if it differs
// from now by more than maxSkew, in either direction; the comparison is in
// whole seconds because that is the timestamp's resolution. A maxSkew of zero
// or less disables the check and accepts any timestamp, number or not. It is
// safe for concurrent use.
func CheckTimestamp(timestamp string, now time.Time, maxSkew time.Duration) error {
	if maxSkew <= 0 {
		return nil
	}
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %.24q is not a unix time", ErrStaleTimestamp, timestamp)
	}
	// The difference of two int64 values can overflow int64 but always fits
	// uint64, so a forged timestamp near the int64 limits cannot wrap around
	// into the window.
	cur := now.Unix()
	var skew uint64
	if ts > cur {
		skew = uint64(ts) - uint64(cur)
	} else {
		skew = uint64(cur) - uint64(ts)
	}
	// skew is a whole number of seconds, so skew > maxSkew exactly when it
	// exceeds maxSkew rounded down to whole seconds.
	if skew > uint64(maxSkew/time.Second) {
		return fmt.Errorf("%w: %d is %ds from now, allowed %v", ErrStaleTimestamp, ts, skew, maxSkew)
	}
	return nil
}

// sign sorts parts in place and returns the hex SHA-1 of their concatenation.
func sign(parts []string) string {
	slices.Sort(parts)
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	buf := make([]byte, 0, n)
	for _, p := range parts {
		buf = append(buf, p...)
	}
	sum := sha1.Sum(buf)
	return hex.EncodeToString(sum[:])
}

// verify compares in constant time so that response timing does not reveal
// how many leading characters of a forged signature are right.
func verify(want, got string) error {
	if subtle.ConstantTimeCompare([]byte(want), []byte(got)) != 1 {
		return ErrBadSignature
	}
	return nil
}
