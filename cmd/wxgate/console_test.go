package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/wxgate/wxgate/internal/checkfor"
	"github.com/wxgate/wxgate/internal/sim"
)

// screenshots, when set, is the directory TestConsoleInBrowser writes a PNG of
// each page into (make screenshots: docs/console).
var screenshots = flag.String("console.screenshots", "", "write a PNG of each console page into this directory")

// Tokens of the console tests: an admin on every app and a reader of the app.
const (
	consoleReadToken = "e2e-read-token"
	consoleTokens    = `
    - {name: ops-admin, token: ` + e2eAdminToken + `, role: admin, apps: ["*"]}
    - {name: support-reader, token: ` + consoleReadToken + `, role: read, apps: [` + e2eAppID + `]}`
)

// chromium returns the path of a Chromium or Chrome binary. Without one the
// test is skipped, unless CI is set: then it fails, so that CI cannot pass by
// skipping (.ci/run installs Debian's chromium).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("no Chromium found, and CI is set: install Debian's chromium package (.ci/run does)")
	}
	t.Skip("no Chromium found (apt-get install chromium); the console's browser tests are skipped")
	return ""
}

// browser starts a headless Chromium for one test and returns its context.
func browser(t *testing.T) context.Context {
	t.Helper()
	path := chromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // CI runs as root
		chromedp.DisableGPU,
		chromedp.WindowSize(1280, 900),
		chromedp.UserDataDir(t.TempDir()),
		// An operator in Beijing: the console shows times in the zone the
		// browser reports.
		chromedp.Env("TZ=Asia/Shanghai"),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelCtx()
		cancelAlloc()
	})
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting Chromium %s: %v", path, err)
	}
	return ctx
}

// do runs browser actions in order, bounded by waitTime.
func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, waitTime)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v\n%s", what, err, pageText(ctx))
	}
}

// pageText is the text of the page the browser shows, for a failure's message.
func pageText(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	body, err := chromedp.Run(ctx, chromedp.Text(css("body")))
	if err != nil {
		return "(the page could not be read: " + err.Error() + ")"
	}
	return "the browser shows " + loc + ":\n" + body
}

// read runs one browser action that returns a value, bounded by waitTime.
func read[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, waitTime)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// css is a CSS selector.
type css = chromedp.CSS

