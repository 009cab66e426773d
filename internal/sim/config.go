package sim

import (
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Push modes, as chosen in the mini program's console.
const (
	ModePlaintext  = "plaintext"
	ModeCompatible = "compatible"
	ModeSecure     = "secure"
)

// Push body formats.
const (
	FormatJSON = "json"
	FormatXML  = "xml"
)

// Template types as gettemplate reports them.
const (
	TemplateOneTime  = 2
	TemplateLongTerm = 3
)

// Defaults applied by [New] to zero-valued [Config] fields. The token and
// retry values are WeChat's; the others are sized for a laptop.
const (
	DefaultTokenTTL            = 7200 * time.Second
	DefaultTokenOverlap        = 5 * time.Minute
	DefaultForceRefreshGap     = 30 * time.Second
	DefaultPushTimeout         = 5 * time.Second
	DefaultPushRetries         = 3
	DefaultPushRetryInterval   = time.Second
	DefaultPushConcurrency     = 64
	DefaultMaxMessagesPerApp   = 100_000
	maxTemplatesPerApp         = 1000
	maxTemplateContentBytes    = 4096
	maxIDBytes                 = 128
	maxSimulatedLatency        = time.Minute
	maxPushDuplicates          = 100
	originalIDHexLen           = 12
	defaultSentEventFailStatus = "failed"
)

// ErrInvalidConfig is wrapped by every configuration error [New] returns.
var ErrInvalidConfig = errors.New("sim: invalid configuration")

// Template is one private subscription-message template of an app, as
// gettemplate returns it.
type Template struct {
	// ID is the priTmplId used as template_id in sends.
	ID string `yaml:"id" json:"id"`
	// Title is the template's title.
	Title string `yaml:"title" json:"title"`
	// Type is TemplateOneTime (2, the default) or TemplateLongTerm (3).
	Type int `yaml:"type" json:"type"`
	// Content lists the keywords, e.g. "会议时间:{{date2.DATA}}\n地点:{{thing3.DATA}}".
	// A send's data must carry exactly these keys.
	Content string `yaml:"content" json:"content"`
	// Example is a filled-in sample shown by gettemplate.
	Example string `yaml:"example" json:"example"`
	// Enums holds the allowed values of enum keywords, keyed by keyword ("enum2").
	Enums map[string][]string `yaml:"enums" json:"enums"`
}

// AppConfig describes one simulated mini program.
type AppConfig struct {
	AppID          string `yaml:"appid" json:"appid"`
	Secret         string `yaml:"secret" json:"-"`
	Token          string `yaml:"token" json:"-"`
	EncodingAESKey string `yaml:"encoding_aes_key" json:"-"`
	// Mode is ModePlaintext, ModeCompatible or ModeSecure (the default).
	Mode string `yaml:"mode" json:"mode"`
	// Format is FormatJSON (the default) or FormatXML.
	Format string `yaml:"format" json:"format"`
	// PushURL is the gateway's callback URL for this app, e.g.
	// http://127.0.0.1:8080/wechat/{appid}. Empty disables pushes for the app.
	PushURL string `yaml:"push_url" json:"push_url"`
	// OriginalID is the ToUserName of pushes (gh_...). Empty derives a stable one from AppID.
	OriginalID string `yaml:"original_id" json:"original_id"`
	// StringNumbers writes CreateTime, PopupScene, MsgID and ErrorCode of JSON
	// pushes as strings, as WeChat's documentation shows them, instead of the
	// numbers seen in captured pushes.
	StringNumbers bool `yaml:"string_numbers" json:"string_numbers"`
	// Pages, when non-empty, lists the pages a send's page may name (the part
	// before any '?'); other pages get 41030.
	Pages []string `yaml:"pages" json:"pages"`
	// Templates are the app's private templates.
	Templates []Template `yaml:"templates" json:"templates"`
}

// String describes the app without its secrets, so a config can be logged.
func (a AppConfig) String() string {
	return fmt.Sprintf("app %s (mode %s, format %s, push %q, %d templates)",
		a.AppID, a.Mode, a.Format, a.PushURL, len(a.Templates))
}

// Config configures a [Sim]. Zero durations and counts take the Default values.
type Config struct {
	Apps []AppConfig `yaml:"apps" json:"apps"`

	// TokenTTL is the lifetime of an access token (expires_in).
	TokenTTL time.Duration `yaml:"token_ttl" json:"token_ttl"`
	// TokenOverlap is how long a replaced token keeps working.
	TokenOverlap time.Duration `yaml:"token_overlap" json:"token_overlap"`
	// ForceRefreshGap is the minimum time between two force_refresh
	// stable_token calls of one app; a closer call gets 45011.
	ForceRefreshGap time.Duration `yaml:"force_refresh_gap" json:"force_refresh_gap"`
	// TokenCallLimit caps /cgi-bin/token calls per app (WeChat's daily quota);
	// calls beyond it get 45009 until [Sim.Reset]. Zero means no cap.
	TokenCallLimit int `yaml:"token_call_limit" json:"token_call_limit"`

	// NoSentEvents stops the subscribe_msg_sent_event push after each accepted send.
	NoSentEvents bool `yaml:"no_sent_events" json:"no_sent_events"`
	// SentEventDelay is how long after an accepted send its sent event is pushed.
	SentEventDelay time.Duration `yaml:"sent_event_delay" json:"sent_event_delay"`
	// PushTimeout bounds one push request; WeChat gives up after 5 seconds.
	PushTimeout time.Duration `yaml:"push_timeout" json:"push_timeout"`
	// PushRetries is how many times a failed push is retried (WeChat: 3).
	// A negative value disables retries.
	PushRetries int `yaml:"push_retries" json:"push_retries"`
	// PushRetryInterval is the pause before each retry.
	PushRetryInterval time.Duration `yaml:"push_retry_interval" json:"push_retry_interval"`
	// PushConcurrency bounds the push requests in flight at once.
	PushConcurrency int `yaml:"push_concurrency" json:"push_concurrency"`

	// MaxMessagesPerApp bounds the accepted sends kept for [Sim.Messages];
	// the oldest are forgotten first.
	MaxMessagesPerApp int `yaml:"max_messages_per_app" json:"max_messages_per_app"`
	// Seed makes fault injection and nonces reproducible; zero seeds randomly.
	Seed uint64 `yaml:"seed" json:"seed"`
	// Clock replaces time.Now, so tests can move time for token expiry.
	Clock func() time.Time `yaml:"-" json:"-"`
}

func (c *Config) applyDefaults() {
	if c.TokenTTL <= 0 {
		c.TokenTTL = DefaultTokenTTL
	}
	if c.TokenOverlap <= 0 {
		c.TokenOverlap = DefaultTokenOverlap
	}
	if c.ForceRefreshGap <= 0 {
		c.ForceRefreshGap = DefaultForceRefreshGap
	}
	if c.PushTimeout <= 0 {
		c.PushTimeout = DefaultPushTimeout
	}
	if c.PushRetries == 0 {
		c.PushRetries = DefaultPushRetries
	}
	if c.PushRetries < 0 {
		c.PushRetries = 0
	}
	if c.PushRetryInterval <= 0 {
		c.PushRetryInterval = DefaultPushRetryInterval
	}
	if c.PushConcurrency <= 0 {
		c.PushConcurrency = DefaultPushConcurrency
	}
	if c.MaxMessagesPerApp <= 0 {
		c.MaxMessagesPerApp = DefaultMaxMessagesPerApp
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	for i := range c.Apps {
		a := &c.Apps[i]
		if a.Mode == "" {
			a.Mode = ModeSecure
		}
		if a.Format == "" {
			a.Format = FormatJSON
		}
		a.Mode = strings.ToLower(a.Mode)
		a.Format = strings.ToLower(a.Format)
		if a.OriginalID == "" {
			a.OriginalID = originalID(a.AppID)
		}
		for j := range a.Templates {
			if a.Templates[j].Type == 0 {
				a.Templates[j].Type = TemplateOneTime
			}
		}
	}
}

// originalID derives a gh_ id that stays the same for an appid across runs.
func originalID(appID string) string {
	sum := sha1.Sum([]byte(appID))
	return "gh_" + hex.EncodeToString(sum[:])[:originalIDHexLen]
}

func (c *Config) validate() error {
	if len(c.Apps) == 0 {
		return fmt.Errorf("%w: apps: at least one app is required", ErrInvalidConfig)
	}
	seen := make(map[string]bool, len(c.Apps))
	for i, a := range c.Apps {
		where := fmt.Sprintf("apps[%d]", i)
		switch {
		case a.AppID == "" || len(a.AppID) > maxIDBytes:
			return fmt.Errorf("%w: %s.appid: required, at most %d bytes", ErrInvalidConfig, where, maxIDBytes)
		case seen[a.AppID]:
			return fmt.Errorf("%w: %s.appid: %q appears twice", ErrInvalidConfig, where, a.AppID)
		case a.Secret == "":
			return fmt.Errorf("%w: %s.secret: required", ErrInvalidConfig, where)
		case a.Token == "":
			return fmt.Errorf("%w: %s.token: required", ErrInvalidConfig, where)
		case a.Mode != ModePlaintext && a.Mode != ModeCompatible && a.Mode != ModeSecure:
			return fmt.Errorf("%w: %s.mode: %q is not plaintext, compatible or secure", ErrInvalidConfig, where, a.Mode)
		case a.Format != FormatJSON && a.Format != FormatXML:
			return fmt.Errorf("%w: %s.format: %q is not json or xml", ErrInvalidConfig, where, a.Format)
		case a.PushURL != "" && !validPushURL(a.PushURL):
			return fmt.Errorf("%w: %s.push_url: %q is not an absolute http(s) URL", ErrInvalidConfig, where, a.PushURL)
		case len(a.Templates) > maxTemplatesPerApp:
			return fmt.Errorf("%w: %s.templates: more than %d", ErrInvalidConfig, where, maxTemplatesPerApp)
		}
		seen[a.AppID] = true
		tseen := make(map[string]bool, len(a.Templates))
		for j, t := range a.Templates {
			twhere := fmt.Sprintf("%s.templates[%d]", where, j)
			switch {
			case t.ID == "" || len(t.ID) > maxIDBytes:
				return fmt.Errorf("%w: %s.id: required, at most %d bytes", ErrInvalidConfig, twhere, maxIDBytes)
			case tseen[t.ID]:
				return fmt.Errorf("%w: %s.id: %q appears twice", ErrInvalidConfig, twhere, t.ID)
			case t.Type != TemplateOneTime && t.Type != TemplateLongTerm:
				return fmt.Errorf("%w: %s.type: %d is not 2 (one-time) or 3 (long-term)", ErrInvalidConfig, twhere, t.Type)
			case len(t.Content) > maxTemplateContentBytes:
				return fmt.Errorf("%w: %s.content: over %d bytes", ErrInvalidConfig, twhere, maxTemplateContentBytes)
			case len(templateKeys(t.Content)) == 0:
				return fmt.Errorf("%w: %s.content: no {{key.DATA}} keywords", ErrInvalidConfig, twhere)
			}
			tseen[t.ID] = true
		}
	}
	return nil
}

func validPushURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}
