package admin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/pb33f/libopenapi-validator/config"

	"github.com/wxgate/wxgate/internal/admin"
	"github.com/wxgate/wxgate/internal/admin/admintest"
	"github.com/wxgate/wxgate/processor"
	"github.com/wxgate/wxgate/schemas"
)

// openAPIDoc is the part of the document the tests read directly.
type openAPIDoc struct {
	OpenAPI string                                `json:"openapi"`
	Paths   map[string]map[string]json.RawMessage `json:"paths"`
	Comps   struct {
		Schemas map[string]struct {
			Enum []string `json:"enum"`
		} `json:"schemas"`
	} `json:"components"`
}

func readOpenAPI(t *testing.T) openAPIDoc {
	t.Helper()
	var d openAPIDoc
	if err := json.Unmarshal(admin.OpenAPI(), &d); err != nil {
		t.Fatalf("the OpenAPI document is not JSON: %v", err)
	}
	return d
}

// operations lists the document's operations as "METHOD /path/{param}".
func (d openAPIDoc) operations() []string {
	var ops []string
	for path, item := range d.Paths {
		for method := range item {
			switch method {
			case "get", "put", "post", "delete", "options", "head", "patch", "trace":
				ops = append(ops, strings.ToUpper(method)+" "+path)
			}
		}
	}
	sort.Strings(ops)
	return ops
}

// ginParam matches gin's path parameters, ":appid".
var ginParam = regexp.MustCompile(`:([A-Za-z0-9_]+)`)

// routes lists the routes Register mounts under /v1, in the document's
// notation: "GET /v1/apps/{appid}/messages".
func routes(t *testing.T) []string {
	t.Helper()
	gin.SetMode(gin.ReleaseMode)
	engine := gin.New()
	admin.New(admin.Config{}, nil, nil, nil, slog.New(slog.DiscardHandler)).Register(engine)
	var out []string
	for _, r := range engine.Routes() {
		if strings.HasPrefix(r.Path, "/v1/") {
			out = append(out, r.Method+" "+ginParam.ReplaceAllString(r.Path, "{$1}"))
		}
	}
	sort.Strings(out)
	return out
}

func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	doc := readOpenAPI(t)
	if !strings.HasPrefix(doc.OpenAPI, "3.1.") {
		t.Errorf("openapi = %q, want 3.1.x", doc.OpenAPI)
	}
	documented, mounted := doc.operations(), routes(t)
	for _, r := range mounted {
		if !slices.Contains(documented, r) {
			t.Errorf("route %s is not in the OpenAPI document", r)
		}
	}
	for _, op := range documented {
		if !slices.Contains(mounted, op) {
			t.Errorf("the OpenAPI document describes %s, which is not a route", op)
		}
	}
	if len(mounted) == 0 {
		t.Fatal("Register mounted no /v1 routes")
	}
}

func TestOpenAPIMessageStatuses(t *testing.T) {
	want := []string{
		processor.StatusQueued, processor.StatusSending, processor.StatusSent, processor.StatusDelivered,
		processor.StatusFailed, processor.StatusRejected, processor.StatusInvalid, processor.StatusDead, processor.StatusUnknown,
	}
	if got := readOpenAPI(t).Comps.Schemas["MessageStatus"].Enum; !slices.Equal(got, want) {
		t.Errorf("MessageStatus enum = %v, want %v", got, want)
	}
}

// newValidator builds the OpenAPI validator for the document. In strict mode
// a member the document does not declare is an error too, except the entries
// of the two maps whose keys are the caller's: a send's data (keywords) and a
// consent report's results (template ids).
func newValidator(t *testing.T, strict bool) validator.Validator {
	t.Helper()
	doc, err := libopenapi.NewDocument(admin.OpenAPI())
	if err != nil {
		t.Fatalf("libopenapi.NewDocument: %v", err)
	}
	opts := []config.Option{config.WithFormatAssertions()}
	if strict {
		opts = append(opts, config.WithStrictMode(), config.WithStrictIgnorePaths("$.body.data.*", "$.body.results.*"))
	}
	v, errs := validator.NewValidator(doc, opts...)
	if len(errs) > 0 {
		t.Fatalf("validator.NewValidator: %v", errs)
	}
	return v
}

// TestOpenAPIDocumentIsValid checks the document against the OpenAPI 3.1
// schema.
func TestOpenAPIDocumentIsValid(t *testing.T) {
	v := newValidator(t, false)
	if ok, errs := v.ValidateDocument(); !ok {
		for _, e := range errs {
			t.Errorf("%s: %s", e.Message, e.Reason)
			for _, se := range e.SchemaValidationErrors {
				t.Errorf("  %s at %s (%s)", se.Reason, se.FieldPath, se.KeywordLocation)
			}
		}
	}
}

