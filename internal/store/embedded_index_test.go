package store_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"golang.org/x/sync/errgroup"

	"github.com/wxgate/wxgate/internal/checkfor"
	"github.com/wxgate/wxgate/internal/store"
	"github.com/wxgate/wxgate/internal/store/storetest"
)

// indexSuffix ends the names of the indexes IndexIDs makes.
const indexSuffix = "_wxgate_id"

// handler tells how one of FerretDB's backends shows a full scan and a search
// through IndexIDs' index in its plan (as flattened by explainFind).
type handler struct {
	name  string
	start func(tb testing.TB) *storetest.Server
	// bigDocs is the size of the large collection: one where even
	// PostgreSQL, which rightly scans a table of a few rows, prefers the index.
	bigDocs          int
	scansSmallTables bool
	isScan           func(line string) bool
	useIndex         func(line string) bool
}

var handlers = []handler{
	{
		name:    "sqlite",
		start:   func(tb testing.TB) *storetest.Server { return storetest.Start(tb) },
		bigDocs: 3000,
		// "SCAN <table>", or "SEARCH <table> USING INDEX <index> (<expr>=?)".
		isScan: func(l string) bool { return strings.Contains(l, "detail=SCAN ") },
		useIndex: func(l string) bool {
			return strings.Contains(l, "detail=SEARCH ") && strings.Contains(l, "USING INDEX ") &&
				strings.Contains(l, indexSuffix+" ")
		},
	},
	{
		name: "postgresql",
		start: func(tb testing.TB) *storetest.Server {
			return storetest.StartPostgreSQL(tb, storetest.PostgreSQL(tb))
		},
		bigDocs:          5000,
		scansSmallTables: true,
		// "Seq Scan <table>", or "Bitmap Index Scan on <index>" under a Bitmap Heap Scan.
		isScan:   func(l string) bool { return strings.HasPrefix(l, "Seq Scan ") },
		useIndex: func(l string) bool { return strings.Contains(l, "Index Scan on ") && strings.HasSuffix(l, indexSuffix) },
	},
}

// TestIndexIDs shows with the store's own query plan (the explain command) that
// a find by _id scans the collection before IndexIDs and uses its index after.
func TestIndexIDs(t *testing.T) {
	for _, h := range handlers {
		t.Run(h.name, func(t *testing.T) {
			srv := h.start(t)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			db := connect(t, srv).Database("wxgate")
			colls := map[string]int{"messages": h.bigDocs, "consents": 3, "dead_letters": 3}
			for name, n := range colls {
				insertDocs(t, db.Collection(name), 0, n)
			}
			for name := range colls {
				if plan := explainFind(t, db, name, "doc-2"); !slices.ContainsFunc(plan, h.isScan) {
					t.Fatalf("%s before IndexIDs: plan %q, want a full scan", name, plan)
				}
			}

			// IndexIDs runs while the store serves writes, and again at the next start.
			var g errgroup.Group
			g.Go(func() error { return writeWhile(ctx, db.Collection("consents"), 200) })
			err := srv.Embedded().IndexIDs(ctx, "wxgate", []string{"messages", "consents", "dead_letters"})
			if werr := g.Wait(); werr != nil {
				t.Errorf("writing while IndexIDs ran: %v", werr)
			}
			if err != nil {
				t.Fatalf("IndexIDs: %v", err)
			}
			if err := srv.Embedded().IndexIDs(ctx, "wxgate", []string{"messages", "consents", "dead_letters"}); err != nil {
				t.Fatalf("IndexIDs again: %v", err)
			}

			for name, n := range colls {
				if n < h.bigDocs && h.scansSmallTables {
					continue
				}
				// A find first: SQLite's EXPLAIN does not check whether the schema
				// changed, so a connection of FerretDB's that has run nothing since
				// IndexIDs explains the old plan; a query checks, and plans again.
				findDoc(ctx, t, db.Collection(name), 2)
				plan := explainFind(t, db, name, "doc-2")
				if !slices.ContainsFunc(plan, h.useIndex) || slices.ContainsFunc(plan, h.isScan) {
					t.Errorf("%s after IndexIDs: plan %q, want a search through the *%s index", name, plan, indexSuffix)
				}
			}
		})
	}
}

