package processor

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/wxgate/wxgate/schemas"
)

// changeID derives a CloudEvent id from the parts that make a change unique, so
// that publishing the same change again yields the same id.
func changeID(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(strconv.Itoa(len(p))))
		h.Write([]byte{':'})
		h.Write([]byte(p))
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

func (p *Processor) publish(ctx context.Context, subject, id, typ string, ce schemas.CloudEvent, err error) error {
	return p.publishFor(ctx, subject, "", id, typ, ce, err)
}

// publishFor publishes ce on subject (none if empty) and, when workSubject is
// set, on the work stream for the processors.
func (p *Processor) publishFor(ctx context.Context, subject, workSubject, id, typ string, ce schemas.CloudEvent, err error) error {
	if err != nil {
		return fmt.Errorf("%s: %w", typ, err)
	}
	b, err := json.Marshal(ce)
	if err != nil {
		return fmt.Errorf("%s: %w", typ, err)
	}
	if workSubject == "" {
		_, err = p.pub.Publish(ctx, subject, id, b)
	} else {
		_, err = p.pub.PublishWork(ctx, subject, workSubject, id, b)
	}
	if err != nil {
		return fmt.Errorf("publishing %s: %w", typ, err)
	}
	return nil
}

// publishConsent announces a consent change on wechat.{appid}.consent.{event}.
// Filter results change nothing and are not announced.
func (p *Processor) publishConsent(ctx context.Context, ch ConsentChange) error {
	if ch.Action == ActionFilter || ch.Action == ActionKind {
		return nil
	}
	event := ch.Event()
	id := changeID("consent", ch.AppID, ch.OpenID, ch.TemplateID, ch.ID)
	typ := "wxgate.consent." + schemas.SubjectToken(event)
	ce, err := schemas.NewCloudEvent(id, ch.AppID, typ, ch.OpenID, ch.At, ch.Published())
	return p.publish(ctx, schemas.ConsentSubject(ch.AppID, event), id, typ, ce, err)
}

// publishDelivery announces a message's status on wechat.{appid}.delivery.{status}.
func (p *Processor) publishDelivery(ctx context.Context, m *Message) error {
	id := changeID("delivery", m.AppID, m.ID, m.Status, strconv.Itoa(m.Attempts), strconv.Itoa(m.Redrives()))
	typ := "wxgate.delivery." + m.Status
	ce, err := schemas.NewCloudEvent(id, m.AppID, typ, m.ToUser, m.UpdatedAt, m.Change())
	return p.publish(ctx, schemas.DeliverySubject(m.AppID, m.Status), id, typ, ce, err)
}
