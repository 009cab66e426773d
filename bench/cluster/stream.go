package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wxgate/wxgate/internal/broker"
	"github.com/wxgate/wxgate/schemas"
)

// checkConsumer is the durable consumer through which the experiment reads
// the stream, as a downstream service would.
const checkConsumer = "cluster-check"

// streamCounts is what the WECHAT stream holds.
type streamCounts struct {
	messages int
	// inbound counts the inbound events by key (openid/event), and inboundIDs
	// by CloudEvent id.
	inbound    map[string]int
	inboundIDs map[string]int
	// delivery counts the delivery publications by message id and status.
	delivery map[string]map[string]int
}

// stream connects to the cluster as the wxgate user.
func (c *cluster) stream() (*nats.Conn, jetstream.JetStream, error) {
	return broker.Connect(c.nats.url(), "wxgate-cluster", slog.New(slog.DiscardHandler))
}

// readStream reads the whole stream, from its first message to the last one
// stored when it starts, through a durable consumer of its own whose every
// message is acknowledged: a message the server handed out but the client
// did not receive (a fetch that ended while it was on its way) is delivered
// again, so none is missed and none is counted twice (counted by sequence).
func readStream(ctx context.Context, js jetstream.JetStream) (*streamCounts, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	st, err := js.Stream(ctx, schemas.StreamName)
	if err != nil {
		return nil, err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return nil, err
	}
	last := info.State.LastSeq
	cons, err := js.CreateOrUpdateConsumer(ctx, schemas.StreamName, jetstream.ConsumerConfig{
		Durable:       checkConsumer,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       10 * time.Second,
	})
	if err != nil {
		return nil, fmt.Errorf("creating the consumer %s: %w", checkConsumer, err)
	}
	sc := &streamCounts{inbound: map[string]int{}, inboundIDs: map[string]int{}, delivery: map[string]map[string]int{}}
	seen := map[uint64]bool{}
	for uint64(len(seen)) < info.State.Msgs {
		batch, err := cons.Fetch(500, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return nil, err
		}
		for m := range batch.Messages() {
			md, err := m.Metadata()
			if err != nil {
				return nil, err
			}
			if seq := md.Sequence.Stream; seq <= last && !seen[seq] {
				seen[seq] = true
				sc.add(m.Subject(), m.Data())
			}
			if err := m.Ack(); err != nil {
				return nil, err
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return nil, err
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("read %d of the stream's %d messages: %w", len(seen), info.State.Msgs, ctx.Err())
		}
	}
	return sc, nil
}

// add counts one stream message.
func (sc *streamCounts) add(subject string, data []byte) {
	sc.messages++
	parts := strings.Split(subject, ".")
	if len(parts) < 4 {
		return
	}
	var ce schemas.CloudEvent
	if json.Unmarshal(data, &ce) != nil {
		return
	}
	switch parts[2] {
	case "in":
		var ev schemas.Event
		_ = json.Unmarshal(ce.Data, &ev)
		sc.inbound[ev.OpenID+"/"+ev.Event]++
		sc.inboundIDs[ce.ID]++
	case "delivery":
		var d schemas.DeliveryChange
		_ = json.Unmarshal(ce.Data, &d)
		if sc.delivery[d.ID] == nil {
			sc.delivery[d.ID] = map[string]int{}
		}
		sc.delivery[d.ID][parts[3]]++
	}
}
