package gateway_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	wxcrypto "github.com/wxgate/wxgate/crypto"
	"github.com/wxgate/wxgate/gateway"
	"github.com/wxgate/wxgate/internal/broker"
	"github.com/wxgate/wxgate/internal/broker/natstest"
	"github.com/wxgate/wxgate/schemas"
)

// benchPush is one secure-mode JSON push, ready to send.
type benchPush struct {
	query string
	body  []byte
	// The parts a handler reads from the query and the envelope.
	timestamp, nonce, signature, msgSignature, encrypt string
}

// pushMaker signs and encrypts popup pushes for the V1 app. Every push it makes
// is a different event (its own openid), so the stream stores each one.
type pushMaker struct {
	tb     testing.TB
	cipher *wxcrypto.Cipher
	seq    atomic.Int64
}

func newPushMaker(tb testing.TB) *pushMaker {
	tb.Helper()
	c, err := wxcrypto.NewCipher(v1AppID, v1Key, "")
	if err != nil {
		tb.Fatalf("NewCipher: %v", err)
	}
	return &pushMaker{tb: tb, cipher: c}
}

func (m *pushMaker) next() benchPush {
	n := m.seq.Add(1)
	// 28 characters, the length of a real openid.
	openid := fmt.Sprintf("oBench%022d", n)
	now := time.Now()
	enc, err := m.cipher.Encrypt([]byte(popupJSON(openid, now.Unix(), "accept")))
	if err != nil {
		m.tb.Fatalf("Encrypt: %v", err)
	}
	p := benchPush{
		timestamp: strconv.FormatInt(now.Unix(), 10),
		nonce:     strconv.FormatInt(n%1e9+1e8, 10),
		encrypt:   enc,
	}
	p.signature = wxcrypto.Signature(v1Token, p.timestamp, p.nonce)
	p.msgSignature = wxcrypto.MsgSignature(v1Token, p.timestamp, p.nonce, enc)
	p.query = url.Values{
		"signature": {p.signature}, "timestamp": {p.timestamp}, "nonce": {p.nonce},
		"openid": {openid}, "encrypt_type": {"aes"}, "msg_signature": {p.msgSignature},
	}.Encode()
	p.body, err = json.Marshal(map[string]string{"ToUserName": "gh_97417a04a28d", "Encrypt": enc})
	if err != nil {
		m.tb.Fatalf("Marshal: %v", err)
	}
	return p
}

