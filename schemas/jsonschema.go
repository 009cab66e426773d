package schemas

import (
	"embed"
	"io/fs"
	"strings"
)

// jsonSchemas holds one JSON Schema (draft 2020-12) per event data shape and
// one for the CloudEvents envelope.
//
//go:embed jsonschema/*.json
var jsonSchemas embed.FS

// JSONSchema returns the JSON Schema called name ("inbound-event" or
// "inbound-event.json", "cloudevent", ...) and whether it exists. The bytes
// are the caller's own copy. It is safe for concurrent use.
func JSONSchema(name string) ([]byte, bool) {
	if name == "" || strings.ContainsAny(name, `/\`) {
		return nil, false
	}
	if !strings.HasSuffix(name, ".json") {
		name += ".json"
	}
	b, err := fs.ReadFile(jsonSchemas, "jsonschema/"+name)
	if err != nil {
		return nil, false
	}
	return b, true
}
