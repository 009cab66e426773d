package schemas

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// The reference JSON parser: the walk over encoding/json's tokens that
// parseJSONDocument replaced, kept as the oracle that the scanner must agree
// with on every input.

// refParseDocumentJSON is parseDocument(FormatJSON, b) with the reference
// parser in place of the scanner.
func refParseDocumentJSON(b []byte) (*docNode, error) {
	if len(b) > MaxMessageSize {
		return nil, malformedf("larger than %d bytes", MaxMessageSize)
	}
	if !utf8.Valid(b) {
		return nil, malformedf("invalid UTF-8")
	}
	return refParseJSONDocument(b)
}

// refParseJSONDocument parses a JSON message: exactly one object.
func refParseJSONDocument(b []byte) (*docNode, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	tok, err := d.Token()
	if err != nil {
		return nil, refJSONSyntax(err)
	}
	if tok != json.Delim('{') {
		return nil, malformedf("json: top level is not an object")
	}
	root, err := refParseJSONValue(d, tok, 1)
	if err != nil {
		return nil, err
	}
	if _, err := d.Token(); !errors.Is(err, io.EOF) {
		return nil, malformedf("json: data after the top-level object")
	}
	return root, nil
}

// refParseJSONValue parses the value that starts with tok.
func refParseJSONValue(d *json.Decoder, tok json.Token, depth int) (*docNode, error) {
	if depth > maxDocDepth {
		return nil, malformedf("json: nested deeper than %d", maxDocDepth)
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			return refParseJSONObject(d, depth)
		case '[':
			return refParseJSONArray(d, depth)
		}
		return nil, malformedf("json: unexpected %v", t)
	case string:
		return &docNode{kind: docLeaf, text: strings.TrimSpace(t)}, nil
	case json.Number:
		return &docNode{kind: docLeaf, text: string(t)}, nil
	case bool:
		if t {
			return &docNode{kind: docLeaf, text: "true"}, nil
		}
		return &docNode{kind: docLeaf, text: "false"}, nil
	case nil:
		return &docNode{kind: docLeaf}, nil
	}
	return nil, malformedf("json: unexpected token")
}

func refParseJSONObject(d *json.Decoder, depth int) (*docNode, error) {
	obj := newDocObject()
	for {
		tok, err := d.Token()
		if err != nil {
			return nil, refJSONSyntax(err)
		}
		if tok == json.Delim('}') {
			return obj, nil
		}
		key, ok := tok.(string)
		if !ok {
			return nil, malformedf("json: object key is not a string")
		}
		if _, dup := obj.vals[key]; dup {
			return nil, malformedf("json: duplicate key before offset %d", d.InputOffset())
		}
		tok, err = d.Token()
		if err != nil {
			return nil, refJSONSyntax(err)
		}
		v, err := refParseJSONValue(d, tok, depth+1)
		if err != nil {
			return nil, err
		}
		obj.set(key, v)
	}
}

func refParseJSONArray(d *json.Decoder, depth int) (*docNode, error) {
	list := &docNode{kind: docList}
	for {
		tok, err := d.Token()
		if err != nil {
			return nil, refJSONSyntax(err)
		}
		if tok == json.Delim(']') {
			return list, nil
		}
		v, err := refParseJSONValue(d, tok, depth+1)
		if err != nil {
			return nil, err
		}
		list.elems = append(list.elems, v)
	}
}

// refJSONSyntax reports a JSON reader error by position only.
func refJSONSyntax(err error) error {
	return malformedf("json: %s", jsonErrorDetail(err))
}

// renderDoc writes a document as compact JSON-like text with every leaf
// quoted and object keys in document order: two documents render alike
// exactly when they hold the same tree.
func renderDoc(n *docNode) string {
	var b strings.Builder
	var walk func(*docNode)
	walk = func(n *docNode) {
		switch n.kind {
		case docLeaf:
			b.WriteString(strconv.Quote(n.text))
		case docObject:
			b.WriteByte('{')
			for i, k := range n.keys {
				if i > 0 {
					b.WriteByte(',')
				}
				b.WriteString(strconv.Quote(k))
				b.WriteByte(':')
				walk(n.vals[k])
			}
			b.WriteByte('}')
		case docList:
			b.WriteByte('[')
			for i, el := range n.elems {
				if i > 0 {
					b.WriteByte(',')
				}
				walk(el)
			}
			b.WriteByte(']')
		}
	}
	walk(n)
	return b.String()
}

