package processor

import (
	"slices"
	"time"

	"github.com/wxgate/wxgate/schemas"
)

// Consent kinds.
const (
	KindOneTime  = "one_time"
	KindLongTerm = "long_term"
)

// Consent statuses.
const (
	ConsentAccepted = "accepted"
	ConsentRejected = "rejected"
	ConsentBanned   = "banned"
)

// Sources of a consent change.
const (
	SourcePush   = "push"   // a popup or change event pushed by WeChat
	SourceReport = "report" // a wx.requestSubscribeMessage result reported by the backend
	SourceSend   = "send"   // the send pipeline used or returned a grant, or WeChat said 43101
)

// maxApplied bounds the source ids a consent remembers for idempotence. Redeliveries
// come within minutes, long before a user answers 64 more popups for one template.
const maxApplied = 64

// maxHistory bounds the history kept on a consent document.
const maxHistory = 100

// Consent is one user's consent for one template of one app: the ledger entry,
// stored as one document so that every change is a single-document update.
//
// One-time grants are counted so that one popup is never counted twice when both
// WeChat's popup event and the backend's report of the same popup arrive, in
// either order and at any delay. Each source keeps its own count of accepts
// since the entry was created, PushAccepts and ReportAccepts; a popup raises
// each count at most once, so the number of popups seen is the larger of the two.
// Used counts grants spent (and grants written off by a reject or a 43101):
//
//	Grants = max(PushAccepts, ReportAccepts) - Used
//
// A reject sets Used to that maximum (no grants left) without forgetting the
// counts, so a late report of a popup already counted by its push stays a no-op.
// When the two sources each miss a different popup, the ledger undercounts:
// it errs towards a rejected send rather than a 43101.
//
// Kind is "" while the template's kind could not be learned (gettemplate
// failing): the entry then counts grants as a one-time entry does, a send uses
// one, and the first change or send after gettemplate answers sets the kind.
type Consent struct {
	ID         string `bson:"_id" json:"-"`
	AppID      string `bson:"appid" json:"-"`
	OpenID     string `bson:"openid" json:"-"`
	TemplateID string `bson:"template_id" json:"template_id"`
	Kind       string `bson:"kind" json:"kind"`
	Status     string `bson:"status" json:"status"`
	// Grants is the number of one-time sends left (always 0 for long-term consents).
	Grants        int `bson:"grants" json:"grants"`
	PushAccepts   int `bson:"push_accepts" json:"-"`
	ReportAccepts int `bson:"report_accepts" json:"-"`
	Used          int `bson:"used" json:"-"`
	// StatusAt is the time of the answer that set Status (WeChat's time for a
	// push); an older answer arriving late (a redelivery after a nak) does not
	// overturn a newer one.
	StatusAt  time.Time       `bson:"status_at" json:"-"`
	UpdatedAt time.Time       `bson:"updated_at" json:"updated_at"`
	History   []ConsentChange `bson:"history" json:"history"`
	// Applied lists the ids of the latest changes applied, for idempotence.
	Applied []string `bson:"applied" json:"-"`
	// Unsettled lists, oldest first, the user's messages of this template that
	// WeChat may have accepted but whose sent event cannot be matched by msgid
	// (unknown, or accepted without a msgid): a sent event that matches no
	// message settles the first of them. Kept here because this document is
	// found by _id from what a sent event names (app, user, template).
	Unsettled []string `bson:"unsettled,omitempty" json:"-"`
	// Unmatched lists, oldest first, the msgids of sent events for this user
	// and template that matched no message when they came (the message's send
	// outcome was not yet known to be unknown, as after a crash): the next
	// message that becomes unknown takes the oldest. Bounded by maxUnmatched.
	Unmatched []string `bson:"unmatched,omitempty" json:"-"`
	// Version is the optimistic-concurrency counter of the document.
	Version int64 `bson:"version" json:"-"`
}

// ConsentChange is one entry of a consent's history; Published gives the data
// of the wechat.{appid}.consent.{event} event that announces it.
type ConsentChange struct {
	// ID identifies the change's cause: an event id and template, a report id, a message id.
	ID         string `bson:"id" json:"id"`
	AppID      string `bson:"appid" json:"appid"`
	OpenID     string `bson:"openid" json:"openid"`
	TemplateID string `bson:"template_id" json:"template_id"`
	Source     string `bson:"source" json:"source"`
	Action     string `bson:"action" json:"action"` // accept, reject, ban, filter, consume, restore, zero
	Kind       string `bson:"kind" json:"kind"`
	Status     string `bson:"status" json:"status"`
	Grants     int    `bson:"grants" json:"grants"`
	// At is when wxgate applied the change; history entries never go back in time.
	At time.Time `bson:"at" json:"at"`
	// WeChatTime is the time of the answer the change records: the push's
	// CreateTime, or when a report was received. Empty for the send pipeline's changes.
	WeChatTime time.Time `bson:"wechat_time,omitempty" json:"wechat_time,omitzero"`
}