// exchange is one request to the real API and whether the request itself is
// one the document allows (an invalid request gets its answer checked only).
type exchange struct {
	name    string
	method  string
	path    string
	token   string
	body    string
	headers []string
	valid   bool
	want    int
}

// TestOpenAPIDescribesTheAnswers sends requests to the real API and checks
// every answer, and every request meant to be valid, against the document;
// together they use every documented operation.
func TestOpenAPIDescribesTheAnswers(t *testing.T) {
	s := admintest.Start(t, admintest.Options{})
	// The document's own answer is an OpenAPI document, described as an
	// object and not member by member: it is checked without strict mode.
	strict, lenient := newValidator(t, true), newValidator(t, false)
	t0 := time.Date(2024, 5, 1, 8, 0, 0, 0, time.UTC)
	for id, status := range map[string]string{"mUnknown": processor.StatusUnknown, "mSent": processor.StatusSent} {
		m := &processor.Message{
			ID: id, AppID: appID, ToUser: openID, TemplateID: tplA, Data: map[string]string{"thing1": "hi"},
			Status: status, CreatedAt: t0, UpdatedAt: t0, Attempts: 1,
			History: []processor.StatusChange{{Status: processor.StatusQueued, At: t0, Detail: "requested"}, {Status: status, At: t0.Add(time.Second)}},
		}
		if status == processor.StatusSent {
			m.WeChatMsgID = "3248682510344192000"
		}
		s.Message(m)
	}
	pushed := s.Push(appID, admintest.PopupAccept(openID, tplA, t0.Unix()))
	s.PublishRaw(schemas.WorkSubject(appID, "oPoison", schemas.WorkInbound), "poison-openapi", []byte(`{"not":"a cloudevent"}`))
	s.Drained()
	var dlq struct {
		Items []struct {
			ID string `json:"id"`
		} `json:"items"`
	}
	call(t, s, http.MethodGet, "/v1/dlq", token, "").decode(t, &dlq)
	if len(dlq.Items) != 1 {
		t.Fatalf("dead letters = %d, want 1", len(dlq.Items))
	}

	apps := "/v1/apps/" + appID
	send := `{"touser":"` + openID + `","template_id":"` + tplA + `","data":{"thing1":"会议提醒","time2":{"value":"2024-05-01 15:01"}},"page":"pages/index"}`
	report := `{"openid":"` + openID + `","results":{"` + tplB + `":"accept"}}`
	exchanges := []exchange{
		{"send", "POST", apps + "/messages", token, send, []string{"Idempotency-Key", "order-1"}, true, 202},
		{"send with bad data", "POST", apps + "/messages", token, `{"touser":"` + openID + `","template_id":"` + tplA + `","data":{"thing1":7}}`, nil, false, 400},
		{"send to an unknown app", "POST", "/v1/apps/wxunknown/messages", token, send, nil, true, 404},
		{"send too large", "POST", apps + "/messages", token, `{"touser":"` + strings.Repeat("x", 70<<10) + `"}`, nil, false, 413},
		{"list messages", "GET", apps + "/messages?status=unknown&limit=1", token, "", nil, true, 200},
		{"list messages, next page", "GET", apps + "/messages?limit=1&cursor=", token, "", nil, true, 200},
		{"list messages with a bad status", "GET", apps + "/messages?status=lost", token, "", nil, false, 400},
		{"get a message", "GET", apps + "/messages/mSent", token, "", nil, true, 200},
		{"get no message", "GET", apps + "/messages/mNone", token, "", nil, true, 404},
		{"resend without confirmation", "POST", apps + "/messages/mUnknown/resend", token, `{"confirm":"yes"}`, nil, false, 400},
		{"resend a sent message", "POST", apps + "/messages/mSent/resend", token, `{"confirm":"may_send_twice"}`, nil, true, 409},
		{"resend an unknown message", "POST", apps + "/messages/mUnknown/resend", token, `{"confirm":"may_send_twice"}`, nil, true, 202},
		{"get consents", "GET", apps + "/consents/" + openID, token, "", nil, true, 200},
		{"report consents", "POST", apps + "/consents", token, report, []string{"Idempotency-Key", "popup-1"}, true, 200},
		{"report consents badly", "POST", apps + "/consents", token, `{"openid":"` + openID + `","results":{}}`, nil, false, 400},
		{"list events", "GET", apps + "/events?limit=10", token, "", nil, true, 200},
		{"list dead letters", "GET", "/v1/dlq?consumer=" + processor.ConsumerName, token, "", nil, true, 200},
		{"redrive", "POST", "/v1/dlq/" + dlq.Items[0].ID + "/redrive", token, "", nil, true, 202},
		{"redrive nothing", "POST", "/v1/dlq/no-such-id/redrive", token, "", nil, true, 404},
		{"redrive matching", "POST", "/v1/dlq/redrive?errcode=0&appid=" + appID, token, "", nil, true, 200},
		{"redrive matching without a filter", "POST", "/v1/dlq/redrive", token, "", nil, false, 400},
		{"delete a dead letter", "DELETE", "/v1/dlq/" + dlq.Items[0].ID, token, "", nil, true, 204},
		{"delete it again", "DELETE", "/v1/dlq/" + dlq.Items[0].ID, token, "", nil, true, 404},
		{"delete matching", "DELETE", "/v1/dlq?all=true", token, "", nil, true, 200},
		{"replay an event", "POST", apps + "/events/" + pushed + "/replay", token, "", nil, true, 200},
		{"replay no event", "POST", apps + "/events/no-such-event/replay", token, "", nil, true, 404},
		{"replay a time range", "POST", apps + "/events/replay?since=" + t0.Add(-time.Hour).Format(time.RFC3339) + "&until=2100-01-01T00:00:00Z", token, "", nil, true, 200},
		{"replay without a range", "POST", apps + "/events/replay", token, "", nil, false, 400},
		{"the audit log", "GET", "/v1/audit?limit=5", token, "", nil, true, 200},
		{"the document", "GET", "/v1/openapi.json", token, "", nil, true, 200},
		{"the document without a token", "GET", "/v1/openapi.json", "", "", nil, false, 401},
		{"without a token", "GET", apps + "/messages", "", "", nil, false, 401},
	}
	used := map[string]bool{}
	for _, x := range exchanges {
		t.Run(x.name, func(t *testing.T) {
			req, resp := do(t, s, x)
			if resp.StatusCode != x.want {
				t.Fatalf("%s %s = %d, want %d", x.method, x.path, resp.StatusCode, x.want)
			}
			v := strict
			if x.path == "/v1/openapi.json" {
				v = lenient
			}
			var errs []string
			if x.valid {
				if ok, verrs := v.ValidateHttpRequest(req); !ok {
					errs = append(errs, describe("request", verrs)...)
				}
				req = rewind(t, req)
			}
			if ok, verrs := v.ValidateHttpResponse(req, resp); !ok {
				errs = append(errs, describe("response", verrs)...)
			}
			for _, e := range errs {
				t.Error(e)
			}
			used[x.method+" "+ginParam.ReplaceAllString(routeOf(x.path), "{$1}")] = true
		})
	}
	for _, op := range readOpenAPI(t).operations() {
		if !used[op] {
			t.Errorf("no request exercised %s", op)
		}
	}
}

