package console_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/wxgate/wxgate/internal/admin"
	"github.com/wxgate/wxgate/internal/console"
	"github.com/wxgate/wxgate/internal/store"
	"github.com/wxgate/wxgate/internal/store/storetest"
	"github.com/wxgate/wxgate/processor"
	"github.com/wxgate/wxgate/schemas"
)

const (
	benchApp      = "wxbench000000001"
	benchTemplate = "TPL_SHIPPED_000000000000000000000000000000"
	benchToken    = "bench-token"
	// usersPer is how many messages each user of the prefill gets.
	usersPer = 100
)

// storeService is the console's Service on a store alone: the reads go to the
// store as the processor's do; the benchmark makes no sends.
type storeService struct {
	*store.Store
}

func (storeService) RequestSend(context.Context, string, *schemas.SendRequest, string) (*processor.Message, error) {
	return nil, processor.ErrUnavailable
}
func (storeService) Redrive(context.Context, string) (*processor.DeadLetter, error) {
	return nil, processor.ErrUnavailable
}
func (storeService) RedriveMatching(context.Context, processor.DeadLetterQuery) (int, error) {
	return 0, processor.ErrUnavailable
}
func (storeService) Resend(context.Context, string, string) (*processor.Message, error) {
	return nil, processor.ErrUnavailable
}

// fixedTemplates is one known template.
type fixedTemplates struct{}

var benchTmpl = schemas.Template{ID: benchTemplate, Title: "发货通知", Type: schemas.TemplateOneTime,
	Keywords: []schemas.Keyword{{Key: "thing1", Type: "thing"}, {Key: "time2", Type: "time"}}}

func (fixedTemplates) Templates(context.Context, string) ([]schemas.Template, error) {
	return []schemas.Template{benchTmpl}, nil
}
func (fixedTemplates) Template(_ context.Context, _, id string) (*schemas.Template, error) {
	if id != benchTemplate {
		return nil, schemas.ErrNoSuchTemplate
	}
	t := benchTmpl
	return &t, nil
}

// prefill writes n messages of n/usersPer users over the last 48 hours, one
// sent event per message, the users' consents and n/1000 dead letters, 1,000
// documents per InsertMany.
func prefill(b *testing.B, uri, db string, n int) {
	b.Helper()
	ctx := context.Background()
	client, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		b.Fatal(err)
	}
	defer client.Disconnect(ctx)
	d := client.Database(db)
	now := time.Now().UTC().Truncate(time.Millisecond)
	statuses := []string{processor.StatusDelivered, processor.StatusDelivered, processor.StatusDelivered, processor.StatusFailed,
		processor.StatusDelivered, processor.StatusRejected, processor.StatusDelivered, processor.StatusSent}
	insert := func(coll string, docs []any) {
		if len(docs) == 0 {
			return
		}
		if _, err := d.Collection(coll).InsertMany(ctx, docs, options.InsertMany().SetOrdered(false)); err != nil {
			b.Fatalf("InsertMany into %s: %v", coll, err)
		}
	}
	const batch = 1_000
	for start := 0; start < n; start += batch {
		k := min(batch, n-start)
		msgs, evs, consents, dls := make([]any, 0, k), make([]any, 0, k), []any{}, []any{}
		for i := start; i < start+k; i++ {
			u := fmt.Sprintf("oBench%022d", i%max(1, n/usersPer))
			at := now.Add(-time.Duration(i) * 48 * time.Hour / time.Duration(n))
			m := &processor.Message{ID: fmt.Sprintf("mBench%010d", i), AppID: benchApp, ToUser: u, TemplateID: benchTemplate,
				Data: map[string]string{"thing1": "咖啡豆", "time2": "15:01"}, Status: statuses[i%len(statuses)], Attempts: 1,
				WeChatMsgID: fmt.Sprint(2_000_000_000 + i), CreatedAt: at, UpdatedAt: at, Version: 4,
				History: []processor.StatusChange{
					{Status: processor.StatusQueued, At: at, Detail: "send requested"},
					{Status: processor.StatusSending, At: at, Detail: "consent checked"},
					{Status: processor.StatusSent, At: at, Detail: "WeChat accepted"},
					{Status: statuses[i%len(statuses)], At: at, Detail: "subscribe_msg_sent_event"},
				}}
			msgs = append(msgs, m)
			evs = append(evs, processor.EventRecord{ID: fmt.Sprintf("eBench%010d", i), AppID: benchApp, OpenID: u,
				Event: "subscribe_msg_sent_event", Subject: "wechat." + benchApp + ".in.subscribe_msg_sent_event", ReceivedAt: at,
				Data: schemas.Event{AppID: benchApp, OpenID: u, Event: "subscribe_msg_sent_event",
					Items: []schemas.Item{{TemplateID: benchTemplate, MsgID: fmt.Sprint(2_000_000_000 + i), ErrorStatus: "success"}}}})
			if i < max(1, n/usersPer) {
				c := processor.NewConsent(benchApp, u, benchTemplate, processor.KindOneTime)
				c.Apply(processor.ConsentChange{ID: "fill/" + u, AppID: benchApp, OpenID: u, TemplateID: benchTemplate,
					Source: processor.SourcePush, Action: processor.ActionAccept, At: at, WeChatTime: at})
				c.Version = 1
				consents = append(consents, c)
			}
			if i%1000 == 0 {
				dls = append(dls, processor.DeadLetter{ID: fmt.Sprintf("dBench%010d", i), AppID: benchApp, Consumer: "wxgate-processor",
					Subject: "wechat." + benchApp + ".send", Reason: "43107", ErrCode: 43107, Deliveries: 1, At: at, Version: 1})
			}
		}
		insert("messages", msgs)
		insert("events", evs)
		insert("consents", consents)
		insert("dead_letters", dls)
	}
}

