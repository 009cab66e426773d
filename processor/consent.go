package processor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/wxgate/wxgate/internal/derrors"
	"github.com/wxgate/wxgate/schemas"
)

// ApplyConsent applies one change to the ledger entry of (appID, openID,
// templateID) and publishes it on wechat.{appid}.consent.{status}. A change
// whose ID was applied before is not applied again; its recorded result is
// published again instead, with the same event id, so a publish lost to a crash
// is made good and a duplicate is dropped by the stream. Callers run in the
// user's lane.
func (p *Processor) ApplyConsent(ctx context.Context, appID, openID, templateID string, ch ConsentChange) (*Consent, error) {
	if ch.Action == ActionAccept && ch.Kind == "" {
		ch.Kind = p.kind(ctx, appID, templateID)
	}
	return p.updateConsent(ctx, nil, appID, openID, templateID, ch, nil)
}

// updateConsent applies ch with compare-and-set, starting from known when the
// caller has just read the entry. guard, when not nil, sees the entry before a
// change not yet applied (nil when there is none) and may refuse the change
// with an error, which is returned unchanged.
func (p *Processor) updateConsent(ctx context.Context, known *Consent, appID, openID, templateID string, ch ConsentChange, guard func(*Consent) error) (*Consent, error) {
	key := ConsentKey(appID, openID, templateID)
	var recorded ConsentChange
	c, changed, err := update(ctx, known,
		func(ctx context.Context) (*Consent, error) { return p.store.Consent(ctx, key) },
		func(c *Consent) (*Consent, error) {
			if c != nil && slices.Contains(c.Applied, ch.ID) {
				recorded, _ = c.Change(ch.ID)
				return nil, nil
			}
			if guard != nil {
				if err := guard(c); err != nil {
					return nil, err
				}
			}
			// The kind an accept carries was looked up already (ApplyConsent).
			kind := ch.Kind
			if kind == "" && (c == nil || c.Kind == "") {
				kind = p.kind(ctx, appID, templateID)
			}
			if c == nil {
				c = NewConsent(appID, openID, templateID, kind)
			} else if c.Kind == "" {
				c.Kind = kind
			}
			ch := ch
			ch.At = p.now()
			c.Apply(ch)
			recorded, _ = c.Change(ch.ID)
			return c, nil
		},
		p.store.SaveConsent)
	if err != nil {
		return c, err
	}
	if changed {
		p.metrics.consents.WithLabelValues(appID, recorded.Event()).Inc()
		changedDocument(ctx)
	}
	if recorded.ID == "" {
		// Applied long ago: its history entry is gone, there is nothing to republish.
		return c, nil
	}
	return c, p.publishConsent(ctx, recorded)
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

// ErrReportQueued is returned by ReportConsent when the report is stored on the
// stream but was not applied within reportWait; it will be.
var ErrReportQueued = errors.New("consent report queued")

// reportWait bounds how long ReportConsent waits for its report to be applied.
const reportWait = 5 * time.Second

// ReportConsent records the results of one wx.requestSubscribeMessage call
// reported by the backend. requestID identifies the call: reporting the same
// call again changes nothing. The report goes through the stream to the user's
// lane, like the popup event of the same popup, so the two never race (see
// Consent for how they are counted once). ReportConsent returns the ledger
// entries once the report is applied, or ErrReportQueued after reportWait.
func (p *Processor) ReportConsent(ctx context.Context, appID, openID, requestID string, results map[string]string) ([]Consent, error) {
	for templateID, result := range results {
		if _, ok := reportActions[result]; !ok {
			return nil, fmt.Errorf("%w: result %q for template %s: want accept, reject, ban or filter", derrors.Invalid, result, templateID)
		}
	}
	now := p.now()
	data := schemas.ConsentReport{AppID: appID, OpenID: openID, RequestID: requestID, Results: results, ReceivedAt: now}
	id := changeID("report", appID, openID, requestID)
	ce, err := schemas.NewCloudEvent(id, appID, "wxgate.report", openID, now, data)
	// Reports are the processors' business only: they go to the work stream.
	work := schemas.WorkSubject(appID, openID, schemas.WorkReport)
	if err := p.publishFor(ctx, "", work, id, "wxgate.report", ce, err); err != nil {
		return nil, err
	}
	return p.awaitReport(ctx, appID, openID, requestID, results)
}

// awaitReport polls the ledger until every template of a report shows it applied.
func (p *Processor) awaitReport(ctx context.Context, appID, openID, requestID string, results map[string]string) ([]Consent, error) {
	ctx, cancel := context.WithTimeout(ctx, reportWait)
	defer cancel()
	delay := 5 * time.Millisecond
	for {
		out := make([]Consent, 0, len(results))
		for templateID := range results {
			c, err := p.store.Consent(ctx, ConsentKey(appID, openID, templateID))
			if err != nil && !errors.Is(err, ErrNotFound) {
				if ctx.Err() != nil {
					return nil, ErrReportQueued
				}
				return nil, err
			}
			if c == nil || !slices.Contains(c.Applied, reportChangeID(requestID, templateID)) {
				break
			}
			out = append(out, *c)
		}
		if len(out) == len(results) {
			return out, nil
		}
		select {
		case <-ctx.Done():
			return nil, ErrReportQueued
		case <-time.After(delay):
			delay = min(2*delay, 200*time.Millisecond)
		}
	}
}

func reportChangeID(requestID, templateID string) string {
	return "report/" + requestID + "/" + templateID
}

// handleReport applies a consent report in the user's lane.
func (p *Processor) handleReport(ctx context.Context, it *item) error {
	var r schemas.ConsentReport
	if err := json.Unmarshal(it.ce.Data, &r); err != nil || r.AppID == "" || r.OpenID == "" || r.RequestID == "" {
		return permanentf("consent report %s: data is not a report", it.ce.ID)
	}
	templates := make([]string, 0, len(r.Results))
	for t := range r.Results {
		templates = append(templates, t)
	}
	slices.Sort(templates) // one order for every delivery
	for _, templateID := range templates {
		action, ok := reportActions[r.Results[templateID]]
		if !ok {
			return permanentf("consent report %s: result %q for template %s", it.ce.ID, r.Results[templateID], templateID)
		}
		ch := ConsentChange{ID: reportChangeID(r.RequestID, templateID), Source: SourceReport, Action: action, WeChatTime: r.ReceivedAt}
		if _, err := p.ApplyConsent(ctx, r.AppID, r.OpenID, templateID, ch); err != nil {
			return err
		}
	}
	return nil
}

// kind is the template's kind, or "" while it cannot be learned.
func (p *Processor) kind(ctx context.Context, appID, templateID string) string {
	if p.cfg.Kinds == nil {
		return KindOneTime
	}
	switch k := p.cfg.Kinds.Kind(ctx, appID, templateID); k {
	case KindLongTerm, KindOneTime:
		return k
	}
	return ""
}
