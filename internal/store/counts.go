package store

import (
	"context"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/wxgate/wxgate/processor"
)

// Counts adds up an app's messages and callbacks since a time, and its dead
// letters waiting, with one aggregation per collection. On MongoDB the
// $match stages use the {appid, time} and {appid, at} indexes; on the
// embedded store's SQLite files one GROUP BY per collection does (see
// sqliteLists), and on its PostgreSQL handler the aggregations scan.
func (s *Store) Counts(ctx context.Context, appID string, since time.Time) (processor.Counts, error) {
	if s.lists != nil {
		return s.lists.sqliteCounts(ctx, appID, since)
	}
	c := processor.Counts{Messages: map[string]int{}, Events: map[string]int{}}
	type group struct {
		ID struct {
			A string        `bson:"a"`
			B bson.RawValue `bson:"b"`
		} `bson:"_id"`
		N int `bson:"n"`
	}
	run := func(coll string, pipeline mongo.Pipeline, add func(g group)) error {
		cur, err := s.coll(coll).Aggregate(ctx, pipeline)
		if err != nil {
			return classify(err)
		}
		var gs []group
		if err := cur.All(ctx, &gs); err != nil {
			return classify(err)
		}
		for _, g := range gs {
			add(g)
		}
		return nil
	}
	count := bson.D{{Key: "n", Value: bson.D{{Key: "$sum", Value: 1}}}}
	err := run(collMessages, mongo.Pipeline{
		{{Key: "$match", Value: bson.D{{Key: "appid", Value: appID}, {Key: "created_at", Value: bson.D{{Key: "$gte", Value: since}}}}}},
		{{Key: "$group", Value: append(bson.D{{Key: "_id", Value: bson.D{{Key: "a", Value: "$status"}}}}, count...)}},
	}, func(g group) { c.Messages[g.ID.A] += g.N })
	if err != nil {
		return c, err
	}
	// Without $unwind (FerretDB 1.24 has only its plain form, which drops
	// events without items): a popup's items' statuses come as one array, and
	// each document of a group counts once for each of them.
	err = run(collEvents, mongo.Pipeline{
		{{Key: "$match", Value: bson.D{{Key: "appid", Value: appID}, {Key: "received_at", Value: bson.D{{Key: "$gte", Value: since}}}}}},
		{{Key: "$group", Value: append(bson.D{{Key: "_id", Value: bson.D{
			{Key: "a", Value: "$event"}, {Key: "b", Value: "$data.items.status"},
		}}}, count...)}},
	}, func(g group) {
		outcomes := pathStrings(g.ID.B)
		if len(outcomes) == 0 || !slices.Contains(consentEvents, g.ID.A) {
			c.Events[g.ID.A] += g.N
		}
		for _, o := range outcomes {
			c.Events[g.ID.A+" "+o] += g.N
		}
	})
	if err != nil {
		return c, err
	}
	err = run(collDLQ, mongo.Pipeline{
		{{Key: "$match", Value: bson.D{{Key: "appid", Value: appID}, {Key: "redrives", Value: 0}}}},
		{{Key: "$group", Value: append(bson.D{{Key: "_id", Value: nil}}, count...)}},
	}, func(g group) { c.DeadLetters += g.N })
	return c, err
}

// pathStrings reads a grouped field path: a string, an array of them (a path
// through an array, on MongoDB), or nothing.
func pathStrings(v bson.RawValue) []string {
	if s, ok := v.StringValueOK(); ok {
		return []string{s}
	}
	arr, ok := v.ArrayOK()
	if !ok {
		return nil
	}
	vals, _ := arr.Values()
	var out []string
	for _, e := range vals {
		if s, ok := e.StringValueOK(); ok {
			out = append(out, s)
		}
	}
	return out
}

// countedStatuses are the message statuses Counts looks for.
var countedStatuses = []string{
	processor.StatusQueued, processor.StatusSending, processor.StatusSent, processor.StatusDelivered,
	processor.StatusFailed, processor.StatusRejected, processor.StatusInvalid, processor.StatusDead, processor.StatusUnknown,
}

// consentEvents are the callbacks whose items' statuses (accept, reject)
// Counts tells apart.
var consentEvents = []string{"subscribe_msg_popup_event", "subscribe_msg_change_event"}
