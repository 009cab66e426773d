// Package store keeps wxgate's state in MongoDB (or the embedded
// MongoDB-compatible store) with single-document atomic operations only.
package store

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"

	"github.com/wxgate/wxgate/processor"
)

var _ processor.Store = (*Store)(nil)

// Collection names.
const (
	collEvents   = "events"
	collConsents = "consents"
	collMessages = "messages"
	collOutcomes = "outcomes"
	collDLQ      = "dead_letters"
)

// Limits of list queries.
const (
	DefaultLimit = 50
	MaxLimit     = 500
)

// Store is a processor.Store on MongoDB. It is safe for concurrent use.
type Store struct {
	client *mongo.Client
	db     *mongo.Database
}

// Open connects to uri, checks the connection and creates the collections'
// indexes (idempotently, so every instance does it at start-up).
func Open(ctx context.Context, uri, database string) (*Store, error) {
	client, err := mongo.Connect(options.Client().
		ApplyURI(uri).
		SetAppName("wxgate").
		SetServerSelectionTimeout(5 * time.Second).
		SetTimeout(10 * time.Second))
	if err != nil {
		return nil, fmt.Errorf("store: %w: %v", processor.ErrUnavailable, redactURI(err, uri))
	}
	s := &Store{client: client, db: client.Database(database)}
	if err := s.Ping(ctx); err != nil {
		_ = client.Disconnect(context.WithoutCancel(ctx))
		return nil, err
	}
	if err := s.ensureIndexes(ctx); err != nil {
		_ = client.Disconnect(context.WithoutCancel(ctx))
		return nil, err
	}
	return s, nil
}

// redactURI keeps a connection string's credentials out of an error.
func redactURI(err error, uri string) error {
	msg := err.Error()
	if uri != "" {
		msg = strings.ReplaceAll(msg, uri, "<mongo.uri>")
	}
	return errors.New(msg)
}

// Close disconnects.
func (s *Store) Close(ctx context.Context) error { return s.client.Disconnect(ctx) }

// Ping checks that the store answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.client.Ping(ctx, readpref.Primary()); err != nil {
		return fmt.Errorf("store: %w: %v", processor.ErrUnavailable, err)
	}
	return nil
}

func (s *Store) ensureIndexes(ctx context.Context) error {
	idx := func(unique, sparse bool, keys ...string) mongo.IndexModel {
		d := bson.D{}
		for _, k := range keys {
			dir := 1
			if name, desc := strings.CutPrefix(k, "-"); desc {
				k, dir = name, -1
			}
			d = append(d, bson.E{Key: k, Value: dir})
		}
		o := options.Index()
		if unique {
			o.SetUnique(true)
		}
		if sparse {
			o.SetSparse(true)
		}
		return mongo.IndexModel{Keys: d, Options: o}
	}
	want := map[string][]mongo.IndexModel{
		collEvents: {
			idx(false, false, "appid", "-received_at", "-_id"),
			idx(false, false, "appid", "openid", "-received_at", "-_id"),
		},
		collConsents: {idx(true, false, "appid", "openid", "template_id")},
		collMessages: {
			idx(true, true, "wechat_key"),
			idx(false, false, "appid", "-created_at", "-_id"),
			idx(false, false, "appid", "touser", "-created_at", "-_id"),
		},
		collDLQ: {idx(false, false, "-at", "-_id")},
	}
	// One index per command: FerretDB v1 drops the connection when a createIndexes
	// with several indexes meets indexes it already has from a previous run, and
	// MongoDB treats each existing identical index as a no-op either way.
	for coll, models := range want {
		for _, m := range models {
			if _, err := s.db.Collection(coll).Indexes().CreateOne(ctx, m); err != nil {
				return fmt.Errorf("store: creating indexes on %s: %w", coll, classify(err))
			}
		}
	}
	return nil
}

// classify wraps driver errors in the processor's vocabulary.
func classify(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, mongo.ErrNoDocuments):
		return processor.ErrNotFound
	case mongo.IsDuplicateKeyError(err):
		return fmt.Errorf("%w: %v", processor.ErrConflict, err)
	case mongo.IsNetworkError(err), mongo.IsTimeout(err), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, mongo.ErrClientDisconnected), strings.Contains(err.Error(), "server selection"):
		return fmt.Errorf("%w: %v", processor.ErrUnavailable, err)
	}
	return err
}

// get reads the document with id into out.
func get[T any](ctx context.Context, c *mongo.Collection, filter bson.M) (*T, error) {
	var out T
	if err := c.FindOne(ctx, filter).Decode(&out); err != nil {
		return nil, classify(err)
	}
	return &out, nil
}

// save writes doc with compare-and-set on its version: version 1 is an insert
// (another writer's insert makes it a conflict), later versions replace the
// document only if it still has version-1.
func save(ctx context.Context, c *mongo.Collection, id string, version int64, doc any) error {
	if version <= 1 {
		_, err := c.InsertOne(ctx, doc)
		return classify(err)
	}
	res, err := c.ReplaceOne(ctx, bson.M{"_id": id, "version": version - 1}, doc)
	if err != nil {
		return classify(err)
	}
	if res.MatchedCount == 0 {
		return fmt.Errorf("%w: %s version %d", processor.ErrConflict, id, version-1)
	}
	return nil
}

// list returns one page of documents matching filter, newest first by timeField
// then _id, and the cursor of the next page ("" on the last).
func list[T any](ctx context.Context, c *mongo.Collection, filter bson.M, timeField string, p processor.Page, key func(*T) (time.Time, string)) ([]T, string, error) {
	limit := p.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	limit = min(limit, MaxLimit)
	rng := bson.M{}
	if !p.Since.IsZero() {
		rng["$gte"] = p.Since
	}
	if !p.Until.IsZero() {
		rng["$lt"] = p.Until
	}
	if len(rng) > 0 {
		filter[timeField] = rng
	}
	if p.Cursor != "" {
		at, id, err := decodeCursor(p.Cursor)
		if err != nil {
			return nil, "", err
		}
		filter = bson.M{"$and": []bson.M{filter, {"$or": []bson.M{
			{timeField: bson.M{"$lt": at}},
			{timeField: at, "_id": bson.M{"$lt": id}},
		}}}}
	}
	cur, err := c.Find(ctx, filter, options.Find().
		SetSort(bson.D{{Key: timeField, Value: -1}, {Key: "_id", Value: -1}}).
		SetLimit(int64(limit+1)))
	if err != nil {
		return nil, "", classify(err)
	}
	var out []T
	if err := cur.All(ctx, &out); err != nil {
		return nil, "", classify(err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		at, id := key(&out[limit-1])
		next = encodeCursor(at, id)
	}
	return out, next, nil
}

// ErrBadCursor marks a cursor that this store did not issue.
var ErrBadCursor = errors.New("bad cursor")

func encodeCursor(at time.Time, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf("%d|%s", at.UnixMilli(), id)))
}

func decodeCursor(s string) (time.Time, string, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) > 1024 {
		return time.Time{}, "", ErrBadCursor
	}
	ms, id, ok := strings.Cut(string(b), "|")
	var n int64
	if _, err := fmt.Sscanf(ms, "%d", &n); !ok || err != nil {
		return time.Time{}, "", ErrBadCursor
	}
	return time.UnixMilli(n).UTC(), id, nil
}
