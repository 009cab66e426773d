package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/wxgate/wxgate/internal/sim"
)

// The simulator's push retries: WeChat retries three times, but here pushes
// that fail while wxgate is down must outlast the restart, so they are
// retried for about a minute.
const (
	pushRetries       = 240
	pushRetryInterval = 250 * time.Millisecond
	sendPath          = "/cgi-bin/message/subscribe/send"
)

// wechat is the simulator serving on its own listener.
type wechat struct {
	sim  *sim.Sim
	srv  *http.Server
	done chan struct{}
	// inFlight counts the sends WeChat is working on.
	inFlight atomic.Int64
}

// startWeChat starts the simulator on ln, pushing to pushURL, with latency
// on every send.
func startWeChat(ln net.Listener, pushURL string, latency time.Duration) (*wechat, error) {
	s, err := sim.New(sim.Config{
		Apps: []sim.AppConfig{{
			AppID: appID, Secret: appSecret, Token: appToken, EncodingAESKey: aesKey,
			Mode: sim.ModeSecure, Format: sim.FormatJSON, PushURL: pushURL,
			Templates: []sim.Template{{ID: templateID, Title: "Order shipped", Type: sim.TemplateOneTime,
				Content: "商品名称:{{thing1.DATA}}\n发货时间:{{time2.DATA}}"}},
		}},
		PushRetries:       pushRetries,
		PushRetryInterval: pushRetryInterval,
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, err
	}
	if err := s.SetFaults(sim.Faults{LatencyMS: int(latency.Milliseconds())}); err != nil {
		s.Close()
		return nil, err
	}
	w := &wechat{sim: s, done: make(chan struct{})}
	h := s.Handler()
	w.srv = &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.URL.Path == sendPath {
			w.inFlight.Add(1)
			defer w.inFlight.Add(-1)
		}
		// WeChat carries out a send whose caller has hung up; only the answer
		// is lost. The simulator would otherwise drop the send when the killed
		// process's connection closes.
		h.ServeHTTP(rw, r.WithContext(context.WithoutCancel(r.Context())))
	})}
	go func() {
		defer close(w.done)
		if err := w.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			slog.Error("simulator stopped", "err", err)
		}
	}()
	return w, nil
}

// accepted is how many sends WeChat has accepted.
func (w *wechat) accepted() int64 {
	return w.sim.Stats().Apps[appID].Sends[0]
}

// pushesIdle reports whether no push is pending or being retried.
func (w *wechat) pushesIdle() bool {
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	return w.sim.WaitPushes(ctx) == nil
}

// close stops the server and the simulator's pushes.
func (w *wechat) close() {
	_ = w.srv.Close()
	<-w.done
	w.sim.Close()
}
