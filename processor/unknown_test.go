package processor_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/wxgate/wxgate/internal/broker/natstest"
	"github.com/wxgate/wxgate/internal/checkfor"
	"github.com/wxgate/wxgate/internal/metricstest"
	"github.com/wxgate/wxgate/internal/sim"
	"github.com/wxgate/wxgate/processor"
	"github.com/wxgate/wxgate/schemas"
)

// sendUnknown gives openID a grant and sends it a message whose answer the
// network drops after WeChat accepted it: the message is unknown.
func (f *fixture) sendUnknown(s *sim.Sim, openID string) *processor.Message {
	f.t.Helper()
	f.accept(s, openID, tplOnce)
	if err := s.SetFaults(sim.Faults{SendReply: sim.ReplyDrop, SendReplyNext: 1}); err != nil {
		f.t.Fatal(err)
	}
	m := f.send(openID, tplOnce, "")
	if m.Status != processor.StatusUnknown {
		f.t.Fatalf("message = %s (%s), want unknown", m.Status, m.Reason)
	}
	return m
}

// TestUnknownIsNeverResentOnItsOwn: a message whose answer was lost and that
// no sent event settles stays unknown past processor.unknown_after, with
// exactly one call made to WeChat; an operator's resend then sends it again
// from a new grant.
func TestUnknownIsNeverResentOnItsOwn(t *testing.T) {
	var s *sim.Sim
	f := newFixture(t, withWeChat(&s))
	openID := "oUnsettled_xxxxxxxxxxxxxxxxxx"
	m := f.sendUnknown(s, openID)
	// The send event comes back after unknown_after (1s here) and is settled
	// without a call: nothing is left in flight.
	checkfor.Eventually(t, waitTime, waitEvery, func() error { return natstest.Drained(f.js) })
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

// TestUnknownIsCountedOnceAfterUnknownAfter: a send event of an unknown
// message that the stream redelivers early (after a processor or a stream
// leader went away) waits out unknown_after too, and the message is counted
// as unsettled once.
func TestUnknownIsCountedOnceAfterUnknownAfter(t *testing.T) {
	var s *sim.Sim
	f := newFixture(t, withWeChat(&s), func(f *fixture) { f.cfg.UnknownAfter = 3 * time.Second })
	ctx := context.Background()
	openID := "oEarlyCopy_xxxxxxxxxxxxxxxxxx"
	f.sendUnknown(s, openID)
	// With the processor stopped, a copy of the send event is delivered once
	// to a client that dies without acknowledging it, as a processor killed
	// mid-handling would: the next delivery is a redelivery.
	f.halt()
	sends := f.nats.Messages("wechat." + appID + ".send")
	if len(sends) != 1 {
		t.Fatalf("%d send events on the stream, want 1", len(sends))
	}
	f.publishRaw(schemas.WorkSubject(appID, openID, schemas.WorkSend), "early-copy", sends[0].Data)
	stream, err := f.js.Stream(ctx, schemas.WorkStreamName)
	if err != nil {
		t.Fatal(err)
	}
	last, err := stream.GetLastMsgForSubject(ctx, "wxgate.part.*."+appID+".*.send")
	if err != nil {
		t.Fatal(err)
	}
	w, err := schemas.ParseWorkSubject(last.Subject)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := stream.Consumer(ctx, processor.PartitionConsumer(w.Partition))
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(1, jetstream.FetchPriorityGroup("processors"), jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for msg := range batch.Messages() {
		if err := msg.Nak(); err != nil {
			t.Fatal(err)
		}
	}
	if err := stream.UnpinConsumer(ctx, processor.PartitionConsumer(w.Partition), "processors"); err != nil {
		t.Fatal(err)
	}
	f.start()
	unsettled := func() float64 {
		return metricstest.Gather(t, f.reg)["wxgate_send_unsettled_total[app="+appID+"]"]
	}
	checkfor.Eventually(t, waitTime, waitEvery, func() error {
		if n, _ := f.settledAs("nak"); n < 1 {
			return errors.New("the redelivered copy is not handled yet")
		}
		return nil
	})
	if n := unsettled(); n != 0 {
		t.Fatalf("unsettled right after the early redelivery = %v, want 0 until unknown_after", n)
	}
	checkfor.Eventually(t, waitTime, waitEvery, func() error { return natstest.Drained(f.js) })
	if n := unsettled(); n != 1 {
		t.Errorf("unsettled after unknown_after = %v, want 1 for one message", n)
	}
	if got := s.Stats().Sends[0]; got != 1 {
		t.Errorf("WeChat accepted %d sends, want 1", got)
	}
}

// TestCrashAfterWeChatAcceptedIsNotResent: the process dies after WeChat
// accepted a send and before the answer was recorded. The stream redelivers
// the send to the restarted processor, which finds the grant used and no
// answer recorded: the message becomes unknown, WeChat is not called again,
// and WeChat's sent event makes it delivered, whether it came after the
// message became unknown or, as after a real crash, before.
func TestCrashAfterWeChatAcceptedIsNotResent(t *testing.T) {
	for i, sentFirst := range []bool{false, true} {
		name := "sent event after"
		if sentFirst {
			name = "sent event before"
		}
		t.Run(name, func(t *testing.T) {
			var s *sim.Sim
			f := newFixture(t, withWeChat(&s), func(f *fixture) { f.cfg.AckWait = 2 * time.Second })
			openID := fmt.Sprintf("oCrash%02d_xxxxxxxxxxxxxxxxxxxx", i)
			f.accept(s, openID, tplOnce)
			f.halt()

			// The first process: its call to WeChat succeeds, then it never gets to
			// record the answer, as if it died there.
			first, bury := f.startDying(func(die func(), dead <-chan struct{}) (processor.Store, processor.Config) {
				crashing := f.cfg
				crashing.Sender = dyingSender{next: f.cfg.Sender, die: die, dead: dead}
				return f.st, crashing
			})
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
			received, _ := s.Messages(appID)
			if len(received) != 1 {
				t.Fatalf("WeChat received %d messages, want exactly 1", len(received))
			}
			sentEvent := sent(openID, f.tick(), received[0].MsgID, 0, "success")
			if sentFirst {
				// WeChat's sent event reaches the restarted processor at once; the
				// send comes back only after the dead process's ack wait.
				f.publish(sentEvent)
			}

			f.start()
			checkfor.Eventually(t, waitTime, waitEvery, func() error {
				got, err := f.st.Message(context.Background(), appID, m.ID)
				if err != nil {
					return err
				}
				want := processor.StatusUnknown
				if sentFirst {
					want = processor.StatusDelivered
				}
				if got.Status != want {
					return fmt.Errorf("message is %s, want %s", got.Status, want)
				}
				return nil
			})
			bury()

			if !sentFirst {
				f.publish(sentEvent)
			}
			f.drained()
			got, err := f.st.Message(context.Background(), appID, m.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Status != processor.StatusDelivered || got.WeChatMsgID != received[0].MsgID {
				t.Errorf("after its sent event the message = %s msgid %q, want delivered with %s", got.Status, got.WeChatMsgID, received[0].MsgID)
			}
			if !slices.Contains(statusesOf(got), processor.StatusUnknown) {
				t.Errorf("history %v, want it to pass through unknown", statusesOf(got))
			}
			if c := f.consent(openID, tplOnce); len(c.Unsettled) != 0 || len(c.Unmatched) != 0 {
				t.Errorf("consent keeps unsettled %v and unmatched %v, want none", c.Unsettled, c.Unmatched)
			}
			if sends := s.Stats().Sends[0]; sends != 1 {
				t.Errorf("WeChat accepted %d sends in all, want 1", sends)
			}
		})
	}
}

func statusesOf(m *processor.Message) []string {
	var out []string
	for _, h := range m.History {
		out = append(out, h.Status)
	}
	return out
}

// startDying runs a first processor, built by build from a die func (which
// stops it taking work, as a killed process would) and a channel closed when
// it may finish. It returns the processor and bury, which lets it finish and
// waits for it (also done when the test ends).
func (f *fixture) startDying(build func(die func(), dead <-chan struct{}) (processor.Store, processor.Config)) (*processor.Processor, func()) {
	f.t.Helper()
	dead := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	st, cfg := build(cancel, dead)
	p, err := processor.New(st, f.js, f.pub, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry(), cfg)
	if err != nil {
		f.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	var once sync.Once
	bury := func() {
		once.Do(func() {
			close(dead)
			cancel()
			<-done
		})
	}
	f.t.Cleanup(bury)
	return p, bury
}

// dyingSender makes the real call, then stops its processor from taking
// more work (die) and holds the answer until dead is closed, then loses it,
// as a process killed after the call would.
type dyingSender struct {
	next processor.Sender
	die  func()
	dead <-chan struct{}
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

// TestSendOutlastsAnOutage: WeChat refuses every send (-1) for longer than the
// five quick tries of old would last; the send waits on the stream's redelivery
// for the next try of processor.send_retry, shows when, and is sent once WeChat
// is back.
func TestSendOutlastsAnOutage(t *testing.T) {
	var s *sim.Sim
	f := newFixture(t, withWeChat(&s), func(f *fixture) {
		f.cfg.SendRetry = []time.Duration{300 * time.Millisecond, 600 * time.Millisecond, time.Second, 2 * time.Second}
		f.cfg.SendAttempts = 8
	})
	openID := "oOutage_send_xxxxxxxxxxxxxxxx"
	f.accept(s, openID, tplOnce)
	if err := s.SetFaults(sim.Faults{SendErrcode: -1}); err != nil {
		t.Fatal(err)
	}
	req := &schemas.SendRequest{ToUser: openID, TemplateID: tplOnce, Data: map[string]string{"thing1": "Coffee"}}
	m, err := f.proc.RequestSend(context.Background(), appID, req, "")
	if err != nil {
		t.Fatal(err)
	}
	var waiting *processor.Message
	checkfor.Eventually(t, waitTime, waitEvery, func() error {
		got, err := f.st.Message(context.Background(), appID, m.ID)
		if err != nil {
			return err
		}
		if got.Attempts < 3 {
			return fmt.Errorf("%d attempts", got.Attempts)
		}
		waiting = got
		return nil
	})
	if waiting.Status != processor.StatusSending || !waiting.NextAttemptAt.After(waiting.UpdatedAt) {
		t.Errorf("message between tries = %s, next attempt at %v (updated %v), want sending with a next attempt to come", waiting.Status, waiting.NextAttemptAt, waiting.UpdatedAt)
	}
	if err := s.SetFaults(sim.Faults{}); err != nil { // WeChat is back
		t.Fatal(err)
	}
	got := f.settled(m.ID)
	if got.Status != processor.StatusSent || got.Attempts < 4 || !got.NextAttemptAt.IsZero() {
		t.Errorf("message after the outage = %s after %d attempts (next %v), want sent after at least 4 and no next attempt", got.Status, got.Attempts, got.NextAttemptAt)
	}
	if busy := s.Stats().Sends[-1]; busy < 3 {
		t.Errorf("WeChat refused %d tries, want at least 3 before it came back", busy)
	}
}

// TestDeadLettersByCause: a send WeChat refuses with 43107 becomes a dead letter
// that names its errcode; the dead letters can be listed, redriven and deleted by it.
func TestDeadLettersByCause(t *testing.T) {
	var s *sim.Sim
	f := newFixture(t, withWeChat(&s))
	openID := "oBanned_xxxxxxxxxxxxxxxxxxxxx"
	f.accept(s, openID, tplOnce)
	if err := s.SetFaults(sim.Faults{SendErrcode: 43107, SendErrcodeNext: 1}); err != nil {
		t.Fatal(err)
	}
	if m := f.send(openID, tplOnce, ""); m.Status != processor.StatusDead {
		t.Fatalf("message = %s, want dead", m.Status)
	}
	ctx := context.Background()
	banned, other := 43107, -1
	var dls []processor.DeadLetter
	checkfor.Eventually(t, waitTime, waitEvery, func() error {
		var err error
		dls, _, err = f.st.DeadLetters(ctx, processor.DeadLetterQuery{AppID: appID, ErrCode: &banned})
		if err == nil && len(dls) != 1 {
			err = fmt.Errorf("%d dead letters with errcode 43107", len(dls))
		}
		return err
	})
	if none, _, _ := f.st.DeadLetters(ctx, processor.DeadLetterQuery{AppID: appID, ErrCode: &other}); len(none) != 0 {
		t.Errorf("%d dead letters with errcode -1, want 0", len(none))
	}
	if n, err := f.proc.RedriveMatching(ctx, processor.DeadLetterQuery{ErrCode: &banned}); err != nil || n != 1 {
		t.Errorf("RedriveMatching(errcode 43107) = %d, %v; want 1", n, err)
	}
	if n, err := f.proc.DeleteMatching(ctx, processor.DeadLetterQuery{ErrCode: &banned}); err != nil || n != 1 {
		t.Errorf("DeleteMatching(errcode 43107) = %d, %v; want 1", n, err)
	}
	if _, err := f.st.DeadLetter(ctx, dls[0].ID); !errors.Is(err, processor.ErrNotFound) {
		t.Errorf("the deleted dead letter reads %v, want ErrNotFound", err)
	}
}

// TestLostPublishIsSwept: the send event of a stored message is not published
// (the stream refuses it); the message does not stay queued: the sweeper finds
// it in the outbox and publishes it, and it is sent once.
func TestLostPublishIsSwept(t *testing.T) {
	var s *sim.Sim
	drop := &droppingPublisher{}
	f := newFixture(t, withWeChat(&s), func(f *fixture) {
		drop.next, f.publisher = f.pub, drop
		f.cfg.SweepEvery, f.cfg.SweepAfter = 100*time.Millisecond, 200*time.Millisecond
	})
	openID := "oSwept_xxxxxxxxxxxxxxxxxxxxxx"
	f.accept(s, openID, tplOnce)

	drop.sends.Store(1) // the next send event is lost
	req := &schemas.SendRequest{ToUser: openID, TemplateID: tplOnce, Data: map[string]string{"thing1": "Coffee"}}
	m, err := f.proc.RequestSend(context.Background(), appID, req, "")
	if err == nil || m == nil || m.Status != processor.StatusQueued {
		t.Fatalf("RequestSend with the publish dropped = %+v, %v; want the queued message and the publish error", m, err)
	}
	got := f.settled(m.ID)
	if got.Status != processor.StatusSent {
		t.Errorf("message after the sweep = %s (%s), want sent", got.Status, got.Reason)
	}
	if n := s.Stats().Sends[0]; n != 1 {
		t.Errorf("WeChat accepted %d sends, want 1", n)
	}
	if left, err := f.st.Outbox(context.Background(), 10); err != nil || len(left) != 0 {
		t.Errorf("outbox after the sweep = %v, %v; want empty", left, err)
	}
}

// TestSendEventRedeliveredRepublishesTheStatus replays what the chaos
// experiment found during a stream leader's election: the send's "sent"
// publication fails after WeChat accepted it, so its msgid is not linked yet;
// the sent event arrives meanwhile and waits in its outcome record; the send
// event's redelivery links it and makes the message delivered, but that
// publication fails too. The next redelivery finds the message done and
// publishes its status again.
func TestSendEventRedeliveredRepublishesTheStatus(t *testing.T) {
	var s *sim.Sim
	drop := &droppingPublisher{hold: make(chan struct{}), held: make(chan struct{})}
	f := newFixture(t, withWeChat(&s), func(f *fixture) { drop.next, f.publisher = f.pub, drop })
	openID := "oRepublish_xxxxxxxxxxxxxxxxxx"
	f.accept(s, openID, tplOnce)
	drop.delivered.Store(1)
	req := &schemas.SendRequest{ToUser: openID, TemplateID: tplOnce, Data: map[string]string{"thing1": "Coffee"}}
	m, err := f.proc.RequestSend(context.Background(), appID, req, "")
	if err != nil {
		t.Fatal(err)
	}
	<-drop.held // WeChat accepted; the "sent" publication is on its way
	received, _ := s.Messages(appID)
	if len(received) != 1 {
		t.Fatalf("WeChat received %d messages, want 1", len(received))
	}
	f.publish(sent(openID, f.tick(), received[0].MsgID, 0, "success"))
	close(drop.hold) // the "sent" publication fails now
	f.drained()
	if got, _ := f.st.Message(context.Background(), appID, m.ID); got.Status != processor.StatusDelivered {
		t.Fatalf("message = %s (%s), want delivered", got.Status, got.Reason)
	}
	if drop.delivered.Load() > 0 {
		t.Fatal("the delivered publication was never tried, so never dropped")
	}
	if n := len(f.nats.Messages("wechat." + appID + ".delivery." + processor.StatusDelivered)); n != 1 {
		t.Errorf("%d delivered publications, want 1", n)
	}
	if n := s.Stats().Sends[0]; n != 1 {
		t.Errorf("WeChat accepted %d sends, want 1", n)
	}
}

// TestAnnouncementLostBeforeTheGrantIsUsedIsRetried: the stream does not take
// the announcement that a message is sending (a leader election). Nothing has
// been written, so the redelivery sends it: once, and not unknown.
func TestAnnouncementLostBeforeTheGrantIsUsedIsRetried(t *testing.T) {
	var s *sim.Sim
	drop := &droppingPublisher{}
	f := newFixture(t, withWeChat(&s), func(f *fixture) { drop.next, f.publisher = f.pub, drop })
	openID := "oAnnounceLost_xxxxxxxxxxxxxxx"
	f.accept(s, openID, tplOnce)

	drop.sending.Store(1)
	req := &schemas.SendRequest{ToUser: openID, TemplateID: tplOnce, Data: map[string]string{"thing1": "Coffee"}}
	m, err := f.proc.RequestSend(context.Background(), appID, req, "")
	if err != nil {
		t.Fatal(err)
	}
	got := f.settled(m.ID)
	if got.Status != processor.StatusSent || drop.sending.Load() >= 0 {
		t.Errorf("message = %s (%s), announcements left to drop %d; want sent after the dropped announcement", got.Status, got.Reason, drop.sending.Load())
	}
	if n := s.Stats().Sends[0]; n != 1 {
		t.Errorf("WeChat accepted %d sends, want 1", n)
	}
}

// droppingPublisher fails the next sends.Load() publishes of send events, the
// next sending.Load() announcements that a message is sending and the next
// delivered.Load() delivered publications. With hold set, the first "sent"
// publication closes held, waits until hold is closed, and fails.
type droppingPublisher struct {
	next      processor.Publisher
	sends     atomic.Int32
	sending   atomic.Int32
	delivered atomic.Int32
	hold      chan struct{}
	held      chan struct{}
	holdOnce  sync.Once
}

func (d *droppingPublisher) Publish(ctx context.Context, subject, id string, data []byte) (bool, error) {
	dropped := errors.New("publish dropped by the test")
	switch {
	case strings.HasSuffix(subject, ".delivery."+processor.StatusSending) && d.sending.Add(-1) >= 0:
		return false, dropped
	case strings.HasSuffix(subject, ".delivery."+processor.StatusDelivered) && d.delivered.Add(-1) >= 0:
		return false, dropped
	case strings.HasSuffix(subject, ".delivery."+processor.StatusSent) && d.hold != nil:
		first := false
		d.holdOnce.Do(func() { first = true })
		if first {
			close(d.held)
			<-d.hold
			return false, dropped
		}
	}
	return d.next.Publish(ctx, subject, id, data)
}

func (d *droppingPublisher) PublishWork(ctx context.Context, subject, workSubject, id string, data []byte) (bool, error) {
	if strings.HasSuffix(workSubject, "."+schemas.WorkSend) && d.sends.Add(-1) >= 0 {
		return false, errors.New("publish dropped by the test")
	}
	return d.next.PublishWork(ctx, subject, workSubject, id, data)
}

// TestReplay: replaying applied events changes nothing and says so; replaying
// an event whose application was lost (its consent deleted here, as a store
// restored from an older backup would have lost it) applies it again.
func TestReplay(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	openID := "oReplay_xxxxxxxxxxxxxxxxxxxxx"
	start := time.Now().Add(-time.Minute)
	id := f.publish(popup(openID, f.tick(), tplOnce, "accept"))
	f.publish(popup(openID, f.tick(), tplOnce, "accept"))
	f.drained()
	before := f.consent(openID, tplOnce)

	res, err := f.proc.ReplayEvent(ctx, appID, id)
	if err != nil || res != (processor.ReplayResult{NoOps: 1}) {
		t.Fatalf("ReplayEvent(applied) = %+v, %v; want one no-op", res, err)
	}
	res, err = f.proc.ReplayEvents(ctx, appID, start, time.Now().Add(time.Minute))
	if err != nil || res != (processor.ReplayResult{NoOps: 2}) {
		t.Fatalf("ReplayEvents(range) = %+v, %v; want two no-ops", res, err)
	}
	if after := f.consent(openID, tplOnce); after.Version != before.Version || after.Grants != 2 {
		t.Errorf("consent after replays = version %d with %d grants, want version %d with 2", after.Version, after.Grants, before.Version)
	}
	if _, err := f.proc.ReplayEvent(ctx, appID, "no-such-event"); !errors.Is(err, processor.ErrNotFound) {
		t.Errorf("ReplayEvent(unknown id) = %v, want ErrNotFound", err)
	}

	// The ledger entry is lost; replaying the app's events rebuilds it.
	client, err := mongo.Connect(options.Client().ApplyURI(f.db.URI()))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = client.Disconnect(ctx) }()
	if _, err := client.Database("wxgate_test").Collection("consents").DeleteOne(ctx, bson.M{"_id": processor.ConsentKey(appID, openID, tplOnce)}); err != nil {
		t.Fatal(err)
	}
	res, err = f.proc.ReplayEvents(ctx, appID, start, time.Now().Add(time.Minute))
	if err != nil || res != (processor.ReplayResult{Applied: 2}) {
		t.Fatalf("ReplayEvents after the loss = %+v, %v; want two applied", res, err)
	}
	if c := f.consent(openID, tplOnce); c == nil || c.Grants != 2 {
		t.Errorf("consent rebuilt by the replay = %+v, want 2 grants", c)
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
			first, bury := f.startDying(func(die func(), dead <-chan struct{}) (processor.Store, processor.Config) {
				return dyingLinkStore{Store: f.st, die: die, dead: dead}, f.cfg
			})
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
				f.publishRaw(schemas.WorkSubject(appID, openID, schemas.WorkSend), "send-copy", sends[0].Data)
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
			bury()
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
	dead <-chan struct{}
}

func (d dyingLinkStore) SaveOutcome(ctx context.Context, o *processor.Outcome) error {
	if o.MessageID == "" {
		return d.Store.SaveOutcome(ctx, o)
	}
	d.die()
	<-d.dead
	return errors.New("the process died before linking the msgid")
}
