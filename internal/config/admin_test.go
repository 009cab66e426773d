package config

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// summarizeTokens renders tokens as "name=token/role/apps" entries.
func summarizeTokens(tokens []AdminToken) string {
	parts := make([]string, len(tokens))
	for i, t := range tokens {
		parts[i] = fmt.Sprintf("%s=%s/%s/%s", t.Name, t.Token, t.Role, strings.Join(t.Apps, ","))
	}
	return strings.Join(parts, " ")
}

const otherApp = `  - appid: wx0123456789abcdef
    token: BBBBB
`

func TestAdminTokens(t *testing.T) {
	hash := sha256.Sum256([]byte("hashed-token-value"))
	hashed := "sha256:" + hex.EncodeToString(hash[:])
	tokenFile := writeFile(t, "tok", "from-a-file-token\n")
	tests := []struct {
		name string
		yaml string
		env  []string
		want string
	}{
		{
			name: "bare tokens are admin tokens for all apps",
			yaml: "admin:\n  tokens: [first-token, second-token]\n",
			want: "admin.tokens[0]=first-token/admin/* admin.tokens[1]=second-token/admin/*",
		},
		{
			name: "token entries",
			yaml: `admin:
  tokens:
    - name: reader
      token: reader-token
      role: read
      apps: [wxba5fad812f8e6fb9]
    - name: ci
      token_file: ` + tokenFile + `
      role: send
      apps: [wxba5fad812f8e6fb9, wx0123456789abcdef]
    - name: ops
      token: ` + hashed + `
      role: admin
      apps: ["*"]
`,
			want: "reader=reader-token/read/wxba5fad812f8e6fb9 ci=from-a-file-token/send/wxba5fad812f8e6fb9,wx0123456789abcdef ops=" + hashed + "/admin/*",
		},
		{
			name: "an entry only in the environment",
			env: []string{
				"WXGATE_ADMIN_TOKENS_0_NAME=env-reader",
				"WXGATE_ADMIN_TOKENS_0_TOKEN_FILE=" + tokenFile,
				"WXGATE_ADMIN_TOKENS_0_ROLE=read",
				"WXGATE_ADMIN_TOKENS_0_APPS=wx0123456789abcdef",
			},
			want: "env-reader=from-a-file-token/read/wx0123456789abcdef",
		},
		{
			name: "the environment overrides an entry's field",
			yaml: "admin:\n  tokens:\n    - name: ci\n      token: ci-token-1\n      role: send\n      apps: ['*']\n",
			env:  []string{"WXGATE_ADMIN_TOKENS_0_ROLE=read"},
			want: "ci=ci-token-1/read/*",
		},
		{
			name: "bare tokens from the environment replace the file's entries",
			yaml: "admin:\n  tokens:\n    - name: ci\n      token: ci-token-1\n      role: send\n      apps: ['*']\n",
			env:  []string{"WXGATE_ADMIN_TOKENS=env-token-1,env-token-2"},
			want: "admin.tokens[0]=env-token-1/admin/* admin.tokens[1]=env-token-2/admin/*",
		},
		{
			name: "an empty list",
			yaml: "admin:\n  tokens: []\n",
			want: "",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, "c.yaml", validApp+otherApp+tt.yaml)
			cfg, err := Load(path, tt.env)
			if err != nil {
				t.Fatalf("Load = %v", err)
			}
			if got := summarizeTokens(cfg.Admin.Tokens); got != tt.want {
				t.Errorf("admin.tokens = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestAdminTokensInvalid(t *testing.T) {
	entry := func(name, token, role, apps string) string {
		return fmt.Sprintf("    - name: %s\n      token: %s\n      role: %s\n      apps: %s\n", name, token, role, apps)
	}
	tests := []struct {
		name, tokens string
		env          []string
		wantKey      string
		wantWhy      string
	}{
		{"short bare token", "  tokens: [abc]\n", nil, "admin.tokens[0].token", "at least 8"},
		{"no name", "  tokens:\n" + entry("''", "long-enough-1", "read", "['*']"), nil, "admin.tokens[0].name", "required"},
		{"name with a space", "  tokens:\n" + entry("'two words'", "long-enough-1", "read", "['*']"), nil, "admin.tokens[0].name", "required"},
		{"duplicate name", "  tokens:\n" + entry("a", "long-enough-1", "read", "['*']") + entry("a", "long-enough-2", "read", "['*']"), nil, "admin.tokens[1].name", "admin.tokens[0]"},
		{"duplicate token", "  tokens:\n" + entry("a", "long-enough-1", "read", "['*']") + entry("b", "long-enough-1", "admin", "['*']"), nil, "admin.tokens[1].token", "admin.tokens[0]"},
		{"duplicate token, once hashed", "  tokens:\n" + entry("a", "long-enough-1", "read", "['*']") + entry("b", "sha256:"+hexDigest("long-enough-1"), "admin", "['*']"), nil, "admin.tokens[1].token", "admin.tokens[0]"},
		{"hash too short", "  tokens:\n" + entry("a", "sha256:abcd", "read", "['*']"), nil, "admin.tokens[0].token", "64 hex digits"},
		{"hash not hex", "  tokens:\n" + entry("a", "sha256:"+strings.Repeat("g", 64), "read", "['*']"), nil, "admin.tokens[0].token", "64 hex digits"},
		{"no token", "  tokens:\n" + entry("a", "''", "read", "['*']"), nil, "admin.tokens[0].token", "at least 8"},
		{"no role", "  tokens:\n" + entry("a", "long-enough-1", "''", "['*']"), nil, "admin.tokens[0].role", "read, send or admin"},
		{"unknown role", "  tokens:\n" + entry("a", "long-enough-1", "write", "['*']"), nil, "admin.tokens[0].role", "read, send or admin"},
		{"no apps", "  tokens:\n" + entry("a", "long-enough-1", "read", "[]"), nil, "admin.tokens[0].apps", "required"},
		{"unknown app", "  tokens:\n" + entry("a", "long-enough-1", "read", "[wx0000000000000000]"), nil, "admin.tokens[0].apps", "wx0000000000000000"},
		{"all apps and one", "  tokens:\n" + entry("a", "long-enough-1", "read", "['*', wxba5fad812f8e6fb9]"), nil, "admin.tokens[0].apps", "alone"},
		{"app twice", "  tokens:\n" + entry("a", "long-enough-1", "read", "[wxba5fad812f8e6fb9, wxba5fad812f8e6fb9]"), nil, "admin.tokens[0].apps", "twice"},
		{"token file missing", "  tokens:\n    - name: a\n      token_file: /does/not/exist\n      role: read\n      apps: ['*']\n", nil, "admin.tokens[0].token_file", "no such file"},
		{"bare list and file", "", []string{"WXGATE_ADMIN_TOKENS=long-enough-1", "WXGATE_ADMIN_TOKENS_FILE=/x"}, "admin.tokens_file", "not both"},
		{"bare list and entries", "", []string{"WXGATE_ADMIN_TOKENS=long-enough-1", "WXGATE_ADMIN_TOKENS_0_NAME=a"}, "admin.tokens", "not both"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			yaml := validApp
			if tt.tokens != "" {
				yaml += "admin:\n" + tt.tokens
			}
			path := writeFile(t, "c.yaml", yaml)
			_, err := Load(path, tt.env)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.wantKey) || !strings.Contains(err.Error(), tt.wantWhy) {
				t.Errorf("Load = %v, want ErrInvalid naming %q and saying %q", err, tt.wantKey, tt.wantWhy)
			}
			if err != nil && strings.Contains(err.Error(), "long-enough-1") {
				t.Errorf("Load = %v: the error shows a token", err)
			}
		})
	}
}

func hexDigest(s string) string {
	d := sha256.Sum256([]byte(s))
	return hex.EncodeToString(d[:])
}

func TestStringRedactsAdminTokens(t *testing.T) {
	path := writeFile(t, "c.yaml", validApp+`admin:
  tokens:
    - name: ci-sender
      token: plaintext-token-xyz
      role: send
      apps: [wxba5fad812f8e6fb9]
    - name: ops
      token: sha256:`+hexDigest("ops-token")+`
      role: admin
      apps: ["*"]
`)
	cfg, err := Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := cfg.String()
	for _, secret := range []string{"plaintext-token-xyz", hexDigest("ops-token")} {
		if strings.Contains(out, secret) {
			t.Errorf("String() contains %q:\n%s", secret, out)
		}
	}
	for _, shown := range []string{"ci-sender", "role: send", "ops"} {
		if !strings.Contains(out, shown) {
			t.Errorf("String() lacks %q:\n%s", shown, out)
		}
	}
	if cfg.Admin.Tokens[0].Token != "plaintext-token-xyz" {
		t.Errorf("String() changed the config: token = %q", cfg.Admin.Tokens[0].Token)
	}
}
