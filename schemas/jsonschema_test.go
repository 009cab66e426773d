package schemas

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// schemaRow pairs an embedded JSON Schema with the Go type it describes.
type schemaRow struct {
	file string
	typ  reflect.Type
}

// schemaRows lists every embedded JSON Schema. Adding a data shape is one row
// here plus its file in jsonschema/.
func schemaRows() []schemaRow {
	return []schemaRow{
		{file: "inbound-event.json", typ: reflect.TypeFor[Event]()},
		{file: "cloudevent.json", typ: reflect.TypeFor[CloudEvent]()},
		{file: "consent-change.json", typ: reflect.TypeFor[ConsentChange]()},
		{file: "delivery-change.json", typ: reflect.TypeFor[DeliveryChange]()},
		{file: "send-requested.json", typ: reflect.TypeFor[SendRequested]()},
		{file: "consent-report.json", typ: reflect.TypeFor[ConsentReport]()},
	}
}

func TestJSONSchemasMatchGoTypes(t *testing.T) {
	for _, row := range schemaRows() {
		t.Run(row.file, func(t *testing.T) {
			b, ok := JSONSchema(row.file)
			if !ok {
				t.Fatalf("JSONSchema(%q) not found", row.file)
			}
			var schema map[string]any
			if err := json.Unmarshal(b, &schema); err != nil {
				t.Fatalf("JSONSchema(%q) is not JSON: %v", row.file, err)
			}
			if got := schema["$schema"]; got != "https://json-schema.org/draft/2020-12/schema" {
				t.Errorf("%s: $schema = %v, want draft 2020-12", row.file, got)
			}
			for _, p := range schemaMismatches(row.typ, schema, schema, row.typ.Name()) {
				t.Errorf("%s: %s", row.file, p)
			}
		})
	}
}

// TestJSONSchemasAllChecked keeps schemaRows complete: a schema without a row
// would never be compared with its Go type.
func TestJSONSchemasAllChecked(t *testing.T) {
	entries, err := fs.ReadDir(jsonSchemas, "jsonschema")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !slices.ContainsFunc(schemaRows(), func(r schemaRow) bool { return r.file == e.Name() }) {
			t.Errorf("jsonschema/%s has no row in schemaRows", e.Name())
		}
	}
}

func TestJSONSchemaLookup(t *testing.T) {
	tests := []struct {
		name   string
		wantOK bool
	}{
		{name: "inbound-event.json", wantOK: true},
		{name: "inbound-event", wantOK: true},
		{name: "cloudevent", wantOK: true},
		{name: "missing", wantOK: false},
		{name: "", wantOK: false},
		{name: "../doc.go", wantOK: false},
		{name: "jsonschema/cloudevent.json", wantOK: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, ok := JSONSchema(tt.name)
			if ok != tt.wantOK {
				t.Fatalf("JSONSchema(%q) ok = %v, want %v", tt.name, ok, tt.wantOK)
			}
			if ok && !json.Valid(b) {
				t.Errorf("JSONSchema(%q) is not valid JSON", tt.name)
			}
		})
	}
	// The bytes are the caller's: changing them does not change the next answer.
	a, _ := JSONSchema("cloudevent")
	a[0] = 'X'
	if b, _ := JSONSchema("cloudevent"); b[0] == 'X' {
		t.Errorf("JSONSchema returned shared bytes")
	}
}

