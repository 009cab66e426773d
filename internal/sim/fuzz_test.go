package sim

import (
	"context"
	"strings"
	"testing"
)

func FuzzTemplateKeys(f *testing.F) {
	f.Add("会议时间:{{date2.DATA}}\n地点:{{thing3.DATA}}")
	f.Add("{{{{thing1.DATA}}}}")
	f.Add("{{character_string01.DATA}")
	f.Fuzz(func(t *testing.T, content string) {
		for _, k := range templateKeys(content) {
			if !validKeyword(k) || !strings.Contains(content, "{{"+k+".DATA}}") {
				t.Fatalf("templateKeys(%q) returned %q, not a keyword of the content", content, k)
			}
		}
	})
}

// FuzzSend feeds arbitrary bodies to the send pipeline: it must answer with
// one of WeChat's errcodes and never panic, and accept only data that passes
// the keyword rules.
func FuzzSend(f *testing.F) {
	s, err := New(Config{Apps: []AppConfig{testApp()}, NoSentEvents: true}, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(s.Close)
	tok, _ := s.plainToken(testAppID)
	_ = s.Subscribe(testAppID, testUser, ActionAccept, tplLong)
	f.Add(`{"touser":"` + testUser + `","template_id":"tpl-long","data":{"phrase1":{"value":"已受理"},"character_string2":{"value":"A-1"}}}`)
	f.Add(`{"touser":"` + testUser + `","template_id":"tpl-once","data":{"date2":{"value":"x"}}}`)
	f.Add(`{"data":{"thing1":"x"}}`)
	f.Add(`[]`)
	allowed := map[int]bool{0: true, 40003: true, 40037: true, 41030: true, 43101: true, 43108: true, 47001: true, 47003: true}
	f.Fuzz(func(t *testing.T, body string) {
		res := s.send(context.Background(), tok, []byte(body))
		if !allowed[res.errcode] {
			t.Fatalf("send(%q) errcode = %d, not one the pipeline returns", body, res.errcode)
		}
	})
}
