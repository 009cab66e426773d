package sim

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
)

// BenchmarkSend measures accepted subscribe/send calls through the HTTP API
// with no latency and no pushes: the simulator's ceiling for send-pipeline
// benchmarks. Parallel clients use distinct users, as a real pipeline
// serialises sends per user.
func BenchmarkSend(b *testing.B) {
	s, base, err := Start(Config{Apps: []AppConfig{testApp()}, NoSentEvents: true, MaxMessagesPerApp: 1024}, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(s.Close)
	tok, _ := s.plainToken(testAppID)
	url := base + "/cgi-bin/message/subscribe/send?access_token=" + tok
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	var next atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(16) // many clients in flight, as a send pipeline has
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		user := "bench-user-" + strconv.FormatInt(next.Add(1), 10)
		if err := s.Subscribe(testAppID, user, ActionAccept, tplLong); err != nil {
			b.Error(err)
			return
		}
		body, _ := json.Marshal(sendBody(user, tplLong, longData()))
		for pb.Next() {
			resp, err := client.Post(url, "application/json", bytes.NewReader(body))
			if err != nil {
				b.Error(err)
				return
			}
			var out struct {
				Errcode int `json:"errcode"`
			}
			err = json.NewDecoder(resp.Body).Decode(&out)
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err != nil || out.Errcode != 0 {
				b.Errorf("send: errcode %d, err %v", out.Errcode, err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sends/s")
}