// TestSchemaCheckerFindsMismatches makes sure the checker itself catches each
// kind of drift.
func TestSchemaCheckerFindsMismatches(t *testing.T) {
	type inner struct {
		A string `json:"a"`
	}
	type shape struct {
		Name  string  `json:"name"`
		Count int     `json:"count,omitempty"`
		List  []inner `json:"list,omitempty"`
	}
	good := `{"type":"object","properties":{"name":{"type":"string"},"count":{"type":"integer"},"list":{"type":"array","items":{"$ref":"#/$defs/inner"}}},"required":["name"],"$defs":{"inner":{"type":"object","properties":{"a":{"type":"string"}},"required":["a"]}}}`
	tests := []struct {
		name   string
		schema string
		want   string
	}{
		{name: "good", schema: good},
		{name: "missing_property", schema: strings.Replace(good, `"count":{"type":"integer"},`, "", 1), want: "count"},
		{name: "extra_property", schema: strings.Replace(good, `"name":{"type":"string"},`, `"name":{"type":"string"},"extra":{"type":"string"},`, 1), want: "extra"},
		{name: "wrong_type", schema: strings.Replace(good, `"count":{"type":"integer"}`, `"count":{"type":"string"}`, 1), want: "count"},
		{name: "required_too_many", schema: strings.Replace(good, `"required":["name"]`, `"required":["name","count"]`, 1), want: "required"},
		{name: "required_too_few", schema: strings.Replace(good, `"required":["name"]`, `"required":[]`, 1), want: "required"},
		{name: "nested_wrong_type", schema: strings.Replace(good, `"a":{"type":"string"}`, `"a":{"type":"integer"}`, 1), want: "list[].a"},
		{name: "dangling_ref", schema: strings.Replace(good, `#/$defs/inner`, `#/$defs/other`, 1), want: "$ref"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var schema map[string]any
			if err := json.Unmarshal([]byte(tt.schema), &schema); err != nil {
				t.Fatal(err)
			}
			problems := schemaMismatches(reflect.TypeFor[shape](), schema, schema, "shape")
			if tt.want == "" {
				if len(problems) != 0 {
					t.Errorf("schemaMismatches = %q, want none", problems)
				}
				return
			}
			if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, tt.want) }) {
				t.Errorf("schemaMismatches = %q, want one naming %q", problems, tt.want)
			}
		})
	}
}

// schemaMismatches compares a Go type with the JSON Schema node that should
// describe its JSON encoding, and lists every difference. root resolves local
// $refs ("#/$defs/name"); path names the node in messages.
func schemaMismatches(typ reflect.Type, node, root map[string]any, path string) []string {
	node, err := resolveSchemaRef(node, root)
	if err != "" {
		return []string{path + ": " + err}
	}
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	want := jsonTypeOf(typ)
	if want != "" && !schemaAllowsType(node, want) {
		return []string{path + ": schema type " + formatSchemaType(node["type"]) + ", Go type " + typ.String() + " encodes as " + want}
	}
	var problems []string
	switch want {
	case "array":
		items, ok := node["items"].(map[string]any)
		if !ok {
			return []string{path + ": array without an items schema"}
		}
		problems = append(problems, schemaMismatches(typ.Elem(), items, root, path+"[]")...)
	case "object":
		if typ.Kind() != reflect.Struct {
			break
		}
		props, _ := node["properties"].(map[string]any)
		fields := jsonFields(typ)
		var wantRequired []string
		for _, f := range fields {
			sub, ok := props[f.name].(map[string]any)
			if !ok {
				problems = append(problems, path+"."+f.name+": missing from the schema's properties")
				continue
			}
			problems = append(problems, schemaMismatches(f.typ, sub, root, path+"."+f.name)...)
			if !f.omitEmpty {
				wantRequired = append(wantRequired, f.name)
			}
		}
		for name := range props {
			if !slices.ContainsFunc(fields, func(f jsonField) bool { return f.name == name }) {
				problems = append(problems, path+"."+name+": in the schema but not in "+typ.String())
			}
		}
		var gotRequired []string
		if req, ok := node["required"].([]any); ok {
			for _, r := range req {
				s, _ := r.(string)
				gotRequired = append(gotRequired, s)
			}
		}
		sort.Strings(wantRequired)
		sort.Strings(gotRequired)
		if !slices.Equal(wantRequired, gotRequired) {
			problems = append(problems, path+": required = "+strings.Join(gotRequired, ",")+", want the fields without omitempty: "+strings.Join(wantRequired, ","))
		}
	}
	return problems
}

