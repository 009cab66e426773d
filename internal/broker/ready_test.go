package broker_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/wxgate/wxgate/internal/broker"
	"github.com/wxgate/wxgate/internal/broker/natstest"
	"github.com/wxgate/wxgate/internal/checkfor"
	"github.com/wxgate/wxgate/schemas"
)

// TestStreamWritableFollowsQuorum runs a three-node cluster with an R3 stream:
// the stream is writable with three nodes and with two, and StreamWritable
// says it is not, with a reason, once a client's only remaining node has no
// quorum; a publish fails then too, so the check does not answer from a
// node's own view.
func TestStreamWritableFollowsQuorum(t *testing.T) {
	c := natstest.StartCluster(t, 3)
	// The client knows only the node that stays up, so it stays connected.
	nc, js, err := broker.Connect(c.URL(0), "ready-test", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ctx := context.Background()
	checkfor.Eventually(t, 30*time.Second, 100*time.Millisecond, func() error {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_, err := broker.EnsureStream(actx, js, broker.StreamOptions{Replicas: 3, MaxAge: time.Hour})
		return err
	})
	writable := func() error {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		return broker.StreamWritable(rctx, nc, js, schemas.StreamName)
	}
	checkfor.Eventually(t, 30*time.Second, 100*time.Millisecond, writable)

	c.Stop(2)
	// One node of three down leaves a quorum: still writable, though the
	// stream may need a moment to elect a new leader.
	checkfor.Eventually(t, 30*time.Second, 100*time.Millisecond, writable)

	c.Stop(1)
	lost := time.Now()
	checkfor.Eventually(t, 60*time.Second, 100*time.Millisecond, func() error {
		if err := writable(); err == nil {
			return errors.New("StreamWritable = nil with one node of three")
		}
		return nil
	})
	err = writable()
	t.Logf("quorum lost %v ago: StreamWritable = %v", time.Since(lost).Round(time.Millisecond), err)
	reasons := []error{broker.ErrNoStreamInfo, broker.ErrNoStreamLeader, broker.ErrNoQuorum}
	if !isOneOf(err, reasons) {
		t.Errorf("StreamWritable = %v, want one of %v", err, reasons)
	}
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := js.Publish(pctx, "wechat.wx0.in.text", []byte("{}")); err == nil {
		t.Errorf("a publish was acknowledged with one node of three; StreamWritable said %v", writable())
	}
}

func isOneOf(err error, targets []error) bool {
	for _, t := range targets {
		if errors.Is(err, t) {
			return true
		}
	}
	return false
}
