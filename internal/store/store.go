// Package store keeps wxgate's state in MongoDB (or the embedded
// MongoDB-compatible store) with single-document atomic operations only.
package store

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"

	"github.com/wxgate/wxgate/internal/admin"
	"github.com/wxgate/wxgate/processor"
)

var (
	_ processor.Store = (*Store)(nil)
	_ admin.AuditLog  = (*Store)(nil)
)

// Collection names.
const (
	collEvents   = "events"
	collConsents = "consents"
	collMessages = "messages"
	collOutcomes = "outcomes"
	collDLQ      = "dead_letters"
	collMeta     = "meta"
	collOutbox   = "outbox"
	collAudit    = "admin_audit"
)

// collections lists every collection Open prepares, in the order it creates them.
var collections = []string{collEvents, collConsents, collMessages, collOutcomes, collDLQ, collMeta, collOutbox, collAudit}

// Collections lists the collections Open creates, for a process that runs
// the embedded store for others and indexes it (Embedded.IndexIDs) once they
// have opened it.
func Collections() []string { return slices.Clone(collections) }

// Store is a processor.Store on MongoDB. It is safe for concurrent use.
type Store struct {
	client *mongo.Client
	db     *mongo.Database
	// guard, when set, serialises this process's writes of each document and
	// checks versions itself (see Guard); nil on MongoDB, which needs neither.
	guard *Guard
	// lists, on the embedded store's SQLite files, answers list queries from
	// the indexes (see sqliteLists); nil elsewhere.
	lists *sqliteLists
}

// Options are the choices Open leaves to its caller.
type Options struct {
	// Guard declares this process the store's only writer and makes
	// compare-and-set hold on a store that does not enforce it itself: set it,
	// shared by every Store of the process, for the embedded store. Open then
	// marks the database as the embedded store's, and refuses to open a marked
	// database without a Guard, so a second process never races the first.
	Guard *Guard
	// Embedded, when set, is the embedded store at uri: Open adds the indexes
	// that make its lookups by _id use an index (see Embedded.IndexIDs).
	Embedded *Embedded
	// Monitor, when set, sees every command sent: benchmarks count round trips with it.
	Monitor *event.CommandMonitor
}

// Open connects to uri, checks the connection and creates the collections'
// indexes (idempotently, so every instance does it at start-up).
func Open(ctx context.Context, uri, database string, o Options) (*Store, error) {
	co := options.Client().
		ApplyURI(uri).
		SetAppName("wxgate").
		SetServerSelectionTimeout(5 * time.Second).
		SetTimeout(10 * time.Second)
	if o.Monitor != nil {
		co.SetMonitor(o.Monitor)
	}
	client, err := mongo.Connect(co)
	if err != nil {
		return nil, fmt.Errorf("store: %w: %v", processor.ErrUnavailable, redactURI(err, uri))
	}
	s := &Store{client: client, db: client.Database(database), guard: o.Guard}
	steps := []func(context.Context) error{s.Ping, s.ensureIndexes, s.claim}
	if o.Embedded != nil {
		steps = append(steps, func(ctx context.Context) error {
			if err := o.Embedded.IndexIDs(ctx, database, collections); err != nil {
				return fmt.Errorf("store: indexing _id: %w", err)
			}
			return nil
		})
	}
	for _, step := range steps {
		if err := step(ctx); err != nil {
			_ = client.Disconnect(context.WithoutCancel(ctx))
			return nil, err
		}
	}
	if o.Embedded != nil {
		l, err := o.Embedded.lists(database)
		if err != nil {
			_ = client.Disconnect(context.WithoutCancel(ctx))
			return nil, err
		}
		s.lists = l
	}
	return s, nil
}

// ErrEmbeddedElsewhere refuses a process that points mongo.uri at the store
// another wxgate process embeds: that store keeps compare-and-set correct only
// for the process that runs it (see Guard).
var ErrEmbeddedElsewhere = errors.New("the store at mongo.uri is embedded in another wxgate process")

// owner is the document that marks a database as the embedded store's.
type owner struct {
	ID        string    `bson:"_id"`
	PID       int       `bson:"pid"`
	Host      string    `bson:"host"`
	StartedAt time.Time `bson:"started_at"`
}

