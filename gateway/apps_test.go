package gateway_test

import (
	"bytes"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	wxcrypto "github.com/wxgate/wxgate/crypto"
	"github.com/wxgate/wxgate/gateway"
)

// lockedBuffer is a log destination that concurrent requests write to and a
// test reads.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// pushTo makes one signed push in secure JSON mode, or plaintext when key is
// empty; n makes it a distinct event.
func pushTo(t *testing.T, appID, token, key string, n int) (query string, body []byte) {
	t.Helper()
	p := push{mode: "plaintext", format: "json", timestamp: now(), nonce: fmt.Sprint(n),
		msg: popupJSON(fmt.Sprintf("oApps_%024d", n), time.Now().Unix(), "accept")}
	var c *wxcrypto.Cipher
	if key != "" {
		var err error
		if c, err = wxcrypto.NewCipher(appID, key, ""); err != nil {
			t.Fatal(err)
		}
		p.mode = "secure"
	}
	return p.request(t, token, c)
}

func TestUnknownAppIDIsLogged(t *testing.T) {
	h := newHarness(t, 5*time.Minute)
	long := "wx" + strings.Repeat("f", 500)
	tests := []struct {
		name, appID string
		wantPrefix  string // the logged appid starts with this
		wantMax     int    // and is at most this many bytes
	}{
		{"well formed", "wxffffffffffffffff", "wxffffffffffffffff", 18},
		{"long", long, long[:32], 64},
	}
	loggedAppID := regexp.MustCompile(`msg="callback rejected" appid=(\S+) `)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(h.logs.String())
			q, body := pushTo(t, tt.appID, v1Token, "", 1)
			if code, _ := h.post(tt.appID, q, body); code != http.StatusNotFound {
				t.Fatalf("push to %.20s... = %d, want 404", tt.appID, code)
			}
			m := loggedAppID.FindStringSubmatch(h.logs.String()[before:])
			if m == nil {
				t.Fatalf("no callback rejected line with an appid:\n%s", h.logs.String()[before:])
			}
			if !strings.HasPrefix(m[1], tt.wantPrefix) || len(m[1]) > tt.wantMax {
				t.Errorf("logged appid = %q, want %.20q... of at most %d bytes", m[1], tt.wantPrefix, tt.wantMax)
			}
		})
	}
}

func TestSetAppsAddsRemovesAndRotates(t *testing.T) {
	h := newHarness(t, 5*time.Minute, gateway.App{AppID: v1AppID, Token: v1Token, EncodingAESKey: v1Key})
	status := func(appID, token, key string, n int) int {
		t.Helper()
		q, body := pushTo(t, appID, token, key, n)
		code, _ := h.post(appID, q, body)
		return code
	}
	if got := status(plainAppID, plainToken, "", 1); got != http.StatusNotFound {
		t.Fatalf("push to an app not yet added = %d, want 404", got)
	}

	// Add the plaintext app and rotate the V1 app's key.
	if err := h.gw.SetApps([]gateway.App{
		{AppID: v1AppID, Token: v1Token, EncodingAESKey: rotatedKey, PreviousEncodingAESKey: v1Key},
		{AppID: plainAppID, Token: plainToken},
	}); err != nil {
		t.Fatalf("SetApps = %v", err)
	}
	for _, c := range []struct {
		name, appID, token, key string
		want                    int
	}{
		{"added app", plainAppID, plainToken, "", http.StatusOK},
		{"new key", v1AppID, v1Token, rotatedKey, http.StatusOK},
		{"previous key", v1AppID, v1Token, v1Key, http.StatusOK},
	} {
		if got := status(c.appID, c.token, c.key, 2); got != c.want {
			t.Errorf("%s: push = %d, want %d", c.name, got, c.want)
		}
	}

	// An unusable key is refused and changes nothing.
	if err := h.gw.SetApps([]gateway.App{{AppID: plainAppID, Token: plainToken, EncodingAESKey: "short"}}); err == nil {
		t.Errorf("SetApps with a bad key = nil, want an error")
	}
	if got := status(v1AppID, v1Token, rotatedKey, 3); got != http.StatusOK {
		t.Errorf("after a refused SetApps, push = %d, want 200", got)
	}

	// Remove the V1 app.
	if err := h.gw.SetApps([]gateway.App{{AppID: plainAppID, Token: plainToken}}); err != nil {
		t.Fatalf("SetApps = %v", err)
	}
	if got := status(v1AppID, v1Token, rotatedKey, 4); got != http.StatusNotFound {
		t.Errorf("push to a removed app = %d, want 404", got)
	}
	if got := status(plainAppID, plainToken, "", 4); got != http.StatusOK {
		t.Errorf("push to the app kept = %d, want 200", got)
	}
}

// TestSetAppsUnderLoad swaps the apps again and again while pushes stream to
// an app that every table holds: none of them may fail.
func TestSetAppsUnderLoad(t *testing.T) {
	h := newHarness(t, 5*time.Minute, gateway.App{AppID: v1AppID, Token: v1Token, EncodingAESKey: v1Key})
	stop := make(chan struct{})
	var sent, failed atomic.Int64
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for n := w * 1_000_000; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				q, body := pushTo(t, v1AppID, v1Token, v1Key, n)
				resp, err := http.Post(h.url+"/wechat/"+v1AppID+"?"+q, "text/plain", bytes.NewReader(body))
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				sent.Add(1)
				if resp.StatusCode != http.StatusOK {
					failed.Add(1)
				}
			}
		})
	}
	v1 := gateway.App{AppID: v1AppID, Token: v1Token, EncodingAESKey: v1Key}
	for i := 0; i < 200 || sent.Load() < 50; i++ {
		apps := []gateway.App{v1}
		if i%2 == 0 {
			apps = append(apps, gateway.App{AppID: plainAppID, Token: plainToken})
		}
		if err := h.gw.SetApps(apps); err != nil {
			t.Fatalf("SetApps = %v", err)
		}
		time.Sleep(time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if failed.Load() != 0 {
		t.Errorf("%d of %d pushes failed while the apps were swapped, want none", failed.Load(), sent.Load())
	}
}
