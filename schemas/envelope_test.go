package schemas

import (
	"errors"
	"testing"
)

const (
	// v1Encrypt is test vector V1's Encrypt field.
	v1Encrypt = "+qdx1OKCy+5JPCBFWw70tm0fJGb2Jmeia4FCB7kao+/Q5c/ohsOzQHi8khUOb05JCpj0JB4RvQMkUyus8TPxLKJGQqcvZqzDpVzazhZv6JsXUnnR8XGT740XgXZUXQ7vJVnAG+tE8NUd4yFyjPy7GgiaviNrlCTj+l5kdfMuFUPpRSrfMZuMcp3Fn2Pede2IuQrKEYwKSqFIZoNqJ4M8EajAsjLY2km32IIjdf8YL/P50F7mStwntrA2cPDrM1kb6mOcfBgRtWygb3VIYnSeOBrebufAlr7F9mFUPAJGj04="
	// v2Encrypt is test vector V2's Encrypt field.
	v2Encrypt = "hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655HuD0m8KUePWB3+LrPXo87wzQ1QLvbeUgmBM4x6F8PGHQHFVAFmOD2LdJF9FrXpbUAh0B5GIItb52sn896wVsMSHGuPE328HnRGBcrS7C41IzDWyWNlZkyyXwon8T332jisa+h6tEDYsVticbSnyU8dKOIbgU6ux5VTjg3yt+WGzjlpKn6NPhRjpA912xMezR4kw6KWwMrCVKSVCZciVGCgavjIQ6X8tCOp3yZbGpy0VxpAe+77TszTfRd5RJSVO/HTnifJpXgCSUdUue1v6h0EIBYYI1BD1DlD+C0CR8e6OewpusjZ4uBl9FyJvnhvQl+q5rv1ixrcpCumEPo5MJSgM9ehVsNPfUM669WuMyVWQLCzpu9GhglF2PE="
)

func TestParseEnvelope(t *testing.T) {
	tests := []struct {
		name string
		body string
		want Envelope
	}{
		{
			name: "secure_json_v1",
			body: `{"ToUserName":"gh_97417a04a28d","Encrypt":"` + v1Encrypt + `"}`,
			want: Envelope{Format: FormatJSON, ToUserName: "gh_97417a04a28d", Encrypt: v1Encrypt},
		},
		{
			name: "secure_xml",
			body: "<xml>\n  <ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName>\n  <Encrypt><![CDATA[" + v2Encrypt + "]]></Encrypt>\n</xml>\n",
			want: Envelope{Format: FormatXML, ToUserName: "gh_10f6c3c3ac5a", Encrypt: v2Encrypt},
		},
		{
			name: "compatible_xml_v2",
			body: "<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName><FromUserName><![CDATA[oyORnuP8q7ou2gfYjqLzSIWZf0rs]]></FromUserName><CreateTime>1409735668</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[abcdteT]]></Content><MsgId>6054768590064713728</MsgId><Encrypt><![CDATA[" + v2Encrypt + "]]></Encrypt></xml>",
			want: Envelope{Format: FormatXML, ToUserName: "gh_10f6c3c3ac5a", Encrypt: v2Encrypt},
		},
		{
			name: "compatible_json",
			body: `{"ToUserName":"gh_97417a04a28d","FromUserName":"o9AgO5Kd5ggOC-bXrbNODIiE3bGY","CreateTime":1714112445,"MsgType":"event","Event":"debug_demo","debug_str":"hello world","Encrypt":"` + v1Encrypt + `"}`,
			want: Envelope{Format: FormatJSON, ToUserName: "gh_97417a04a28d", Encrypt: v1Encrypt},
		},
		{
			name: "plaintext_json",
			body: sampleJSONSent,
			want: Envelope{Format: FormatJSON, ToUserName: "gh_123456789abc"},
		},
		{
			name: "plaintext_xml",
			body: sampleXMLPopup,
			want: Envelope{Format: FormatXML, ToUserName: "gh_123456789abc"},
		},
		{
			name: "leading_white_space_and_declaration",
			body: "\r\n <?xml version=\"1.0\" encoding=\"UTF-8\"?><!-- push --><xml><Encrypt>abc</Encrypt></xml>",
			want: Envelope{Format: FormatXML, Encrypt: "abc"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseEnvelope([]byte(tt.body))
			if err != nil {
				t.Fatalf("ParseEnvelope(%q) error = %v", tt.body, err)
			}
			if got != tt.want {
				t.Errorf("ParseEnvelope(%q) = %+v, want %+v", tt.body, got, tt.want)
			}
		})
	}
}

func TestParseEnvelopeMalformed(t *testing.T) {
	tests := []struct {
		name string
		body string
	}{
		{name: "empty", body: ""},
		{name: "junk", body: "Encrypt=abc"},
		{name: "json_array", body: `[{"Encrypt":"abc"}]`},
		{name: "truncated_json", body: `{"ToUserName":"gh_1","Encrypt":"ab`},
		{name: "truncated_xml", body: `<xml><ToUserName>gh_1</ToUserName><Encrypt>abc`},
		{name: "encrypt_twice_xml", body: `<xml><Encrypt>a</Encrypt><Encrypt>b</Encrypt></xml>`},
		{name: "encrypt_twice_json", body: `{"Encrypt":"a","Encrypt":"b"}`},
		{name: "encrypt_object", body: `{"Encrypt":{"a":1}}`},
		{name: "wrong_root", body: `<root><Encrypt>a</Encrypt></root>`},
		{name: "two_json_objects", body: `{"Encrypt":"a"}{"Encrypt":"b"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseEnvelope([]byte(tt.body))
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("ParseEnvelope(%q) = %+v, %v, want ErrMalformed", tt.body, got, err)
			}
		})
	}
}

func TestErrNotEncryptedIsMalformed(t *testing.T) {
	if !errors.Is(ErrNotEncrypted, ErrMalformed) {
		t.Errorf("errors.Is(ErrNotEncrypted, ErrMalformed) = false, want true")
	}
}

func TestDetectFormat(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    Format
		wantErr bool
	}{
		{name: "xml", in: "<xml/>", want: FormatXML},
		{name: "json", in: "{}", want: FormatJSON},
		{name: "leading_space", in: " \t\r\n{", want: FormatJSON},
		{name: "empty", in: "", wantErr: true},
		{name: "spaces_only", in: "   ", wantErr: true},
		{name: "array", in: "[]", wantErr: true},
		{name: "text", in: "success", wantErr: true},
		{name: "bom", in: "\xef\xbb\xbf<xml/>", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DetectFormat([]byte(tt.in))
			if tt.wantErr {
				if !errors.Is(err, ErrMalformed) {
					t.Errorf("DetectFormat(%q) = %v, %v, want ErrMalformed", tt.in, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("DetectFormat(%q) = %v, %v, want %v", tt.in, got, err, tt.want)
			}
		})
	}
	for f, want := range map[Format]string{FormatXML: "xml", FormatJSON: "json", 0: "Format(0)"} {
		if got := f.String(); got != want {
			t.Errorf("Format(%d).String() = %q, want %q", int(f), got, want)
		}
	}
}