// checkDocShape fails when a node holds fields its kind does not use, or an
// object's keys and map disagree: render and DeepEqual would not both see it.
func checkDocShape(t *testing.T, n *docNode) {
	t.Helper()
	switch n.kind {
	case docLeaf:
		if n.keys != nil || n.vals != nil || n.elems != nil {
			t.Fatalf("leaf %q has children", n.text)
		}
	case docObject:
		if n.text != "" || n.elems != nil || n.vals == nil || len(n.keys) != len(n.vals) {
			t.Fatalf("object with keys %q is malformed", n.keys)
		}
		for _, k := range n.keys {
			v, ok := n.vals[k]
			if !ok {
				t.Fatalf("object key %q has no value", k)
			}
			checkDocShape(t, v)
		}
	case docList:
		if n.text != "" || n.keys != nil || n.vals != nil {
			t.Fatalf("list has object fields")
		}
		for _, el := range n.elems {
			checkDocShape(t, el)
		}
	default:
		t.Fatalf("node of kind %d", n.kind)
	}
}

// isKnownJSONError reports whether a JSON parse error is one of the known
// messages, which give numbers only: any other could be quoting the input.
func isKnownJSONError(err error) bool {
	msg := err.Error()
	if i := strings.LastIndexByte(msg, ' '); i >= 0 {
		if _, err := strconv.Atoi(msg[i+1:]); err == nil {
			msg = msg[:i+1]
		}
	}
	switch msg {
	case "malformed message: json: syntax error at offset ",
		"malformed message: json: unexpected end of input",
		"malformed message: json: top level is not an object",
		"malformed message: json: data after the top-level object",
		"malformed message: json: nested deeper than ",
		"malformed message: json: duplicate key before offset ",
		"malformed message: json: invalid UTF-8 in the string at offset ",
		"malformed message: invalid UTF-8":
		return true
	}
	return false
}

// checkAgree fails unless the scanner's result and the reference's agree:
// both errors wrapping ErrMalformed, or the same tree.
func checkAgree(t *testing.T, in []byte, got *docNode, gotErr error, want *docNode, wantErr error) {
	t.Helper()
	switch {
	case gotErr != nil && wantErr != nil:
		if !errors.Is(gotErr, ErrMalformed) {
			t.Fatalf("parse(%q) error = %v, want ErrMalformed", in, gotErr)
		}
		if !isKnownJSONError(gotErr) {
			t.Fatalf("parse(%q) error = %q, not one of the known errors", in, gotErr)
		}
	case gotErr != nil:
		t.Fatalf("parse(%q) = %v, reference accepts it as %s", in, gotErr, renderDoc(want))
	case wantErr != nil:
		t.Fatalf("parse(%q) = %s, reference rejects it: %v", in, renderDoc(got), wantErr)
	default:
		checkDocShape(t, got)
		if g, w := renderDoc(got), renderDoc(want); g != w {
			t.Fatalf("parse(%q) = %s, reference gives %s", in, g, w)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("parse(%q) = %#v, reference gives %#v", in, got, want)
		}
	}
}

