package sim

import (
	"errors"
	"math"
	"testing"
	"time"
)

func TestSendErrcodeFaults(t *testing.T) {
	tests := []struct {
		name   string
		faults Faults
		want   []int // errcodes of consecutive sends
	}{
		{"next two", Faults{SendErrcode: 45009, SendErrcodeNext: 2}, []int{45009, 45009, 0, 0}},
		{"code alone fails every send", Faults{SendErrcode: -1}, []int{-1, -1, -1}},
		{"rate one", Faults{SendErrcode: 43107, SendErrcodeRate: 1}, []int{43107, 43107}},
		{"next then rate", Faults{SendErrcode: 47003, SendErrcodeNext: 1, SendErrcodeRate: 1}, []int{47003, 47003}},
		{"none", Faults{}, []int{0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, base := start(t, Config{Apps: []AppConfig{testApp()}})
			tok := mustToken(t, base)
			_ = s.Subscribe(testAppID, testUser, ActionAccept, tplLong)
			if err := s.SetFaults(tt.faults); err != nil {
				t.Fatal(err)
			}
			for i, want := range tt.want {
				if got := errcodeOf(t, send(t, base, tok, sendBody(testUser, tplLong, longData()))); got != want {
					t.Fatalf("send %d with %+v: errcode %d, want %d", i+1, tt.faults, got, want)
				}
			}
			// Injected failures never consume consent or record a message.
			msgs, _ := s.Messages(testAppID)
			oks := 0
			for _, w := range tt.want {
				if w == 0 {
					oks++
				}
			}
			if len(msgs) != oks {
				t.Fatalf("Messages = %d, want %d", len(msgs), oks)
			}
		})
	}
}

func TestSendErrcodeRateIsReproducible(t *testing.T) {
	run := func() []int {
		s, err := New(Config{Apps: []AppConfig{testApp()}, Seed: 42}, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if err := s.SetFaults(Faults{SendErrcode: -1, SendErrcodeRate: 0.5}); err != nil {
			t.Fatal(err)
		}
		var got []int
		for range 32 {
			code, fail, _ := s.injectSend()
			if !fail {
				code = 0
			}
			got = append(got, code)
		}
		return got
	}
	a, b := run(), run()
	fails := 0
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("injected errcodes with one seed differ: %v vs %v", a, b)
		}
		if a[i] != 0 {
			fails++
		}
	}
	if fails == 0 || fails == len(a) {
		t.Fatalf("rate 0.5 failed %d of %d sends, want some but not all", fails, len(a))
	}
}

func TestLatencyFault(t *testing.T) {
	s, base := start(t, Config{Apps: []AppConfig{testApp()}})
	tok := mustToken(t, base)
	_ = s.Subscribe(testAppID, testUser, ActionAccept, tplLong)
	if err := s.SetFaults(Faults{LatencyMS: 80}); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	if got := errcodeOf(t, send(t, base, tok, sendBody(testUser, tplLong, longData()))); got != 0 {
		t.Fatalf("send with latency: errcode %d, want 0", got)
	}
	if took := time.Since(began); took < 80*time.Millisecond {
		t.Fatalf("send with 80ms latency took %v", took)
	}
}

func TestTokenFaults(t *testing.T) {
	s, base := start(t, Config{Apps: []AppConfig{testApp()}})
	if err := s.SetFaults(Faults{TokenErrcode: -1, TokenErrcodeNext: 1}); err != nil {
		t.Fatal(err)
	}
	if got := errcodeOf(t, fetchToken(t, base, testAppID, testSecret)); got != -1 {
		t.Fatalf("token call with an injected fault: errcode %d, want -1", got)
	}
	tok := mustToken(t, base)
	stable := stableToken(t, base, false)["access_token"].(string)
	if err := s.SetFaults(Faults{ExpireTokens: true}); err != nil {
		t.Fatal(err)
	}
	if s.CurrentFaults().ExpireTokens {
		t.Fatal("ExpireTokens reads back as set; it is an action")
	}
	for name, v := range map[string]string{"plain": tok, "stable": stable} {
		if got := tokenErrcode(t, base, v); got != 42001 {
			t.Fatalf("%s token after expire_tokens: errcode %d, want 42001", name, got)
		}
	}
	if got := stableToken(t, base, false)["access_token"]; got == stable {
		t.Fatal("stable_token after expire_tokens returned the expired token")
	}
}

func TestSetFaultsValidates(t *testing.T) {
	s, err := New(Config{Apps: []AppConfig{testApp()}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tests := []struct {
		name   string
		faults Faults
	}{
		{"rate above one", Faults{SendErrcodeRate: 1.5}},
		{"NaN rate", Faults{PushDropRate: math.NaN()}},
		{"negative next", Faults{SendErrcodeNext: -1}},
		{"huge latency", Faults{LatencyMS: 3_600_000}},
		{"too many duplicates", Faults{PushDuplicates: 1000}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := s.SetFaults(tt.faults); !errors.Is(err, ErrInvalidFaults) {
				t.Fatalf("SetFaults(%+v) = %v, want ErrInvalidFaults", tt.faults, err)
			}
		})
	}
}
