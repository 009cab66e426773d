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

// maxApps bounds the app indexes a file or the environment may name.
const maxApps = 1000

// apply sets every key in values (key path -> text) on cfg. A key "<secret>_file"
// reads the secret from that file. Apps named only here are added. Problems name
// the key and, through origin, where it came from.
func apply(cfg *Config, values map[string]string, origin func(key string) string, ps *problems) {
	maxApp, maxToken := -1, -1
	for k := range values {
		if m := appIndexPattern.FindStringSubmatch(k); m != nil {
			n, err := strconv.Atoi(m[1])
			if err != nil || n >= maxApps {
				continue // reported below as an unknown key
			}
			maxApp = max(maxApp, n)
		}
		if m := tokenIndexPattern.FindStringSubmatch(k); m != nil {
			n, err := strconv.Atoi(m[1])
			if err != nil || n >= 1000 {
				continue // reported below as an unknown key
			}
			maxToken = max(maxToken, n)
		}
	}
	for len(cfg.Apps) <= maxApp {
		cfg.Apps = append(cfg.Apps, App{})
	}
	bare := bareTokens(cfg, values, origin, ps)
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
			if _, both := values[k+fileSuffix]; both && l.secret {
				// The value is still set, so that the one problem is not
				// followed by a misleading "is required".
				ps.add(origin(k), fmt.Sprintf("is set together with %s; keep one", keyName(k+fileSuffix)))
			}
			if err := set(l.value, v); err != nil {
				ps.add(origin(k), err.Error())
			}
			continue
		}
		base, isFile := strings.CutSuffix(k, fileSuffix)
		l, ok := byPath[base]
		switch {
		case !ok || !isFile:
			ps.add(origin(k), unknownKey(k, byPath))
			continue
		case !l.secret:
			ps.add(origin(k), "only secrets can be read from a file")
			continue
		}
		if _, both := values[base]; both {
			continue // reported with base
		}
		b, err := os.ReadFile(v)
		if err != nil {
			ps.add(origin(k), err.Error())
			continue
		}
		if err := set(l.value, strings.TrimRight(string(b), "\r\n")); err != nil {
			ps.add(origin(k), err.Error())
		}
	}
}

// unknownKey says that path is not a key, and which key it may have meant.
func unknownKey(path string, byPath map[string]leaf) string {
	if m := appIndexPattern.FindStringSubmatch(path); m != nil {
		if n, err := strconv.Atoi(m[1]); err != nil || n >= maxApps {
			return fmt.Sprintf("app index out of range (at most %d apps)", maxApps)
		}
	}
	candidates := make([]string, 0, 2*len(byPath))
	for p, l := range byPath {
		candidates = append(candidates, p)
		if l.secret {
			candidates = append(candidates, p+fileSuffix)
		}
	}
	// Apps named only by a bad key have no leaves yet: offer app 0's fields
	// under the same index.
	if m := appIndexPattern.FindStringSubmatch(path); m != nil {
		for _, f := range appFields() {
			candidates = append(candidates, "apps."+m[1]+"."+f)
		}
	}
	sort.Strings(candidates) // ties go to the same key every time
	if near := nearest(path, candidates); near != "" {
		return fmt.Sprintf("unknown key; did you mean %s?", keyName(near))
	}
	return "unknown key"
}

// appFields lists the keys of one app, with "_file" forms of its secrets.
func appFields() []string {
	var out []string
	for _, l := range leaves(reflect.ValueOf(&App{}).Elem(), "", false) {
		out = append(out, l.path)
		if l.secret {
			out = append(out, l.path+fileSuffix)
		}
	}
	return out
}

// clientVariables are read by the operator commands (send, status, ...), not
// by the configuration; a shell that sets them may still start a server.
var clientVariables = map[string]bool{"WXGATE_ADMIN_URL": true, "WXGATE_ADMIN_TOKEN": true}