// jsonField is one field of a struct's JSON encoding.
type jsonField struct {
	name      string
	omitEmpty bool
	typ       reflect.Type
}

// jsonFields lists the JSON fields of a struct type as encoding/json sees them.
func jsonFields(typ reflect.Type) []jsonField {
	var out []jsonField
	for i := range typ.NumField() {
		f := typ.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if name == "" {
			name = f.Name
		}
		out = append(out, jsonField{
			name:      name,
			omitEmpty: slices.Contains(strings.Split(opts, ","), "omitempty") || slices.Contains(strings.Split(opts, ","), "omitzero"),
			typ:       f.Type,
		})
	}
	return out
}

// jsonTypeOf is the JSON Schema type a Go type encodes as, or "" for any
// (json.RawMessage, interfaces).
func jsonTypeOf(typ reflect.Type) string {
	switch typ {
	case reflect.TypeFor[time.Time]():
		return "string"
	case reflect.TypeFor[json.RawMessage]():
		return ""
	}
	switch typ.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Slice, reflect.Array:
		if typ.Elem().Kind() == reflect.Uint8 {
			return "string"
		}
		return "array"
	case reflect.Struct, reflect.Map:
		return "object"
	}
	return ""
}

// schemaAllowsType reports whether a schema node's type admits want; a number
// schema admits integers.
func schemaAllowsType(node map[string]any, want string) bool {
	var types []string
	switch v := node["type"].(type) {
	case string:
		types = []string{v}
	case []any:
		for _, t := range v {
			if s, ok := t.(string); ok {
				types = append(types, s)
			}
		}
	default:
		return false
	}
	return slices.Contains(types, want) || want == "integer" && slices.Contains(types, "number")
}

