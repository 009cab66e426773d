package processor

import (
	"context"
	"encoding/json"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/wxgate/wxgate/schemas"
)

// decode reads a stream message into an item: its CloudEvent, its lane key
// (app and user) and its handler, chosen by the subject's third token. A
// message that cannot be decoded is permanent: no redelivery will fix it.
func (p *Processor) decode(msg jetstream.Msg) (*item, error) {
	w, err := schemas.ParseWorkSubject(msg.Subject())
	if err != nil {
		return nil, permanentf("%v", err)
	}
	ce, err := schemas.DecodeCloudEvent(msg.Data())
	if err != nil {
		return nil, permanentf("%s: %v", msg.Subject(), err)
	}
	it := &item{msg: msg, ce: ce, key: w.AppID + "/" + ce.Subject}
	switch w.Kind {
	case schemas.WorkInbound:
		var ev schemas.Event
		if err := json.Unmarshal(ce.Data, &ev); err != nil {
			return nil, permanentf("inbound event %s: data: %v", ce.ID, err)
		}
		if err := schemas.Validate(&ev); err != nil {
			return nil, permanentf("inbound event %s: %v", ce.ID, err)
		}
		it.event, it.handler = &ev, p.handleInbound
	case schemas.WorkSend:
		it.handler = p.handleSend
	case schemas.WorkReport:
		it.handler = p.handleReport
	default:
		return nil, permanentf("subject %s: no handler", msg.Subject())
	}
	return it, nil
}

// record is the audit record of an inbound item.
func (it *item) record() EventRecord {
	ev := it.event
	rec := EventRecord{
		ID: it.ce.ID, AppID: ev.AppID, OpenID: ev.OpenID, Event: ev.Event, Subject: ev.Subject(),
		ReceivedAt: it.ce.Time.UTC(), Data: *ev,
	}
	if rec.Event == "" {
		rec.Event = ev.MsgType
	}
	return rec
}

// handleInbound applies one inbound WeChat event, whose audit record is
// already stored: popup and change events update the consent ledger and sent
// events update the delivery state. Every step is idempotent, so a redelivery
// (after a crash between steps, or a nak) completes what was missing and
// changes nothing else.
func (p *Processor) handleInbound(ctx context.Context, it *item) error {
	ev := it.event
	wechatTime := time.Unix(ev.CreateTime, 0).UTC()
	switch ev.Event {
	case schemas.EventSubscribePopup, schemas.EventSubscribeChange:
		for _, i := range ev.Items {
			ch := ConsentChange{ID: it.ce.ID + "/" + i.TemplateID, Source: SourcePush, Action: i.Status, WeChatTime: wechatTime}
			if _, err := p.ApplyConsent(ctx, ev.AppID, ev.OpenID, i.TemplateID, ch); err != nil {
				return err
			}
		}
	case schemas.EventSubscribeSent:
		for _, i := range ev.Items {
			if i.MsgID == "" {
				p.log.Warn("sent event without a msgid; nothing to match", "appid", ev.AppID, "event", it.ce.ID)
				continue
			}
			o := Outcome{
				ID: WeChatKey(ev.AppID, i.MsgID), AppID: ev.AppID, MsgID: i.MsgID, OpenID: ev.OpenID,
				TemplateID: i.TemplateID, ErrorCode: i.ErrorCode, ErrorStatus: i.ErrorStatus,
				EventID: it.ce.ID, WeChatTime: wechatTime,
			}
			if err := p.applyOutcome(ctx, o); err != nil {
				return err
			}
		}
	}
	p.metrics.events.WithLabelValues(ev.AppID, metricEvent(ev.Event)).Inc()
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
