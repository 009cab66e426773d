package wechat

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/wxgate/wxgate/schemas"
)

// TemplateCache keeps each app's private templates from gettemplate for a while,
// so a send request can be checked against the template's keywords and enum values
// and a consent can tell one-time from long-term templates. It is safe for
// concurrent use; one fetch per app runs at a time.
type TemplateCache struct {
	client *Client
	ttl    time.Duration
	clock  func() time.Time

	mu   sync.Mutex
	apps map[string]*appTemplates
}

type appTemplates struct {
	mu      sync.Mutex // held while fetching
	byID    map[string]schemas.Template
	fetched time.Time
	// known is true once a list was fetched: a template missing from it is not the app's.
	known bool
}

// failedFetchTTL keeps a failed fetch from being retried on every request.
const failedFetchTTL = 30 * time.Second

// NewTemplateCache returns a cache that trusts a fetched list for ttl.
func NewTemplateCache(client *Client, ttl time.Duration) *TemplateCache {
	return &TemplateCache{client: client, ttl: ttl, clock: time.Now, apps: map[string]*appTemplates{}}
}

// Template returns the app's template. When the list could not be fetched it
// returns nil and no error: a caller then validates with the keyword rules
// alone and lets WeChat judge the template id. When the list is known and the
// template is not in it, it returns schemas.ErrNoSuchTemplate.
func (c *TemplateCache) Template(ctx context.Context, appID, templateID string) (*schemas.Template, error) {
	a := c.app(appID)
	defer a.mu.Unlock()
	c.refresh(ctx, appID, a)
	t, ok := a.byID[templateID]
	switch {
	case ok:
		return &t, nil
	case a.known:
		return nil, schemas.ErrNoSuchTemplate
	}
	return nil, nil
}

// ErrTemplatesUnknown means no template list of the app could be fetched yet.
var ErrTemplatesUnknown = errors.New("the app's template list could not be fetched from gettemplate")

// Templates returns the app's templates sorted by id, from the list Template
// uses. When no list could be fetched yet it returns ErrTemplatesUnknown.
func (c *TemplateCache) Templates(ctx context.Context, appID string) ([]schemas.Template, error) {
	a := c.app(appID)
	defer a.mu.Unlock()
	c.refresh(ctx, appID, a)
	if !a.known {
		return nil, ErrTemplatesUnknown
	}
	out := make([]schemas.Template, 0, len(a.byID))
	for _, t := range a.byID {
		out = append(out, t)
	}
	slices.SortFunc(out, func(x, y schemas.Template) int { return strings.Compare(x.ID, y.ID) })
	return out, nil
}

// app returns the app's entry, locked.
func (c *TemplateCache) app(appID string) *appTemplates {
	c.mu.Lock()
	a := c.apps[appID]
	if a == nil {
		a = &appTemplates{}
		c.apps[appID] = a
	}
	c.mu.Unlock()
	a.mu.Lock()
	return a
}

// refresh fetches the app's list when it is missing or older than the ttl;
// a holds its lock.
func (c *TemplateCache) refresh(ctx context.Context, appID string, a *appTemplates) {
	now := c.clock()
	if a.byID == nil || now.Sub(a.fetched) > c.ttl {
		list, err := c.client.Templates(ctx, appID)
		if err != nil {
			// Keep serving the last good list; try again after a short pause.
			a.fetched = now.Add(failedFetchTTL - c.ttl)
			if a.byID == nil {
				a.byID = map[string]schemas.Template{}
			}
		} else {
			a.byID = make(map[string]schemas.Template, len(list))
			for _, t := range list {
				a.byID[t.ID] = t
			}
			a.fetched, a.known = now, true
		}
	}
}

// Kind is "long_term" for a long-term template, "one_time" for any other
// template (including one missing from the app's list), and "" while no list
// could be fetched yet, as the consent ledger needs it.
func (c *TemplateCache) Kind(ctx context.Context, appID, templateID string) string {
	t, err := c.Template(ctx, appID, templateID)
	switch {
	case t != nil && t.LongTerm():
		return "long_term"
	case t != nil, errors.Is(err, schemas.ErrNoSuchTemplate):
		return "one_time"
	}
	return ""
}
