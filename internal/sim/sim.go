package sim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wxgate/wxgate/crypto"
)

// msgIDBase puts message ids above 2^53, where WeChat's are, so a client that
// decodes them as float64 loses digits and is caught by its tests.
const msgIDBase = uint64(1) << 61

// Sentinel errors of the control operations.
var (
	// ErrUnknownApp means the appid is not configured.
	ErrUnknownApp = errors.New("sim: unknown appid")
	// ErrUnknownTemplate means the template id is not one of the app's.
	ErrUnknownTemplate = errors.New("sim: unknown template")
	// ErrBadOpenID means the openid is empty, too long or has characters an openid never has.
	ErrBadOpenID = errors.New("sim: invalid openid")
	// ErrBadAction means the action is not one the operation accepts.
	ErrBadAction = errors.New("sim: invalid action")
)

// Sim is a simulated WeChat platform. All its methods are safe for
// concurrent use; pushes run on goroutines the Sim owns until [Sim.Close].
type Sim struct {
	cfg    Config
	log    *slog.Logger
	apps   map[string]*app
	appIDs []string
	mux    *http.ServeMux

	ctx    context.Context // cancelled by Close; ends pushes
	cancel context.CancelFunc
	client *http.Client
	sem    chan struct{} // bounds push requests in flight
	wg     sync.WaitGroup

	pushMu  sync.Mutex
	closing bool
	pending int
	idle    chan struct{} // closed when pending drops to zero

	rngMu sync.Mutex
	rng   *rand.Rand

	faultMu sync.Mutex
	faults  Faults

	tokens tokenBook

	msgSeq   atomic.Uint64
	counters *counters

	server     *http.Server  // set by Start
	serverDone chan struct{} // closed when server's Serve returns
}

// app is one configured mini program and its users.
type app struct {
	cfg       AppConfig
	cipher    *crypto.Cipher // nil in plaintext mode
	templates map[string]*template
	order     []*template
	pages     map[string]bool

	mu       sync.Mutex
	consents map[string]map[string]*Consent // openid -> template id -> consent
	inflight map[string]bool                // openids with a send in progress
	messages []Message
}

// New validates cfg, applies defaults and returns a simulator. A nil logger
// discards logs. Call Close to stop pending pushes.
func New(cfg Config, logger *slog.Logger) (*Sim, error) {
	cfg.Apps = append([]AppConfig(nil), cfg.Apps...)
	cfg.applyDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	seed := cfg.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	s := &Sim{
		cfg:  cfg,
		log:  logger,
		apps: make(map[string]*app, len(cfg.Apps)),
		sem:  make(chan struct{}, cfg.PushConcurrency),
		rng:  rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
	}
	for _, ac := range cfg.Apps {
		a := &app{
			cfg:       ac,
			templates: make(map[string]*template, len(ac.Templates)),
			pages:     make(map[string]bool, len(ac.Pages)),
			consents:  map[string]map[string]*Consent{},
			inflight:  map[string]bool{},
		}
		if ac.Mode != ModePlaintext {
			c, err := crypto.NewCipher(ac.AppID, ac.EncodingAESKey, "")
			if err != nil {
				return nil, fmt.Errorf("%w: app %s: encoding_aes_key: %w", ErrInvalidConfig, ac.AppID, err)
			}
			a.cipher = c
		}
		for _, t := range ac.Templates {
			tt := &template{Template: t, keys: templateKeys(t.Content)}
			a.templates[t.ID] = tt
			a.order = append(a.order, tt)
		}
		for _, p := range ac.Pages {
			a.pages[p] = true
		}
		s.apps[ac.AppID] = a
		s.appIDs = append(s.appIDs, ac.AppID)
	}
	s.tokens.init()
	s.msgSeq.Store(msgIDBase + uint64(s.rng.Uint32())<<16)
	s.counters = newCounters(s.appIDs)
	s.ctx, s.cancel = context.WithCancel(context.Background())
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = cfg.PushConcurrency
	s.client = &http.Client{Timeout: cfg.PushTimeout, Transport: tr}
	s.mux = s.routes()
	return s, nil
}

// Start creates a simulator and serves it on a random port of 127.0.0.1,
// returning its base URL ("http://127.0.0.1:PORT") for api_base. Close stops it.
func Start(cfg Config, logger *slog.Logger) (*Sim, string, error) {
	s, err := New(cfg, logger)
	if err != nil {
		return nil, "", err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		s.Close()
		return nil, "", fmt.Errorf("sim: listen: %w", err)
	}
	s.server = &http.Server{Handler: s.mux, ReadHeaderTimeout: 5 * time.Second}
	s.serverDone = make(chan struct{})
	go func() {
		defer close(s.serverDone)
		if err := s.server.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("sim server stopped", "err", err)
		}
	}()
	return s, "http://" + ln.Addr().String(), nil
}

// Serve serves the simulator on ln until ctx is cancelled, then shuts the
// server down gracefully. It does not Close the Sim.
func (s *Sim) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: s.mux, ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("sim: serve: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("sim: shutdown: %w", err)
	}
	<-errc
	return nil
}

// Close stops the server started by Start, abandons pending pushes and waits
// for the simulator's goroutines to end. It is safe to call more than once.
func (s *Sim) Close() {
	s.pushMu.Lock()
	s.closing = true
	s.pushMu.Unlock()
	s.cancel()
	if s.server != nil {
		_ = s.server.Close()
		<-s.serverDone
	}
	s.wg.Wait()
	s.client.CloseIdleConnections()
}

// Handler returns the WeChat APIs and the /sim/ control API on one handler.
func (s *Sim) Handler() http.Handler { return s.mux }

// AppIDs returns the configured appids in configuration order.
func (s *Sim) AppIDs() []string { return append([]string(nil), s.appIDs...) }

// OriginalID returns the gh_ id an app's pushes carry as ToUserName.
func (s *Sim) OriginalID(appID string) (string, error) {
	a, ok := s.apps[appID]
	if !ok {
		return "", ErrUnknownApp
	}
	return a.cfg.OriginalID, nil
}

// Reset forgets users' consents, accepted messages, counters, token-call
// quotas and faults. Access tokens stay valid, so clients keep working.
func (s *Sim) Reset() {
	for _, a := range s.apps {
		a.mu.Lock()
		a.consents = map[string]map[string]*Consent{}
		a.messages = nil
		a.mu.Unlock()
	}
	s.faultMu.Lock()
	s.faults = Faults{}
	s.faultMu.Unlock()
	s.tokens.resetQuota()
	s.counters.reset(s.appIDs)
}

func (s *Sim) now() time.Time { return s.cfg.Clock() }

// roll draws a uniform number in [0,1).
func (s *Sim) roll() float64 {
	s.rngMu.Lock()
	defer s.rngMu.Unlock()
	return s.rng.Float64()
}

// nonce is a decimal nonce like the ones WeChat puts in push queries.
func (s *Sim) nonce() string {
	s.rngMu.Lock()
	defer s.rngMu.Unlock()
	return strconv.FormatUint(uint64(s.rng.Uint32()), 10)
}

// validOpenID is deliberately lenient: real openids are 28 characters of
// [A-Za-z0-9_-], but tests use shorter readable ones.
func validOpenID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// writeJSON writes v with status 200 unless status says otherwise.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}
