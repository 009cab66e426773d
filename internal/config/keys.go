package config

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// envPrefix starts every environment override.
const envPrefix = "WXGATE_"

// fileSuffix names a key whose value is a path to a file holding the secret.
const fileSuffix = "_file"

// leaf is one settable key of the configuration.
type leaf struct {
	path   string // "apps.0.secret"
	value  reflect.Value
	secret bool
}

// leaves lists every settable key below v, depth first.
func leaves(v reflect.Value, path string, secret bool) []leaf {
	switch v.Kind() {
	case reflect.Struct:
		var out []leaf
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name := strings.Split(f.Tag.Get("yaml"), ",")[0]
			if name == "" || name == "-" {
				continue
			}
			p := name
			if path != "" {
				p = path + "." + name
			}
			out = append(out, leaves(v.Field(i), p, f.Tag.Get("secret") == "true")...)
		}
		return out
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Struct {
			var out []leaf
			for i := 0; i < v.Len(); i++ {
				out = append(out, leaves(v.Index(i), fmt.Sprintf("%s.%d", path, i), secret)...)
			}
			return out
		}
	}
	return []leaf{{path: path, value: v, secret: secret}}
}

// envName is the environment variable that overrides a key path.
func envName(path string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(path, ".", "_"))
}

var appIndexPattern = regexp.MustCompile(`^apps\.([0-9]+)\.`)

// apply sets every key in values (key path -> text) on cfg. A key "<secret>_file"
// reads the secret from that file. Apps named only here are added. Errors name
// the key and, through origin, where it came from.
func apply(cfg *Config, values map[string]string, origin func(key string) string) error {
	maxApp, maxToken := -1, -1
	for k := range values {
		if m := appIndexPattern.FindStringSubmatch(k); m != nil {
			n, err := strconv.Atoi(m[1])
			if err != nil || n >= 1000 {
				return fmt.Errorf("%w: %s: app index out of range", ErrInvalid, origin(k))
			}
			maxApp = max(maxApp, n)
		}
		if m := tokenIndexPattern.FindStringSubmatch(k); m != nil {
			n, err := strconv.Atoi(m[1])
			if err != nil || n >= 1000 {
				return fmt.Errorf("%w: %s: token index out of range", ErrInvalid, origin(k))
			}
			maxToken = max(maxToken, n)
		}
	}
	for len(cfg.Apps) <= maxApp {
		cfg.Apps = append(cfg.Apps, App{})
	}
	bare, err := bareTokens(cfg, values, origin)
	if err != nil {
		return err
	}
	for len(cfg.Admin.Tokens) <= maxToken {
		cfg.Admin.Tokens = append(cfg.Admin.Tokens, AdminToken{})
	}
	byPath := map[string]leaf{}
	for _, l := range leaves(reflect.ValueOf(cfg).Elem(), "", false) {
		byPath[l.path] = l
	}
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := values[k]
		if bare && (k == tokensKey || k == tokensKey+fileSuffix) {
			continue // read by bareTokens
		}
		if l, ok := byPath[k]; ok {
			if err := set(l.value, v); err != nil {
				return fmt.Errorf("%w: %s: %v", ErrInvalid, origin(k), err)
			}
			continue
		}
		base, isFile := strings.CutSuffix(k, fileSuffix)
		l, ok := byPath[base]
		switch {
		case !ok:
			return fmt.Errorf("%w: %s: unknown key", ErrInvalid, origin(k))
		case !isFile:
			return fmt.Errorf("%w: %s: unknown key", ErrInvalid, origin(k))
		case !l.secret:
			return fmt.Errorf("%w: %s: only secrets can be read from a file", ErrInvalid, origin(k))
		}
		b, err := os.ReadFile(v)
		if err != nil {
			return fmt.Errorf("%w: %s: %v", ErrInvalid, origin(k), err)
		}
		if err := set(l.value, strings.TrimRight(string(b), "\r\n")); err != nil {
			return fmt.Errorf("%w: %s: %v", ErrInvalid, origin(k), err)
		}
	}
	return nil
}

