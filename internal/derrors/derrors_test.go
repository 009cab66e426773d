package derrors

import (
	"errors"
	"fmt"
	"testing"
)

type wechatErr struct{}

func (wechatErr) Error() string  { return "errcode 47003" }
func (wechatErr) ErrCode() int   { return 47003 }
func (wechatErr) ErrMsg() string { return "argument invalid! data.thing1.value" }
func (wechatErr) Is(t error) bool {
	return t == Invalid
}

func TestKindOf(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want error
	}{
		{"nil", nil, nil},
		{"none", errors.New("plain"), nil},
		{"wrapped", fmt.Errorf("store: consent x: %w", Conflict), Conflict},
		{"twice", fmt.Errorf("a: %w", fmt.Errorf("b: %w", Unavailable)), Unavailable},
		{"by Is", fmt.Errorf("send: %w", wechatErr{}), Invalid},
		{"ambiguous first", fmt.Errorf("%w: %w", Unavailable, Ambiguous), Ambiguous},
	}
	for _, tt := range tests {
		if got := KindOf(tt.err); got != tt.want {
			t.Errorf("%s: KindOf(%v) = %v, want %v", tt.name, tt.err, got, tt.want)
		}
	}
}

func TestWrapAndErrCode(t *testing.T) {
	f := func() (err error) {
		defer Wrap(&err, "sending %s", "m1")
		return wechatErr{}
	}
	err := f()
	if err.Error() != "sending m1: errcode 47003" || !errors.Is(err, Invalid) {
		t.Errorf("Wrap = %v, want the context before the cause and the kind kept", err)
	}
	if code, msg, ok := ErrCode(err); !ok || code != 47003 || msg == "" {
		t.Errorf("ErrCode = %d %q %v, want 47003 with its errmsg", code, msg, ok)
	}
	g := func() (err error) {
		defer Wrap(&err, "never")
		return nil
	}
	if err := g(); err != nil {
		t.Errorf("Wrap(nil) = %v, want nil", err)
	}
}
