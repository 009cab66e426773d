package store

import (
	"context"
	"errors"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/wxgate/wxgate/processor"
)

func (s *Store) coll(name string) *mongo.Collection { return s.db.Collection(name) }

// InsertEvents stores inbound events in one round trip; an event stored
// before is skipped (a redelivery), not an error.
func (s *Store) InsertEvents(ctx context.Context, events []processor.EventRecord) error {
	if len(events) == 0 {
		return nil
	}
	_, err := s.coll(collEvents).InsertMany(ctx, events, options.InsertMany().SetOrdered(false))
	if err == nil || onlyDuplicates(err) {
		return nil
	}
	return classify(err)
}

// onlyDuplicates reports whether every error of a bulk write is a duplicate key.
func onlyDuplicates(err error) bool {
	var bwe mongo.BulkWriteException
	if !errors.As(err, &bwe) || bwe.WriteConcernError != nil || len(bwe.WriteErrors) == 0 {
		return false
	}
	for _, we := range bwe.WriteErrors {
		if !we.HasErrorCode(11000) {
			return false
		}
	}
	return true
}

// Event reads one inbound event of an app by _id (the app is checked here, as
// Message does).
func (s *Store) Event(ctx context.Context, appID, id string) (*processor.EventRecord, error) {
	e, err := get[processor.EventRecord](ctx, s.coll(collEvents), bson.M{"_id": id})
	if err != nil {
		return nil, err
	}
	if e.AppID != appID {
		return nil, processor.ErrNotFound
	}
	return e, nil
}

// Events lists the audit trail, newest first.
func (s *Store) Events(ctx context.Context, q processor.EventQuery) ([]processor.EventRecord, string, error) {
	if s.lists != nil {
		fs := []eq{{"appid", q.AppID}}
		if q.OpenID != "" {
			fs = append(fs, eq{"openid", q.OpenID})
		}
		if q.Event != "" {
			fs = append(fs, eq{"event", q.Event})
		}
		return listed[processor.EventRecord](ctx, s, collEvents, fs, "received_at", q.Page)
	}
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
	return read(ctx, s, s.coll(collConsents), id, func(c *processor.Consent) int64 { return c.Version })
}

// SaveConsent writes c with compare-and-set on its version.
func (s *Store) SaveConsent(ctx context.Context, c *processor.Consent) error {
	return s.save(ctx, s.coll(collConsents), c.ID, c.Version, c)
}

// maxConsentsListed bounds one user's ledger entries read at once: one per
// template of the app.
const maxConsentsListed = 1000

