package store

import (
	"context"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/wxgate/wxgate/processor"
)

func (s *Store) coll(name string) *mongo.Collection { return s.db.Collection(name) }

// InsertEvent stores e once by its id.
func (s *Store) InsertEvent(ctx context.Context, e *processor.EventRecord) (bool, error) {
	_, err := s.coll(collEvents).InsertOne(ctx, e)
	if mongo.IsDuplicateKeyError(err) {
		return false, nil
	}
	if err != nil {
		return false, classify(err)
	}
	return true, nil
}

// Events lists the audit trail, newest first.
func (s *Store) Events(ctx context.Context, q processor.EventQuery) ([]processor.EventRecord, string, error) {
	f := bson.M{"appid": q.AppID}
	if q.OpenID != "" {
		f["openid"] = q.OpenID
	}
	if q.Event != "" {
		f["event"] = q.Event
	}
	return list(ctx, s.coll(collEvents), f, "received_at", q.Page, func(e *processor.EventRecord) (time.Time, string) {
		return e.ReceivedAt, e.ID
	})
}

// Consent reads one ledger entry by its ConsentKey.
func (s *Store) Consent(ctx context.Context, id string) (*processor.Consent, error) {
	return get[processor.Consent](ctx, s.coll(collConsents), bson.M{"_id": id})
}

// SaveConsent writes c with compare-and-set on its version.
func (s *Store) SaveConsent(ctx context.Context, c *processor.Consent) error {
	return save(ctx, s.coll(collConsents), c.ID, c.Version, c)
}

// Consents lists a user's ledger entries for one app.
func (s *Store) Consents(ctx context.Context, appID, openID string) ([]processor.Consent, error) {
	cur, err := s.coll(collConsents).Find(ctx, bson.M{"appid": appID, "openid": openID})
	if err != nil {
		return nil, classify(err)
	}
	out := []processor.Consent{}
	if err := cur.All(ctx, &out); err != nil {
		return nil, classify(err)
	}
	return out, nil
}

// Message reads one message of an app. It filters by _id alone and checks the
// app here: the embedded store evaluates a filter on several fields outside the
// database, over every document.
func (s *Store) Message(ctx context.Context, appID, id string) (*processor.Message, error) {
	m, err := get[processor.Message](ctx, s.coll(collMessages), bson.M{"_id": id})
	if err != nil {
		return nil, err
	}
	if m.AppID != appID {
		return nil, processor.ErrNotFound
	}
	return m, nil
}

// MessageByWeChatID finds a message by WeChat's msgid.
func (s *Store) MessageByWeChatID(ctx context.Context, appID, msgID string) (*processor.Message, error) {
	return get[processor.Message](ctx, s.coll(collMessages), bson.M{"wechat_key": processor.WeChatKey(appID, msgID)})
}

// SaveMessage writes m with compare-and-set on its version.
func (s *Store) SaveMessage(ctx context.Context, m *processor.Message) error {
	return save(ctx, s.coll(collMessages), m.ID, m.Version, m)
}

// Messages lists messages, newest first.
func (s *Store) Messages(ctx context.Context, q processor.MessageQuery) ([]processor.Message, string, error) {
	f := bson.M{"appid": q.AppID}
	if q.ToUser != "" {
		f["touser"] = q.ToUser
	}
	if q.TemplateID != "" {
		f["template_id"] = q.TemplateID
	}
	if q.Status != "" {
		f["status"] = q.Status
	}
	return list(ctx, s.coll(collMessages), f, "created_at", q.Page, func(m *processor.Message) (time.Time, string) {
		return m.CreatedAt, m.ID
	})
}

// PutOutcome stores a sent event's outcome once.
func (s *Store) PutOutcome(ctx context.Context, o *processor.Outcome) error {
	_, err := s.coll(collOutcomes).InsertOne(ctx, o)
	if mongo.IsDuplicateKeyError(err) {
		return nil
	}
	return classify(err)
}

// Outcome reads the outcome of one WeChat msgid.
func (s *Store) Outcome(ctx context.Context, appID, msgID string) (*processor.Outcome, error) {
	return get[processor.Outcome](ctx, s.coll(collOutcomes), bson.M{"_id": processor.WeChatKey(appID, msgID)})
}

// PutDeadLetter stores a dead letter once by its id.
func (s *Store) PutDeadLetter(ctx context.Context, d *processor.DeadLetter) error {
	_, err := s.coll(collDLQ).InsertOne(ctx, d)
	if mongo.IsDuplicateKeyError(err) {
		return nil
	}
	return classify(err)
}

// DeadLetter reads one dead letter.
func (s *Store) DeadLetter(ctx context.Context, id string) (*processor.DeadLetter, error) {
	return get[processor.DeadLetter](ctx, s.coll(collDLQ), bson.M{"_id": id})
}

// SaveDeadLetter writes d with compare-and-set on its version.
func (s *Store) SaveDeadLetter(ctx context.Context, d *processor.DeadLetter) error {
	return save(ctx, s.coll(collDLQ), d.ID, d.Version, d)
}

// DeadLetters lists dead letters, newest first.
func (s *Store) DeadLetters(ctx context.Context, q processor.DeadLetterQuery) ([]processor.DeadLetter, string, error) {
	f := bson.M{}
	if q.AppID != "" {
		f["appid"] = q.AppID
	}
	if q.Consumer != "" {
		f["consumer"] = q.Consumer
	}
	return list(ctx, s.coll(collDLQ), f, "at", q.Page, func(d *processor.DeadLetter) (time.Time, string) {
		return d.At, d.ID
	})
}
