package wechat

import (
	"reflect"
	"testing"
	"time"
)

var testNow = time.Unix(1714112445, 0).UTC()

// maxErrText bounds error texts: a decoder must not echo its input.
const maxErrText = 1024

func FuzzDecodeToken(f *testing.F) {
	for _, s := range []string{
		`{"access_token":"ACCESS_TOKEN","expires_in":7200}`,
		`{"access_token":"ACCESS_TOKEN","expires_in":"7200"}`,
		`{"errcode":40164,"errmsg":"invalid ip 1.2.3.4 ipv6 ::ffff:1.2.3.4, not in whitelist rid: 6620e1c1"}`,
		`{"errcode":0,"access_token":"x","expires_in":0}`,
		`{"access_token":"has space","expires_in":1}`,
		`{"errcode":"-1","errmsg":"system error"}`,
		`[]`, `null`, `{"expires_in":1e400}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := decodeToken(data, OpStableToken, testAppID)
		if err != nil {
			if len(err.Error()) > maxErrText {
				t.Fatalf("decodeToken error of %d bytes", len(err.Error()))
			}
			return
		}
		if got.token == "" || len(got.token) > maxTokenChars || !tokenChars(got.token) {
			t.Fatalf("decodeToken accepted token %q", got.token)
		}
		if got.expiresIn <= 0 || got.expiresIn > maxExpiresIn*time.Second {
			t.Fatalf("decodeToken accepted expires_in %v", got.expiresIn)
		}
	})
}

func FuzzDecodeSend(f *testing.F) {
	for _, s := range []string{
		`{"errcode":0,"errmsg":"ok","msgid":3248682510344192008}`,
		`{"errcode":0,"errmsg":"ok","msgid":"3248682510344192008"}`,
		`{"errcode":47003,"errmsg":"argument invalid! data.thing1.value invalid"}`,
		`{"errcode":0,"msgid":1.5}`, `{"errcode":0,"msgid":-1}`, `{"msgid":null}`, `<xml/>`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		id, err := decodeSend(data, testAppID, "TOKEN")
		if err != nil {
			if len(err.Error()) > maxErrText {
				t.Fatalf("decodeSend error of %d bytes", len(err.Error()))
			}
			return
		}
		if id != "" && (len(id) > maxMsgIDChars || !allDigits(id)) {
			t.Fatalf("decodeSend accepted msgid %q", id)
		}
	})
}

func FuzzDecodeRecord(f *testing.F) {
	good, _ := encodeRecord(record{
		AccessToken: "TOKEN", ExpiresAt: testNow.Add(2 * time.Hour), RefreshAt: testNow.Add(115 * time.Minute), Generation: 7,
		Lease:   &lease{Holder: "abc", Until: testNow.Add(time.Minute)},
		Failure: &failure{Op: OpToken, Kind: failAPI, Code: -1, Msg: "busy", Count: 1, RetryAt: testNow},
	})
	f.Add(good)
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"access_token":"a b"}`))
	f.Add([]byte(`{"lease":{"until":"not a time"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		rec, err := decodeRecord(data)
		if err != nil {
			if len(err.Error()) > maxErrText {
				t.Fatalf("decodeRecord error of %d bytes", len(err.Error()))
			}
			return
		}
		again, err := decodeRecord(mustEncode(t, rec))
		if err != nil {
			t.Fatalf("re-decoding an encoded record: %v", err)
		}
		// Times lose their monotonic and location details in JSON; compare encodings.
		if a, b := mustEncode(t, rec), mustEncode(t, again); !reflect.DeepEqual(a, b) {
			t.Fatalf("record changed on a round trip:\n%s\n%s", a, b)
		}
	})
}
