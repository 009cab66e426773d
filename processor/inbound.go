package processor

import (
	"context"
	"encoding/json"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/wxgate/wxgate/schemas"
)

// handleInbound applies one inbound WeChat event: it is stored in the audit
// trail once, then popup and change events update the consent ledger and sent
// events update the delivery state. Every step is idempotent, so a redelivery
// (after a crash between steps, or a nak) completes what was missing and
// changes nothing else.
func (p *Processor) handleInbound(ctx context.Context, msg jetstream.Msg) error {
	ce, err := schemas.DecodeCloudEvent(msg.Data())
	if err != nil {
		return permanentf("inbound event: %v", err)
	}
	var ev schemas.Event
	if err := json.Unmarshal(ce.Data, &ev); err != nil {
		return permanentf("inbound event %s: data: %v", ce.ID, err)
	}
	if err := schemas.Validate(&ev); err != nil {
		return permanentf("inbound event %s: %v", ce.ID, err)
	}
	rec := &EventRecord{
		ID: ce.ID, AppID: ev.AppID, OpenID: ev.OpenID, Event: ev.Event, Subject: msg.Subject(),
		ReceivedAt: p.now(), Data: ev, Version: 1,
	}
	if rec.Event == "" {
		rec.Event = ev.MsgType
	}
	if _, err := p.store.InsertEvent(ctx, rec); err != nil {
		return err
	}
	at := time.Unix(ev.CreateTime, 0).UTC()
	switch ev.Event {
	case schemas.EventSubscribePopup, schemas.EventSubscribeChange:
		for _, it := range ev.Items {
			ch := ConsentChange{ID: ce.ID + "/" + it.TemplateID, Source: SourcePush, Action: it.Status, At: at}
			if _, err := p.ApplyConsent(ctx, ev.AppID, ev.OpenID, it.TemplateID, ch); err != nil {
				return err
			}
		}
	case schemas.EventSubscribeSent:
		for _, it := range ev.Items {
			o := &Outcome{
				ID: WeChatKey(ev.AppID, it.MsgID), AppID: ev.AppID, MsgID: it.MsgID, OpenID: ev.OpenID,
				TemplateID: it.TemplateID, ErrorCode: it.ErrorCode, ErrorStatus: it.ErrorStatus, EventID: ce.ID, At: at,
			}
			if err := p.applyOutcome(ctx, o); err != nil {
				return err
			}
		}
	}
	p.metrics.events.WithLabelValues(ev.AppID, metricEvent(rec.Event)).Inc()
	return nil
}

// metricEvent bounds the event label to the subscription events.
func metricEvent(e string) string {
	switch e {
	case schemas.EventSubscribePopup, schemas.EventSubscribeChange, schemas.EventSubscribeSent:
		return e
	}
	return "other"
}
