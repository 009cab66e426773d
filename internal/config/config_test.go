package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const validApp = `
apps:
  - appid: wxba5fad812f8e6fb9
    secret: s3cr3t-app-secret
    token: AAAAA
    encoding_aes_key: AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA
`

func writeFile(t *testing.T, name, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadDefaults(t *testing.T) {
	cfg, err := Load("", nil)
	if err != nil {
		t.Fatalf("Load(no file) = %v", err)
	}
	if cfg.Listen != "127.0.0.1:8080" || cfg.NATS.URL != "" || cfg.Mongo.URI != "" {
		t.Errorf("defaults = listen %q nats %q mongo %q, want embedded defaults", cfg.Listen, cfg.NATS.URL, cfg.Mongo.URI)
	}
	if cfg.Callback.MaxSkew.D() != 5*time.Minute || cfg.Callback.MaxBody != 1<<20 || cfg.NATS.MaxAge.D() != 168*time.Hour {
		t.Errorf("defaults = skew %v body %d age %v", cfg.Callback.MaxSkew.D(), cfg.Callback.MaxBody, cfg.NATS.MaxAge.D())
	}
}

func TestLoadFileAndEnv(t *testing.T) {
	secretFile := writeFile(t, "secret", "from-file-secret\n")
	path := writeFile(t, "wxgate.yaml", `
listen: 127.0.0.1:9090
callback:
  max_skew: 0s
  max_body: 64KiB
admin:
  tokens: ["operator-token-1"]
`+validApp+`    token_file: `+writeFile(t, "token", "FROMFILE")+"\n")
	env := []string{
		"WXGATE_NATS_URL=nats://10.0.0.1:4222",
		"WXGATE_APPS_0_SECRET_FILE=" + secretFile,
		"WXGATE_APPS_1_APPID=wx0123456789abcdef",
		"WXGATE_APPS_1_TOKEN=tok",
		"WXGATE_ADMIN_TOKENS_FILE=" + writeFile(t, "tokens", "aaaaaaaa1\nbbbbbbbb2, cccccccc3\n"),
		"HOME=/root",
	}
	cfg, err := Load(path, env)
	if err != nil {
		t.Fatalf("Load = %v", err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"listen", cfg.Listen, "127.0.0.1:9090"},
		{"nats.url", cfg.NATS.URL, "nats://10.0.0.1:4222"},
		{"callback.max_skew", cfg.Callback.MaxSkew.D(), time.Duration(0)},
		{"callback.max_body", cfg.Callback.MaxBody, ByteSize(64 << 10)},
		{"apps[0].secret", cfg.Apps[0].Secret, "from-file-secret"},
		{"apps[0].token", cfg.Apps[0].Token, "FROMFILE"},
		{"apps[0].api_base", cfg.Apps[0].APIBase, "https://api.weixin.qq.com"},
		{"apps[0].token_api", cfg.Apps[0].TokenAPI, "stable_token"},
		{"apps[1].appid", cfg.Apps[1].AppID, "wx0123456789abcdef"},
		{"admin.tokens", summarizeTokens(cfg.Admin.Tokens), "admin.tokens[0]=aaaaaaaa1/admin/* admin.tokens[1]=bbbbbbbb2/admin/* admin.tokens[2]=cccccccc3/admin/*"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestLoadInvalidNamesKey(t *testing.T) {
	tests := []struct {
		name, yaml string
		env        []string
		wantKey    string
	}{
		{"unknown key", "listne: x\n", nil, "listne"},
		{"bad appid", "apps:\n  - appid: nope\n    token: t\n", nil, "apps[0].appid"},
		{"short aes key", "apps:\n  - appid: wxba5fad812f8e6fb9\n    token: t\n    encoding_aes_key: abc\n", nil, "apps[0].encoding_aes_key"},
		{"duplicate app", validApp + "  - appid: wxba5fad812f8e6fb9\n    token: t\n", nil, "apps[1].appid"},
		{"bad duration env", "", []string{"WXGATE_CALLBACK_MAX_SKEW=soon"}, "callback.max_skew"},
		{"bad size", "callback:\n  max_body: lots\n", nil, "callback.max_body"},
		{"short admin token", "admin:\n  tokens: [abc]\n", nil, "admin.tokens[0]"},
		{"bad mongo uri", "mongo:\n  uri: postgres://x\n", nil, "mongo.uri"},
		{"publish timeout beyond wechat", "nats:\n  publish_timeout: 6s\n", nil, "nats.publish_timeout"},
		{"secret file missing", "apps:\n  - appid: wxba5fad812f8e6fb9\n    token_file: /does/not/exist\n", nil, "apps.0.token_file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := ""
			if tt.yaml != "" {
				path = writeFile(t, "c.yaml", tt.yaml)
			}
			_, err := Load(path, tt.env)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.wantKey) {
				t.Errorf("Load = %v, want ErrInvalid naming %q", err, tt.wantKey)
			}
		})
	}
}

func TestStringRedactsSecrets(t *testing.T) {
	path := writeFile(t, "c.yaml", validApp+"admin:\n  tokens: [operator-token-xyz]\nmongo:\n  uri: mongodb://user:hunter2@db/\n")
	cfg, err := Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := cfg.String()
	for _, secret := range []string{"s3cr3t-app-secret", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "operator-token-xyz", "hunter2", "AAAAA\n"} {
		if strings.Contains(out, secret) {
			t.Errorf("String() contains secret %q:\n%s", secret, out)
		}
	}
	if !strings.Contains(out, "wxba5fad812f8e6fb9") {
		t.Errorf("String() lost the appid:\n%s", out)
	}
	if cfg.Apps[0].Secret != "s3cr3t-app-secret" {
		t.Errorf("String() changed the config: secret = %q", cfg.Apps[0].Secret)
	}
}