// Published returns the change as it is published.
func (c ConsentChange) Published() schemas.ConsentChange {
	if c.Kind == "" {
		c.Kind = KindOneTime // counted as one-time until the kind is learned
	}
	return schemas.ConsentChange{
		ID: c.ID, AppID: c.AppID, OpenID: c.OpenID, TemplateID: c.TemplateID, Source: c.Source,
		Action: c.Action, Kind: c.Kind, Status: c.Status, Grants: c.Grants, At: c.At, WeChatTime: c.WeChatTime,
	}
}

// Event is the name of the consent event this change publishes: the new status,
// or "consumed" and "restored" for grant bookkeeping.
func (c ConsentChange) Event() string {
	switch c.Action {
	case ActionConsume:
		return "consumed"
	case ActionRestore:
		return "restored"
	}
	return c.Status
}

// Consent actions.
const (
	ActionAccept  = "accept"
	ActionReject  = "reject"
	ActionBan     = "ban"
	ActionFilter  = "filter"
	ActionConsume = "consume"
	ActionRestore = "restore"
	ActionZero    = "zero" // WeChat answered 43101: nothing left, whatever we counted
	ActionKind    = "kind" // the template's kind was learned after the entry was made
)

// ConsentKey is the natural id of a consent document.
func ConsentKey(appID, openID, templateID string) string {
	return appID + "/" + openID + "/" + templateID
}

// NewConsent returns the empty ledger entry for one user and template.
func NewConsent(appID, openID, templateID, kind string) *Consent {
	return &Consent{
		ID: ConsentKey(appID, openID, templateID), AppID: appID, OpenID: openID, TemplateID: templateID,
		Kind: kind, Status: ConsentRejected,
	}
}

// Apply applies change ch to c. It returns false when ch.ID was already applied
// (a redelivery), leaving c untouched then. An accept adopts ch.Kind, the
// template's kind as known when the change was made.
func (c *Consent) Apply(ch ConsentChange) bool {
	if slices.Contains(c.Applied, ch.ID) {
		return false
	}
	answered := ch.WeChatTime
	if answered.IsZero() {
		answered = ch.At
	}
	newer := !answered.Before(c.StatusAt)
	switch ch.Action {
	case ActionAccept:
		if ch.Kind != "" {
			c.Kind = ch.Kind
		}
		if c.Kind != KindLongTerm {
			switch ch.Source {
			case SourceReport:
				c.ReportAccepts++
			default:
				c.PushAccepts++
			}
		}
		if newer {
			c.Status, c.StatusAt = ConsentAccepted, answered
		}
	case ActionReject, ActionBan:
		c.Used = c.accepts()
		if newer {
			c.Status, c.StatusAt = ConsentRejected, answered
			if ch.Action == ActionBan {
				c.Status = ConsentBanned
			}
		}
	case ActionZero:
		c.Used = c.accepts()
		if c.Kind == KindLongTerm {
			c.Status = ConsentRejected
		}
	case ActionConsume:
		if c.Kind != KindLongTerm {
			c.Used++
		}
	case ActionRestore:
		if c.Kind != KindLongTerm && c.Used > 0 {
			c.Used--
		}
	case ActionKind:
		c.Kind = ch.Kind
	case ActionFilter:
		// The template was filtered out of the popup: nothing was asked, nothing changes
		// but the history.
	}
	c.Grants = 0
	if c.Kind != KindLongTerm {
		c.Grants = max(c.accepts()-c.Used, 0)
	}
	if ch.At.Before(c.UpdatedAt) {
		// Another process's clock: never let an entry sort before the one it follows.
		ch.At = c.UpdatedAt
	}
	ch.AppID, ch.OpenID, ch.TemplateID = c.AppID, c.OpenID, c.TemplateID
	ch.Kind, ch.Status, ch.Grants = c.Kind, c.Status, c.Grants
	c.History = appendBounded(c.History, ch, maxHistory)
	c.Applied = appendBounded(c.Applied, ch.ID, maxApplied)
	c.UpdatedAt = ch.At
	return true
}

func (c *Consent) accepts() int { return max(c.PushAccepts, c.ReportAccepts) }

// CanSend reports whether a send of this template is allowed now.
func (c *Consent) CanSend() bool {
	if c.Status != ConsentAccepted {
		return false
	}
	return c.Kind == KindLongTerm || c.Grants > 0
}

// OneTime reports whether sends use grants: a one-time entry, or one whose kind
// is not known yet.
func (c *Consent) OneTime() bool { return c.Kind != KindLongTerm }

// Change returns the applied change with the given id, for republishing a change
// whose first publication may have been lost.
func (c *Consent) Change(id string) (ConsentChange, bool) {
	for i := len(c.History) - 1; i >= 0; i-- {
		if c.History[i].ID == id {
			return c.History[i], true
		}
	}
	return ConsentChange{}, false
}

func appendBounded[T any](s []T, v T, n int) []T {
	s = append(s, v)
	if len(s) > n {
		s = slices.Clone(s[len(s)-n:])
	}
	return s
}