// envValues picks the WXGATE_* variables out of environ as key path -> value.
// Variable names cannot tell "data_dir" from "data.dir", so each is matched
// against the known keys.
func envValues(cfg *Config, environ []string) map[string]string {
	known := map[string]string{}
	for _, l := range leaves(reflect.ValueOf(cfg).Elem(), "", false) {
		known[envName(l.path)] = l.path
		if l.secret {
			known[envName(l.path+fileSuffix)] = l.path + fileSuffix
		}
	}
	// The older form of admin.tokens, a list of bare tokens (see bareTokens).
	known[envName(tokensKey)] = tokensKey
	known[envName(tokensKey+fileSuffix)] = tokensKey + fileSuffix
	out := map[string]string{}
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(k, envPrefix) {
			continue
		}
		if path, ok := known[k]; ok {
			out[path] = v
		} else if m := envAppPattern.FindStringSubmatch(k); m != nil {
			// An app that exists only in the environment: map its field by name.
			out["apps."+m[1]+"."+strings.ToLower(m[2])] = v
		} else if m := envTokenPattern.FindStringSubmatch(k); m != nil {
			// Likewise an admin token.
			out["admin.tokens."+m[1]+"."+strings.ToLower(m[2])] = v
		}
	}
	return out
}

var envAppPattern = regexp.MustCompile(`^WXGATE_APPS_([0-9]{1,3})_([A-Z_]+)$`)

// set parses s into the key's type.
func set(v reflect.Value, s string) error {
	switch p := v.Addr().Interface().(type) {
	case *string:
		*p = s
	case *int:
		n, err := strconv.Atoi(s)
		if err != nil {
			return errors.New("not a whole number")
		}
		*p = n
	case *Duration:
		return p.parse(s)
	case *ByteSize:
		return p.parse(s)
	case *[]string:
		// Commas separate items in YAML and the environment; a file may also
		// list one per line.
		*p = nil
		for _, part := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '\n' || r == '\r' }) {
			if part = strings.TrimSpace(part); part != "" {
				*p = append(*p, part)
			}
		}
	default:
		return fmt.Errorf("unsupported type %s", v.Type())
	}
	return nil
}

// flatten turns a YAML document into key path -> scalar text, with sequences of
// scalars joined by commas (as in the environment) and sequences of mappings
// indexed ("apps.0.token").
func flatten(n *yaml.Node, path string, out map[string]string) error {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			if err := flatten(c, path, out); err != nil {
				return err
			}
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			p := n.Content[i].Value
			if path != "" {
				p = path + "." + p
			}
			if err := flatten(n.Content[i+1], p, out); err != nil {
				return err
			}
		}
	case yaml.SequenceNode:
		var scalars []string
		for i, c := range n.Content {
			if c.Kind == yaml.ScalarNode {
				if strings.Contains(c.Value, ",") {
					return fmt.Errorf("%w: %s[%d]: must not contain a comma", ErrInvalid, path, i)
				}
				scalars = append(scalars, c.Value)
				continue
			}
			if err := flatten(c, fmt.Sprintf("%s.%d", path, i), out); err != nil {
				return err
			}
		}
		if len(scalars) > 0 || len(n.Content) == 0 {
			out[path] = strings.Join(scalars, ",")
		}
	case yaml.ScalarNode:
		out[path] = n.Value
	case yaml.AliasNode:
		return flatten(n.Alias, path, out)
	}
	return nil
}

// redacted returns a copy of c with every non-empty secret replaced.
func redacted(c Config) Config {
	c.Apps = append([]App(nil), c.Apps...)
	c.Admin.Tokens = append([]AdminToken(nil), c.Admin.Tokens...)
	for _, l := range leaves(reflect.ValueOf(&c).Elem(), "", false) {
		if !l.secret {
			continue
		}
		switch p := l.value.Addr().Interface().(type) {
		case *string:
			if *p != "" {
				*p = "REDACTED"
			}
		case *[]string:
			for i := range *p {
				(*p)[i] = "REDACTED"
			}
		}
	}
	return c
}
