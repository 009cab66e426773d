package processor

import (
	"context"
	"errors"
	"slices"
)

// UpdateMessage applies fn to a message with compare-and-set and publishes its
// state on wechat.{appid}.delivery.{status}. It starts from known when the
// caller holds the message (nil: read it). fn returns whether it changed the
// message; when it did not, the current state is published again under the
// same event id (the stream drops the duplicate), which completes a publish
// that a crash interrupted. Callers run in the recipient's lane.
func (p *Processor) UpdateMessage(ctx context.Context, known *Message, appID, id string, fn func(*Message) (bool, error)) (*Message, error) {
	m, changed, err := update(ctx, known,
		func(ctx context.Context) (*Message, error) {
			m, err := p.store.Message(ctx, appID, id)
			if errors.Is(err, ErrNotFound) {
				return nil, err // a message is never created here
			}
			return m, err
		},
		func(m *Message) (*Message, error) {
			ok, err := fn(m)
			if err != nil || !ok {
				return nil, err
			}
			return m, nil
		},
		p.store.SaveMessage)
	if err != nil {
		return m, err
	}
	if changed {
		p.metrics.deliveries.WithLabelValues(appID, m.Status).Inc()
		changedDocument(ctx)
	}
	return m, p.publishDelivery(ctx, m)
}

// Message returns one message.
func (p *Processor) Message(ctx context.Context, appID, id string) (*Message, error) {
	return p.store.Message(ctx, appID, id)
}

// applyOutcome records a sent event's report under its msgid and applies it to
// the message WeChat accepted under that msgid. When the message's send has
// not recorded the msgid yet, the report waits in the outcome record and
// MarkSent applies it. Both sides write before they read, so one of them
// always sees the other.
func (p *Processor) applyOutcome(ctx context.Context, report Outcome) error {
	o, kept, err := update(ctx, nil,
		func(ctx context.Context) (*Outcome, error) { return p.store.Outcome(ctx, report.AppID, report.MsgID) },
		func(o *Outcome) (*Outcome, error) {
			switch {
			case o == nil:
				r := report
				return &r, nil
			case o.MessageID != "":
				return nil, nil // the message carries the result; nothing to keep here
			case o.Reported():
				return nil, nil
			}
			id, v := o.MessageID, o.Version
			*o = report
			o.MessageID, o.Version = id, v
			return o, nil
		},
		p.store.SaveOutcome)
	if err != nil {
		return err
	}
	if kept {
		changedDocument(ctx)
	}
	if o.MessageID == "" {
		return p.settleUnmatched(ctx, o)
	}
	_, err = p.UpdateMessage(ctx, nil, report.AppID, o.MessageID, func(m *Message) (bool, error) {
		return m.ApplyOutcome(&report, p.now()), nil
	})
	return err
}

// settleUnmatched applies a sent event whose msgid names no message to the
// oldest message of its user and template whose send outcome is unknown (or
// that WeChat accepted without a msgid). With none, the report stays in its
// outcome record for a message that may still name the msgid.
//
// With none, the msgid waits on the same consent document (Unmatched) for
// the next message of that user and template to become unknown (see
// matchUnknown), and the report in its outcome record for a message that may
// still name the msgid.
func (p *Processor) settleUnmatched(ctx context.Context, o *Outcome) error {
	var id string
	_, _, err := update(ctx, nil,
		func(ctx context.Context) (*Consent, error) {
			return p.store.Consent(ctx, ConsentKey(o.AppID, o.OpenID, o.TemplateID))
		},
		func(c *Consent) (*Consent, error) {
			id = ""
			switch {
			case c == nil, slices.Contains(c.Unmatched, o.MsgID):
				return nil, nil
			case len(c.Unsettled) > 0:
				id, c.Unsettled = c.Unsettled[0], c.Unsettled[1:]
			default:
				c.Unmatched = appendBounded(c.Unmatched, o.MsgID, maxUnmatched)
			}
			return c, nil
		},
		p.store.SaveConsent)
	if err != nil {
		return err
	}
	if id == "" {
		p.log.Info("outcome kept until its message is known", "appid", o.AppID, "msgid", o.MsgID)
		return nil
	}
	return p.settleWith(ctx, o.AppID, id, o)
}

