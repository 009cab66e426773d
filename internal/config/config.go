// Package config loads, overrides and validates wxgate's one typed configuration.
//
// A YAML file gives the values; every key can be overridden by an environment
// variable named WXGATE_ plus the key path in upper case with "_" for "."
// (WXGATE_NATS_URL, WXGATE_APPS_0_SECRET); secrets may instead be read from a
// file named by the key with a "_file" suffix (secret_file, mongo.uri_file).
// A WXGATE_ variable that names no key is an error that suggests the nearest
// one; a secret that is still a placeholder ("REPLACE_ME", "change-me") is
// refused. Load validates everything once and reports every problem, each
// key in the spelling of the documentation (apps[0].secret).
package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// ErrInvalid marks a configuration that cannot be used; the message names the key.
var ErrInvalid = errors.New("invalid configuration")

// Config is wxgate's whole configuration. It is read-only once Load returns.
type Config struct {
	Listen    string    `yaml:"listen"`
	DataDir   string    `yaml:"data_dir"`
	LogLevel  string    `yaml:"log_level"`
	NATS      NATS      `yaml:"nats"`
	Mongo     Mongo     `yaml:"mongo"`
	Admin     Admin     `yaml:"admin"`
	Callback  Callback  `yaml:"callback"`
	Processor Processor `yaml:"processor"`
	Apps      []App     `yaml:"apps"`
}

// NATS says where the event stream lives.
type NATS struct {
	// URL of a NATS cluster; empty starts an embedded server with JetStream under DataDir.
	URL string `yaml:"url" secret:"true"`
	// Listen is the embedded server's client address, for downstream subscribers.
	Listen string `yaml:"listen"`
	// Replicas is the WECHAT stream's replica count on a real cluster.
	Replicas int `yaml:"replicas"`
	// MaxAge is how long the stream keeps events.
	MaxAge Duration `yaml:"max_age"`
	// PublishTimeout bounds the wait for a publish acknowledgement; it must stay well
	// inside WeChat's 5 s so a failed store is answered with 503 before WeChat gives up.
	PublishTimeout Duration `yaml:"publish_timeout"`
}

// Mongo says where state is kept.
type Mongo struct {
	// URI of a MongoDB deployment; empty starts the embedded MongoDB-compatible store.
	URI string `yaml:"uri" secret:"true"`
	// Listen is the embedded store's address.
	Listen string `yaml:"listen"`
	// Database is the database name.
	Database string `yaml:"database"`
	// PostgreSQLURL switches the embedded store from SQLite files under DataDir to a
	// PostgreSQL database, which handles concurrent writers far better.
	PostgreSQLURL string `yaml:"postgresql_url" secret:"true"`
}

// Callback configures the WeChat push URL.
type Callback struct {
	// MaxSkew rejects pushes whose timestamp is further from now; 0 disables the check.
	MaxSkew Duration `yaml:"max_skew"`
	// MaxBody is the largest accepted push body.
	MaxBody ByteSize `yaml:"max_body"`
}

// Processor tunes the stream consumers and the send pipeline.
type Processor struct {
	// Workers is how many events each consumer applies at once.
	Workers int `yaml:"workers"`
	// SendAttempts is how many times a send is tried before it is dead; by
	// default one more than the delays of SendRetry.
	SendAttempts int `yaml:"send_attempts"`
	// SendRetry are the delays before the second, third, ... try of a send
	// that failed for a passing reason (the last one repeats), each with up
	// to 20% jitter. The default spans about eight hours, to outlast a real outage.
	SendRetry []Duration `yaml:"send_retry"`
	// MaxDeliver is how many times the stream redelivers an event that keeps failing
	// transiently before it becomes a dead letter.
	MaxDeliver int `yaml:"max_deliver"`
	// UnknownAfter is how long a message whose send outcome is unknown waits
	// for a sent event before it is counted (wxgate_send_unsettled_total) and
	// logged for an operator; it is never resent on its own.
	UnknownAfter Duration `yaml:"unknown_after"`
}

// App is one mini program served by this deployment.
type App struct {
	AppID                  string `yaml:"appid"`
	Secret                 string `yaml:"secret" secret:"true"`
	Token                  string `yaml:"token" secret:"true"`
	EncodingAESKey         string `yaml:"encoding_aes_key" secret:"true"`
	PreviousEncodingAESKey string `yaml:"previous_encoding_aes_key" secret:"true"`
	// APIBase is WeChat's API host; the simulator's URL in tests.
	APIBase string `yaml:"api_base"`
	// TokenAPI picks how access tokens are fetched: "stable_token" (default) or "token".
	TokenAPI string `yaml:"token_api"`
}