func TestParseJSONDocument(t *testing.T) {
	nested := func(n int, inner string) string {
		return strings.Repeat(`{"a":`, n) + inner + strings.Repeat("}", n)
	}
	tests := []struct {
		name string
		in   string
		// want is renderDoc of the result; empty means an error.
		want string
	}{
		{name: "empty_object", in: `{}`, want: `{}`},
		{name: "json_white_space", in: " \t\r\n{ \"a\" :\t1 ,\n\"b\"\r:[ ] } \n", want: `{"a":"1","b":[]}`},
		{name: "key_order_kept", in: `{"z":1,"a":2,"m":3}`, want: `{"z":"1","a":"2","m":"3"}`},
		{name: "numbers_literal", in: `{"a":-0.5e+10,"b":1E2,"c":18446744073709551616,"d":0,"e":-0,"f":1.25E-3}`, want: `{"a":"-0.5e+10","b":"1E2","c":"18446744073709551616","d":"0","e":"-0","f":"1.25E-3"}`},
		{name: "number_and_string_same_leaf", in: `{"a":123,"b":"123"}`, want: `{"a":"123","b":"123"}`},
		{name: "literals", in: `{"t":true,"f":false,"n":null}`, want: `{"t":"true","f":"false","n":""}`},
		{name: "leaf_trimmed_key_not", in: `{" k ":"  x y \n","u":"\u3000z\u00a0"}`, want: `{" k ":"x y","u":"z"}`},
		{name: "simple_escapes", in: `{"a":"\"\\\/\b\f\n\r\tx"}`, want: `{"a":"\"\\/\b\f\n\r\tx"}`},
		{name: "unicode_escapes", in: `{"a":"\u00e9\u4E2D\ud83d\ude00\u0000"}`, want: `{"a":"é中😀\x00"}`},
		{name: "raw_unicode", in: `{"名":"é` + "\u2028" + `中😀"}`, want: `{"名":"é\u2028中😀"}`},
		{name: "escaped_key", in: `{"\u0041\n":1}`, want: `{"A\n":"1"}`},
		{name: "lone_high_surrogate", in: `{"a":"x\ud800y"}`, want: `{"a":"x�y"}`},
		{name: "lone_low_surrogate", in: `{"a":"x\udc00"}`, want: `{"a":"x�"}`},
		{name: "high_then_pair", in: `{"a":"\ud800\ud83d\ude00"}`, want: `{"a":"�😀"}`},
		{name: "high_then_plain_escape", in: `{"a":"\ud800\u0041\ud800\n"}`, want: `{"a":"�A�"}`},
		{name: "low_then_high", in: `{"a":"\udc00\ud800"}`, want: `{"a":"��"}`},
		{name: "nested_lists", in: `{"a":[[1,[]],{},[{"b":null}]]}`, want: `{"a":[["1",[]],{},[{"b":""}]]}`},
		{name: "depth_32_object", in: nested(31, `{}`), want: nested(31, `{}`)},
		{name: "depth_32_leaf", in: nested(31, `1`), want: nested(31, `"1"`)},
		{name: "depth_32_list", in: `{"a":` + strings.Repeat("[", 30) + `1` + strings.Repeat("]", 30) + `}`, want: `{"a":` + strings.Repeat("[", 30) + `"1"` + strings.Repeat("]", 30) + `}`},
		{name: "many_keys", in: `{"k0":0,"k1":1,"k2":2,"k3":3,"k4":4,"k5":5,"k6":6,"k7":7,"k8":8,"k9":9,"k10":10,"k11":11,"k12":12,"k13":13,"k14":14,"k15":15,"k16":16,"k17":17,"k18":18}`, want: `{"k0":"0","k1":"1","k2":"2","k3":"3","k4":"4","k5":"5","k6":"6","k7":"7","k8":"8","k9":"9","k10":"10","k11":"11","k12":"12","k13":"13","k14":"14","k15":"15","k16":"16","k17":"17","k18":"18"}`},

		{name: "depth_33_object", in: nested(32, `{}`)},
		{name: "depth_33_leaf", in: nested(32, `1`)},
		{name: "depth_33_list", in: `{"a":` + strings.Repeat("[", 31) + `1` + strings.Repeat("]", 31) + `}`},
		{name: "duplicate_key", in: `{"a":1,"a":1}`},
		{name: "duplicate_escaped_key", in: `{"a":1,"\u0061":2}`},
		{name: "duplicate_replaced_surrogates", in: `{"\ud800":1,"\udc00":2}`},
		{name: "duplicate_key_many", in: `{"k0":0,"k1":1,"k2":2,"k3":3,"k4":4,"k5":5,"k6":6,"k7":7,"k8":8,"k9":9,"k10":10,"k11":11,"k12":12,"k13":13,"k14":14,"k15":15,"k16":16,"k17":17,"k3":18}`},
		{name: "duplicate_key_nested", in: `{"a":{"b":1,"b":2}}`},
		{name: "empty", in: ``},
		{name: "spaces_only", in: " \n"},
		{name: "byte_order_mark", in: "\ufeff{}"},
		{name: "top_level_array", in: `[{}]`},
		{name: "top_level_string", in: `"{}"`},
		{name: "top_level_number", in: `1`},
		{name: "two_objects", in: `{}{}`},
		{name: "trailing_junk", in: `{} x`},
		{name: "trailing_nul", in: "{}\x00"},
		{name: "unclosed_object", in: `{"a":1`},
		{name: "unclosed_array", in: `{"a":[1`},
		{name: "unclosed_string", in: `{"a":"x`},
		{name: "trailing_comma_object", in: `{"a":1,}`},
		{name: "trailing_comma_array", in: `{"a":[1,]}`},
		{name: "leading_comma_array", in: `{"a":[,1]}`},
		{name: "missing_colon", in: `{"a" 1}`},
		{name: "double_colon", in: `{"a"::1}`},
		{name: "missing_comma", in: `{"a":1 "b":2}`},
		{name: "missing_comma_array", in: `{"a":[1 2]}`},
		{name: "key_not_string", in: `{1:2}`},
		{name: "single_quotes", in: `{'a':1}`},
		{name: "comment", in: `{/**/}`},
		{name: "leading_zero", in: `{"a":01}`},
		{name: "bare_minus", in: `{"a":-}`},
		{name: "leading_dot", in: `{"a":.5}`},
		{name: "plus_sign", in: `{"a":+1}`},
		{name: "trailing_dot", in: `{"a":1.}`},
		{name: "empty_exponent", in: `{"a":1e}`},
		{name: "signed_empty_exponent", in: `{"a":1e+}`},
		{name: "hex_number", in: `{"a":0x1}`},
		{name: "nan", in: `{"a":NaN}`},
		{name: "truncated_true", in: `{"a":tru}`},
		{name: "true_then_letter", in: `{"a":truex}`},
		{name: "capital_null", in: `{"a":Null}`},
		{name: "control_in_string", in: "{\"a\":\"x\ty\"}"},
		{name: "single_quote_escape", in: `{"a":"\'"}`},
		{name: "unknown_escape", in: `{"a":"\x41"}`},
		{name: "short_unicode_escape", in: `{"a":"\u12"}`},
		{name: "bad_hex_after_surrogate", in: `{"a":"\ud800\u12G4"}`},
		{name: "invalid_utf8_in_string", in: "{\"a\":\"\xff\"}"},
		{name: "invalid_utf8_after_escape", in: "{\"a\":\"\\n\xc3\"}"},
		{name: "invalid_utf8_outside_string", in: "{\xc3\xa9}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := []byte(tt.in)
			got, err := parseJSONDocument(in)
			if tt.want == "" {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("parseJSONDocument(%q) = %v, %v, want ErrMalformed", in, got, err)
				}
			} else {
				if err != nil {
					t.Fatalf("parseJSONDocument(%q) error = %v", in, err)
				}
				if s := renderDoc(got); s != tt.want {
					t.Fatalf("parseJSONDocument(%q) = %s, want %s", in, s, tt.want)
				}
			}
			want, wantErr := refParseDocumentJSON(in)
			checkAgree(t, in, got, err, want, wantErr)
		})
	}
}

