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
apps:
  - appid: wxba5fad812f8e6fb9
    secret: s3cr3t-app-secret
    encoding_aes_key: AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA
    token_file: `+writeFile(t, "token", "FROMFILE")+"\n")
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
		{"secret file missing", "apps:\n  - appid: wxba5fad812f8e6fb9\n    token_file: /does/not/exist\n", nil, "apps[0].token_file"},
		{"unknown app key", "apps:\n  - appid: wxba5fad812f8e6fb9\n    token: t\n    encodingaeskey: x\n", nil, "apps[0].encodingaeskey: unknown key; did you mean apps[0].encoding_aes_key?"},
		{"unknown key suggests", "listne: x\n", nil, "listne: unknown key; did you mean listen?"},
		{"unknown key far from any", "colour: blue\n", nil, "colour: unknown key\n"},
		{"app only in the environment", "", []string{"WXGATE_APPS_0_APPID=wxba5fad812f8e6fb9", "WXGATE_APPS_0_TOKEN=t"}, ""},
		{"app index too large", validApp, []string{"WXGATE_APPS_1000_TOKEN=t"}, "apps[1000].token (from WXGATE_APPS_1000_TOKEN): app index out of range"},
		{"secret and secret_file", validApp + "    secret_file: /run/secrets/app\n", nil, "apps[0].secret: is set together with apps[0].secret_file; keep one"},
		{"secret and secret_file in env", validApp, []string{"WXGATE_APPS_0_TOKEN=t", "WXGATE_APPS_0_TOKEN_FILE=/x"}, "apps[0].token (from WXGATE_APPS_0_TOKEN): is set together with apps[0].token_file; keep one"},
		{"bad listen", "listen: localhost\n", nil, "listen: must be host:port"},
		{"bad api_base", validApp + "    api_base: https://user:pw@api.example.com\n", nil, "apps[0].api_base"},
		{"long secret", "apps:\n  - appid: wxba5fad812f8e6fb9\n    token: t\n    secret: " + strings.Repeat("s", 257) + "\n", nil, "apps[0].secret: must be at most 256 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := ""
			if tt.yaml != "" {
				path = writeFile(t, "c.yaml", tt.yaml)
			}
			_, err := Load(path, tt.env)
			if tt.wantKey == "" {
				if err != nil {
					t.Errorf("Load = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error()+"\n", tt.wantKey) {
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

// TestLoadReportsEveryProblem checks that one Load names every bad key, one per
// line, each in the documentation's spelling.
func TestLoadReportsEveryProblem(t *testing.T) {
	path := writeFile(t, "c.yaml", `
listen: nowhere
nats:
  replicas: 9
admin:
  tokens: [short]
apps:
  - appid: wxba5fad812f8e6fb9
    token: AAAAA
    secret: one
    secret_file: /run/secrets/two
  - appid: nope
    encodingaeskey: AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA
