package processor

import (
	"context"
	"errors"
	"fmt"
)

// UpdateMessage applies fn to a message with compare-and-set and publishes its
// state on wechat.{appid}.delivery.{status}. fn returns whether it changed the
// message; when it did not, the current state is published again under the same
// event id (the stream drops the duplicate), which completes a publish that a
// crash interrupted.
func (p *Processor) UpdateMessage(ctx context.Context, appID, id string, fn func(*Message) (bool, error)) (*Message, error) {
	for range maxCASAttempts {
		m, err := p.store.Message(ctx, appID, id)
		if err != nil {
			return nil, err
		}
		changed, err := fn(m)
		if err != nil {
			return m, err
		}
		if !changed {
			return m, p.publishDelivery(ctx, m)
		}
		m.Version++
		err = p.store.SaveMessage(ctx, m)
		if errors.Is(err, ErrConflict) {
			continue
		}
		if err != nil {
			return nil, err
		}
		p.metrics.deliveries.WithLabelValues(appID, m.Status).Inc()
		return m, p.publishDelivery(ctx, m)
	}
	return nil, fmt.Errorf("message %s: %w after %d attempts", id, ErrConflict, maxCASAttempts)
}

// Message returns one message.
func (p *Processor) Message(ctx context.Context, appID, id string) (*Message, error) {
	return p.store.Message(ctx, appID, id)
}

// applyOutcome records a sent event's outcome and applies it to its message. The
// outcome is stored first: if the message has no msgid yet (the push beat the
// send's reply), MarkSent applies it when the msgid is recorded. Both sides write
// before they read, so one of them always sees the other.
func (p *Processor) applyOutcome(ctx context.Context, o *Outcome) error {
	if err := p.store.PutOutcome(ctx, o); err != nil {
		return err
	}
	m, err := p.store.MessageByWeChatID(ctx, o.AppID, o.MsgID)
	if errors.Is(err, ErrNotFound) {
		p.log.Info("outcome kept until its message is known", "appid", o.AppID, "msgid", o.MsgID)
		return nil
	}
	if err != nil {
		return err
	}
	_, err = p.UpdateMessage(ctx, o.AppID, m.ID, func(m *Message) (bool, error) { return m.ApplyOutcome(*o), nil })
	return err
}

// MarkSent records that WeChat accepted message id with msgID (the attempt that
// succeeded), then applies an outcome that arrived before.
func (p *Processor) MarkSent(ctx context.Context, appID, id, msgID string) (*Message, error) {
	m, err := p.UpdateMessage(ctx, appID, id, func(m *Message) (bool, error) {
		if m.Status != StatusSending {
			return false, nil
		}
		m.Attempts++
		m.WeChatMsgID, m.WeChatKey, m.ErrCode, m.ErrMsg = msgID, WeChatKey(appID, msgID), 0, ""
		return true, m.Transition(StatusSent, "WeChat accepted msgid "+msgID, p.now())
	})
	if err != nil {
		return m, err
	}
	o, err := p.store.Outcome(ctx, appID, msgID)
	if errors.Is(err, ErrNotFound) {
		return m, nil
	}
	if err != nil {
		return m, err
	}
	return p.UpdateMessage(ctx, appID, id, func(m *Message) (bool, error) { return m.ApplyOutcome(*o), nil })
}