// envValues picks the WXGATE_* variables out of environ as key path -> value.
// Variable names cannot tell "data_dir" from "data.dir", so each is matched
// against the known keys; a variable that matches none is a problem, named
// with the nearest known variable.
func envValues(cfg *Config, environ []string, ps *problems) map[string]string {
	known := map[string]string{}
	for _, l := range leaves(reflect.ValueOf(cfg).Elem(), "", false) {
		known[envName(l.path)] = l.path
		if l.secret {
			known[envName(l.path+fileSuffix)] = l.path + fileSuffix
		}
	}
	fields := map[string]bool{}
	for _, f := range appFields() {
		fields[f] = true
	}
	// The older form of admin.tokens, a list of bare tokens (see bareTokens).
	known[envName(tokensKey)] = tokensKey
	known[envName(tokensKey+fileSuffix)] = tokensKey + fileSuffix
	out := map[string]string{}
	var unknown []string
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(k, envPrefix) || clientVariables[k] {
			continue
		}
		if path, ok := known[k]; ok {
			out[path] = v
			continue
		}
		// An admin token that exists only in the environment, likewise.
		if m := envTokenPattern.FindStringSubmatch(k); m != nil {
			out["admin.tokens."+m[1]+"."+strings.ToLower(m[2])] = v
			continue
		}
		// An app that exists only in the environment: map its field by name.
		if m := envAppPattern.FindStringSubmatch(k); m != nil && fields[strings.ToLower(m[2])] {
			index := strings.TrimLeft(m[1], "0")
			if index == "" {
				index = "0"
			}
			out["apps."+index+"."+strings.ToLower(m[2])] = v
			continue
		}
		unknown = append(unknown, k)
	}
	sort.Strings(unknown)
	for _, k := range unknown {
		ps.add(k, unknownVariable(k, known))
	}
	return out
}

// unknownVariable says that name is no wxgate variable, and which it may have meant.
func unknownVariable(name string, known map[string]string) string {
	candidates := make([]string, 0, len(known)+16)
	for k := range known {
		candidates = append(candidates, k)
	}
	index := "0"
	if m := envAppIndexPattern.FindStringSubmatch(name); m != nil {
		index = m[1]
	}
	for _, f := range appFields() {
		candidates = append(candidates, envName("apps."+index+"."+f))
	}
	candidates = append(candidates, "WXGATE_ADMIN_URL", "WXGATE_ADMIN_TOKEN")
	sort.Strings(candidates)
	if near := nearest(name, candidates); near != "" {
		return fmt.Sprintf("unknown variable; did you mean %s?", near)
	}
	return "unknown variable: no wxgate setting has this name"
}

var (
	envAppPattern      = regexp.MustCompile(`^WXGATE_APPS_([0-9]+)_([A-Z_]+)$`)
	envAppIndexPattern = regexp.MustCompile(`^WXGATE_APPS?_([0-9]{1,3})_`)
)

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
	case *[]Duration:
		*p = nil
		for _, part := range strings.Split(s, ",") {
			var d Duration
			if err := d.parse(part); err != nil {
				return err
			}
			*p = append(*p, d)
		}
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
func flatten(n *yaml.Node, path string, out map[string]string, ps *problems) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			flatten(c, path, out, ps)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			p := n.Content[i].Value
			if path != "" {
				p = path + "." + p
			}
			flatten(n.Content[i+1], p, out, ps)
		}
	case yaml.SequenceNode:
		var scalars []string
		for i, c := range n.Content {
			if c.Kind == yaml.ScalarNode {
				if strings.Contains(c.Value, ",") {
					ps.add(fmt.Sprintf("%s[%d]", keyName(path), i), "must not contain a comma")
				}
				scalars = append(scalars, c.Value)
				continue
			}
			flatten(c, fmt.Sprintf("%s.%d", path, i), out, ps)
		}
		if len(scalars) > 0 || len(n.Content) == 0 {
			out[path] = strings.Join(scalars, ",")
		}
	case yaml.ScalarNode:
		out[path] = n.Value
	case yaml.AliasNode:
		flatten(n.Alias, path, out, ps)
	}
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

// Changed lists the keys whose values differ between c and next, in the
// documentation's spelling ("apps[1].token"), for a log line: it never shows a
// value. Keys present in only one of them (an app added or removed) count as
// changed.
func (c Config) Changed(next Config) []string {
	text := func(cfg *Config) ([]string, map[string]string) {
		var order []string
		m := map[string]string{}
		for _, l := range leaves(reflect.ValueOf(cfg).Elem(), "", false) {
			order = append(order, l.path)
			m[l.path] = fmt.Sprintf("%#v", l.value.Interface())
		}
		return order, m
	}
	oldOrder, oldValues := text(&c)
	newOrder, newValues := text(&next)
	var out []string
	for _, p := range oldOrder {
		if v, ok := newValues[p]; !ok || v != oldValues[p] {
			out = append(out, keyName(p))
		}
	}
	for _, p := range newOrder {
		if _, ok := oldValues[p]; !ok {
			out = append(out, keyName(p))
		}
	}
	return out
}