// TestIndexIDsMissingCollection checks that a collection that does not exist
// is named in an ErrNoCollection error, and that the others are indexed anyway.
func TestIndexIDsMissingCollection(t *testing.T) {
	h := handlers[0]
	srv := h.start(t)
	ctx := context.Background()
	db := connect(t, srv).Database("wxgate")
	insertDocs(t, db.Collection("messages"), 0, 3)

	for _, tc := range []struct {
		name, database string
		colls          []string
		want           string
	}{
		{name: "collection", database: "wxgate", colls: []string{"messages", "outcomes"}, want: "outcomes"},
		{name: "database", database: "other", colls: []string{"messages"}, want: "messages"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := srv.Embedded().IndexIDs(ctx, tc.database, tc.colls)
			if !errors.Is(err, store.ErrNoCollection) || !strings.HasSuffix(err.Error(), ": "+tc.want) {
				t.Fatalf("IndexIDs(%q, %q) = %v, want ErrNoCollection naming %s", tc.database, tc.colls, err, tc.want)
			}
		})
	}
	findDoc(ctx, t, db.Collection("messages"), 2) // see TestIndexIDs
	if plan := explainFind(t, db, "messages", "doc-2"); !slices.ContainsFunc(plan, h.useIndex) {
		t.Errorf("messages: plan %q, want a search through the *%s index", plan, indexSuffix)
	}
	if err := srv.Embedded().IndexIDs(ctx, "../wxgate", []string{"messages"}); err == nil {
		t.Errorf("IndexIDs(../wxgate) = nil, want an invalid database name")
	}
}

// TestIndexIDsCachedPlans runs one find by _id many times on a collection that
// then grows, as a long-running process does, and counts in PostgreSQL's
// statistics the finds that used the index. The explain command cannot show
// this: it plans with the find's arguments every time, whereas FerretDB's
// finds are prepared statements, which PostgreSQL plans generically (without
// the field name, so without the index) after five runs unless told not to.
func TestIndexIDsCachedPlans(t *testing.T) {
	pgURL := storetest.PostgreSQL(t)
	const warm, grown = 30, 10 // finds before and after the collection grows
	for _, tc := range []struct {
		name string
		// planCacheMode is set on the URL; "" keeps StartEmbedded's choice.
		planCacheMode string
		wantIndex     bool
	}{
		{name: "default", planCacheMode: "", wantIndex: true},
		{name: "auto", planCacheMode: "auto", wantIndex: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			u := pgURL
			if tc.planCacheMode != "" {
				parsed, err := url.Parse(pgURL)
				if err != nil {
					t.Fatal(err)
				}
				q := parsed.Query()
				q.Set("plan_cache_mode", tc.planCacheMode)
				parsed.RawQuery = q.Encode()
				u = parsed.String()
			}
			srv := storetest.StartPostgreSQL(t, u)
			database := "plans_" + tc.name
			coll := connect(t, srv).Database(database).Collection("messages")
			insertDocs(t, coll, 0, 5)
			if err := srv.Embedded().IndexIDs(ctx, database, []string{"messages"}); err != nil {
				t.Fatalf("IndexIDs: %v", err)
			}
			find := func(n int) {
				t.Helper()
				for range n {
					if err := coll.FindOne(ctx, bson.M{"_id": "doc-2"}).Err(); err != nil {
						t.Fatalf("FindOne: %v", err)
					}
				}
			}
			find(warm)
			insertDocs(t, coll, 5, 5000)
			find(grown)
			// FerretDB's connections end with the store, and report their scans.
			srv.Stop()

			// Building the two indexes (FerretDB's and IndexIDs') scanned the table too.
			scans := pgScans(ctx, t, pgURL, database, warm+grown+2)
			t.Logf("plan_cache_mode %q: %d finds used the index", tc.planCacheMode, scans)
			if got := scans >= grown; got != tc.wantIndex {
				t.Errorf("%d of the %d finds after growth used the index, want all: %v", scans, grown, tc.wantIndex)
			}
		})
	}
}

