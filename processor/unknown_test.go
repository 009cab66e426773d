package processor_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wxgate/wxgate/internal/broker/natstest"
	"github.com/wxgate/wxgate/internal/checkfor"
	"github.com/wxgate/wxgate/internal/sim"
	"github.com/wxgate/wxgate/processor"
	"github.com/wxgate/wxgate/schemas"
)

// TestUnknownIsNeverResentOnItsOwn: a message whose answer was lost and that
// no sent event settles stays unknown past processor.unknown_after, with
// exactly one call made to WeChat; an operator's resend then sends it again
// from a new grant.
func TestUnknownIsNeverResentOnItsOwn(t *testing.T) {
	var s *sim.Sim
	f := newFixture(t, withWeChat(&s))
	openID := "oUnsettled_xxxxxxxxxxxxxxxxxx"
	f.accept(s, openID, tplOnce)
	if err := s.SetFaults(sim.Faults{SendReply: sim.ReplyDrop, SendReplyNext: 1}); err != nil {
		t.Fatal(err)
	}
	m := f.send(openID, tplOnce, "")
	if m.Status != processor.StatusUnknown {
		t.Fatalf("message = %s (%s), want unknown", m.Status, m.Reason)
	}
	// The send event comes back after unknown_after (1s here) and is settled
	// without a call: nothing is left in flight.
	checkfor.Eventually(t, waitTime, waitEvery, func() error { return natstest.Settled(f.js, processor.ConsumerName, 0) })
	if got, _ := f.st.Message(context.Background(), appID, m.ID); got.Status != processor.StatusUnknown {
		t.Fatalf("after unknown_after the message = %s, want still unknown", got.Status)
	}
	if sends := s.Stats().Sends[0]; sends != 1 {
		t.Fatalf("WeChat accepted %d sends, want 1: an unknown message is never resent on its own", sends)
	}

	// The operator resends it: it needs a consent again, like any new send.
	f.accept(s, openID, tplOnce)
	if _, err := f.proc.Resend(context.Background(), appID, m.ID); err != nil {
		t.Fatalf("Resend: %v", err)
	}
	var got *processor.Message
	checkfor.Eventually(t, waitTime, waitEvery, func() error {
		var err error
		if got, err = f.st.Message(context.Background(), appID, m.ID); err != nil {
			return err
		}
		if got.Status != processor.StatusSent {
			return fmt.Errorf("message is %s", got.Status)
		}
		return nil
	})
	if sends := s.Stats().Sends[0]; sends != 2 {
		t.Errorf("WeChat accepted %d sends after the resend, want 2", sends)
	}
	if _, err := f.proc.Resend(context.Background(), appID, m.ID); !errors.Is(err, processor.ErrNotUnknown) {
		t.Errorf("Resend of a sent message = %v, want ErrNotUnknown", err)
	}
}

