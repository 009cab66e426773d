package schemas

import (
	"encoding/json"
	"io/fs"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
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
