package checkfor

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestPoll(t *testing.T) {
	tests := []struct {
		name      string
		passAt    int // the call that first returns nil; 0: never
		total     time.Duration
		wantErr   bool
		wantCalls int // -1: any number
	}{
		{"passes at once", 1, time.Second, false, 1},
		{"passes on the third call", 3, time.Second, false, 3},
		{"never passes", 0, 30 * time.Millisecond, true, -1},
		{"no time at all still checks once", 1, 0, false, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			err := poll(tt.total, time.Millisecond, func() error {
				calls++
				if calls == tt.passAt {
					return nil
				}
				return fmt.Errorf("call %d", calls)
			})
			if (err != nil) != tt.wantErr {
				t.Fatalf("poll(%s) = %v, want error %v", tt.name, err, tt.wantErr)
			}
			if tt.wantCalls >= 0 && calls != tt.wantCalls {
				t.Errorf("poll(%s) called check %d times, want %d", tt.name, calls, tt.wantCalls)
			}
			if tt.wantErr && err.Error() != fmt.Sprintf("call %d", calls) {
				t.Errorf("poll(%s) = %v, want the last call's error (call %d)", tt.name, err, calls)
			}
		})
	}
}

func TestPollChecksAtTheDeadline(t *testing.T) {
	start := time.Now()
	total := 50 * time.Millisecond
	err := poll(total, time.Hour, func() error {
		if time.Since(start) >= total {
			return nil
		}
		return errors.New("too early")
	})
	if err != nil {
		t.Errorf("poll with a check that passes at the deadline = %v, want nil", err)
	}
}

// recorder is a testing.TB that records Fatalf instead of ending the test.
type recorder struct {
	testing.TB
	fatal string
}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(format string, args ...any) { r.fatal = fmt.Sprintf(format, args...) }

func TestEventuallyFailsWithTheLastError(t *testing.T) {
	r := &recorder{TB: t}
	Eventually(r, 20*time.Millisecond, time.Millisecond, func() error { return errors.New("still 3 pending") })
	if !strings.Contains(r.fatal, "still 3 pending") || !strings.Contains(r.fatal, "20ms") {
		t.Errorf("Eventually failed the test with %q, want the check's error and the wait", r.fatal)
	}
	r = &recorder{TB: t}
	Eventually(r, time.Second, time.Millisecond, func() error { return nil })
	if r.fatal != "" {
		t.Errorf("Eventually with a passing check failed the test with %q", r.fatal)
	}
}
