package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// PausesBucket is the KV bucket where processors share the apps whose daily
// send quota is spent: key the appid, value the time the pause ends.
const PausesBucket = "wxgate_pauses"

// pausesMaxAge drops a pause from the bucket a day after it was set: no
// pause lasts longer, since quotas reset at the next Beijing midnight.
const pausesMaxAge = 25 * time.Hour

// PauseOptions configures OpenPauses. The zero value takes the defaults.
type PauseOptions struct {
	// Bucket is the KV bucket name: default PausesBucket.
	Bucket string
	// Replicas is the bucket's replica count when this instance creates it: default 1.
	Replicas int
}

// Pauses shares app pauses through a NATS KV bucket: a pause set by one
// process is seen by every process watching the bucket within a round trip.
// Until reads memory that a watcher keeps current, so it costs nothing on
// the send path. All methods are safe for concurrent use.
type Pauses struct {
	kv  jetstream.KeyValue
	log *slog.Logger

	mu    sync.RWMutex
	until map[string]time.Time

	ctx    context.Context // ends the watcher
	cancel context.CancelFunc
	done   chan struct{}
}

// OpenPauses opens (or creates) the bucket, loads the pauses it holds and
// watches it until Close. A nil logger discards logs.
func OpenPauses(ctx context.Context, js jetstream.JetStream, logger *slog.Logger, o PauseOptions) (*Pauses, error) {
	if o.Bucket == "" {
		o.Bucket = PausesBucket
	}
	if o.Replicas <= 0 {
		o.Replicas = 1
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	kv, err := js.KeyValue(ctx, o.Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      o.Bucket,
			Description: "apps paused after WeChat's daily send quota (45009), until when; shared by every processor",
			History:     1,
			TTL:         pausesMaxAge,
			Storage:     jetstream.FileStorage,
			Replicas:    o.Replicas,
		})
		if err != nil {
			// Another instance may have created it first.
			kv, err = js.KeyValue(ctx, o.Bucket)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("opening pause bucket %s: %w", o.Bucket, err)
	}
	wctx, cancel := context.WithCancel(context.Background())
	w, err := kv.WatchAll(wctx)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("watching pause bucket %s: %w", o.Bucket, err)
	}
	p := &Pauses{kv: kv, log: logger, until: map[string]time.Time{}, ctx: wctx, cancel: cancel, done: make(chan struct{})}
	// The watcher first replays what the bucket holds, then a nil entry.
	for loaded := false; !loaded; {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				cancel()
				return nil, fmt.Errorf("watching pause bucket %s: the watch ended", o.Bucket)
			}
			if e == nil {
				loaded = true
				continue
			}
			p.apply(e)
		case <-ctx.Done():
			_ = w.Stop()
			cancel()
			return nil, fmt.Errorf("loading pause bucket %s: %w", o.Bucket, ctx.Err())
		}
	}
	go p.watch(w) // ends on Close, which waits for it
	return p, nil
}

// watch applies the bucket's changes until Close. If the watch ends on its
// own, Until keeps answering from what was last seen and Pause still pauses
// this process.
func (p *Pauses) watch(w jetstream.KeyWatcher) {
	defer close(p.done)
	defer func() { _ = w.Stop() }()
	for {
		select {
		case <-p.ctx.Done():
			return
		case e, ok := <-w.Updates():
			if !ok {
				if p.ctx.Err() == nil {
					p.log.Warn("pause bucket watch ended; pauses set by other processes are no longer seen", "bucket", p.kv.Bucket())
				}
				return
			}
			if e != nil {
				p.apply(e)
			}
		}
	}
}

// apply records one entry of the bucket.
func (p *Pauses) apply(e jetstream.KeyValueEntry) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if e.Operation() != jetstream.KeyValuePut {
		delete(p.until, e.Key())
		return
	}
	until, err := time.Parse(time.RFC3339Nano, string(e.Value()))
	if err != nil {
		p.log.Warn("ignoring a pause that is not a time", "bucket", p.kv.Bucket(), "appid", e.Key())
		return
	}
	p.until[e.Key()] = until
}

// Until returns when appID's pause ends as last seen in the bucket; the zero
// time when it has none. A time in the past is a pause that is over.
func (p *Pauses) Until(appID string) time.Time {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.until[appID]
}

// Pause pauses appID until until for every process. It is recorded here at
// once, so this process pauses even when the bucket cannot be written.
func (p *Pauses) Pause(ctx context.Context, appID string, until time.Time) error {
	p.mu.Lock()
	if until.After(p.until[appID]) {
		p.until[appID] = until
	}
	p.mu.Unlock()
	if _, err := p.kv.Put(ctx, appID, []byte(until.UTC().Format(time.RFC3339Nano))); err != nil {
		return fmt.Errorf("sharing the pause of %s: %w", appID, err)
	}
	return nil
}

// Close stops watching the bucket and waits for the watcher to end. Until
// keeps answering from what was last seen. Close is safe to call twice.
func (p *Pauses) Close() {
	p.cancel()
	<-p.done
}