const ownerID = "embedded_owner"

// claim marks the database as written by this process alone when it has a
// Guard, and otherwise refuses a database so marked.
func (s *Store) claim(ctx context.Context) error {
	c := s.coll(collMeta)
	if s.guard != nil {
		host, _ := os.Hostname()
		o := owner{ID: ownerID, PID: os.Getpid(), Host: host, StartedAt: time.Now().UTC()}
		_, err := c.ReplaceOne(ctx, bson.M{"_id": ownerID}, o, options.Replace().SetUpsert(true))
		if err != nil {
			return fmt.Errorf("store: marking the embedded store: %w", classify(err))
		}
		return nil
	}
	o, err := get[owner](ctx, c, bson.M{"_id": ownerID})
	switch {
	case errors.Is(err, processor.ErrNotFound):
		return nil
	case err != nil:
		return fmt.Errorf("store: %w", err)
	}
	return fmt.Errorf("store: %w (wxgate serve, pid %d on %s, started %s): it keeps compare-and-set "+
		"correct only for its own writes; run the processor inside that 'wxgate serve', or point every "+
		"process at MongoDB", ErrEmbeddedElsewhere, o.PID, o.Host, o.StartedAt.Format(time.RFC3339))
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
func (s *Store) Close(ctx context.Context) error {
	if s.lists != nil {
		_ = s.lists.close()
	}
	return s.client.Disconnect(ctx)
}

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
			idx(false, false, "appid", "event", "-received_at", "-_id"),
		},
		collConsents: {idx(true, false, "appid", "openid", "template_id")},
		collMessages: {
			idx(false, false, "appid", "-created_at", "-_id"),
			idx(false, false, "appid", "touser", "-created_at", "-_id"),
			idx(false, false, "appid", "status", "-created_at", "-_id"),
			idx(false, false, "appid", "template_id", "-created_at", "-_id"),
		},
		collDLQ:   {idx(false, false, "-at", "-_id"), idx(false, false, "appid", "-at", "-_id")},
		collAudit: {idx(false, false, "-at", "-_id")},
	}
	// One index per command: FerretDB v1 drops the connection when a createIndexes
	// with several indexes meets indexes it already has from a previous run, and
	// MongoDB treats each existing identical index as a no-op either way.
	for _, coll := range collections {
		// Create every collection, indexed or not, so that the embedded store's
		// tables exist before the first write.
		if err := s.db.CreateCollection(ctx, coll); err != nil && !isNamespaceExists(err) {
			return fmt.Errorf("store: creating %s: %w", coll, classify(err))
		}
		for _, m := range want[coll] {
			if _, err := s.db.Collection(coll).Indexes().CreateOne(ctx, m); err != nil {
				return fmt.Errorf("store: creating indexes on %s: %w", coll, classify(err))
			}
		}
	}
	return nil
}

// isNamespaceExists reports MongoDB's NamespaceExists (48): the collection is there.
func isNamespaceExists(err error) bool {
	var ce mongo.CommandError
	return errors.As(err, &ce) && ce.Code == 48
}

// classify wraps driver errors in the processor's vocabulary.
func classify(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, mongo.ErrNoDocuments):
		return processor.ErrNotFound
	case mongo.IsDuplicateKeyError(err):
		return fmt.Errorf("%w: %v", processor.ErrDuplicate, err)
	case mongo.IsNetworkError(err), mongo.IsTimeout(err), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, mongo.ErrClientDisconnected), strings.Contains(err.Error(), "server selection"):
		return fmt.Errorf("%w: %v", processor.ErrUnavailable, err)
	}
	return err
}

// get reads the document matching filter into out.
func get[T any](ctx context.Context, c *mongo.Collection, filter bson.M) (*T, error) {
	var out T
	if err := c.FindOne(ctx, filter).Decode(&out); err != nil {
		return nil, classify(err)
	}
	return &out, nil
}