// defaultSendRetry: a second try at once-ish, then backing off to hours.
var defaultSendRetry = []Duration{
	Duration(5 * time.Second), Duration(30 * time.Second), Duration(2 * time.Minute), Duration(10 * time.Minute),
	Duration(30 * time.Minute), Duration(time.Hour), Duration(2 * time.Hour), Duration(4 * time.Hour),
}

// Default returns the configuration a newcomer gets with no file: everything embedded.
func Default() Config {
	return Config{
		Listen:   "127.0.0.1:8080",
		DataDir:  "./data",
		LogLevel: "info",
		NATS: NATS{
			Listen:         "127.0.0.1:4222",
			Replicas:       1,
			MaxAge:         Duration(168 * time.Hour),
			PublishTimeout: Duration(2 * time.Second),
		},
		Mongo: Mongo{
			Listen:   "127.0.0.1:27017",
			Database: "wxgate",
		},
		Callback: Callback{
			MaxSkew: Duration(5 * time.Minute),
			MaxBody: 1 << 20,
		},
		Processor: Processor{
			Workers:      8,
			SendAttempts: len(defaultSendRetry) + 1,
			SendRetry:    defaultSendRetry,
			MaxDeliver:   20,
			UnknownAfter: Duration(30 * time.Minute),
		},
	}
}

// Needs names what the command about to run requires beyond a valid
// configuration; LoadFor reports each one missing as a problem of its key.
type Needs struct {
	// AppSecrets is set when the process sends messages: every app then needs
	// its secret, to fetch access tokens.
	AppSecrets bool
	// NATSURL, when not empty, makes nats.url required and says why.
	NATSURL string
	// MongoURI, when not empty, makes mongo.uri required and says why.
	MongoURI string
}

// Load reads the YAML file at path (none when path is empty), resolving its *_file
// secrets, applies environment overrides from environ (os.Environ() form) and
// validates. The error is an *Error listing every problem found.
func Load(path string, environ []string) (Config, error) {
	return LoadFor(path, environ, Needs{})
}

