// Package config loads, overrides and validates wxgate's one typed configuration.
//
// A YAML file gives the values; every key can be overridden by an environment
// variable named WXGATE_ plus the key path in upper case with "_" for "."
// (WXGATE_NATS_URL, WXGATE_APPS_0_SECRET); secrets may instead be read from a
// file named by the key with a "_file" suffix (secret_file, mongo.uri_file).
// Load validates everything once and reports the first bad key by name.
package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
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
	// SendAttempts is how many times a send is tried before it is dead.
	SendAttempts int `yaml:"send_attempts"`
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
			SendAttempts: 5,
			MaxDeliver:   20,
			UnknownAfter: Duration(30 * time.Minute),
		},
	}
}

// Load reads the YAML file at path (none when path is empty), resolving its *_file
// secrets, applies environment overrides from environ (os.Environ() form) and validates.
func Load(path string, environ []string) (Config, error) {
	cfg := Default()
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return Config{}, fmt.Errorf("%w: reading %s: %v", ErrInvalid, path, err)
		}
		var doc yaml.Node
		if err := yaml.Unmarshal(b, &doc); err != nil {
			return Config{}, fmt.Errorf("%w: %s: %v", ErrInvalid, path, err)
		}
		values := map[string]string{}
		if err := flatten(&doc, "", values); err != nil {
			return Config{}, err
		}
		if err := apply(&cfg, values, func(k string) string { return k }); err != nil {
			return Config{}, err
		}
	}
	if err := apply(&cfg, envValues(&cfg, environ), func(k string) string { return k + " (from " + envName(k) + ")" }); err != nil {
		return Config{}, err
	}
	if err := cfg.validate(); err != nil {
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

func (c *Config) validate() error {
	bad := func(key, why string) error { return fmt.Errorf("%w: %s: %s", ErrInvalid, key, why) }
	if c.Listen == "" {
		return bad("listen", "is required")
	}
	if c.DataDir == "" {
		return bad("data_dir", "is required")
	}
	switch strings.ToLower(c.LogLevel) {
	case "debug", "info", "warn", "error":
	default:
		return bad("log_level", "must be debug, info, warn or error")
	}
	if c.NATS.URL == "" && c.NATS.Listen == "" {
		return bad("nats.listen", "is required when nats.url is empty")
	}
	if c.NATS.Replicas < 1 || c.NATS.Replicas > 5 {
		return bad("nats.replicas", "must be between 1 and 5")
	}
	if c.NATS.MaxAge <= 0 {
		return bad("nats.max_age", "must be positive")
	}
	if c.NATS.PublishTimeout <= 0 || c.NATS.PublishTimeout.D() > 4*time.Second {
		return bad("nats.publish_timeout", "must be positive and at most 4s, inside WeChat's 5s")
	}
	if c.Mongo.Database == "" {
		return bad("mongo.database", "is required")
	}
	if c.Mongo.URI == "" && c.Mongo.Listen == "" {
		return bad("mongo.listen", "is required when mongo.uri is empty")
	}
	if c.Mongo.URI != "" && !strings.HasPrefix(c.Mongo.URI, "mongodb://") && !strings.HasPrefix(c.Mongo.URI, "mongodb+srv://") {
		return bad("mongo.uri", "must start with mongodb:// or mongodb+srv://")
	}
	if c.Callback.MaxSkew < 0 {
		return bad("callback.max_skew", "must not be negative")
	}
	if c.Callback.MaxBody < 1024 || c.Callback.MaxBody > 64<<20 {
		return bad("callback.max_body", "must be between 1KiB and 64MiB")
	}
	if c.Processor.Workers < 1 || c.Processor.Workers > 1024 {
		return bad("processor.workers", "must be between 1 and 1024")
	}
	if c.Processor.SendAttempts < 1 || c.Processor.SendAttempts > 100 {
		return bad("processor.send_attempts", "must be between 1 and 100")
	}
	if c.Processor.UnknownAfter.D() < time.Second || c.Processor.UnknownAfter.D() > 7*24*time.Hour {
		return bad("processor.unknown_after", "must be between 1s and 168h")
	}
	if c.Processor.MaxDeliver < 2 || c.Processor.MaxDeliver > 1000 {
		return bad("processor.max_deliver", "must be between 2 and 1000")
	}
	seen := map[string]bool{}
	for i := range c.Apps {
		a := &c.Apps[i]
		key := func(k string) string { return fmt.Sprintf("apps[%d].%s", i, k) }
		if !appIDPattern.MatchString(a.AppID) {
			return bad(key("appid"), "must look like wx followed by 16 hex digits")
		}
		if seen[a.AppID] {
			return bad(key("appid"), "is listed twice")
		}
		seen[a.AppID] = true
		if a.Token == "" || len(a.Token) > 32 {
			return bad(key("token"), "must be 1 to 32 characters")
		}
		if a.EncodingAESKey != "" && !aesKeyPattern.MatchString(a.EncodingAESKey) {
			return bad(key("encoding_aes_key"), "must be 43 characters of base64")
		}
		if a.PreviousEncodingAESKey != "" && !aesKeyPattern.MatchString(a.PreviousEncodingAESKey) {
			return bad(key("previous_encoding_aes_key"), "must be 43 characters of base64")
		}
		if a.PreviousEncodingAESKey != "" && a.EncodingAESKey == "" {
			return bad(key("encoding_aes_key"), "is required when previous_encoding_aes_key is set")
		}
		if a.APIBase == "" {
			a.APIBase = "https://api.weixin.qq.com"
		}
		if !strings.HasPrefix(a.APIBase, "http://") && !strings.HasPrefix(a.APIBase, "https://") {
			return bad(key("api_base"), "must be an http(s) URL")
		}
		a.APIBase = strings.TrimRight(a.APIBase, "/")
		switch a.TokenAPI {
		case "":
			a.TokenAPI = "stable_token"
		case "stable_token", "token":
		default:
			return bad(key("token_api"), "must be stable_token or token")
		}
	}
	if err := c.validateTokens(); err != nil {
		return err
	}
	c.DataDir = filepath.Clean(c.DataDir)
	return nil
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
