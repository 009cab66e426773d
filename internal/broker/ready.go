package broker

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Reasons StreamWritable gives for a stream that would refuse a publish. Their
// texts are short and hold nothing secret, so /readyz may show them.
var (
	// ErrNotConnected: the client has no connection to any NATS server.
	ErrNotConnected = errors.New("not connected")
	// ErrNoStreamInfo: no server answered for the stream (no JetStream
	// meta leader, or the stream is not there).
	ErrNoStreamInfo = errors.New("no stream info")
	// ErrNoStreamLeader: the stream's replicas have no leader, so nothing
	// can be stored until one is elected.
	ErrNoStreamLeader = errors.New("no stream leader")
	// ErrNoQuorum: fewer than a majority of the stream's replicas are
	// current, so a publish cannot be acknowledged.
	ErrNoQuorum = errors.New("no stream quorum")
)

// StreamWritable reports whether the stream would accept a publish now: the
// client is connected, a server answers for the stream, the stream has a
// leader, and the leader with its current replicas is a majority of them.
// The answer comes from the stream leader or, without one, from the
// JetStream meta leader, never from a node's cached view alone; an error wraps
// one of ErrNotConnected, ErrNoStreamInfo, ErrNoStreamLeader or ErrNoQuorum.
// It is safe for concurrent use.
func StreamWritable(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, name string) error {
	if !nc.IsConnected() {
		if err := nc.LastError(); err != nil {
			return fmt.Errorf("%w: %v", ErrNotConnected, err)
		}
		return ErrNotConnected
	}
	s, err := js.Stream(ctx, name)
	if err != nil {
		return fmt.Errorf("%w: stream %s: %v", ErrNoStreamInfo, name, err)
	}
	return writable(s.CachedInfo())
}

// writable applies StreamWritable's rule to one stream info.
func writable(info *jetstream.StreamInfo) error {
	ci := info.Cluster
	if ci == nil {
		// A server without JetStream clustering answers for its own streams
		// only while it runs, and then it is the leader.
		return nil
	}
	if ci.Leader == "" {
		return fmt.Errorf("%w: stream %s", ErrNoStreamLeader, info.Config.Name)
	}
	replicas := max(info.Config.Replicas, 1)
	current := 1 // the leader
	for _, p := range ci.Replicas {
		if p.Current && !p.Offline {
			current++
		}
	}
	if current < replicas/2+1 {
		return fmt.Errorf("%w: stream %s has %d of %d replicas current", ErrNoQuorum, info.Config.Name, current, replicas)
	}
	return nil
}

// WritableReason is the short reason, fit for a readiness answer, of an error
// from StreamWritable: the text of the reason it wraps.
func WritableReason(err error) string {
	for _, r := range []error{ErrNotConnected, ErrNoStreamInfo, ErrNoStreamLeader, ErrNoQuorum} {
		if errors.Is(err, r) {
			return r.Error()
		}
	}
	return "unreachable"
}
