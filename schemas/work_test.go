package schemas

import (
	"strconv"
	"strings"
	"testing"
)

func TestWorkSubjectRoundTrip(t *testing.T) {
	tests := []struct {
		name         string
		appID, user  string
		kind         string
		wantWorkPref string
	}{
		{name: "inbound", appID: "wxba5fad812f8e6fb9", user: "oABCD1234", kind: WorkInbound, wantWorkPref: "wxgate.work.wxba5fad812f8e6fb9."},
		{name: "send", appID: "wxba5fad812f8e6fb9", user: "oABCD1234", kind: WorkSend, wantWorkPref: "wxgate.work.wxba5fad812f8e6fb9."},
		{name: "hostile_ids", appID: "wx.*>", user: "o.*> x", kind: WorkReport, wantWorkPref: "wxgate.work.wx___."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			work := WorkSubject(tt.appID, tt.user, tt.kind)
			if !strings.HasPrefix(work, tt.wantWorkPref) || strings.Count(work, ".") != 4 || strings.ContainsAny(work, "*> ") {
				t.Fatalf("WorkSubject(%q, %q, %q) = %q, want %s{user}.%s and no wildcard", tt.appID, tt.user, tt.kind, work, tt.wantWorkPref, tt.kind)
			}
			// As the stream stores it, after its transform.
			stored := "wxgate.part.7." + strings.TrimPrefix(work, "wxgate.work.")
			w, err := ParseWorkSubject(stored)
			if err != nil {
				t.Fatalf("ParseWorkSubject(%q) = %v", stored, err)
			}
			if w.Partition != 7 || w.Kind != tt.kind || w.User != UserToken(tt.user) || w.Subject() != work {
				t.Errorf("ParseWorkSubject(%q) = %+v (subject %q), want partition 7, kind %s, subject %q", stored, w, w.Subject(), tt.kind, work)
			}
		})
	}
}

func TestParseWorkSubjectRejects(t *testing.T) {
	for _, s := range []string{"", "wechat.wx1.in.popup", "wxgate.part.x.wx1.u.in", "wxgate.part.-1.wx1.u.in", "wxgate.part.1.wx1.u", "wxgate.part.1.wx1.u.in.more", "wxgate.work.wx1.u.in"} {
		if w, err := ParseWorkSubject(s); err == nil {
			t.Errorf("ParseWorkSubject(%q) = %+v, want an error", s, w)
		}
	}
}

func TestUserTokenSpreadsUsers(t *testing.T) {
	// The stream partitions by appid and user token; distinct users must give
	// distinct tokens for the partitions to spread them.
	seen := map[string]bool{}
	for i := range 1000 {
		seen[UserToken("oUser"+strings.Repeat("x", i%7)+string(rune('a'+i%26))+string(rune('A'+i/26%26)))] = true
	}
	if len(seen) < 900 {
		t.Errorf("%d distinct tokens for ~1000 users", len(seen))
	}
}

func FuzzParseWorkSubject(f *testing.F) {
	f.Add("wxgate.part.3.wxba5fad812f8e6fb9.8b08707b556b34d.in")
	f.Add("wxgate.part.15.wx1.u.send")
	f.Add("wxgate.part..wx1.u.in")
	f.Fuzz(func(t *testing.T, s string) {
		w, err := ParseWorkSubject(s)
		if err != nil {
			return
		}
		if w.Partition < 0 {
			t.Errorf("ParseWorkSubject(%q) = %+v, a negative partition", s, w)
		}
		again, err := ParseWorkSubject("wxgate.part." + strconv.Itoa(w.Partition) + "." + strings.TrimPrefix(w.Subject(), "wxgate.work."))
		if err != nil || again != w {
			t.Errorf("ParseWorkSubject round trip of %q = %+v, %v; want %+v", s, again, err, w)
		}
	})
}