`)
	_, err := Load(path, []string{"WXGATE_NATS_REPLICA=3"})
	var ce *Error
	if !errors.As(err, &ce) || !errors.Is(err, ErrInvalid) {
		t.Fatalf("Load = %v, want a *config.Error", err)
	}
	var got []string
	for _, p := range ce.Problems {
		got = append(got, p.Key)
	}
	want := []string{
		"apps[0].secret",
		"apps[1].encodingaeskey",
		"WXGATE_NATS_REPLICA",
		"listen",
		"nats.replicas",
		"admin.tokens[0].token",
		"apps[1].appid",
		"apps[1].token",
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("problem keys = %q, want %q", got, want)
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != len(want)+1 {
		t.Errorf("error has %d lines, want a heading and one line per problem:\n%s", len(lines), err)
	}
	for i, key := range want {
		if i+1 < len(lines) && !strings.HasPrefix(lines[i+1], "  "+key+": ") {
			t.Errorf("line %d = %q, want it to start with %q", i+1, lines[i+1], key)
		}
	}
	if strings.Contains(err.Error(), "apps.") {
		t.Errorf("error spells a key with a dotted index:\n%s", err)
	}
}

func TestLoadForNeeds(t *testing.T) {
	noSecret := "apps:\n  - appid: wxba5fad812f8e6fb9\n    token: AAAAA\n"
	tests := []struct {
		name  string
		yaml  string
		needs Needs
		want  []string // problem keys, in order
	}{
		{"serve needs secrets", noSecret, Needs{AppSecrets: true}, []string{"apps[0].secret"}},
		{"gateway needs no secret", noSecret + "nats:\n  url: nats://n:4222\n", Needs{NATSURL: "is required"}, nil},
		{"gateway needs nats.url", noSecret, Needs{NATSURL: "is required"}, []string{"nats.url"}},
		{"processor needs all", noSecret, Needs{AppSecrets: true, NATSURL: "x", MongoURI: "y"}, []string{"nats.url", "mongo.uri", "apps[0].secret"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadFor(writeFile(t, "c.yaml", tt.yaml), nil, tt.needs)
			var got []string
			var ce *Error
			if errors.As(err, &ce) {
				for _, p := range ce.Problems {
					got = append(got, p.Key)
				}
			} else if err != nil {
				t.Fatalf("LoadFor = %v", err)
			}
			if strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Errorf("LoadFor problems = %q, want %q (err %v)", got, tt.want, err)
			}
		})
	}
}

func TestUnknownEnvironmentVariable(t *testing.T) {
	tests := []struct {
		name, env string
		want      string // "" means accepted
	}{
		{"near a key", "WXGATE_NATS_REPLICA=3", "WXGATE_NATS_REPLICA: unknown variable; did you mean WXGATE_NATS_REPLICAS?"},
		{"swapped letters", "WXGATE_LISTNE=127.0.0.1:1", "did you mean WXGATE_LISTEN?"},
		{"app field", "WXGATE_APPS_0_ENCODINGAESKEY=x", "WXGATE_APPS_0_ENCODINGAESKEY: unknown variable; did you mean WXGATE_APPS_0_ENCODING_AES_KEY?"},
		{"app field of a new app", "WXGATE_APPS_3_SECRT=x", "did you mean WXGATE_APPS_3_SECRET?"},
		{"apps misspelt", "WXGATE_APP_0_TOKEN=x", "did you mean WXGATE_APPS_0_TOKEN?"},
		{"file form", "WXGATE_MONGO_URI_FIEL=/x", "did you mean WXGATE_MONGO_URI_FILE?"},
		{"far from any", "WXGATE_SOMETHING_ELSE_ENTIRELY=1", "WXGATE_SOMETHING_ELSE_ENTIRELY: unknown variable: no wxgate setting has this name"},
		{"operator command variable", "WXGATE_ADMIN_TOKEN=operator-token", ""},
		{"operator command url", "WXGATE_ADMIN_URL=http://127.0.0.1:8080", ""},
		{"not ours", "WXGATEWAY=1", ""},
		{"known", "WXGATE_NATS_REPLICAS=3", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(writeFile(t, "c.yaml", validApp), []string{tt.env})
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Load(%s) = %v, want nil", tt.env, err)
			case tt.want != "" && (!errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("Load(%s) = %v, want ErrInvalid with %q", tt.env, err, tt.want)
			}
		})
	}
}

func TestPlaceholdersRefused(t *testing.T) {
	tests := []struct {
		name, yaml string
		key, word  string // "" means accepted
	}{
		{"REPLACE_ME secret", "    secret: REPLACE_ME\n", "apps[0].secret", "replace_me"},
		{"sentence with REPLACE_ME", "    secret: REPLACE_ME_WITH_THE_APPSECRET\n", "apps[0].secret", "replace_me"},
		{"change-me token", "    token: change-me\n", "apps[0].token", "change-me"},
		{"ChangeMe token", "    token: ChangeMe\n", "apps[0].token", "changeme"},
		{"x aes key", "    encoding_aes_key: " + strings.Repeat("x", 43) + "\n", "apps[0].encoding_aes_key", "xxx"},
		{"XXX secret", "    secret: XXX\n", "apps[0].secret", "xxx"},
		{"dots secret", "    secret: \"...\"\n", "apps[0].secret", "..."},
		{"angle brackets", "    secret: <your AppSecret>\n", "apps[0].secret", "<...>"},
		{"TODO", "    token: TODO\n", "apps[0].token", "todo"},
		{"previous key", "    previous_encoding_aes_key: " + strings.Repeat("X", 43) + "\n", "apps[0].previous_encoding_aes_key", "xxx"},
		{"real values", "    secret: 9f2c41d07be35a61\n", "", ""},
		{"two x", "    secret: xx\n", "", ""},
		{"todo inside a word", "    secret: todolist-9f2c41\n", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The test's app has its own secret; the case's line overrides it.
			yaml := "apps:\n  - appid: wxba5fad812f8e6fb9\n    token: AAAAA\n" + tt.yaml
			if !strings.Contains(tt.yaml, "secret:") {
				yaml += "    secret: 9f2c41d07be35a61\n"
			}
			_, err := Load(writeFile(t, "c.yaml", yaml), nil)
			if tt.key == "" {
				if err != nil {
					t.Errorf("Load = %v, want nil", err)
				}
				return
			}
			want := tt.key + ": is a placeholder (\"" + tt.word + "\")"
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), want) {
				t.Errorf("Load = %v, want ErrInvalid with %q", err, want)
			}
		})
	}
}

// TestContractSampleAdminTokenRefused loads the admin token of the contract's
// sample configuration, which must be replaced before use.
func TestContractSampleAdminTokenRefused(t *testing.T) {
	for _, env := range [][]string{nil, {"WXGATE_ADMIN_TOKENS=change-me"}} {
		yaml := "admin:\n  tokens: [\"change-me\"]\n"
		if env != nil {
			yaml = "listen: 127.0.0.1:8080\n"
		}
		_, err := Load(writeFile(t, "c.yaml", yaml), env)
		want := "admin.tokens[0].token: is a placeholder (\"change-me\"); set a real token"
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), want) {
			t.Errorf("Load(env %q) = %v, want %q", env, err, want)
		}
	}
}

// TestExampleLoads keeps examples/wxgate.yaml a configuration that 'wxgate
// serve' accepts.
func TestExampleLoads(t *testing.T) {
	cfg, err := LoadFor(filepath.Join("..", "..", "examples", "wxgate.yaml"), nil, Needs{AppSecrets: true})
	if err != nil {
		t.Fatalf("LoadFor(examples/wxgate.yaml) = %v", err)
	}
	if len(cfg.Apps) == 0 || len(cfg.Admin.Tokens) == 0 {
		t.Errorf("examples/wxgate.yaml has %d apps and %d admin tokens, want some of each", len(cfg.Apps), len(cfg.Admin.Tokens))
	}
}

func TestNearest(t *testing.T) {
	keys := []string{"listen", "data_dir", "nats.replicas", "nats.url"}
	tests := []struct{ name, want string }{
		{"listen", "listen"},
		{"listne", "listen"},
		{"lisen", "listen"},
		{"datadir", "data_dir"},
		{"nats.replica", "nats.replicas"},
		{"nats.uri", "nats.url"},
		{"colour", ""},
		{"", ""},
	}
	for _, tt := range tests {
		if got := nearest(tt.name, keys); got != tt.want {
			t.Errorf("nearest(%q) = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestDistance(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"a", "", 1}, {"", "abc", 3}, {"kitten", "sitting", 3},
		{"listne", "listen", 1}, {"replica", "replicas", 1}, {"encodingaeskey", "encoding_aes_key", 2},
	}
	for _, tt := range tests {
		if got := distance(tt.a, tt.b); got != tt.want {
			t.Errorf("distance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
		if got := distance(tt.b, tt.a); got != tt.want {
			t.Errorf("distance(%q, %q) = %d, want %d", tt.b, tt.a, got, tt.want)
		}
	}
}

func TestChanged(t *testing.T) {
	base, err := Load(writeFile(t, "a.yaml", validApp), nil)
	if err != nil {
		t.Fatal(err)
	}
	next := base
	next.Apps = append([]App(nil), base.Apps...)
	next.Apps[0].Token = "BBBBB"
	next.Apps = append(next.Apps, App{AppID: "wx0123456789abcdef"})
	next.NATS.Replicas = 3
	got := strings.Join(base.Changed(next), " ")
	for _, want := range []string{"nats.replicas", "apps[0].token", "apps[1].appid", "apps[1].secret"} {
		if !strings.Contains(got, want) {
			t.Errorf("Changed = %q, want it to name %s", got, want)
		}
	}
	for _, secret := range []string{"AAAAA", "BBBBB"} {
		if strings.Contains(got, secret) {
			t.Errorf("Changed = %q shows a value", got)
		}
	}
	if c := base.Changed(base); len(c) != 0 {
		t.Errorf("Changed(itself) = %q, want none", c)
	}
}