// BenchmarkPush measures the CPU work the gateway does for one secure-mode JSON
// popup push before it publishes: timestamp window, envelope, msg_signature and
// signature, AES decryption, event parsing (with its validation and event id)
// and the CloudEvent with its JSON encoding. No network and no broker; the
// sub-benchmarks split the total into its steps.
func BenchmarkPush(b *testing.B) {
	m := newPushMaker(b)
	p := m.next()
	c := m.cipher
	now := time.Now()
	msg, err := c.Decrypt(p.encrypt)
	if err != nil {
		b.Fatal(err)
	}
	ev, err := schemas.ParseEvent(v1AppID, msg)
	if err != nil {
		b.Fatal(err)
	}
	ce, err := schemas.InboundCloudEvent(ev, now)
	if err != nil {
		b.Fatal(err)
	}

	b.Run("all", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(p.body)))
		for b.Loop() {
			if err := wxcrypto.CheckTimestamp(p.timestamp, now, 5*time.Minute); err != nil {
				b.Fatal(err)
			}
			env, err := schemas.ParseEnvelope(p.body)
			if err != nil {
				b.Fatal(err)
			}
			if err := wxcrypto.VerifyMsgSignature(v1Token, p.timestamp, p.nonce, env.Encrypt, p.msgSignature); err != nil {
				b.Fatal(err)
			}
			if err := wxcrypto.VerifySignature(v1Token, p.timestamp, p.nonce, p.signature); err != nil {
				b.Fatal(err)
			}
			msg, err := c.Decrypt(env.Encrypt)
			if err != nil {
				b.Fatal(err)
			}
			ev, id, err := schemas.ParseEventWithID(v1AppID, msg)
			if err != nil {
				b.Fatal(err)
			}
			ce, err := schemas.InboundCloudEventWithID(ev, id, now)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := json.Marshal(ce); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("envelope", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := schemas.ParseEnvelope(p.body); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("signatures", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := wxcrypto.VerifyMsgSignature(v1Token, p.timestamp, p.nonce, p.encrypt, p.msgSignature); err != nil {
				b.Fatal(err)
			}
			if err := wxcrypto.VerifySignature(v1Token, p.timestamp, p.nonce, p.signature); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decrypt", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.Decrypt(p.encrypt); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parse_event", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := schemas.ParseEvent(v1AppID, msg); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("event_id", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if ev.ID() == "" {
				b.Fatal("empty event id")
			}
		}
	})
	b.Run("cloudevent", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := schemas.InboundCloudEvent(ev, now); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(ce); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// newBenchGateway returns the gateway's gin engine in front of a real embedded
// JetStream, configured as `wxgate gateway` configures it.
func newBenchGateway(b *testing.B) *gin.Engine {
	b.Helper()
	gin.SetMode(gin.ReleaseMode)
	ns := natstest.Start(b)
	_, js := ns.Connect()
	gw, err := gateway.New(gateway.Config{
		Apps:           []gateway.App{{AppID: v1AppID, Token: v1Token, EncodingAESKey: v1Key}},
		MaxSkew:        5 * time.Minute,
		MaxBody:        1 << 20,
		PublishTimeout: 2 * time.Second,
	}, broker.NewPublisher(js, 2*time.Second), slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
	if err != nil {
		b.Fatalf("gateway.New: %v", err)
	}
	r := gin.New()
	r.Use(gin.Recovery())
	gw.Register(r)
	return r
}

// serve sends p through r and reports an answer other than 200 success.
func serve(r http.Handler, p benchPush) error {
	req := httptest.NewRequest(http.MethodPost, "/wechat/"+v1AppID+"?"+p.query, bytes.NewReader(p.body))
	w := httptest.NewRecorder()
	r.ServeHTTP(w, req)
	if w.Code != http.StatusOK || w.Body.String() != "success" {
		return fmt.Errorf("POST = %d %q, want 200 success", w.Code, w.Body.String())
	}
	return nil
}

// BenchmarkCallbackHTTP measures one push through the real gin handler, from
// request to answer, including the publish and the wait for JetStream's
// acknowledgement (file storage in a temporary directory). Every push is a
// new event, so each one is stored. "serial" is the latency of one push at a
// time; "parallel" runs 64 concurrent requests, where the stream's acks
// overlap, and its ns/op is the inverse of throughput. The requests skip the
// socket: compare with bench/gateway for the cost over loopback TCP.
func BenchmarkCallbackHTTP(b *testing.B) {
	b.Run("serial", func(b *testing.B) {
		r := newBenchGateway(b)
		m := newPushMaker(b)
		// Pushes are made in batches with the timer stopped: each must be new, and
		// b.Loop does not say in advance how many it will need.
		var pool []benchPush
		b.ReportAllocs()
		for b.Loop() {
			if len(pool) == 0 {
				b.StopTimer()
				pool = make([]benchPush, 1024)
				for i := range pool {
					pool[i] = m.next()
				}
				b.StartTimer()
			}
			if err := serve(r, pool[0]); err != nil {
				b.Fatal(err)
			}
			pool = pool[1:]
		}
	})
	b.Run("parallel", func(b *testing.B) {
		r := newBenchGateway(b)
		m := newPushMaker(b)
		pool := make([]benchPush, b.N)
		for i := range pool {
			pool[i] = m.next()
		}
		var next atomic.Int64
		b.ReportAllocs()
		b.SetParallelism(max(1, 64/runtime.GOMAXPROCS(0)))
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				// Fatal may only be called from the benchmark's own goroutine.
				if err := serve(r, pool[next.Add(1)-1]); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
