package broker_test

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wxgate/wxgate/internal/broker"
	"github.com/wxgate/wxgate/internal/broker/natstest"
	"github.com/wxgate/wxgate/internal/metricstest"
	"github.com/wxgate/wxgate/schemas"
)

func TestStreamCollector(t *testing.T) {
	srv := natstest.Start(t)
	_, js := srv.Connect()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// A durable consumer with one message in hand, one waiting, and a
	// downstream durable consumer that has read nothing; an ephemeral
	// consumer, which is left out.
	durable, err := js.CreateOrUpdateConsumer(ctx, schemas.StreamName, jetstream.ConsumerConfig{
		Durable: "wxgate-processor", FilterSubjects: []string{"wechat.*.in.>"},
		AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 64,
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateOrUpdateConsumer(ctx, schemas.StreamName, jetstream.ConsumerConfig{
		Durable: "billing", AckPolicy: jetstream.AckExplicitPolicy,
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.OrderedConsumer(ctx, schemas.StreamName, jetstream.OrderedConsumerConfig{}); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		natstest.PublishRaw(t, js, "wechat.wx0000000000000001.in.text", fmt.Sprint("id-", i), []byte(`{}`))
	}
	natstest.PublishRaw(t, js, "wechat.wx0000000000000001.send", "id-send", []byte(`{}`))
	batch, err := durable.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for range batch.Messages() {
		// held, not acknowledged
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(broker.NewStreamCollector(js, []string{schemas.StreamName}, time.Second, nil))
	got := metricstest.Gather(t, reg)
	if got["wxgate_stream_bytes[stream=WECHAT]"] <= 0 {
		t.Errorf("wxgate_stream_bytes = %v, want more than 0", got["wxgate_stream_bytes[stream=WECHAT]"])
	}
	delete(got, "wxgate_stream_bytes[stream=WECHAT]")
	want := map[string]float64{
		"wxgate_stream_up[stream=WECHAT]":                                               1,
		"wxgate_stream_messages[stream=WECHAT]":                                         3,
		"wxgate_stream_max_bytes[stream=WECHAT]":                                        -1,
		"wxgate_consumer_pending_messages[consumer=wxgate-processor stream=WECHAT]":     1,
		"wxgate_consumer_ack_pending_messages[consumer=wxgate-processor stream=WECHAT]": 1,
		"wxgate_consumer_max_ack_pending[consumer=wxgate-processor stream=WECHAT]":      64,
		"wxgate_consumer_redelivered_messages[consumer=wxgate-processor stream=WECHAT]": 0,
		"wxgate_consumer_pending_messages[consumer=billing stream=WECHAT]":              3,
		"wxgate_consumer_ack_pending_messages[consumer=billing stream=WECHAT]":          0,
		"wxgate_consumer_max_ack_pending[consumer=billing stream=WECHAT]":               1000,
		"wxgate_consumer_redelivered_messages[consumer=billing stream=WECHAT]":          0,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("stream metrics:\n got %v\nwant %v", got, want)
	}

	// With NATS gone the scrape still answers, within the timeout, and says so.
	srv.Stop()
	start := time.Now()
	got = metricstest.Gather(t, reg)
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("a scrape with NATS down took %v, want about the 1s timeout", took)
	}
	if want := map[string]float64{"wxgate_stream_up[stream=WECHAT]": 0}; !reflect.DeepEqual(got, want) {
		t.Errorf("stream metrics with NATS down = %v, want %v", got, want)
	}
}