// Consents lists a user's ledger entries for one app.
func (s *Store) Consents(ctx context.Context, appID, openID string) ([]processor.Consent, error) {
	if s.lists != nil {
		ids, err := s.lists.allIDs(ctx, collConsents, []eq{{"appid", appID}, {"openid", openID}}, maxConsentsListed)
		if err != nil {
			return nil, err
		}
		return byIDs[processor.Consent](ctx, s.coll(collConsents), ids)
	}
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
// app here: the embedded store uses an index only for a filter on _id alone.
func (s *Store) Message(ctx context.Context, appID, id string) (*processor.Message, error) {
	m, err := read(ctx, s, s.coll(collMessages), id, func(m *processor.Message) int64 { return m.Version })
	if err != nil {
		return nil, err
	}
	if m.AppID != appID {
		return nil, processor.ErrNotFound
	}
	return m, nil
}

// SaveMessage writes m with compare-and-set on its version.
func (s *Store) SaveMessage(ctx context.Context, m *processor.Message) error {
	return s.save(ctx, s.coll(collMessages), m.ID, m.Version, m)
}

// Messages lists messages, newest first.
func (s *Store) Messages(ctx context.Context, q processor.MessageQuery) ([]processor.Message, string, error) {
	if s.lists != nil {
		fs := []eq{{"appid", q.AppID}}
		for _, f := range []eq{{"touser", q.ToUser}, {"template_id", q.TemplateID}, {"status", q.Status}} {
			if f.value != "" {
				fs = append(fs, f)
			}
		}
		return listed[processor.Message](ctx, s, collMessages, fs, "created_at", q.Page)
	}
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

// Outcome reads the record of one WeChat msgid.
func (s *Store) Outcome(ctx context.Context, appID, msgID string) (*processor.Outcome, error) {
	return read(ctx, s, s.coll(collOutcomes), processor.WeChatKey(appID, msgID), func(o *processor.Outcome) int64 { return o.Version })
}

// SaveOutcome writes o with compare-and-set on its version.
func (s *Store) SaveOutcome(ctx context.Context, o *processor.Outcome) error {
	return s.save(ctx, s.coll(collOutcomes), o.ID, o.Version, o)
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
	return read(ctx, s, s.coll(collDLQ), id, func(d *processor.DeadLetter) int64 { return d.Version })
}

// SaveDeadLetter writes d with compare-and-set on its version.
func (s *Store) SaveDeadLetter(ctx context.Context, d *processor.DeadLetter) error {
	return s.save(ctx, s.coll(collDLQ), d.ID, d.Version, d)
}

// DeleteDeadLetter removes one dead letter by _id.
func (s *Store) DeleteDeadLetter(ctx context.Context, id string) error {
	c := s.coll(collDLQ)
	if s.guard != nil {
		defer s.guard.lock(c.Name() + "/" + id)()
		defer s.guard.forget(c.Name() + "/" + id)
	}
	_, err := c.DeleteOne(ctx, bson.M{"_id": id})
	return classify(err)
}

// DeadLetters lists dead letters, newest first.
func (s *Store) DeadLetters(ctx context.Context, q processor.DeadLetterQuery) ([]processor.DeadLetter, string, error) {
	if s.lists != nil {
		var fs []eq
		if q.AppID != "" {
			fs = append(fs, eq{"appid", q.AppID})
		}
		if q.Consumer != "" {
			fs = append(fs, eq{"consumer", q.Consumer})
		}
		if q.ErrCode != nil {
			fs = append(fs, eq{"errcode", *q.ErrCode})
		}
		return listed[processor.DeadLetter](ctx, s, collDLQ, fs, "at", q.Page)
	}
	f := bson.M{}
	if q.AppID != "" {
		f["appid"] = q.AppID
	}
	if q.Consumer != "" {
		f["consumer"] = q.Consumer
	}
	if q.ErrCode != nil {
		f["errcode"] = *q.ErrCode
	}
	return list(ctx, s.coll(collDLQ), f, "at", q.Page, func(d *processor.DeadLetter) (time.Time, string) {
		return d.At, d.ID
	})
}

// PutOutbox records a message whose send event is about to be published; a
// second record of the same message is not an error.
func (s *Store) PutOutbox(ctx context.Context, e *processor.OutboxEntry) error {
	_, err := s.coll(collOutbox).InsertOne(ctx, e)
	if mongo.IsDuplicateKeyError(err) {
		return nil
	}
	return classify(err)
}

// DeleteOutbox removes a message's outbox entry by _id.
func (s *Store) DeleteOutbox(ctx context.Context, id string) error {
	_, err := s.coll(collOutbox).DeleteOne(ctx, bson.M{"_id": id})
	return classify(err)
}

// Outbox lists the outbox, oldest first. The collection holds only the
// publishes in flight or lost, so reading it whole is cheap.
func (s *Store) Outbox(ctx context.Context, limit int) ([]processor.OutboxEntry, error) {
	cur, err := s.coll(collOutbox).Find(ctx, bson.M{}, options.Find().SetSort(bson.D{{Key: "at", Value: 1}}).SetLimit(int64(limit)))
	if err != nil {
		return nil, classify(err)
	}
	out := []processor.OutboxEntry{}
	if err := cur.All(ctx, &out); err != nil {
		return nil, classify(err)
	}
	return out, nil
}