// TestParseJSONDocumentAgreesExhaustively checks the scanner against the
// reference on every short sequence of string pieces (escapes, surrogate
// halves, white space), as a value and as a key, and on every short run of
// JSON punctuation and number characters as a value: the corners a fuzzer
// takes long to reach.
func TestParseJSONDocumentAgreesExhaustively(t *testing.T) {
	pieces := []string{
		`\ud800`, `\udbff`, `\udc00`, `\udfff`, `\ud83d`, `\ude00`, `\u0041`, `\u00A0`, `\u0020`,
		`\n`, `\/`, `\"`, `\\`, `\`, `\u12`, `\x`, `"`, ` `, "\u3000", "\x1f", "é", "x",
	}
	var check func(prefix string, n int)
	check = func(prefix string, n int) {
		for _, in := range []string{`{"a":"` + prefix + `"}`, `{"` + prefix + `":1,"\ufffd":2}`} {
			got, err := parseJSONDocument([]byte(in))
			want, wantErr := refParseDocumentJSON([]byte(in))
			checkAgree(t, []byte(in), got, err, want, wantErr)
		}
		if n == 0 {
			return
		}
		for _, p := range pieces {
			check(prefix+p, n-1)
		}
	}
	check("", 3)

	const chars = "{}[]\",:-01.eE+tn \x00"
	var run func(prefix string, n int)
	run = func(prefix string, n int) {
		in := []byte(`{"a":` + prefix + `}`)
		got, err := parseJSONDocument(in)
		want, wantErr := refParseDocumentJSON(in)
		checkAgree(t, in, got, err, want, wantErr)
		if n == 0 {
			return
		}
		for i := range len(chars) {
			run(prefix+chars[i:i+1], n-1)
		}
	}
	run("", 4)
}

