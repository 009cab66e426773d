package sim

import (
	"bytes"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
)

func TestSendConsentSemantics(t *testing.T) {
	s, base := start(t, Config{Apps: []AppConfig{testApp()}})
	tok := mustToken(t, base)
	sendOnce := func() int { return errcodeOf(t, send(t, base, tok, sendBody(testUser, tplOnce, onceData()))) }
	sendLong := func() int { return errcodeOf(t, send(t, base, tok, sendBody(testUser, tplLong, longData()))) }

	if got := sendOnce(); got != 43101 {
		t.Fatalf("one-time send without consent: errcode %d, want 43101", got)
	}
	if err := s.Subscribe(testAppID, testUser, ActionAccept, tplOnce); err != nil {
		t.Fatal(err)
	}
	if got := sendOnce(); got != 0 {
		t.Fatalf("one-time send after one accept: errcode %d, want 0", got)
	}
	if got := sendOnce(); got != 43101 {
		t.Fatalf("second one-time send after one accept: errcode %d, want 43101", got)
	}

	// Accepts accumulate: two accepts, two sends.
	for range 2 {
		if err := s.Subscribe(testAppID, testUser, ActionAccept, tplOnce); err != nil {
			t.Fatal(err)
		}
	}
	if c, _ := s.Consents(testAppID, testUser); c[tplOnce].Grants != 2 {
		t.Fatalf("grants after two accepts = %d, want 2", c[tplOnce].Grants)
	}
	for i := range 2 {
		if got := sendOnce(); got != 0 {
			t.Fatalf("send %d of 2 granted: errcode %d, want 0", i+1, got)
		}
	}
	if got := sendOnce(); got != 43101 {
		t.Fatalf("third send of 2 granted: errcode %d, want 43101", got)
	}

	// A reject in a later popup clears the grants.
	_ = s.Subscribe(testAppID, testUser, ActionAccept, tplOnce)
	_ = s.Subscribe(testAppID, testUser, ActionReject, tplOnce)
	if got := sendOnce(); got != 43101 {
		t.Fatalf("one-time send after accept then reject: errcode %d, want 43101", got)
	}

	// Long-term: one accept, many sends, until the user turns it off.
	if got := sendLong(); got != 43101 {
		t.Fatalf("long-term send without consent: errcode %d, want 43101", got)
	}
	if err := s.Subscribe(testAppID, testUser, ActionAccept, tplLong); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if got := sendLong(); got != 0 {
			t.Fatalf("long-term send %d: errcode %d, want 0", i+1, got)
		}
	}
	if err := s.Change(testAppID, testUser, ActionReject, tplLong); err != nil {
		t.Fatal(err)
	}
	if got := sendLong(); got != 43101 {
		t.Fatalf("long-term send after change to reject: errcode %d, want 43101", got)
	}

	msgs, err := s.Messages(testAppID)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 8 {
		t.Fatalf("Messages = %d, want 8 accepted sends", len(msgs))
	}
	if m := msgs[0]; m.ToUser != testUser || m.TemplateID != tplOnce || m.Data["thing3"] != "三楼会议室" {
		t.Fatalf("Messages[0] = %+v, want the first one-time send", m)
	}
	st := s.Stats().Apps[testAppID]
	if st.Sends[0] != 8 || st.Sends[43101] != 6 {
		t.Fatalf("Stats sends = %v, want 8 ok and 6 refused", st.Sends)
	}
}

func TestSendErrcodes(t *testing.T) {
	app := testApp()
	app.Pages = []string{"pages/index/index"}
	s, base := start(t, Config{Apps: []AppConfig{app}})
	tok := mustToken(t, base)
	if err := s.Subscribe(testAppID, testUser, ActionAccept, tplOnce, tplEnum); err != nil {
		t.Fatal(err)
	}
	with := func(mutate func(map[string]any)) map[string]any {
		b := sendBody(testUser, tplOnce, onceData())
		mutate(b)
		return b
	}
	tests := []struct {
		name        string
		token       string
		body        any
		wantErrcode int
		wantErrmsg  string
	}{
		{"missing token", "", with(func(map[string]any) {}), 41001, ""},
		{"malformed token", "not a token!", with(func(map[string]any) {}), 40014, ""},
		{"unknown token", strings.Repeat("A", 128), with(func(map[string]any) {}), 40001, ""},
		{"bad json", tok, "{", 47001, ""},
		{"bad openid", tok, with(func(b map[string]any) { b["touser"] = "bad openid!" }), 40003, ""},
		{"unknown template", tok, with(func(b map[string]any) { b["template_id"] = "nope" }), 40037, ""},
		{"page not released", tok, with(func(b map[string]any) { b["page"] = "pages/secret/secret?id=1" }), 41030, ""},
		{"thing too long", tok, with(func(b map[string]any) {
			b["data"].(map[string]any)["thing3"] = map[string]string{"value": strings.Repeat("长", 21)}
		}), 47003, "argument invalid! data.thing3.value invalid"},
		{"missing key", tok, with(func(b map[string]any) { delete(b["data"].(map[string]any), "date2") }), 47003, "argument invalid! data.date2.value invalid"},
		{"extra key", tok, with(func(b map[string]any) {
			b["data"].(map[string]any)["thing9"] = map[string]string{"value": "x"}
		}), 47003, "argument invalid! data.thing9.value invalid"},
		{"empty value", tok, with(func(b map[string]any) {
			b["data"].(map[string]any)["thing3"] = map[string]string{"value": ""}
		}), 47003, "argument invalid! data.thing3.value invalid"},
		{"value not wrapped", tok, with(func(b map[string]any) { b["data"].(map[string]any)["thing3"] = "三楼" }), 47003, "argument invalid! data.thing3.value invalid"},
		{"enum outside list", tok, sendBody(testUser, tplEnum, map[string]any{"enum2": map[string]string{"value": "丢了"}}), 47003, "argument invalid! data.enum2.value invalid"},
		{"released page with query", tok, with(func(b map[string]any) { b["page"] = "pages/index/index?id=1" }), 0, "ok"},
		{"enum in list", tok, sendBody(testUser, tplEnum, map[string]any{"enum2": map[string]string{"value": "已发货"}}), 0, "ok"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m map[string]any
			if raw, ok := tt.body.(string); ok {
				m = postRaw(t, base+"/cgi-bin/message/subscribe/send?access_token="+tt.token, raw)
			} else {
				m = send(t, base, tt.token, tt.body.(map[string]any))
			}
			if got := errcodeOf(t, m); got != tt.wantErrcode {
				t.Fatalf("send(%s) errcode = %d (%v), want %d", tt.name, got, m["errmsg"], tt.wantErrcode)
			}
			if tt.wantErrmsg != "" && m["errmsg"] != tt.wantErrmsg {
				t.Fatalf("send(%s) errmsg = %q, want %q", tt.name, m["errmsg"], tt.wantErrmsg)
			}
		})
	}

	s.ExpireTokens()
	if got := errcodeOf(t, send(t, base, tok, sendBody(testUser, tplOnce, onceData()))); got != 42001 {
		t.Fatalf("send with an expired token: errcode %d, want 42001", got)
	}
}