// shot saves a PNG of the whole page as <name>.png in -console.screenshots,
// when it is set.
func shot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	if *screenshots == "" {
		return
	}
	png := read(t, ctx, "screenshot "+name, chromedp.FullScreenshot(100))
	if err := os.MkdirAll(*screenshots, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(*screenshots, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// consoleData puts real data through the pipeline: a delivered message with
// Chinese data, a user with a grant left, a dead letter (WeChat's 43107) and
// a message whose outcome is unknown (WeChat's answer unreadable).
type consoleData struct {
	delivered, dead, unknown message
	// user got the delivered message, other the unknown one, banned the dead one.
	user, other, banned string
}

func makeConsoleData(t *testing.T, n *node) consoleData {
	t.Helper()
	d := consoleData{user: "oConsole_delivered_xxxxxxxxxx", other: "oConsole_unknown_xxxxxxxxxxxx", banned: "oConsole_dead_xxxxxxxxxxxxxxx"}
	users := []string{d.user, d.other, d.banned}
	for _, u := range users {
		if err := n.sim.Subscribe(e2eAppID, u, sim.ActionAccept, e2eTemplate); err != nil {
			t.Fatal(err)
		}
	}
	checkfor.Eventually(t, waitTime, waitEvery, func() error {
		for _, u := range users {
			if status, grants := n.grants(u); status != "accepted" || grants != 1 {
				return fmt.Errorf("%s: consent %s with %d grants, want accepted with 1", u, status, grants)
			}
		}
		return nil
	})
	d.delivered = n.waitStatus(n.sendData(d.user, "咖啡豆 Coffee beans", "15:01").ID, "delivered")

	if err := n.sim.SetFaults(sim.Faults{SendErrcode: 43107, SendErrcodeNext: 1}); err != nil {
		t.Fatal(err)
	}
	d.dead = n.waitStatus(n.sendData(d.banned, "退货单", "16:30").ID, "dead")
	// WeChat's answer is unreadable and its sent event is lost, so the
	// outcome stays unknown.
	if err := n.sim.SetFaults(sim.Faults{SendReply: sim.ReplyMalformed, SendReplyNext: 1, PushDropRate: 1}); err != nil {
		t.Fatal(err)
	}
	d.unknown = n.waitStatus(n.sendData(d.other, "发票", "17:45").ID, "unknown")
	if err := n.sim.SetFaults(sim.Faults{}); err != nil {
		t.Fatal(err)
	}
	checkfor.Eventually(t, waitTime, waitEvery, func() error {
		if got := n.deadLetters(); len(got) != 1 {
			return fmt.Errorf("%d dead letters, want 1", len(got))
		}
		return nil
	})
	return d
}

// sendData requests a send of the test template with the given data.
func (n *node) sendData(openID, thing, time2 string) message {
	n.t.Helper()
	var m message
	code := n.admin("POST", "/v1/apps/"+e2eAppID+"/messages", map[string]any{
		"touser": openID, "template_id": e2eTemplate, "data": map[string]any{"thing1": thing, "time2": time2},
	}, &m)
	if code != http.StatusAccepted || m.ID == "" {
		n.t.Fatalf("POST messages = %d %+v, want 202 with an id", code, m)
	}
	return m
}

type deadLetter struct {
	ID       string `json:"id"`
	ErrCode  int    `json:"errcode"`
	Redrives int    `json:"redrives"`
}

// deadLetters lists the dead letters through the admin API.
func (n *node) deadLetters() []deadLetter {
	var l struct {
		Items []deadLetter `json:"items"`
	}
	n.admin("GET", "/v1/dlq", nil, &l)
	return l.Items
}

// TestConsoleInBrowser drives the console in headless Chromium against a real
// wxgate serve whose data came through the pipeline from the simulator: it
// signs in, finds a delivered message and reads its timeline and Chinese
// data, finds a user's grants, redrives a dead letter after confirming,
// submits invalid template data and sees the errors next to the fields, and
// sees the unknown message's resend offered with its warning.
func TestConsoleInBrowser(t *testing.T) {
	ctx := browser(t)
	n := startNodeTokens(t, sim.ModeSecure, sim.FormatJSON, consoleTokens)
	d := makeConsoleData(t, n)
	app := n.base + "/console/apps/" + e2eAppID
	text := func(sel string) string { return read(t, ctx, "text of "+sel, chromedp.Text(css(sel))) }

	// Any page without a session goes to sign-in, and comes back after it.
	do(t, ctx, "open messages without a session",
		chromedp.Navigate(app+"/messages?status=delivered"),
		chromedp.WaitVisible(css("#signin")),
	)
	if loc := read(t, ctx, "location", chromedp.Location()); !strings.Contains(loc, "/console/signin?next=") {
		t.Errorf("without a session the browser is at %s, want the sign-in page", loc)
	}
	shot(t, ctx, "signin")
	do(t, ctx, "sign in with a wrong token",
		chromedp.SendKeys(css("#token"), "not-a-token"),
		chromedp.Click(css("#signin-submit")),
		chromedp.WaitVisible(css("#problem")),
	)
	do(t, ctx, "sign in",
		chromedp.SendKeys(css("#token"), e2eAdminToken),
		chromedp.Click(css("#signin-submit")),
		chromedp.WaitVisible(css("#messages")),
	)
	if loc, want := read(t, ctx, "location", chromedp.Location()), "/console/apps/"+e2eAppID+"/messages?status=delivered"; !strings.HasSuffix(loc, want) {
		t.Errorf("after signing in the browser is at %s, want %s", loc, want)
	}
	shot(t, ctx, "messages")

	// The delivered message's timeline and data.
	do(t, ctx, "open the delivered message",
		chromedp.Click(css(`#messages a[href$="/messages/`+d.delivered.ID+`"]`)),
		chromedp.WaitVisible(css("#timeline")),
	)
	if status := text("#status"); status != "delivered" {
		t.Errorf("message status = %q, want delivered", status)
	}
	timeline := text("#timeline")
	for _, want := range []string{"queued", "sending", "attempt 1", "sent", "delivered"} {
		if !strings.Contains(timeline, want) {
			t.Errorf("timeline %q lacks %q", timeline, want)
		}
	}
	if data := text("#data"); !strings.Contains(data, "咖啡豆 Coffee beans") || !strings.Contains(data, "15:01") {
		t.Errorf("data sent = %q, want the Chinese text and the time", data)
	}
	if msgid := text("#msgid"); msgid != d.delivered.WeChatMsgID {
		t.Errorf("msgid = %q, want %q", msgid, d.delivered.WeChatMsgID)
	}
	if utc := read(t, ctx, "a time's title", chromedp.AttributeValue(css("#timeline time"), "title")); !utc.Exists || !strings.HasSuffix(utc.Value, " UTC") {
		t.Errorf("a time's title = %q, want the time in UTC", utc.Value)
	}
	shot(t, ctx, "message")

	// A user's grants: the one grant was used by the delivered message.
	do(t, ctx, "find a user",
		chromedp.Navigate(app+"/users"),
		chromedp.SendKeys(css(`#find-user input[name="openid"]`), d.user),
		chromedp.Submit(css(`#find-user`)),
		chromedp.WaitVisible(css("#consents")),
	)
	if grants, consents := text("#consents td.grants"), text("#consents"); grants != "0" || !strings.Contains(consents, "accepted") || !strings.Contains(consents, e2eTemplate) {
		t.Errorf("the user's ledger shows %q with grants %q, want the template accepted with 0 grants", consents, grants)
	}
	shot(t, ctx, "user")

	// The overview counts what happened.
	do(t, ctx, "overview", chromedp.Navigate(app), chromedp.WaitVisible(css("svg.chart")))
	if sends, dlq := text("#fig-sends"), text("#fig-dlq"); sends != "3" || dlq != "1" {
		t.Errorf("overview: %s sends and %s dead letters waiting, want 3 and 1", sends, dlq)
	}
	shot(t, ctx, "overview")

	// Redrive the dead letter, after its confirmation.
	do(t, ctx, "dead letters", chromedp.Navigate(app+"/dlq"), chromedp.WaitVisible(css("#deadletters")))
	shot(t, ctx, "deadletters")
	do(t, ctx, "confirm the redrive",
		chromedp.Click(css(`#deadletters a.button`)),
		chromedp.WaitVisible(css("#confirm-redrive")),
	)
	shot(t, ctx, "redrive-confirm")
	if got := n.deadLetters(); got[0].Redrives != 0 {
		t.Errorf("the confirmation page redrove the dead letter already (%d redrives)", got[0].Redrives)
	}
	do(t, ctx, "redrive", chromedp.Click(css(`#confirm-redrive button`)), chromedp.WaitVisible(css("#done")))
	if got := n.deadLetters(); len(got) != 1 || got[0].Redrives != 1 || got[0].ErrCode != 43107 {
		t.Errorf("after the redrive the dead letters are %+v, want one 43107 redriven once", got)
	}
	var audit struct {
		Items []struct {
			TokenName string            `json:"token_name"`
			Route     string            `json:"route"`
			Targets   map[string]string `json:"targets"`
			Status    int               `json:"status"`
		} `json:"items"`
	}
	n.admin("GET", "/v1/audit", nil, &audit)
	if len(audit.Items) == 0 || audit.Items[0].Route != "/console/apps/{appid}/dlq/{id}/redrive" ||
		audit.Items[0].TokenName != "ops-admin" || audit.Items[0].Targets["id"] != n.deadLetters()[0].ID {
		t.Errorf("the audit log's newest record is %+v, want the console's redrive by ops-admin", audit.Items)
	}

	// Invalid template data: the errors stand next to their fields.
	do(t, ctx, "templates", chromedp.Navigate(app+"/templates"), chromedp.WaitVisible(css(".template")))
	shot(t, ctx, "templates")
	do(t, ctx, "submit invalid data",
		chromedp.Navigate(app+"/templates/"+e2eTemplate),
		chromedp.SendKeys(css("#touser"), d.user),
		chromedp.SendKeys(css("#data-thing1"), "这是一个超过二十个字符的商品名称，太长了不能发送"),
		chromedp.SendKeys(css("#data-time2"), "not a time"),
		chromedp.Click(css("#check")),
		chromedp.WaitVisible(css("#error-data-thing1")),
	)
	if thingErr, timeErr := text("#error-data-thing1"), text("#error-data-time2"); thingErr == "" || timeErr == "" {
		t.Errorf("field errors: thing1 %q, time2 %q; want both", thingErr, timeErr)
	}
	shot(t, ctx, "template-errors")

	// The unknown message offers a resend that says it may send twice.
	do(t, ctx, "unknown message", chromedp.Navigate(app+"/messages/"+d.unknown.ID), chromedp.WaitVisible(css("#unknown")))
	if warning := text("#resend"); !strings.Contains(warning, "may send this message twice") {
		t.Errorf("the resend form says %q, want a plain warning that it may send twice", warning)
	}
	if zone := text(".zone"); zone != "Asia/Shanghai" {
		t.Errorf("times are shown in %q, want the browser's zone Asia/Shanghai", zone)
	}
	shot(t, ctx, "unknown")
	do(t, ctx, "resend, confirming it may send twice",
		chromedp.Click(css("#confirm-twice")),
		chromedp.Click(css("#resend button")),
		chromedp.WaitVisible(css("#done")),
	)
	// Sent again through the normal path: the user's one grant went to the
	// first send, so the consent check refuses it this time.
	if m := n.waitStatus(d.unknown.ID, "rejected", "sent", "delivered"); m.Status == "unknown" {
		t.Errorf("after the resend the message is still unknown")
	}
}

// consoleRoutes are every page and action of the console, with a real id
// where one is needed.
func consoleRoutes(d consoleData, dlqID string) (pages, actions []string) {
	app := "/console/apps/" + e2eAppID
	pages = []string{
		"/console/", app, app + "/messages", app + "/messages/" + d.delivered.ID, app + "/users",
		app + "/users/" + d.user, app + "/dlq", app + "/dlq/" + dlqID + "/redrive", app + "/dlq-redrive",
		app + "/templates", app + "/templates/" + e2eTemplate,
	}
	actions = []string{
		app + "/messages/" + d.unknown.ID + "/resend", app + "/dlq/" + dlqID + "/redrive",
		app + "/dlq-redrive", app + "/templates/" + e2eTemplate, "/console/signout",
	}
	return pages, actions
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// consoleClient signs in through the sign-in form, as a browser would, and
// returns the client and a CSRF token of its session.
func consoleClient(t *testing.T, base, token string) (*http.Client, string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	_, body := get(t, c, base+"/console/signin")
	m := csrfField.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("the sign-in page has no CSRF field")
	}
	resp, err := c.PostForm(base+"/console/signin", url.Values{"csrf": {m[1]}, "token": {token}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("signing in = %d, want 303", resp.StatusCode)
	}
	_, body = get(t, c, base+"/console/apps/"+e2eAppID+"/dlq")
	if m = csrfField.FindStringSubmatch(body); m == nil {
		t.Fatalf("a signed-in page has no CSRF field")
	}
	return c, m[1]
}

func get(t *testing.T, c *http.Client, u string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// TestConsoleRefusesWithoutSession checks every page and action over plain
// HTTP: without a session every page redirects to sign-in and every action
// is refused and changes nothing; with a session but without the CSRF token
// an action is refused too; a read-only token sees pages but may not redrive
// or resend (403 naming the scope); and every answer carries the strict CSP.
func TestConsoleRefusesWithoutSession(t *testing.T) {
	n := startNodeTokens(t, sim.ModeSecure, sim.FormatJSON, consoleTokens)
	d := makeConsoleData(t, n)
	dlqID := n.deadLetters()[0].ID
	pages, actions := consoleRoutes(d, dlqID)
	bare := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	for _, p := range pages {
		resp, _ := get(t, bare, n.base+p)
		if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/console/signin?next=") {
			t.Errorf("GET %s without a session = %d to %q, want 303 to the sign-in page", p, resp.StatusCode, resp.Header.Get("Location"))
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("GET %s: Content-Security-Policy = %q, want the strict policy", p, csp)
		}
	}
	reader, readerCSRF := consoleClient(t, n.base, consoleReadToken)
	admin, _ := consoleClient(t, n.base, e2eAdminToken)
	form := url.Values{"confirm": {"may_send_twice"}, "action": {"send"}, "touser": {d.user}, "data.thing1": {"x"}, "data.time2": {"15:01"}}
	for _, a := range actions {
		resp, err := bare.PostForm(n.base+a, form)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("POST %s without a session = %d, want 401", a, resp.StatusCode)
		}
		// Signed in, without the form's CSRF token.
		resp, err = admin.PostForm(n.base+a, form)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("POST %s without the CSRF token = %d, want 403", a, resp.StatusCode)
		}
	}
	// A resend without the confirmation that it may send twice sends nothing.
	_, body := get(t, admin, n.base+"/console/apps/"+e2eAppID+"/messages/"+d.unknown.ID)
	m := csrfField.FindStringSubmatch(body)
	if m == nil {
		t.Fatal("the message page has no CSRF field")
	}
	resp, err := admin.PostForm(n.base+actions[0], url.Values{"csrf": {m[1]}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("POST %s without confirm = %d, want 400", actions[0], resp.StatusCode)
	}
	// A reader, with a valid CSRF token, may not act.
	withCSRF := url.Values{"csrf": {readerCSRF}}
	for k, v := range form {
		withCSRF[k] = v
	}
	for _, a := range actions[:4] {
		resp, err := reader.PostForm(n.base+a, withCSRF)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(b), "lacks") {
			t.Errorf("POST %s as a reader = %d, want 403 naming the missing scope", a, resp.StatusCode)
		}
	}
	if got := n.deadLetters(); got[0].Redrives != 0 {
		t.Errorf("a refused action redrove the dead letter (%d redrives)", got[0].Redrives)
	}
	if m := n.waitStatus(d.unknown.ID, "unknown"); m.Status != "unknown" {
		t.Errorf("a refused resend changed the unknown message to %s", m.Status)
	}
	// The reader reads.
	for _, p := range pages {
		if strings.Contains(p, "redrive") {
			continue
		}
		resp, _ := get(t, reader, n.base+p)
		if want := http.StatusOK; resp.StatusCode != want && resp.StatusCode != http.StatusSeeOther {
			t.Errorf("GET %s as a reader = %d, want 200", p, resp.StatusCode)
		}
	}
}
