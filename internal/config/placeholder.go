package config

import (
	"fmt"
	"reflect"
	"strings"
)

// Placeholders that stand for a secret someone has yet to fill in. A secret
// (apps[].secret, token, encoding_aes_key, previous_encoding_aes_key,
// admin.tokens, and the URLs that carry passwords) is refused when, ignoring
// case, it contains one of placeholderWords, equals one of placeholderValues,
// is made only of x's or only of dots (three or more: "xxx", "..."), or is
// wrapped in angle brackets ("<your token>"). The list is short on purpose:
// every entry is a word nobody uses as a real secret.
var (
	placeholderWords  = []string{"replace_me", "replace-me", "replaceme", "change_me", "change-me", "changeme"}
	placeholderValues = []string{"todo", "tbd", "fixme"}
)

// placeholder returns the placeholder s is, or "" when it is none.
func placeholder(s string) string {
	v := strings.ToLower(strings.TrimSpace(s))
	for _, w := range placeholderWords {
		if strings.Contains(v, w) {
			return w
		}
	}
	for _, w := range placeholderValues {
		if v == w {
			return w
		}
	}
	switch {
	case len(v) >= 3 && strings.Trim(v, "x") == "":
		return "xxx"
	case len(v) >= 3 && strings.Trim(v, ".") == "":
		return "..."
	case len(v) >= 2 && v[0] == '<' && v[len(v)-1] == '>':
		return "<...>"
	}
	return ""
}

// checkPlaceholders adds a problem for every secret that is a placeholder. The
// message names the placeholder, never the value.
func (c *Config) checkPlaceholders(ps *problems) {
	for _, l := range leaves(reflect.ValueOf(c).Elem(), "", false) {
		if !l.secret {
			continue
		}
		switch p := l.value.Addr().Interface().(type) {
		case *string:
			if w := placeholder(*p); w != "" {
				ps.add(keyName(l.path), placeholderWhy(l.path, w))
			}
		case *[]string:
			for i, s := range *p {
				if w := placeholder(s); w != "" {
					ps.add(fmt.Sprintf("%s[%d]", keyName(l.path), i), placeholderWhy(l.path, w))
				}
			}
		}
	}
}

func placeholderWhy(path, word string) string {
	if strings.HasPrefix(path, "admin.tokens.") {
		return fmt.Sprintf("is a placeholder (%q); set a real token, such as the output of 'openssl rand -hex 24'", word)
	}
	return fmt.Sprintf("is a placeholder (%q); set the real value", word)
}