func formatSchemaType(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// resolveSchemaRef follows a local "#/$defs/name" reference.
func resolveSchemaRef(node, root map[string]any) (map[string]any, string) {
	ref, ok := node["$ref"].(string)
	if !ok {
		return node, ""
	}
	name, ok := strings.CutPrefix(ref, "#/$defs/")
	if !ok {
		return nil, "unsupported $ref " + ref
	}
	defs, _ := root["$defs"].(map[string]any)
	target, ok := defs[name].(map[string]any)
	if !ok {
		return nil, "dangling $ref " + ref
	}
	return target, ""
}

// TestInboundEventSchemaAcceptsEvents validates every golden event, and the
// JSON of every sample push with its CloudEvent envelope, against the
// schemas.
func TestInboundEventSchemaAcceptsEvents(t *testing.T) {
	schema := loadSchema(t, "inbound-event.json")
	envelope := loadSchema(t, "cloudevent.json")
	goldens, err := filepath.Glob(filepath.Join("testdata", "events", "*.json"))
	if err != nil || len(goldens) == 0 {
		t.Fatalf("no goldens in testdata/events: %v", err)
	}
	for _, path := range goldens {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range validateInstance(t, schema, b) {
			t.Errorf("%s: %s", path, p)
		}
	}
	for _, msg := range []string{
		sampleXMLPopup, sampleJSONPopup, sampleJSONSent, sampleJSONSentNumbers, sampleJSONSentNested, sampleXMLSent,
		sampleXMLChange, sampleJSONChange, sampleV1, sampleV2,
		strings.Replace(sampleJSONPopup, `"PopupScene":2`, `"PopupScene":0`, 1),
		strings.ReplaceAll(sampleXMLPopup, "<PopupScene>2</PopupScene>", ""),
		strings.Replace(sampleJSONSent, `,"ErrorCode":"0","ErrorStatus":"success"`, "", 1),
	} {
		ce, err := InboundCloudEvent(mustParse(t, appSample, msg), time.Unix(1700000000, 0))
		if err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(ce)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range validateInstance(t, envelope, b) {
			t.Errorf("envelope of %q: %s", msg, p)
		}
		for _, p := range validateInstance(t, schema, ce.Data) {
			t.Errorf("data of %q: %s", msg, p)
		}
	}
}

// TestInboundEventSchemaItemRules checks the rules on items that depend on
// the event: which keys each event's items must carry.
func TestInboundEventSchemaItemRules(t *testing.T) {
	schema := loadSchema(t, "inbound-event.json")
	const head = `{"appid":"wxa","openid":"o1","to_user":"gh_1","create_time":1,"raw":"x","msg_type":"event",`
	tests := []struct {
		name  string
		data  string
		valid bool
	}{
		{name: "popup_scene_0", data: `"event":"subscribe_msg_popup_event","items":[{"template_id":"t","status":"accept","popup_scene":0}]}`, valid: true},
		{name: "popup_without_popup_scene", data: `"event":"subscribe_msg_popup_event","items":[{"template_id":"t","status":"accept"}]}`},
		{name: "popup_second_item_without_popup_scene", data: `"event":"subscribe_msg_popup_event","items":[{"template_id":"t","status":"accept","popup_scene":1},{"template_id":"u","status":"reject"}]}`},
		{name: "popup_scene_not_integer", data: `"event":"subscribe_msg_popup_event","items":[{"template_id":"t","status":"accept","popup_scene":"0"}]}`},
		{name: "popup_bad_status", data: `"event":"subscribe_msg_popup_event","items":[{"template_id":"t","status":"ban","popup_scene":0}]}`},
		{name: "popup_without_items", data: `"event":"subscribe_msg_popup_event"}`},
		{name: "change_without_popup_scene", data: `"event":"subscribe_msg_change_event","items":[{"template_id":"t","status":"reject"}]}`, valid: true},
		{name: "change_without_status", data: `"event":"subscribe_msg_change_event","items":[{"template_id":"t"}]}`},
		{name: "sent_error_code_0", data: `"event":"subscribe_msg_sent_event","items":[{"template_id":"t","msg_id":"1","error_code":0,"error_status":"success"}]}`, valid: true},
		{name: "sent_without_error_status", data: `"event":"subscribe_msg_sent_event","items":[{"template_id":"t","msg_id":"1","error_code":0}]}`, valid: true},
		{name: "sent_without_error_code", data: `"event":"subscribe_msg_sent_event","items":[{"template_id":"t","msg_id":"1","error_status":"success"}]}`},
		{name: "sent_without_msg_id", data: `"event":"subscribe_msg_sent_event","items":[{"template_id":"t","error_code":0}]}`},
		{name: "sent_empty_items", data: `"event":"subscribe_msg_sent_event","items":[]}`},
		{name: "other_event_without_codes", data: `"event":"future_event","items":[{"template_id":"t"}]}`, valid: true},
		{name: "item_without_template", data: `"event":"future_event","items":[{"status":"x"}]}`},
		{name: "event_without_name", data: `"items":[]}`},
		{name: "event_name_empty", data: `"event":""}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := head + tt.data
			problems := validateInstance(t, schema, []byte(doc))
			if got := len(problems) == 0; got != tt.valid {
				t.Errorf("validate(%s) = %q, want valid %v", doc, problems, tt.valid)
			}
		})
	}
}

func loadSchema(t *testing.T, name string) map[string]any {
	t.Helper()
	b, ok := JSONSchema(name)
	if !ok {
		t.Fatalf("JSONSchema(%q) not found", name)
	}
	var schema map[string]any
	if err := json.Unmarshal(b, &schema); err != nil {
		t.Fatalf("JSONSchema(%q): %v", name, err)
	}
	return schema
}

// validateInstance validates a JSON document against a schema and lists the
// failures. It implements the part of JSON Schema 2020-12 that the package's
// schemas use and fails the test on any other keyword, so that a schema can
// never pass by using a keyword the check ignores.
func validateInstance(t *testing.T, schema map[string]any, doc []byte) []string {
	t.Helper()
	var v any
	if err := json.Unmarshal(doc, &v); err != nil {
		t.Fatalf("instance %s: %v", doc, err)
	}
	return schemaValidate(t, schema, schema, v, "$")
}

func schemaValidate(t *testing.T, node, root map[string]any, v any, path string) []string {
	t.Helper()
	var problems []string
	fail := func(format string, args ...any) {
		problems = append(problems, path+": "+fmt.Sprintf(format, args...))
	}
	sub := func(x any) map[string]any {
		m, ok := x.(map[string]any)
		if !ok {
			t.Fatalf("schema at %s: subschema %v is not an object", path, x)
		}
		return m
	}
	obj, isObj := v.(map[string]any)
	arr, isArr := v.([]any)
	str, isStr := v.(string)
	num, isNum := v.(float64)
	for key, kw := range node {
		switch key {
		case "$schema", "$defs", "title", "description", "format":
			// Annotations: format is one too, unless a validator opts in.
		case "$ref":
			target, err := resolveSchemaRef(node, root)
			if err != "" {
				t.Fatalf("schema at %s: %s", path, err)
			}
			problems = append(problems, schemaValidate(t, target, root, v, path)...)
		case "type":
			if !jsonValueHasType(v, kw) {
				fail("%v is not of type %v", v, kw)
			}
		case "const":
			if !reflect.DeepEqual(v, kw) {
				fail("%v is not %v", v, kw)
			}
		case "enum":
			if !slices.ContainsFunc(kw.([]any), func(e any) bool { return reflect.DeepEqual(v, e) }) {
				fail("%v is not one of %v", v, kw)
			}
		case "minLength":
			if isStr && float64(utf8.RuneCountInString(str)) < kw.(float64) {
				fail("%q is shorter than %v", str, kw)
			}
		case "minimum":
			if isNum && num < kw.(float64) {
				fail("%v is less than %v", num, kw)
			}
		case "minItems":
			if isArr && float64(len(arr)) < kw.(float64) {
				fail("%d items, fewer than %v", len(arr), kw)
			}
		case "required":
			for _, name := range kw.([]any) {
				if _, ok := obj[name.(string)]; isObj && !ok {
					fail("%s is required", name)
				}
			}
		case "properties":
			for name, s := range sub(kw) {
				if x, ok := obj[name]; isObj && ok {
					problems = append(problems, schemaValidate(t, sub(s), root, x, path+"."+name)...)
				}
			}
		case "items":
			for i, x := range arr {
				problems = append(problems, schemaValidate(t, sub(kw), root, x, path+"["+strconv.Itoa(i)+"]")...)
			}
		case "allOf":
			for _, s := range kw.([]any) {
				problems = append(problems, schemaValidate(t, sub(s), root, v, path)...)
			}
		case "if":
			branch := "then"
			if len(schemaValidate(t, sub(kw), root, v, path)) != 0 {
				branch = "else"
			}
			if s, ok := node[branch]; ok {
				problems = append(problems, schemaValidate(t, sub(s), root, v, path)...)
			}
		case "then", "else":
			// Applied by "if".
		default:
			t.Fatalf("schema at %s: keyword %q is not supported by this check", path, key)
		}
	}
	return problems
}

// jsonValueHasType reports whether a decoded JSON value has a JSON Schema
// type, given as a name or a list of names.
func jsonValueHasType(v any, typ any) bool {
	names, ok := typ.([]any)
	if !ok {
		names = []any{typ}
	}
	for _, n := range names {
		switch x := v.(type) {
		case nil:
			ok = n == "null"
		case bool:
			ok = n == "boolean"
		case string:
			ok = n == "string"
		case float64:
			ok = n == "number" || n == "integer" && x == math.Trunc(x)
		case []any:
			ok = n == "array"
		case map[string]any:
			ok = n == "object"
		}
		if ok {
			return true
		}
	}
	return false
}