// TestCrashAfterWeChatAcceptedIsNotResent: the process dies after WeChat
// accepted a send and before the answer was recorded. The stream redelivers
// the send to the restarted processor, which finds the grant used and no
// answer recorded: the message becomes unknown, WeChat is not called again,
// and WeChat's sent event makes it delivered.
func TestCrashAfterWeChatAcceptedIsNotResent(t *testing.T) {
	var s *sim.Sim
	f := newFixture(t, withWeChat(&s), func(f *fixture) { f.cfg.AckWait = 2 * time.Second })
	openID := "oCrash_xxxxxxxxxxxxxxxxxxxxxx"
	f.accept(s, openID, tplOnce)
	f.halt()

	// The first process: its call to WeChat succeeds, then it never gets to
	// record the answer, as if it died there.
	dead := make(chan struct{})
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(dead) }) })
	ctx, cancel := context.WithCancel(context.Background())
	crashing := f.cfg
	crashing.Sender = dyingSender{next: f.cfg.Sender, die: cancel, dead: dead}
	first, err := processor.New(f.st, f.js, f.pub, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry(), crashing)
	if err != nil {
		t.Fatal(err)
	}
	firstDone := make(chan error, 1)
	go func() { firstDone <- first.Run(ctx) }()
	req := &schemas.SendRequest{ToUser: openID, TemplateID: tplOnce, Data: map[string]string{"thing1": "Coffee"}}
	m, err := first.RequestSend(context.Background(), appID, req, "")
	if err != nil {
		t.Fatal(err)
	}
	checkfor.Eventually(t, waitTime, waitEvery, func() error {
		if n := s.Stats().Sends[0]; n != 1 {
			return fmt.Errorf("WeChat accepted %d sends", n)
		}
		return nil
	})

	// The restarted process gets the send again once its ack wait is over.
	f.start()
	checkfor.Eventually(t, waitTime, waitEvery, func() error {
		got, err := f.st.Message(context.Background(), appID, m.ID)
		if err != nil {
			return err
		}
		if got.Status != processor.StatusUnknown {
			return fmt.Errorf("message is %s", got.Status)
		}
		return nil
	})
	once.Do(func() { close(dead) })
	cancel()
	<-firstDone

	received, _ := s.Messages(appID)
	if len(received) != 1 {
		t.Fatalf("WeChat received %d messages, want exactly 1", len(received))
	}
	f.publish(sent(openID, f.tick(), received[0].MsgID, 0, "success"))
	f.drained()
	got, err := f.st.Message(context.Background(), appID, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != processor.StatusDelivered || got.WeChatMsgID != received[0].MsgID {
		t.Errorf("after its sent event the message = %s msgid %q, want delivered with %s", got.Status, got.WeChatMsgID, received[0].MsgID)
	}
	if sends := s.Stats().Sends[0]; sends != 1 {
		t.Errorf("WeChat accepted %d sends in all, want 1", sends)
	}
}

// dyingSender makes the real call, then stops its processor from taking
// more work (die) and holds the answer until dead is closed, then loses it,
// as a process killed after the call would.
type dyingSender struct {
	next processor.Sender
	die  func()
	dead chan struct{}
}

func (d dyingSender) Send(ctx context.Context, appID string, body []byte) (string, error) {
	if _, err := d.next.Send(ctx, appID, body); err != nil {
		return "", err
	}
	d.die()
	<-d.dead
	return "", errors.New("the process died before recording the answer")
}

// TestNormalSendNeverPassesThroughUnknown: a send whose answer is read and
// recorded goes queued, sending, sent and nothing else.
func TestNormalSendNeverPassesThroughUnknown(t *testing.T) {
	var s *sim.Sim
	f := newFixture(t, withWeChat(&s))
	openID := "oNormal_xxxxxxxxxxxxxxxxxxxxx"
	f.accept(s, openID, tplOnce)
	m := f.send(openID, tplOnce, "")
	var statuses []string
	for _, h := range m.History {
		statuses = append(statuses, h.Status)
	}
	if fmt.Sprint(statuses) != "[queued sending sent]" {
		t.Errorf("history = %v, want [queued sending sent]", statuses)
	}
	if unknown := f.nats.Messages("wechat." + appID + ".delivery.unknown"); len(unknown) != 0 {
		t.Errorf("%d delivery.unknown events for a normal send, want none", len(unknown))
	}
}

