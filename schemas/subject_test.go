package schemas

import (
	"strings"
	"testing"
)

func TestSubjectToken(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{name: "event", in: "subscribe_msg_popup_event", want: "subscribe_msg_popup_event"},
		{name: "upper_case", in: "Subscribe_MSG", want: "subscribe_msg"},
		{name: "empty", in: "", want: "unknown"},
		{name: "dot_and_wildcards", in: "a.b*c>d", want: "a_b_c_d"},
		{name: "space_and_tab", in: "a b\tc", want: "a_b_c"},
		{name: "hyphen_digits", in: "x-1_2", want: "x-1_2"},
		{name: "non_ascii_bytes", in: "é", want: "__"},
		{name: "long", in: strings.Repeat("A", 100), want: strings.Repeat("a", 64)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := SubjectToken(tt.in); got != tt.want {
				t.Errorf("SubjectToken(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestSubjects(t *testing.T) {
	tests := []struct {
		name string
		got  string
		want string
	}{
		{name: "inbound", got: InboundSubject("wxba5fad812f8e6fb9", "subscribe_msg_sent_event"), want: "wechat.wxba5fad812f8e6fb9.in.subscribe_msg_sent_event"},
		{name: "inbound_message_type", got: InboundSubject("wx2c2769f8efd9abc2", "TEXT"), want: "wechat.wx2c2769f8efd9abc2.in.text"},
		{name: "inbound_hostile", got: InboundSubject("wx.*", "a.>"), want: "wechat.wx__.in.a__"},
		{name: "consent", got: ConsentSubject("wxba5fad812f8e6fb9", "accepted"), want: "wechat.wxba5fad812f8e6fb9.consent.accepted"},
		{name: "delivery", got: DeliverySubject("wxba5fad812f8e6fb9", "delivered"), want: "wechat.wxba5fad812f8e6fb9.delivery.delivered"},
		{name: "send", got: SendSubject("wxba5fad812f8e6fb9"), want: "wechat.wxba5fad812f8e6fb9.send"},
		{name: "empty_status", got: ConsentSubject("wxa", ""), want: "wechat.wxa.consent.unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %q, want %q", tt.got, tt.want)
			}
			if !strings.HasPrefix(tt.got, strings.TrimSuffix(StreamSubjects, ">")) {
				t.Errorf("%q is outside the stream's subjects %q", tt.got, StreamSubjects)
			}
		})
	}
}

func TestEventSubjectAndType(t *testing.T) {
	tests := []struct {
		name        string
		e           Event
		wantSubject string
		wantType    string
	}{
		{name: "event", e: Event{AppID: "wxa", MsgType: "event", Event: "subscribe_msg_popup_event"}, wantSubject: "wechat.wxa.in.subscribe_msg_popup_event", wantType: "wechat.in.subscribe_msg_popup_event"},
		{name: "plain_message", e: Event{AppID: "wxa", MsgType: "image"}, wantSubject: "wechat.wxa.in.image", wantType: "wechat.in.image"},
		{name: "mixed_case_event", e: Event{AppID: "wxa", MsgType: "event", Event: "Debug_Demo"}, wantSubject: "wechat.wxa.in.debug_demo", wantType: "wechat.in.debug_demo"},
		{name: "nothing", e: Event{AppID: "wxa"}, wantSubject: "wechat.wxa.in.unknown", wantType: "wechat.in.unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.e.Subject(); got != tt.wantSubject {
				t.Errorf("Subject() = %q, want %q", got, tt.wantSubject)
			}
			if got := tt.e.Type(); got != tt.wantType {
				t.Errorf("Type() = %q, want %q", got, tt.wantType)
			}
			token := tt.e.Event
			if token == "" {
				token = tt.e.MsgType
			}
			if got, want := tt.e.Subject(), InboundSubject(tt.e.AppID, token); got != want {
				t.Errorf("Subject() = %q, want InboundSubject = %q", got, want)
			}
		})
	}
}

func TestStream(t *testing.T) {
	if StreamName != "WECHAT" || StreamSubjects != "wechat.>" {
		t.Errorf("stream = %q %q, want WECHAT wechat.>", StreamName, StreamSubjects)
	}
}
