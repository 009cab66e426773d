package wechat

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

func TestClassification(t *testing.T) {
	api := func(op string, code int) error { return &APIError{Code: code, Op: op, AppID: testAppID} }
	tests := []struct {
		name      string
		err       error
		token     bool
		retryable bool
	}{
		{"nil", nil, false, false},
		{"send 40001", api(OpSend, CodeInvalidCredential), true, false},
		{"send 40014", api(OpSend, CodeInvalidAccessToken), true, false},
		{"send 42001 wrapped", fmt.Errorf("sending: %w", api(OpSend, CodeAccessTokenExpired)), true, false},
		{"gettemplate 42001", api(OpTemplates, CodeAccessTokenExpired), true, false},
		{"stable_token 40001 is a bad secret", api(OpStableToken, CodeInvalidCredential), false, false},
		{"token 40001 is a bad secret", api(OpToken, CodeInvalidCredential), false, false},
		{"send -1", api(OpSend, CodeBusy), false, true},
		{"stable_token -1", api(OpStableToken, CodeBusy), false, true},
		{"send 43108", api(OpSend, CodeConcurrentSend), false, true},
		{"stable_token 45011", api(OpStableToken, CodeRateLimited), false, true},
		{"send 47003", api(OpSend, CodeInvalidData), false, false},
		{"send 45009", api(OpSend, CodeDailyQuota), false, false},
		{"send 43101", api(OpSend, CodeUserRefused), false, false},
		{"network", &NetError{Op: OpSend, Err: io.ErrUnexpectedEOF}, false, true},
		{"timeout", &NetError{Op: OpSend, Err: context.DeadlineExceeded}, false, true},
		{"bare deadline", context.DeadlineExceeded, false, true},
		{"cancelled", fmt.Errorf("%w: %w", ErrTokenUnavailable, context.Canceled), false, true},
		{"closed", fmt.Errorf("%w: %w", ErrTokenUnavailable, ErrClosed), false, true},
		{"HTTP 503", &HTTPStatusError{Op: OpSend, StatusCode: 503}, false, true},
		{"HTTP 429", &HTTPStatusError{Op: OpSend, StatusCode: 429}, false, true},
		{"HTTP 403", &HTTPStatusError{Op: OpSend, StatusCode: 403}, false, false},
		{"malformed", fmt.Errorf("%w: html", ErrMalformedResponse), false, false},
		{"token unavailable, busy", fmt.Errorf("%w: %w", ErrTokenUnavailable, api(OpStableToken, CodeBusy)), false, true},
		{"token unavailable, IP", fmt.Errorf("%w: %w", ErrTokenUnavailable, api(OpStableToken, CodeIPNotWhitelisted)), false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsTokenError(tt.err); got != tt.token {
				t.Errorf("IsTokenError(%v) = %v, want %v", tt.err, got, tt.token)
			}
			if got := IsRetryable(tt.err); got != tt.retryable {
				t.Errorf("IsRetryable(%v) = %v, want %v", tt.err, got, tt.retryable)
			}
		})
	}
}

func TestAPIErrorText(t *testing.T) {
	tests := []struct {
		name string
		err  *APIError
		want string
	}{
		{"send keeps errmsg", &APIError{Code: 47003, Msg: "argument invalid! data.thing1.value invalid", Op: OpSend, AppID: "wx1"},
			"wechat subscribe/send for wx1: errcode 47003: argument invalid! data.thing1.value invalid"},
		{"token hint", &APIError{Code: 40164, Msg: "invalid ip 1.2.3.4", Op: OpStableToken, AppID: "wx1"},
			"wechat stable_token for wx1: errcode 40164: invalid ip 1.2.3.4 (this server's IP is not in the app's API IP whitelist)"},
		{"no errmsg", &APIError{Code: -1, Op: OpSend}, "wechat subscribe/send: errcode -1"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("%s: Error() = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestBoundedMsg(t *testing.T) {
	long := strings.Repeat("错", 200) // 600 bytes
	got := boundedMsg(long)
	if len(got) > maxErrmsgBytes || !strings.HasSuffix(got, "…") || !strings.HasPrefix(long, strings.TrimSuffix(got, "…")) {
		t.Errorf("boundedMsg(600 bytes) = %d bytes %q, want a rune-aligned prefix of at most %d bytes", len(got), got, maxErrmsgBytes)
	}
	if got := boundedMsg("bad secret s3cr3t here", "s3cr3t", ""); got != "bad secret [REDACTED] here" {
		t.Errorf("boundedMsg with a secret = %q, want it redacted", got)
	}
}

func TestFailureRoundTrip(t *testing.T) {
	tests := []struct {
		name  string
		err   error
		check func(error) bool
	}{
		{"api", &APIError{Code: CodeIPNotWhitelisted, Msg: "invalid ip", Op: OpToken}, func(e error) bool {
			var a *APIError
			return errors.As(e, &a) && a.Code == CodeIPNotWhitelisted && a.Op == OpToken && a.AppID == testAppID
		}},
		{"net", &NetError{Op: OpStableToken, Err: io.EOF}, func(e error) bool { return IsRetryable(e) }},
		{"status", &HTTPStatusError{Op: OpStableToken, StatusCode: 502}, func(e error) bool {
			var s *HTTPStatusError
			return errors.As(e, &s) && s.StatusCode == 502 && IsRetryable(e)
		}},
		{"malformed", fmt.Errorf("%w: x", ErrMalformedResponse), func(e error) bool { return errors.Is(e, ErrMalformedResponse) }},
	}
	for _, tt := range tests {
		f := newFailure(tt.err, OpStableToken, &failure{Count: 2}, testNow)
		if f.Count != 3 || !f.RetryAt.Equal(testNow.Add(backoff(3))) {
			t.Errorf("newFailure(%s) count %d retry %v, want 3 and %v", tt.name, f.Count, f.RetryAt, testNow.Add(backoff(3)))
		}
		rec, err := decodeRecord(mustEncode(t, record{Failure: f}))
		if err != nil {
			t.Fatalf("decodeRecord: %v", err)
		}
		if got := rec.Failure.err(testAppID); !tt.check(got) {
			t.Errorf("failure(%s).err() = %v (%T), want the original kind", tt.name, got, got)
		}
	}
}

func mustEncode(t *testing.T, r record) []byte {
	t.Helper()
	b, err := encodeRecord(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