// TestCrashBeforeTheMsgIDIsLinked: the process dies after recording WeChat's
// answer (the message is sent) and before linking its msgid to the message
// for the sent event. The send event comes again to the restarted processor,
// which must complete the link, so that the sent event, arriving before or
// after it, makes the message delivered; WeChat is not called again. The send
// event may come again as the stream's redelivery, or as a first delivery of
// a copy (a consumer whose state was lost), which starts from the event's
// copy of the message rather than the store's.
func TestCrashBeforeTheMsgIDIsLinked(t *testing.T) {
	tests := []struct {
		name string
		// sentEventFirst publishes the sent event before the restart, so that
		// it is applied before the send event comes again.
		sentEventFirst bool
		// copy publishes the send event again as a new stream message.
		copy bool
	}{
		{"sent event first, redelivery", true, false},
		{"sent event last, redelivery", false, false},
		{"sent event first, copy of the send event", true, true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s *sim.Sim
			ackWait := 2 * time.Second
			if tt.copy {
				ackWait = time.Minute // only the copy comes again within the test
			}
			f := newFixture(t, withWeChat(&s), func(f *fixture) { f.cfg.AckWait = ackWait })
			openID := fmt.Sprintf("oLink%d_xxxxxxxxxxxxxxxxxxxxxx", i)
			f.accept(s, openID, tplOnce)
			f.halt()

			// The first process: WeChat accepts, the answer is recorded, and
			// the process dies writing the msgid's link.
			dead := make(chan struct{})
			var once sync.Once
			t.Cleanup(func() { once.Do(func() { close(dead) }) })
			ctx, cancel := context.WithCancel(context.Background())
			first, err := processor.New(dyingLinkStore{Store: f.st, die: cancel, dead: dead}, f.js, f.pub,
				slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry(), f.cfg)
			if err != nil {
				t.Fatal(err)
			}
			firstDone := make(chan error, 1)
			go func() { firstDone <- first.Run(ctx) }()
			req := &schemas.SendRequest{ToUser: openID, TemplateID: tplOnce, Data: map[string]string{"thing1": "Coffee"}}
			m, err := first.RequestSend(context.Background(), appID, req, "")
			if err != nil {
				t.Fatal(err)
			}
			checkfor.Eventually(t, waitTime, waitEvery, func() error {
				got, err := f.st.Message(context.Background(), appID, m.ID)
				if err != nil {
					return err
				}
				if got.Status != processor.StatusSent {
					return fmt.Errorf("message is %s", got.Status)
				}
				return nil
			})
			received, _ := s.Messages(appID)
			if len(received) != 1 {
				t.Fatalf("WeChat received %d messages, want 1", len(received))
			}
			msgID := received[0].MsgID
			if tt.sentEventFirst {
				f.publish(sent(openID, f.tick(), msgID, 0, "success"))
			}
			if tt.copy {
				sends := f.nats.Messages("wechat." + appID + ".send")
				if len(sends) != 1 {
					t.Fatalf("%d send events on the stream, want 1", len(sends))
				}
				f.publishRaw(sends[0].Subject, "send-copy", sends[0].Data)
			}

			f.start()
			if !tt.sentEventFirst {
				f.publish(sent(openID, f.tick(), msgID, 0, "success"))
			}
			checkfor.Eventually(t, waitTime, waitEvery, func() error {
				got, err := f.st.Message(context.Background(), appID, m.ID)
				if err != nil {
					return err
				}
				if got.Status != processor.StatusDelivered || got.WeChatMsgID != msgID {
					return fmt.Errorf("message is %s with msgid %q, want delivered with %s", got.Status, got.WeChatMsgID, msgID)
				}
				return nil
			})
			once.Do(func() { close(dead) })
			cancel()
			<-firstDone
			if sends := s.Stats().Sends[0]; sends != 1 {
				t.Errorf("WeChat accepted %d sends in all, want 1", sends)
			}
		})
	}
}

// dyingLinkStore stops its processor from taking more work (die) when it is
// first asked to link a msgid to a message, and holds that write until dead is
// closed, then loses it, as a process killed before the write would.
type dyingLinkStore struct {
	processor.Store
	die  func()
	dead chan struct{}
}

func (d dyingLinkStore) SaveOutcome(ctx context.Context, o *processor.Outcome) error {
	if o.MessageID == "" {
		return d.Store.SaveOutcome(ctx, o)
	}
	d.die()
	<-d.dead
	return errors.New("the process died before linking the msgid")
}