// LoadFor is Load plus the checks of what a command needs. Every problem is
// found before it returns, so a command can refuse to start with one message
// that names them all.
func LoadFor(path string, environ []string, needs Needs) (Config, error) {
	cfg := Default()
	var ps problems
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return Config{}, oneProblem(path, err.Error())
		}
		var doc yaml.Node
		if err := yaml.Unmarshal(b, &doc); err != nil {
			return Config{}, oneProblem(path, err.Error())
		}
		values := map[string]string{}
		flatten(&doc, "", values, &ps)
		apply(&cfg, values, keyName, &ps)
	}
	env := envValues(&cfg, environ, &ps)
	apply(&cfg, env, func(k string) string { return keyName(k) + " (from " + envName(k) + ")" }, &ps)
	cfg.validate(&ps)
	cfg.checkNeeds(needs, &ps)
	cfg.checkPlaceholders(&ps)
	if err := ps.err(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// App returns the app with the given id.
func (c *Config) App(appID string) (App, bool) {
	for _, a := range c.Apps {
		if a.AppID == appID {
			return a, true
		}
	}
	return App{}, false
}

var (
	appIDPattern  = regexp.MustCompile(`^wx[0-9a-f]{16}$`)
	aesKeyPattern = regexp.MustCompile(`^[A-Za-z0-9+/]{43}$`)
)

// Bounds of an app's fields, as WeChat's API client enforces them.
const (
	maxSecretBytes  = 256
	maxAPIBaseBytes = 1024
)

// validate checks every key, adding one problem per bad key, and fills in the
// per-app defaults.
func (c *Config) validate(ps *problems) {
	bad := ps.add
	checkListen := func(key, addr string) {
		if addr == "" {
			return
		}
		if _, port, err := net.SplitHostPort(addr); err != nil {
			bad(key, "must be host:port, like 127.0.0.1:8080")
		} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			bad(key, "must end in a port number from 0 to 65535")
		}
	}
	if c.Listen == "" {
		bad("listen", "is required")
	}
	checkListen("listen", c.Listen)
	if c.DataDir == "" {
		bad("data_dir", "is required")
	}
	switch strings.ToLower(c.LogLevel) {
	case "debug", "info", "warn", "error":
	default:
		bad("log_level", "must be debug, info, warn or error")
	}
	if c.NATS.URL == "" && c.NATS.Listen == "" {
		bad("nats.listen", "is required when nats.url is empty")
	}
	checkListen("nats.listen", c.NATS.Listen)
	if c.NATS.Replicas < 1 || c.NATS.Replicas > 5 {
		bad("nats.replicas", "must be between 1 and 5")
	}
	if c.NATS.MaxAge <= 0 {
		bad("nats.max_age", "must be positive")
	}
	if c.NATS.PublishTimeout <= 0 || c.NATS.PublishTimeout.D() > 4*time.Second {
		bad("nats.publish_timeout", "must be positive and at most 4s, inside WeChat's 5s")
	}
	if c.Mongo.Database == "" {
		bad("mongo.database", "is required")
	}
	if c.Mongo.URI == "" && c.Mongo.Listen == "" {
		bad("mongo.listen", "is required when mongo.uri is empty")
	}
	checkListen("mongo.listen", c.Mongo.Listen)
	if c.Mongo.URI != "" && !strings.HasPrefix(c.Mongo.URI, "mongodb://") && !strings.HasPrefix(c.Mongo.URI, "mongodb+srv://") {
		bad("mongo.uri", "must start with mongodb:// or mongodb+srv://")
	}
	c.validateTokens(bad)
	if c.Callback.MaxSkew < 0 {
		bad("callback.max_skew", "must not be negative")
	}
	if c.Callback.MaxBody < 1024 || c.Callback.MaxBody > 64<<20 {
		bad("callback.max_body", "must be between 1KiB and 64MiB")
	}
	if c.Processor.Workers < 1 || c.Processor.Workers > 1024 {
		bad("processor.workers", "must be between 1 and 1024")
	}
	if len(c.Processor.SendRetry) == 0 || len(c.Processor.SendRetry) > 100 {
		bad("processor.send_retry", "must list 1 to 100 delays")
	}
	for _, d := range c.Processor.SendRetry {
		if d.D() < 0 || d.D() > 24*time.Hour {
			bad("processor.send_retry", "every delay must be between 0s and 24h")
			break
		}
	}
	if c.Processor.SendAttempts < 1 || c.Processor.SendAttempts > 100 {
		bad("processor.send_attempts", "must be between 1 and 100")
	}
	if c.Processor.UnknownAfter.D() < time.Second || c.Processor.UnknownAfter.D() > 7*24*time.Hour {
		bad("processor.unknown_after", "must be between 1s and 168h")
	}
	if c.Processor.MaxDeliver < 2 || c.Processor.MaxDeliver > 1000 {
		bad("processor.max_deliver", "must be between 2 and 1000")
	}
	seen := map[string]bool{}
	for i := range c.Apps {
		a := &c.Apps[i]
		key := func(k string) string { return fmt.Sprintf("apps[%d].%s", i, k) }
		if !appIDPattern.MatchString(a.AppID) {
			bad(key("appid"), "must look like wx followed by 16 hex digits")
		} else if seen[a.AppID] {
			bad(key("appid"), "is listed twice")
		}
		seen[a.AppID] = true
		if len(a.Secret) > maxSecretBytes {
			bad(key("secret"), fmt.Sprintf("must be at most %d bytes", maxSecretBytes))
		}
		if a.Token == "" || len(a.Token) > 32 {
			bad(key("token"), "must be 1 to 32 characters")
		}
		if a.EncodingAESKey != "" && !aesKeyPattern.MatchString(a.EncodingAESKey) {
			bad(key("encoding_aes_key"), "must be 43 characters of base64")
		}
		if a.PreviousEncodingAESKey != "" && !aesKeyPattern.MatchString(a.PreviousEncodingAESKey) {
			bad(key("previous_encoding_aes_key"), "must be 43 characters of base64")
		}
		if a.PreviousEncodingAESKey != "" && a.EncodingAESKey == "" {
			bad(key("encoding_aes_key"), "is required when previous_encoding_aes_key is set")
		}
		if a.APIBase == "" {
			a.APIBase = "https://api.weixin.qq.com"
		}
		a.APIBase = strings.TrimRight(a.APIBase, "/")
		if u, err := url.Parse(a.APIBase); err != nil || len(a.APIBase) > maxAPIBaseBytes ||
			(u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			bad(key("api_base"), "must be an http(s) URL without query or credentials")
		}
		switch a.TokenAPI {
		case "":
			a.TokenAPI = "stable_token"
		case "stable_token", "token":
		default:
			bad(key("token_api"), "must be stable_token or token")
		}
	}
	if c.DataDir != "" {
		c.DataDir = filepath.Clean(c.DataDir)
	}
}

// checkNeeds adds a problem for everything needs asks for that c lacks.
func (c *Config) checkNeeds(needs Needs, ps *problems) {
	if needs.NATSURL != "" && c.NATS.URL == "" {
		ps.add("nats.url", needs.NATSURL)
	}
	if needs.MongoURI != "" && c.Mongo.URI == "" {
		ps.add("mongo.uri", needs.MongoURI)
	}
	if needs.AppSecrets {
		for i, a := range c.Apps {
			if a.Secret == "" {
				ps.add(fmt.Sprintf("apps[%d].secret", i), "is required: the AppSecret fetches the access tokens that sends need")
			}
		}
	}
}

// String renders the configuration with every secret replaced, safe to log.
func (c Config) String() string {
	red := redacted(c)
	b, err := yaml.Marshal(red)
	if err != nil {
		return "config: unprintable"
	}
	return string(b)
}