// maxUnmatched bounds the unmatched msgids a consent document remembers.
const maxUnmatched = 32

// settleWith applies the sent event o to message id, whose send outcome was
// unknown, and links o's msgid to it.
func (p *Processor) settleWith(ctx context.Context, appID, id string, o *Outcome) error {
	m, err := p.UpdateMessage(ctx, nil, appID, id, func(m *Message) (bool, error) {
		return m.ApplyOutcome(o, p.now()), nil
	})
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if _, err := p.linkMsgID(ctx, m, o.MsgID); err != nil {
		return err
	}
	p.log.Info("sent event settled a message whose send outcome was unknown", "appid", appID, "message", id, "msgid", o.MsgID)
	return nil
}

// matchUnknown waits for the sent event of m, whose send outcome is unknown
// (or that WeChat accepted without a msgid): it takes the oldest sent event of
// its user and template that matched no message, if one came first, and
// otherwise lists m as waiting (Unsettled) for the next one.
func (p *Processor) matchUnknown(ctx context.Context, m *Message) error {
	key := ConsentKey(m.AppID, m.ToUser, m.TemplateID)
	for range maxUnmatched + 1 {
		var msgID string
		_, _, err := update(ctx, nil,
			func(ctx context.Context) (*Consent, error) { return p.store.Consent(ctx, key) },
			func(c *Consent) (*Consent, error) {
				msgID = ""
				switch {
				case c == nil, slices.Contains(c.Unsettled, m.ID):
					return nil, nil
				case len(c.Unmatched) > 0:
					msgID, c.Unmatched = c.Unmatched[0], c.Unmatched[1:]
				default:
					c.Unsettled = append(c.Unsettled, m.ID)
				}
				return c, nil
			},
			p.store.SaveConsent)
		if err != nil || msgID == "" {
			return err
		}
		o, err := p.store.Outcome(ctx, m.AppID, msgID)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if !o.Reported() || o.MessageID != "" {
			continue // its message named it meanwhile: not ours
		}
		return p.settleWith(ctx, m.AppID, m.ID, o)
	}
	return nil
}

// linkMsgID records that WeChat accepted message m under msgID, so that its
// sent event finds it; a sent event that arrived first is applied to m.
func (p *Processor) linkMsgID(ctx context.Context, m *Message, msgID string) (*Message, error) {
	var report *Outcome
	_, _, err := update(ctx, &Outcome{ID: WeChatKey(m.AppID, msgID), AppID: m.AppID, MsgID: msgID},
		func(ctx context.Context) (*Outcome, error) { return p.store.Outcome(ctx, m.AppID, msgID) },
		func(o *Outcome) (*Outcome, error) {
			if o == nil {
				o = &Outcome{ID: WeChatKey(m.AppID, msgID), AppID: m.AppID, MsgID: msgID}
			}
			if o.Reported() {
				r := *o
				report = &r
			}
			if o.MessageID == m.ID {
				return nil, nil
			}
			o.MessageID = m.ID
			return o, nil
		},
		p.store.SaveOutcome)
	if err != nil || report == nil {
		return m, err
	}
	// The sent event came first and may wait among the unmatched: it is m's.
	if err := p.editConsentLists(ctx, m.AppID, m.ToUser, m.TemplateID, func(c *Consent) bool {
		if !slices.Contains(c.Unmatched, msgID) {
			return false
		}
		c.Unmatched = slices.DeleteFunc(c.Unmatched, func(id string) bool { return id == msgID })
		return true
	}); err != nil {
		return m, err
	}
	return p.UpdateMessage(ctx, m, m.AppID, m.ID, func(m *Message) (bool, error) {
		return m.ApplyOutcome(report, p.now()), nil
	})
}
