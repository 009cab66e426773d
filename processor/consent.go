package processor

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

// maxCASAttempts bounds the read-modify-write retries of one update under contention.
const maxCASAttempts = 16

// ApplyConsent applies one change to the ledger entry of (appID, openID,
// templateID) with compare-and-set, and publishes it on
// wechat.{appid}.consent.{status}. A change whose ID was applied before is not
// applied again; its recorded result is published again instead, with the same
// event id, so a publish lost to a crash is made good and a duplicate is dropped
// by the stream.
func (p *Processor) ApplyConsent(ctx context.Context, appID, openID, templateID string, ch ConsentChange) (*Consent, error) {
	if ch.Action == ActionAccept && ch.Kind == "" {
		ch.Kind = p.kind(ctx, appID, templateID)
	}
	return p.updateConsent(ctx, appID, openID, templateID, ch, nil)
}

// updateConsent is ApplyConsent's compare-and-set loop. guard, when not nil, sees
// the entry before a change not yet applied (nil when there is none) and may
// refuse the change with an error, which is returned unchanged.
func (p *Processor) updateConsent(ctx context.Context, appID, openID, templateID string, ch ConsentChange, guard func(*Consent) error) (*Consent, error) {
	if ch.At.IsZero() {
		ch.At = p.now()
	}
	key := ConsentKey(appID, openID, templateID)
	for range maxCASAttempts {
		c, err := p.store.Consent(ctx, key)
		switch {
		case errors.Is(err, ErrNotFound):
			c = nil
		case err != nil:
			return nil, err
		}
		if c != nil {
			if recorded, ok := c.Change(ch.ID); ok && slices.Contains(c.Applied, ch.ID) {
				return c, p.publishConsent(ctx, recorded)
			}
		}
		if guard != nil {
			if err := guard(c); err != nil {
				return c, err
			}
		}
		if c == nil {
			c = NewConsent(appID, openID, templateID, p.kind(ctx, appID, templateID))
		}
		c.Apply(ch)
		c.Version++
		err = p.store.SaveConsent(ctx, c)
		if errors.Is(err, ErrConflict) {
			continue
		}
		if err != nil {
			return nil, err
		}
		recorded, _ := c.Change(ch.ID)
		p.metrics.consents.WithLabelValues(appID, recorded.Event()).Inc()
		return c, p.publishConsent(ctx, recorded)
	}
	return nil, fmt.Errorf("consent %s: %w after %d attempts", key, ErrConflict, maxCASAttempts)
}

// Consents returns a user's ledger for one app.
func (p *Processor) Consents(ctx context.Context, appID, openID string) ([]Consent, error) {
	return p.store.Consents(ctx, appID, openID)
}

// Report results of wx.requestSubscribeMessage, as the mini program's backend reports them.
var reportActions = map[string]string{
	"accept": ActionAccept,
	"reject": ActionReject,
	"ban":    ActionBan,
	"filter": ActionFilter,
}

// ReportConsent records the results of one wx.requestSubscribeMessage call
// reported by the backend. requestID identifies the call: reporting the same
// call again changes nothing. See Consent for how a report and the popup event
// of the same popup are counted once.
func (p *Processor) ReportConsent(ctx context.Context, appID, openID, requestID string, results map[string]string) ([]Consent, error) {
	var out []Consent
	for templateID, result := range results {
		action, ok := reportActions[result]
		if !ok {
			return nil, fmt.Errorf("%w: result %q for template %s: want accept, reject, ban or filter", ErrPermanent, result, templateID)
		}
		ch := ConsentChange{ID: "report/" + requestID + "/" + templateID, Source: SourceReport, Action: action}
		c, err := p.ApplyConsent(ctx, appID, openID, templateID, ch)
		if err != nil {
			return nil, err
		}
		out = append(out, *c)
	}
	return out, nil
}

func (p *Processor) kind(ctx context.Context, appID, templateID string) string {
	if p.cfg.Kinds == nil {
		return KindOneTime
	}
	if k := p.cfg.Kinds.Kind(ctx, appID, templateID); k == KindLongTerm {
		return k
	}
	return KindOneTime
}