// TestParseJSONDocumentSlicesApart checks that the keys and elems slices
// the scanner cuts from shared chunks do not overlap: growing one, as set and
// liftItems do, leaves every other node as it was.
func TestParseJSONDocumentSlicesApart(t *testing.T) {
	const in = `{"a":[1,2],"b":[3,4],"c":{"x":1},"d":{"y":2},"e":[5]}`
	root, err := parseJSONDocument([]byte(in))
	if err != nil {
		t.Fatalf("parseJSONDocument(%q) error = %v", in, err)
	}
	leaf := &docNode{kind: docLeaf, text: "new"}
	a := root.get("a")
	a.elems = append(a.elems, leaf)
	root.get("c").set("z", leaf)
	root.set("f", leaf)
	root.get("d").remove("y")
	const want = `{"a":["1","2","new"],"b":["3","4"],"c":{"x":"1","z":"new"},"d":{},"e":["5"],"f":"new"}`
	if got := renderDoc(root); got != want {
		t.Errorf("after edits, document = %s, want %s", got, want)
	}
}

// TestParseJSONDocumentErrorsHideValues checks that errors give offsets,
// never text from the input.
func TestParseJSONDocumentErrorsHideValues(t *testing.T) {
	const secret = "o7esq5PHRGBQYmeNyfG064wEFVpQ"
	for _, in := range []string{
		`{"` + secret + `":1,"` + secret + `":2}`,
		`{"a":"` + secret + "\x01" + `"}`,
		`{"a":` + secret + `}`,
		`{"a":"` + secret + `\q"}`,
		`{"a":1}` + secret,
		secret,
	} {
		_, err := parseJSONDocument([]byte(in))
		if err == nil {
			t.Fatalf("parseJSONDocument(%q) error = nil, want an error", in)
		}
		if strings.Contains(err.Error(), "o7esq5") {
			t.Errorf("parseJSONDocument(%q) error %q repeats a value", in, err)
		}
	}
}

// corpusInputs returns the inputs of the native fuzz corpus files under dir
// (testdata/fuzz/FuzzX), each a "go test fuzz v1" file of one []byte or
// string value; a missing directory has none.
func corpusInputs(t testing.TB, dir string) [][]byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*"))
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(nil, MaxMessageSize*8)
		for sc.Scan() {
			line := sc.Text()
			for _, prefix := range []string{"[]byte(", "string("} {
				quoted, ok := strings.CutPrefix(line, prefix)
				if !ok {
					continue
				}
				if s, err := strconv.Unquote(strings.TrimSuffix(quoted, ")")); err == nil {
					out = append(out, []byte(s))
				}
			}
		}
	}
	return out
}