func postRaw(t *testing.T, u, body string) map[string]any {
	t.Helper()
	resp, err := http.Post(u, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]any{}
	dec := json.NewDecoder(resp.Body)
	dec.UseNumber()
	if err := dec.Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSendMsgIDIsExact checks that msgid is a raw JSON number above 2^53,
// the case that breaks clients decoding into float64.
func TestSendMsgIDIsExact(t *testing.T) {
	s, base := start(t, Config{Apps: []AppConfig{testApp()}})
	tok := mustToken(t, base)
	_ = s.Subscribe(testAppID, testUser, ActionAccept, tplLong)
	b, _ := json.Marshal(sendBody(testUser, tplLong, longData()))
	resp, err := http.Post(base+"/cgi-bin/message/subscribe/send?access_token="+tok, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	match := regexp.MustCompile(`"msgid":(\d+)[,}]`).FindSubmatch(raw)
	if match == nil {
		t.Fatalf("send response %s has no raw numeric msgid", raw)
	}
	id, _ := new(big.Int).SetString(string(match[1]), 10)
	if id.Cmp(new(big.Int).Lsh(big.NewInt(1), 53)) <= 0 {
		t.Fatalf("msgid %s, want above 2^53", match[1])
	}
	msgs, _ := s.Messages(testAppID)
	if len(msgs) != 1 || msgs[0].MsgID != string(match[1]) {
		t.Fatalf("Messages = %+v, want one with msgid %s", msgs, match[1])
	}
}

func TestSendSameUserConcurrently(t *testing.T) {
	s, base := start(t, Config{Apps: []AppConfig{testApp()}})
	tok := mustToken(t, base)
	_ = s.Subscribe(testAppID, testUser, ActionAccept, tplLong)
	if err := s.SetFaults(Faults{LatencyMS: 200}); err != nil {
		t.Fatal(err)
	}
	const n = 4
	codes := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { codes[i] = errcodeOf(t, send(t, base, tok, sendBody(testUser, tplLong, longData()))) })
	}
	wg.Wait()
	ok, busy := 0, 0
	for _, c := range codes {
		switch c {
		case 0:
			ok++
		case 43108:
			busy++
		}
	}
	if ok != 1 || busy != n-1 {
		t.Fatalf("%d concurrent sends to one user: errcodes %v, want one 0 and the rest 43108", n, codes)
	}
}

func TestGetTemplate(t *testing.T) {
	_, base := start(t, Config{Apps: []AppConfig{testApp()}})
	tok := mustToken(t, base)
	resp, err := http.Get(base + "/wxaapi/newtmpl/gettemplate?access_token=" + tok)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got struct {
		Errcode int    `json:"errcode"`
		Errmsg  string `json:"errmsg"`
		Data    []struct {
			PriTmplID            string `json:"priTmplId"`
			Title                string `json:"title"`
			Content              string `json:"content"`
			Type                 int    `json:"type"`
			KeywordEnumValueList []struct {
				KeywordCode   string   `json:"keywordCode"`
				EnumValueList []string `json:"enumValueList"`
			} `json:"keywordEnumValueList"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if got.Errcode != 0 || got.Errmsg != "ok" || len(got.Data) != 3 {
		t.Fatalf("gettemplate = %+v, want ok with 3 templates", got)
	}
	if d := got.Data[0]; d.PriTmplID != tplOnce || d.Type != TemplateOneTime || d.Content != testApp().Templates[0].Content {
		t.Fatalf("gettemplate data[0] = %+v, want the one-time template", d)
	}
	if d := got.Data[1]; d.Type != TemplateLongTerm {
		t.Fatalf("gettemplate data[1].type = %d, want 3", d.Type)
	}
	enums := got.Data[2].KeywordEnumValueList
	if len(enums) != 1 || enums[0].KeywordCode != "enum2.DATA" || len(enums[0].EnumValueList) != 2 {
		t.Fatalf("gettemplate enum list = %+v, want enum2.DATA with 2 values", enums)
	}
}