// routeOf maps a request path to its route, for the coverage check.
func routeOf(path string) string {
	path, _, _ = strings.Cut(path, "?")
	seg := strings.Split(path, "/")
	switch {
	case len(seg) >= 4 && seg[2] == "apps":
		seg[3] = ":appid"
		if len(seg) >= 6 && !(len(seg) == 6 && seg[5] == "replay") {
			if seg[4] == "consents" {
				seg[5] = ":openid"
			} else {
				seg[5] = ":id"
			}
		}
	case len(seg) == 5 && seg[2] == "dlq", len(seg) == 4 && seg[2] == "dlq" && seg[3] != "redrive":
		seg[3] = ":id"
	}
	return strings.Join(seg, "/")
}

// do sends x and returns the request (its body readable again) and the
// response (its body read into memory, readable again).
func do(t *testing.T, s *admintest.Server, x exchange) (*http.Request, *http.Response) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), x.method, s.URL+x.path, strings.NewReader(x.body))
	if err != nil {
		t.Fatal(err)
	}
	if x.body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if x.token != "" {
		req.Header.Set("Authorization", "Bearer "+x.token)
	}
	for i := 0; i+1 < len(x.headers); i += 2 {
		req.Header.Set(x.headers[i], x.headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", x.method, x.path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return rewind(t, req), resp
}

// rewind returns req with its body readable from the start.
func rewind(t *testing.T, req *http.Request) *http.Request {
	t.Helper()
	r := req.Clone(req.Context())
	if req.GetBody != nil {
		body, err := req.GetBody()
		if err != nil {
			t.Fatal(err)
		}
		r.Body = body
	}
	return r
}

func describe[E interface{ Error() string }](what string, errs []E) []string {
	var out []string
	for _, e := range errs {
		out = append(out, fmt.Sprintf("%s: %s", what, e.Error()))
	}
	return out
}