// FuzzJSONDocumentDifferential checks the scanner against the reference
// parser on arbitrary input: both reject, or both accept with the same tree.
func FuzzJSONDocumentDifferential(f *testing.F) {
	for _, s := range []string{
		sampleJSONSent, sampleJSONSentNumbers, sampleJSONSentNested, sampleJSONPopup, sampleJSONChange, sampleV1,
		`{"ToUserName":"gh_97417a04a28d","Encrypt":"` + v1Encrypt + `"}`,
		`{"ToUserName":"a","FromUserName":"b","CreateTime":1,"MsgType":"event","Event":"x","List":[[{"a":null}],true,1e5]}`,
		`{}`, `{"List":`, `{"a":1,"a":2}`, `{"Encrypt":{}}`, `[]`, ``,
		` {"a" : [ -0.0e-0 , 1E+9 , "\u00e9\ud83d\ude00\ud800\/" , false ] } `,
		`{"\u0061":"\ud800\udc00\udc00\ud800\u0041","a":"\t x \u2028"}`,
		strings.Repeat(`{"a":`, 31) + `[1]` + strings.Repeat("}", 31),
		strings.Repeat(`{"a":`, 32) + `1` + strings.Repeat("}", 32),
		`{"k0":0,"k1":1,"k2":2,"k3":3,"k4":4,"k5":5,"k6":6,"k7":7,"k8":8,"k9":9,"k10":10,"k11":11,"k12":12,"k13":13,"k14":14,"k15":15,"k16":16,"k17":17,"k0":18}`,
	} {
		f.Add([]byte(s))
	}
	// The golden events are JSON objects with escapes (Raw holds a message).
	goldens, err := filepath.Glob(filepath.Join("testdata", "events", "*.json"))
	if err != nil {
		f.Fatal(err)
	}
	for _, file := range goldens {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, target := range []string{"FuzzParseEventJSON", "FuzzParseEnvelope"} {
		for _, b := range corpusInputs(f, filepath.Join("testdata", "fuzz", target)) {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		want, wantErr := refParseDocumentJSON(in)
		got, err := parseDocument(FormatJSON, in)
		checkAgree(t, in, got, err, want, wantErr)
		// Called on its own, the scanner checks UTF-8 itself.
		got, err = parseJSONDocument(in)
		checkAgree(t, in, got, err, want, wantErr)
	})
}

// BenchmarkJSONDocument compares the scanner with the reference parser on
// the JSON the gateway parses: a secure-mode body, the popup and sent events
// decrypted from such bodies, and a compatible-mode body.
func BenchmarkJSONDocument(b *testing.B) {
	docs := []struct {
		name string
		in   string
	}{
		{name: "secure_body", in: `{"ToUserName":"gh_97417a04a28d","Encrypt":"` + v1Encrypt + `"}`},
		{name: "popup", in: sampleJSONPopup},
		{name: "sent", in: sampleJSONSentNumbers},
		{name: "compatible_body", in: `{"ToUserName":"gh_97417a04a28d","FromUserName":"o9AgO5Kd5ggOC-bXrbNODIiE3bGY","CreateTime":1714112445,"MsgType":"event","Event":"debug_demo","debug_str":"hello world","Encrypt":"` + v1Encrypt + `"}`},
	}
	for _, impl := range []struct {
		name  string
		parse func([]byte) (*docNode, error)
	}{
		{name: "reference", parse: refParseJSONDocument},
		{name: "scanner", parse: parseJSONDocument},
	} {
		b.Run(impl.name, func(b *testing.B) {
			for _, doc := range docs {
				in := []byte(doc.in)
				b.Run(doc.name, func(b *testing.B) {
					b.SetBytes(int64(len(in)))
					b.ReportAllocs()
					for b.Loop() {
						if _, err := impl.parse(in); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
		})
	}
}