// BenchmarkPages renders each console page on the embedded store (SQLite)
// with 1,000 and with 100,000 messages, from one process, through the
// console's HTTP handler; ns/op is one page.
func BenchmarkPages(b *testing.B) {
	srv := storetest.Start(b)
	gin.SetMode(gin.ReleaseMode)
	for _, n := range []int{1_000, 100_000} {
		db := fmt.Sprintf("bench%d", n)
		st := srv.Open(db) // creates the collections and indexes
		start := time.Now()
		prefill(b, srv.URI(), db, n)
		b.Logf("prefilled %d messages in %v", n, time.Since(start).Round(time.Millisecond))
		log := slog.New(slog.DiscardHandler)
		api := admin.New(admin.Config{Tokens: []admin.Token{{Name: "bench", Secret: benchToken, Role: admin.RoleAdmin, Apps: []string{admin.AllApps}}},
			AppIDs: []string{benchApp}}, nil, nil, st, log)
		con, err := console.New(console.Config{AppIDs: []string{benchApp}}, storeService{st}, fixedTemplates{}, st, api, st, log)
		if err != nil {
			b.Fatal(err)
		}
		engine := gin.New()
		con.Register(engine)
		app := "/console/apps/" + benchApp
		user := fmt.Sprintf("oBench%022d", 7)
		pages := []struct{ name, path string }{
			{"overview", app},
			{"messages", app + "/messages"},
			{"messages-by-status", app + "/messages?status=failed"},
			{"messages-by-user", app + "/messages?touser=" + user},
			{"message", app + "/messages/mBench0000000007"},
			{"user", app + "/users/" + user},
			{"deadletters", app + "/dlq"},
			{"templates", app + "/templates/" + benchTemplate},
		}
		for _, p := range pages {
			b.Run(fmt.Sprintf("n=%d/%s", n, p.name), func(b *testing.B) {
				for b.Loop() {
					req := httptest.NewRequest(http.MethodGet, p.path, nil)
					req.AddCookie(&http.Cookie{Name: "wxgate_console", Value: base64.RawURLEncoding.EncodeToString([]byte(benchToken))})
					w := httptest.NewRecorder()
					engine.ServeHTTP(w, req)
					if w.Code != http.StatusOK {
						body, _ := io.ReadAll(w.Body)
						b.Fatalf("GET %s = %d: %s", p.path, w.Code, body)
					}
				}
			})
		}
	}
}
