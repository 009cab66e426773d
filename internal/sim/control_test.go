package sim

import (
	"encoding/json"
	"errors"
	"net/http"
	"testing"
)

func TestControlAPI(t *testing.T) {
	rec := newReceiver(t)
	app := testApp()
	app.Mode, app.PushURL = ModePlaintext, rec.url
	s, base := start(t, Config{Apps: []AppConfig{app}})
	user := base + "/sim/apps/" + testAppID + "/users/" + testUser

	call(t, http.MethodPost, user+"/subscribe", map[string]any{"template_ids": []string{tplOnce, tplLong}, "action": "accept", "scene": 0})
	call(t, http.MethodPost, user+"/subscribe", map[string]any{"results": map[string]string{tplOnce: "accept"}})
	consents := call(t, http.MethodGet, user+"/consents", nil)
	once, _ := consents[tplOnce].(map[string]any)
	long, _ := consents[tplLong].(map[string]any)
	if once["grants"] != json.Number("2") || long["accepted"] != true {
		t.Fatalf("consents = %v, want 2 one-time grants and a long-term accept", consents)
	}

	tok := mustToken(t, base)
	if got := errcodeOf(t, send(t, base, tok, sendBody(testUser, tplOnce, onceData()))); got != 0 {
		t.Fatalf("send: errcode %d, want 0", got)
	}
	call(t, http.MethodPost, user+"/change", map[string]any{"template_ids": []string{tplLong}, "action": "reject"})
	if got := errcodeOf(t, send(t, base, tok, sendBody(testUser, tplLong, longData()))); got != 43101 {
		t.Fatalf("send after change: errcode %d, want 43101", got)
	}

	faults := call(t, http.MethodPost, base+"/sim/faults", map[string]any{"send_errcode": 45009, "send_errcode_next": 1})
	if faults["send_errcode"] != json.Number("45009") {
		t.Fatalf("POST /sim/faults = %v, want the faults echoed", faults)
	}
	if got := errcodeOf(t, send(t, base, tok, sendBody(testUser, tplOnce, onceData()))); got != 45009 {
		t.Fatalf("send with injected fault: errcode %d, want 45009", got)
	}
	if got := call(t, http.MethodGet, base+"/sim/faults", nil)["send_errcode_next"]; got != json.Number("0") {
		t.Fatalf("send_errcode_next after use = %v, want 0", got)
	}

	waitPushes(t, s)
	resp, err := http.Get(base + "/sim/apps/" + testAppID + "/messages")
	if err != nil {
		t.Fatal(err)
	}
	var msgs []Message
	if err := json.NewDecoder(resp.Body).Decode(&msgs); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if len(msgs) != 1 || msgs[0].TemplateID != tplOnce || msgs[0].ToUser != testUser || msgs[0].MsgID == "" {
		t.Fatalf("messages = %+v, want the one accepted send", msgs)
	}

	var st Stats
	resp, err = http.Get(base + "/sim/stats")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if a := st.Apps[testAppID]; a.TokenCalls != 1 || a.Sends[0] != 1 || a.Sends[43101] != 1 || a.Sends[45009] != 1 || st.Events != 4 {
		t.Fatalf("stats = %+v, want 1 token call, sends 0/43101/45009 once each, 4 events", st)
	}

	call(t, http.MethodPost, base+"/sim/reset", nil)
	if st := s.Stats(); st.Apps[testAppID].TokenCalls != 0 || st.Events != 0 {
		t.Fatalf("stats after reset = %+v, want zeros", st)
	}
	if got := tokenErrcode(t, base, tok); got != 0 {
		t.Fatalf("token after reset: errcode %d, want 0 (tokens survive a reset)", got)
	}
}

func TestControlAPIErrors(t *testing.T) {
	_, base := start(t, Config{Apps: []AppConfig{testApp()}})
	user := base + "/sim/apps/" + testAppID + "/users/" + testUser
	tests := []struct {
		name       string
		url        string
		body       any
		wantStatus int
	}{
		{"unknown app", base + "/sim/apps/wxnope/users/" + testUser + "/subscribe", map[string]any{"template_ids": []string{tplOnce}, "action": "accept"}, http.StatusNotFound},
		{"unknown template", user + "/subscribe", map[string]any{"template_ids": []string{"nope"}, "action": "accept"}, http.StatusBadRequest},
		{"bad action", user + "/subscribe", map[string]any{"template_ids": []string{tplOnce}, "action": "ban"}, http.StatusBadRequest},
		{"no templates", user + "/subscribe", map[string]any{"action": "accept"}, http.StatusBadRequest},
		{"change to accept", user + "/change", map[string]any{"template_ids": []string{tplOnce}, "action": "accept"}, http.StatusBadRequest},
		{"bad openid", base + "/sim/apps/" + testAppID + "/users/bad%20id/subscribe", map[string]any{"template_ids": []string{tplOnce}, "action": "accept"}, http.StatusBadRequest},
		{"unknown fault", base + "/sim/faults", map[string]any{"sned_errcode": 1}, http.StatusBadRequest},
		{"fault out of range", base + "/sim/faults", map[string]any{"push_drop_rate": 2}, http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := callStatus(t, http.MethodPost, tt.url, tt.body)
			if status != tt.wantStatus || body["error"] == nil {
				t.Fatalf("POST %s = %d %v, want %d with an error", tt.url, status, body, tt.wantStatus)
			}
		})
	}
}

func TestGoControlErrors(t *testing.T) {
	s, err := New(Config{Apps: []AppConfig{testApp()}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tests := []struct {
		name string
		err  error
		want error
	}{
		{"unknown app", s.Subscribe("wxnope", testUser, ActionAccept, tplOnce), ErrUnknownApp},
		{"bad openid", s.Subscribe(testAppID, "", ActionAccept, tplOnce), ErrBadOpenID},
		{"unknown template", s.Subscribe(testAppID, testUser, ActionAccept, "nope"), ErrUnknownTemplate},
		{"bad action", s.Subscribe(testAppID, testUser, "maybe", tplOnce), ErrBadAction},
		{"change accept", s.Change(testAppID, testUser, ActionAccept, tplOnce), ErrBadAction},
	}
	for _, tt := range tests {
		if !errors.Is(tt.err, tt.want) {
			t.Errorf("%s: error %v, want %v", tt.name, tt.err, tt.want)
		}
	}
	if _, err := s.Messages("wxnope"); !errors.Is(err, ErrUnknownApp) {
		t.Errorf("Messages(unknown) = %v, want ErrUnknownApp", err)
	}
}