// BenchmarkFindByID finds documents by _id in a collection of 100,000, first
// as FerretDB alone does it, then after IndexIDs:
//
//	go test -run '^$' -bench FindByID -benchtime 3s ./internal/store/
func BenchmarkFindByID(b *testing.B) {
	const docs = 100_000
	for _, h := range handlers {
		b.Run(h.name, func(b *testing.B) {
			srv := h.start(b)
			ctx := context.Background()
			coll := connect(b, srv).Database("wxgate").Collection("messages")
			insertDocs(b, coll, 0, docs)
			find := func(b *testing.B) {
				i := 0
				for b.Loop() {
					// A different document each time, spread over the collection.
					i = (i + 7919) % docs
					if err := coll.FindOne(ctx, bson.M{"_id": fmt.Sprintf("doc-%d", i)}).Err(); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.Run("before", find)
			if err := srv.Embedded().IndexIDs(ctx, "wxgate", []string{"messages"}); err != nil {
				b.Fatal(err)
			}
			b.Run("after", find)
		})
	}
}

// pgScans waits until PostgreSQL's statistics count at least want scans of the
// messages table of database, and returns how many went through the index
// IndexIDs made.
func pgScans(ctx context.Context, t *testing.T, pgURL, database string, want int) int64 {
	t.Helper()
	conn, err := pgx.Connect(ctx, pgURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	const q = `SELECT t.seq_scan + coalesce(t.idx_scan, 0), coalesce(sum(i.idx_scan) FILTER (WHERE i.indexrelname LIKE '%` + indexSuffix + `'), 0)
		FROM pg_stat_user_tables t JOIN pg_stat_user_indexes i USING (relid)
		WHERE t.schemaname = $1 AND t.relname LIKE 'messages%'
		GROUP BY t.seq_scan, t.idx_scan`
	var viaIndex int64
	checkfor.Eventually(t, 30*time.Second, 100*time.Millisecond, func() error {
		var all int64
		if err := conn.QueryRow(ctx, q, database).Scan(&all, &viaIndex); err != nil {
			return err
		}
		if all < int64(want) {
			return fmt.Errorf("PostgreSQL counted %d scans of %s.messages, want at least %d", all, database, want)
		}
		return nil
	})
	return viaIndex
}

func connect(t testing.TB, srv *storetest.Server) *mongo.Client {
	t.Helper()
	client, err := mongo.Connect(options.Client().ApplyURI(srv.URI()).SetTimeout(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	return client
}

// insertDocs inserts documents doc-<from> to doc-<to-1>, in batches.
func insertDocs(t testing.TB, c *mongo.Collection, from, to int) {
	t.Helper()
	const batch = 1000
	for i := from; i < to; i += batch {
		docs := make([]any, 0, batch)
		for j := i; j < min(i+batch, to); j++ {
			docs = append(docs, bson.D{{Key: "_id", Value: fmt.Sprintf("doc-%d", j)}, {Key: "n", Value: j}, {Key: "appid", Value: "wx0"}})
		}
		if _, err := c.InsertMany(context.Background(), docs); err != nil {
			t.Fatalf("InsertMany into %s: %v", c.Name(), err)
		}
	}
}

// findDoc finds doc-<n> by _id and checks that it is the document insertDocs made.
func findDoc(ctx context.Context, t testing.TB, c *mongo.Collection, n int) {
	t.Helper()
	var got struct {
		N int `bson:"n"`
	}
	if err := c.FindOne(ctx, bson.M{"_id": fmt.Sprintf("doc-%d", n)}).Decode(&got); err != nil {
		t.Fatalf("%s: FindOne(doc-%d): %v", c.Name(), n, err)
	}
	if got.N != n {
		t.Errorf("%s: FindOne(doc-%d).n = %d, want %d", c.Name(), n, got.N, n)
	}
}

// writeWhile inserts and reads back n documents, as the processor would.
func writeWhile(ctx context.Context, c *mongo.Collection, n int) error {
	for i := range n {
		id := fmt.Sprintf("concurrent-%d", i)
		if _, err := c.InsertOne(ctx, bson.M{"_id": id}); err != nil {
			return err
		}
		if err := c.FindOne(ctx, bson.M{"_id": id}).Err(); err != nil {
			return err
		}
	}
	return nil
}

// explainFind returns the backend's plan of a find by _id, one line per
// SQLite plan row or PostgreSQL plan node ("<node type> on <index>" or
// "<node type> <table>").
func explainFind(t testing.TB, db *mongo.Database, coll, id string) []string {
	t.Helper()
	var res struct {
		QueryPlanner   bson.M `bson:"queryPlanner"`
		FilterPushdown bool   `bson:"filterPushdown"`
	}
	cmd := bson.D{{Key: "explain", Value: bson.D{
		{Key: "find", Value: coll},
		{Key: "filter", Value: bson.D{{Key: "_id", Value: id}}},
	}}}
	if err := db.RunCommand(context.Background(), cmd).Decode(&res); err != nil {
		t.Fatalf("explain find %s: %v", coll, err)
	}
	if !res.FilterPushdown {
		t.Fatalf("explain find %s: the filter was not pushed down to the backend", coll)
	}
	var lines []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case string: // SQLite: "id=2 parent=0 notused=0 detail=SCAN messages_..."
			lines = append(lines, v)
		case bson.A:
			for _, e := range v {
				walk(e)
			}
		case bson.D:
			m := bson.M{}
			for _, e := range v {
				m[e.Key] = e.Value
			}
			walk(m)
		case bson.M:
			if node, ok := v["Node Type"].(string); ok {
				if index, ok := v["Index Name"].(string); ok {
					lines = append(lines, node+" on "+index)
				} else {
					lines = append(lines, fmt.Sprint(node, " ", v["Relation Name"]))
				}
			}
			for _, k := range []string{"Plan", "Plans"} {
				walk(v[k])
			}
		}
	}
	walk(res.QueryPlanner)
	if len(lines) == 0 {
		t.Fatalf("explain find %s: no plan in %v", coll, res.QueryPlanner)
	}
	return lines
}
