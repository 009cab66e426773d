package crypto

import (
	"encoding/json"
	"encoding/xml"
	"testing"
)

func v1Reply(t *testing.T) Reply {
	t.Helper()
	c := newTestCipher(t, v1AppID, v1Key, "")
	r, err := c.newReply(v1Token, []byte(v1ReplyRandom), []byte(v1ReplyMessage), v1ReplyTimestamp, v1Nonce)
	if err != nil {
		t.Fatalf("newReply(V1) = %v", err)
	}
	return r
}

func TestReplyV1(t *testing.T) {
	want := Reply{
		Encrypt:      v1ReplyEncrypt,
		MsgSignature: v1ReplyMsgSignature,
		TimeStamp:    v1ReplyTimestamp,
		Nonce:        v1Nonce,
	}
	if got := v1Reply(t); got != want {
		t.Errorf("newReply(V1) = %+v, want %+v", got, want)
	}
}

func TestReplyJSON(t *testing.T) {
	got, err := v1Reply(t).JSON()
	want := `{"Encrypt":"` + v1ReplyEncrypt + `","MsgSignature":"` + v1ReplyMsgSignature +
		`","TimeStamp":1713424427,"Nonce":"415670741"}`
	if err != nil || string(got) != want {
		t.Errorf("Reply.JSON() = %s, %v, want %s, nil", got, err, want)
	}
}

func TestReplyJSONRejectsBadTimestamp(t *testing.T) {
	tests := []struct {
		name, timestamp string
	}{
		{"empty", ""},
		{"letters", "soon"},
		{"leading zero", "01713424427"},
		{"plus sign", "+1713424427"},
		{"fraction", "1713424427.5"},
		{"overflow", "99999999999999999999"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Reply{Encrypt: "e", MsgSignature: "s", TimeStamp: tt.timestamp, Nonce: "n"}
			if got, err := r.JSON(); err == nil {
				t.Errorf("Reply{TimeStamp: %q}.JSON() = %s, nil, want an error", tt.timestamp, got)
			}
		})
	}
}

func TestReplyXML(t *testing.T) {
	got, err := v1Reply(t).XML()
	want := `<xml><Encrypt><![CDATA[` + v1ReplyEncrypt + `]]></Encrypt>` +
		`<MsgSignature><![CDATA[` + v1ReplyMsgSignature + `]]></MsgSignature>` +
		`<TimeStamp>1713424427</TimeStamp><Nonce><![CDATA[415670741]]></Nonce></xml>`
	if err != nil || string(got) != want {
		t.Errorf("Reply.XML() = %s, %v, want %s, nil", got, err, want)
	}
}

// replyXML mirrors what a receiver parses out of Reply.XML.
type replyXML struct {
	Encrypt      string
	MsgSignature string
	TimeStamp    string
	Nonce        string
}

func TestNewReplyRoundTrip(t *testing.T) {
	c := newTestCipher(t, v1AppID, v1Key, "")
	// The nonce would end a naive CDATA section and inject an element.
	const nonce = "n]]><Evil>1</Evil><![CDATA[x"
	r, err := c.NewReply(v1Token, []byte(v1ReplyMessage), v1ReplyTimestamp, nonce)
	if err != nil {
		t.Fatalf("NewReply = %v", err)
	}
	if err := VerifyMsgSignature(v1Token, r.TimeStamp, r.Nonce, r.Encrypt, r.MsgSignature); err != nil {
		t.Errorf("VerifyMsgSignature(NewReply) = %v, want nil", err)
	}
	if msg, err := c.Decrypt(r.Encrypt); err != nil || string(msg) != v1ReplyMessage {
		t.Errorf("Decrypt(NewReply.Encrypt) = %q, %v, want %q, nil", msg, err, v1ReplyMessage)
	}

	x, err := r.XML()
	if err != nil {
		t.Fatalf("XML() = %v", err)
	}
	var fromXML replyXML
	if err := xml.Unmarshal(x, &fromXML); err != nil {
		t.Fatalf("xml.Unmarshal(%s) = %v", x, err)
	}
	if Reply(fromXML) != r {
		t.Errorf("XML round trip = %+v, want %+v", fromXML, r)
	}

	j, err := r.JSON()
	if err != nil {
		t.Fatalf("JSON() = %v", err)
	}
	var fromJSON struct {
		Encrypt, MsgSignature, Nonce string
		TimeStamp                    json.Number
	}
	if err := json.Unmarshal(j, &fromJSON); err != nil {
		t.Fatalf("json.Unmarshal(%s) = %v", j, err)
	}
	if got := (Reply{fromJSON.Encrypt, fromJSON.MsgSignature, fromJSON.TimeStamp.String(), fromJSON.Nonce}); got != r {
		t.Errorf("JSON round trip = %+v, want %+v", got, r)
	}
}
