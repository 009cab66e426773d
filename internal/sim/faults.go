package sim

import (
	"errors"
	"fmt"
	"time"
)

// ErrInvalidFaults is wrapped by [Sim.SetFaults] when a fault is out of range.
var ErrInvalidFaults = errors.New("sim: invalid faults")

// Faults are the failures the simulator injects. The zero value injects none.
//
// An errcode fault (send, token, sent event) applies as follows: with Next > 0
// the next Next calls get the code; then, with Rate > 0, that fraction of
// calls; when both Next and Rate are zero a non-zero code applies to every
// call. Once Next is used up and Rate is zero the code is cleared.
type Faults struct {
	// SendErrcode is what injected subscribe/send failures return (-1, 45009, 43107, ...).
	SendErrcode     int     `json:"send_errcode"`
	SendErrcodeRate float64 `json:"send_errcode_rate"`
	SendErrcodeNext int     `json:"send_errcode_next"`
	// LatencyMS delays every subscribe/send answer; a send holds the user's
	// in-flight slot meanwhile, so concurrent sends to that user get 43108.
	LatencyMS int `json:"latency_ms"`

	// TokenErrcode is what injected /cgi-bin/token and stable_token failures return (-1, 45009, 40164, ...).
	TokenErrcode     int     `json:"token_errcode"`
	TokenErrcodeRate float64 `json:"token_errcode_rate"`
	TokenErrcodeNext int     `json:"token_errcode_next"`

	// PushDuplicates delivers every push this many times in all (0 and 1 mean once).
	// Each copy carries the same message but a fresh nonce, timestamp and
	// encryption, as separate WeChat deliveries of one event do.
	PushDuplicates int `json:"push_duplicates"`
	// PushDropRate is the fraction of pushes never delivered.
	PushDropRate float64 `json:"push_drop_rate"`

	// SentEventErrcode is the ErrorCode of subscribe_msg_sent_event pushes
	// (0, the default, reports success).
	SentEventErrcode     int     `json:"sent_event_errcode"`
	SentEventErrcodeRate float64 `json:"sent_event_errcode_rate"`
	SentEventErrcodeNext int     `json:"sent_event_errcode_next"`
	// SentEventErrorStatus is the ErrorStatus sent with a non-zero SentEventErrcode ("failed" if empty).
	SentEventErrorStatus string `json:"sent_event_error_status"`

	// SendReply changes how an accepted send is answered, as a faulty network
	// or a WeChat bug would: "" answers normally; ReplyMalformed answers HTTP
	// 200 with a body that is not JSON; ReplyNoMsgID answers errcode 0 without
	// a msgid; ReplyDrop closes the connection without an answer. The send is
	// accepted all the same: it is counted and its sent event is pushed. With
	// SendReplyNext > 0 only that many accepted sends are affected.
	SendReply     string `json:"send_reply"`
	SendReplyNext int    `json:"send_reply_next"`

	// ExpireTokens, when set in [Sim.SetFaults], expires every access token
	// issued so far at once (42001 from then on). It is an action, not a
	// standing fault, and reads back as false.
	ExpireTokens bool `json:"expire_tokens"`
}

func (f Faults) validate() error {
	for _, r := range []struct {
		name string
		v    float64
	}{
		{"send_errcode_rate", f.SendErrcodeRate},
		{"token_errcode_rate", f.TokenErrcodeRate},
		{"push_drop_rate", f.PushDropRate},
		{"sent_event_errcode_rate", f.SentEventErrcodeRate},
	} {
		if !(r.v >= 0 && r.v <= 1) { // also rejects NaN
			return fmt.Errorf("%w: %s: %v is not within 0..1", ErrInvalidFaults, r.name, r.v)
		}
	}
	switch {
	case f.SendErrcodeNext < 0, f.TokenErrcodeNext < 0, f.SentEventErrcodeNext < 0:
		return fmt.Errorf("%w: *_next must not be negative", ErrInvalidFaults)
	case f.LatencyMS < 0 || time.Duration(f.LatencyMS)*time.Millisecond > maxSimulatedLatency:
		return fmt.Errorf("%w: latency_ms: %d is not within 0..%d", ErrInvalidFaults, f.LatencyMS, maxSimulatedLatency.Milliseconds())
	case f.PushDuplicates < 0 || f.PushDuplicates > maxPushDuplicates:
		return fmt.Errorf("%w: push_duplicates: %d is not within 0..%d", ErrInvalidFaults, f.PushDuplicates, maxPushDuplicates)
	case f.SendReply != "" && f.SendReply != ReplyMalformed && f.SendReply != ReplyNoMsgID && f.SendReply != ReplyDrop:
		return fmt.Errorf("%w: send_reply: %q is not %q, %q or %q", ErrInvalidFaults, f.SendReply, ReplyMalformed, ReplyNoMsgID, ReplyDrop)
	case f.SendReplyNext < 0:
		return fmt.Errorf("%w: send_reply_next must not be negative", ErrInvalidFaults)
	case len(f.SentEventErrorStatus) > maxIDBytes:
		return fmt.Errorf("%w: sent_event_error_status: over %d bytes", ErrInvalidFaults, maxIDBytes)
	}
	return nil
}