// read reads the document with _id id from c. With a guard the read is made
// under the document's lock, so the version it sees is the current one and is
// remembered for the next save.
func read[T any](ctx context.Context, s *Store, c *mongo.Collection, id string, version func(*T) int64) (*T, error) {
	if s.guard == nil {
		return get[T](ctx, c, bson.M{"_id": id})
	}
	key := c.Name() + "/" + id
	defer s.guard.lock(key)()
	out, err := get[T](ctx, c, bson.M{"_id": id})
	if err == nil {
		s.guard.remember(key, version(out))
	}
	return out, err
}

// save writes doc with compare-and-set on its version: version 1 is an insert
// (another writer's insert of the same id is ErrDuplicate), later versions
// replace the document only if it still has version-1 (ErrConflict otherwise).
func (s *Store) save(ctx context.Context, c *mongo.Collection, id string, version int64, doc any) error {
	if s.guard != nil {
		return s.guardedSave(ctx, c, id, version, doc)
	}
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

// guardedSave is save under the Guard: the document's lock is held across the
// version check and the write, and the write filters on _id alone, which the
// embedded store finds through its index.
func (s *Store) guardedSave(ctx context.Context, c *mongo.Collection, id string, version int64, doc any) error {
	key := c.Name() + "/" + id
	defer s.guard.lock(key)()
	if version <= 1 {
		if _, err := c.InsertOne(ctx, doc); err != nil {
			return classify(err)
		}
		s.guard.remember(key, 1)
		return nil
	}
	current, known := s.guard.version(key)
	if !known {
		var v struct {
			Version int64 `bson:"version"`
		}
		err := c.FindOne(ctx, bson.M{"_id": id}, options.FindOne().SetProjection(bson.M{"version": 1})).Decode(&v)
		if errors.Is(err, mongo.ErrNoDocuments) {
			return fmt.Errorf("%w: %s was deleted", processor.ErrConflict, id)
		}
		if err != nil {
			return classify(err)
		}
		current = v.Version
		s.guard.remember(key, current)
	}
	if current != version-1 {
		return fmt.Errorf("%w: %s is at version %d, not %d", processor.ErrConflict, id, current, version-1)
	}
	res, err := c.ReplaceOne(ctx, bson.M{"_id": id}, doc)
	if err != nil {
		// The write may or may not have happened: read the version next time.
		s.guard.forget(key)
		return classify(err)
	}
	if res.MatchedCount == 0 {
		s.guard.forget(key)
		return fmt.Errorf("%w: %s was deleted", processor.ErrConflict, id)
	}
	s.guard.remember(key, version)
	return nil
}

// list returns one page of documents matching filter, newest first by timeField
// then _id, and the cursor of the next page ("" on the last).
func list[T any](ctx context.Context, c *mongo.Collection, filter bson.M, timeField string, p processor.Page, key func(*T) (time.Time, string)) ([]T, string, error) {
	limit := p.Limit
	if limit <= 0 {
		limit = processor.DefaultLimit
	}
	limit = min(limit, processor.MaxLimit)
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

func encodeCursor(at time.Time, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf("%d|%s", at.UnixMilli(), id)))
}

func decodeCursor(s string) (time.Time, string, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) > 1024 {
		return time.Time{}, "", processor.ErrBadCursor
	}
	ms, id, ok := strings.Cut(string(b), "|")
	var n int64
	if _, err := fmt.Sscanf(ms, "%d", &n); !ok || err != nil {
		return time.Time{}, "", processor.ErrBadCursor
	}
	return time.UnixMilli(n).UTC(), id, nil
}

// byIDs reads the documents with the given _ids, in that order, each through
// the _id index; one deleted meanwhile is left out.
func byIDs[T any](ctx context.Context, c *mongo.Collection, ids []string) ([]T, error) {
	out := make([]T, 0, len(ids))
	for _, id := range ids {
		v, err := get[T](ctx, c, bson.M{"_id": id})
		if errors.Is(err, processor.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, *v)
	}
	return out, nil
}

// listed is one page of a list query answered by s.lists.
func listed[T any](ctx context.Context, s *Store, coll string, filters []eq, timeField string, p processor.Page) ([]T, string, error) {
	ids, next, err := s.lists.ids(ctx, coll, filters, timeField, p)
	if err != nil {
		return nil, "", err
	}
	out, err := byIDs[T](ctx, s.coll(coll), ids)
	return out, next, err
}