// errcodeFault is one errcode injection rule; pick mutates it (Next counts down).
type errcodeFault struct {
	code *int
	rate float64
	next *int
}

// pick decides whether this call fails and with which code; roll draws a
// uniform number in [0,1). The caller holds the faults lock.
func (e errcodeFault) pick(roll func() float64) (int, bool) {
	if *e.code == 0 {
		return 0, false
	}
	code := *e.code
	switch {
	case *e.next > 0:
		*e.next--
		if *e.next == 0 && e.rate == 0 {
			*e.code = 0
		}
		return code, true
	case e.rate > 0:
		return code, roll() < e.rate
	default:
		return code, true
	}
}

// SetFaults replaces the injected faults. It is safe for concurrent use and
// takes effect for the next call of each API.
func (s *Sim) SetFaults(f Faults) error {
	if err := f.validate(); err != nil {
		return err
	}
	if f.ExpireTokens {
		s.ExpireTokens()
		f.ExpireTokens = false
	}
	s.faultMu.Lock()
	s.faults = f
	s.faultMu.Unlock()
	return nil
}

// CurrentFaults returns the faults in force, with Next counters as used up so far.
// It is safe for concurrent use.
func (s *Sim) CurrentFaults() Faults {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	return s.faults
}

// injectSend reports whether this send fails with an injected errcode, and the latency to add.
func (s *Sim) injectSend() (code int, inject bool, latency time.Duration) {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	f := &s.faults
	code, inject = errcodeFault{&f.SendErrcode, f.SendErrcodeRate, &f.SendErrcodeNext}.pick(s.roll)
	return code, inject, time.Duration(f.LatencyMS) * time.Millisecond
}

// Faulty answers to an accepted send (Faults.SendReply).
const (
	ReplyMalformed = "malformed"
	ReplyNoMsgID   = "no_msgid"
	ReplyDrop      = "drop"
)

// replyFault returns how to answer the accepted send in hand ("" normally).
func (s *Sim) replyFault() string {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	f := &s.faults
	mode := f.SendReply
	if f.SendReplyNext > 0 {
		f.SendReplyNext--
		if f.SendReplyNext == 0 {
			f.SendReply = ""
		}
	}
	return mode
}

// injectToken reports whether this token call fails with an injected errcode.
func (s *Sim) injectToken() (int, bool) {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	f := &s.faults
	return errcodeFault{&f.TokenErrcode, f.TokenErrcodeRate, &f.TokenErrcodeNext}.pick(s.roll)
}

// sentEventOutcome returns the ErrorCode and ErrorStatus of the next sent event.
func (s *Sim) sentEventOutcome() (int, string) {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	f := &s.faults
	status := f.SentEventErrorStatus
	code, inject := errcodeFault{&f.SentEventErrcode, f.SentEventErrcodeRate, &f.SentEventErrcodeNext}.pick(s.roll)
	if !inject {
		return 0, "success"
	}
	if status == "" {
		status = defaultSentEventFailStatus
	}
	return code, status
}

// pushPlan returns how many copies of a push to deliver; zero drops it.
func (s *Sim) pushPlan() int {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	if s.faults.PushDropRate > 0 && s.roll() < s.faults.PushDropRate {
		return 0
	}
	return max(1, s.faults.PushDuplicates)
}
