package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wxgate/wxgate/internal/admin"
	"github.com/wxgate/wxgate/internal/admin/admintest"
	"github.com/wxgate/wxgate/schemas"
)

const (
	opsApp      = admintest.AppID
	opsOpenID   = "o9AgO5Kd5ggOC-bXrbNODIiE3bGY"
	opsTemplate = "VRR0UEO9VJOLs0MHlU0OilqX6MVFDwH3_3gz3Oc0NIc"
)

// opsRun runs one operator command with the given environment and returns its
// output and error.
func opsRun(t *testing.T, env map[string]string, name string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	o := ops{getenv: func(k string) string { return env[k] }}
	var cmd func(context.Context, []string, io.Writer, io.Writer) error
	for _, c := range o.commands() {
		if c.name == name {
			cmd = c.run
		}
	}
	if cmd == nil {
		t.Fatalf("no operator command %q", name)
	}
	var out, errb bytes.Buffer
	err = cmd(context.Background(), args, &out, &errb)
	return out.String(), errb.String(), err
}

// opsEnv points the commands at srv through the environment, as an operator would.
func opsEnv(srv *admintest.Server) map[string]string {
	return map[string]string{"WXGATE_ADMIN_URL": srv.URL, "WXGATE_ADMIN_TOKEN": admintest.Token}
}

func TestOpsUsageErrors(t *testing.T) {
	env := map[string]string{"WXGATE_ADMIN_URL": "http://127.0.0.1:1", "WXGATE_ADMIN_TOKEN": "t"}
	tests := []struct {
		name string
		cmd  string
		args []string
	}{
		{"send without flags", "send", nil},
		{"send without data", "send", []string{"--app", opsApp, "--to", opsOpenID, "--template", opsTemplate}},
		{"send data without =", "send", []string{"--app", opsApp, "--to", opsOpenID, "--template", opsTemplate, "--data", "thing1"}},
		{"send data key twice", "send", []string{"--app", opsApp, "--to", opsOpenID, "--template", opsTemplate, "--data", "thing1=a", "--data", "thing1=b"}},
		{"send extra argument", "send", []string{"--app", opsApp, "--to", opsOpenID, "--template", opsTemplate, "--data", "thing1=a", "extra"}},
		{"unknown flag", "status", []string{"--app", opsApp, "--bogus", "m1"}},
		{"status without id", "status", []string{"--app", opsApp}},
		{"status with two ids", "status", []string{"--app", opsApp, "m1", "m2"}},
		{"status without app", "status", []string{"m1"}},
		{"consent without openid", "consent", []string{"--app", opsApp}},
		{"consent bad result", "consent", []string{"--app", opsApp, opsOpenID, "--report", opsTemplate + "=maybe"}},
		{"consent request id without report", "consent", []string{"--app", opsApp, opsOpenID, "--request-id", "r1"}},
		{"audit without app", "audit", nil},
		{"audit events with status", "audit", []string{"--app", opsApp, "--events", "--status", "sent"}},
		{"audit event without events", "audit", []string{"--app", opsApp, "--event", "subscribe_msg_popup_event"}},
		{"audit negative duration", "audit", []string{"--app", opsApp, "--since", "-2h"}},
		{"dlq unknown subcommand", "dlq", []string{"purge"}},
		{"dlq redrive without id", "dlq", []string{"redrive"}},
		{"dlq redrive with a filter", "dlq", []string{"redrive", "abc", "--app", opsApp}},
		{"dlq delete without id or --all", "dlq", []string{"delete"}},
		{"dlq delete with both", "dlq", []string{"delete", "abc", "--all"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := opsRun(t, env, tt.cmd, tt.args...)
			if !errors.Is(err, errUsage) {
				t.Errorf("wxgate %s %q = %v, want a usage error", tt.cmd, tt.args, err)
			}
		})
	}
	t.Run("bad server URL", func(t *testing.T) {
		_, _, err := opsRun(t, env, "status", "--app", opsApp, "--server", "127.0.0.1:8080", "m1")
		if !errors.Is(err, errUsage) {
			t.Errorf("status with --server 127.0.0.1:8080 = %v, want a usage error", err)
		}
	})
	t.Run("help hides the token", func(t *testing.T) {
		_, stderr, err := opsRun(t, map[string]string{"WXGATE_ADMIN_TOKEN": "s3cret-token"}, "send", "-h")
		if !errors.Is(err, errHelp) || !strings.Contains(stderr, "-token") || strings.Contains(stderr, "s3cret-token") {
			t.Errorf("send -h = %v, stderr:\n%s\nwant the help listing --token without its value", err, stderr)
		}
	})
	t.Run("no token", func(t *testing.T) {
		_, _, err := opsRun(t, map[string]string{}, "status", "--app", opsApp, "m1")
		if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), "WXGATE_ADMIN_TOKEN") {
			t.Errorf("status without a token = %v, want a usage error naming WXGATE_ADMIN_TOKEN", err)
		}
	})
	t.Run("server down", func(t *testing.T) {
		_, _, err := opsRun(t, env, "status", "--app", opsApp, "m1")
		if err == nil || errors.Is(err, errUsage) || strings.Contains(err.Error(), "Bearer") {
			t.Errorf("status against a closed port = %v, want a runtime error without the token", err)
		}
	})
}

func TestOpsSendValidationErrors(t *testing.T) {
	srv := admintest.Start(t, admintest.Options{})
	_, stderr, err := opsRun(t, opsEnv(srv), "send", "--app", opsApp, "--to", opsOpenID, "--template", opsTemplate,
		"--data", "thing1="+strings.Repeat("长", 21), "--data", "time2=tomorrow", "--lang", "fr")
	var ae *apiError
	if !errors.As(err, &ae) || ae.Status != 400 || errors.Is(err, errUsage) {
		t.Fatalf("send with bad data = %v, want the API's 400 (exit 1)", err)
	}
	for _, want := range []string{"fields to fix:", "lang", "oneof", "data.thing1", "data.time2"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if !strings.Contains(err.Error(), "400") || !strings.Contains(err.Error(), "invalid request") {
		t.Errorf("error = %q, want the status and the API's error", err)
	}
	// Unknown app: the API's 404 is reported as a runtime failure.
	_, _, err = opsRun(t, opsEnv(srv), "status", "--app", "wxnotmine", "m1")
	if !errors.As(err, &ae) || ae.Status != 404 || ae.Text != "unknown appid" {
		t.Errorf("status of an unknown app = %v, want the API's 404 unknown appid", err)
	}
	// A wrong token is the API's 401, with a hint.
	_, _, err = opsRun(t, opsEnv(srv), "status", "--app", opsApp, "--token", "wrong", "m1")
	if !errors.As(err, &ae) || ae.Status != 401 || !strings.Contains(err.Error(), "--token") {
		t.Errorf("status with a wrong token = %v, want the API's 401 with a hint", err)
	}
}

func TestOpsSendAndStatus(t *testing.T) {
	srv := admintest.Start(t, admintest.Options{})
	send := []string{"--app", opsApp, "--to", opsOpenID, "--template", opsTemplate,
		"--data", "thing1=会议提醒", "--data", "time2=2024-05-01 15:01", "--page", "pages/index?id=1",
		"--state", "trial", "--idempotency-key", "order-42"}
	stdout, stderr, err := opsRun(t, opsEnv(srv), "send", send...)
	if err != nil {
		t.Fatalf("send = %v\n%s", err, stderr)
	}
	m := regexp.MustCompile(`(?m)^(\S+)\s+queued$`).FindStringSubmatch(stdout)
	if m == nil || !strings.HasPrefix(stdout, "ID") {
		t.Fatalf("send printed %q, want a table with the id and status queued", stdout)
	}
	id := m[1]
	// The same idempotency key names the same message.
	stdout, _, err = opsRun(t, opsEnv(srv), "send", append(send, "--json")...)
	var accepted struct{ ID, Status string }
	if err != nil || json.Unmarshal([]byte(stdout), &accepted) != nil || accepted.ID != id {
		t.Errorf("send again --json = %v %q, want the same id %s", err, stdout, id)
	}

	// Flags may follow the message id.
	stdout, stderr, err = opsRun(t, opsEnv(srv), "status", id, "--app", opsApp)
	if err != nil {
		t.Fatalf("status = %v\n%s", err, stderr)
	}
	for _, re := range []string{
		`(?m)^id\s+` + regexp.QuoteMeta(id) + `$`,
		`(?m)^touser\s+` + opsOpenID + `$`,
		`(?m)^status\s+queued$`,
		`(?m)^wechat_msgid\s+-$`,
		`(?m)^HISTORY\s+AT\s+DETAIL$`,
		`(?m)^queued\s+\d{4}-\d\d-\d\dT\S+\s+send requested$`,
	} {
		if !regexp.MustCompile(re).MatchString(stdout) {
			t.Errorf("status output does not match %s:\n%s", re, stdout)
		}
	}
	stdout, _, err = opsRun(t, opsEnv(srv), "audit", "--app", opsApp, "--to", opsOpenID, "--status", "queued", "--since", "1h")
	if err != nil || !strings.Contains(stdout, id) || !strings.HasPrefix(stdout, "CREATED") {
		t.Errorf("audit = %v:\n%s\nwant a table listing %s", err, stdout, id)
	}
	stdout, _, err = opsRun(t, opsEnv(srv), "audit", "--app", opsApp, "--status", "delivered")
	if err != nil || strings.Contains(stdout, id) {
		t.Errorf("audit --status delivered = %v:\n%s\nwant no queued message", err, stdout)
	}
}

func TestOpsConsentReport(t *testing.T) {
	srv := admintest.Start(t, admintest.Options{})
	env := opsEnv(srv)
	other := "9Aw5ZV1j9xdWTFEkqCpZ7mIBbSC34khK55OtzUPl0rU"
	stdout, _, err := opsRun(t, env, "consent", "--app", opsApp, opsOpenID)
	if err != nil || !strings.Contains(stdout, "no consents recorded") {
		t.Errorf("consent of a new user = %v:\n%s", err, stdout)
	}
	report := []string{"--app", opsApp, opsOpenID, "--report", opsTemplate + "=accept", "--report", other + "=reject", "--request-id", "popup-1"}
	for range 2 { // the same request twice counts once
		stdout, _, err = opsRun(t, env, "consent", report...)
		if err != nil {
			t.Fatalf("consent --report = %v", err)
		}
	}
	if !strings.Contains(stdout, "recorded as request popup-1") {
		t.Errorf("report output lacks the request id:\n%s", stdout)
	}
	stdout, _, err = opsRun(t, env, "consent", opsOpenID, "--app", opsApp)
	if err != nil {
		t.Fatal(err)
	}
	for _, re := range []string{
		`(?m)^TEMPLATE_ID\s+KIND\s+STATUS\s+GRANTS\s+UPDATED$`,
		`(?m)^` + opsTemplate + `\s+one_time\s+accepted\s+1\s+\S+$`,
		`(?m)^` + other + `\s+one_time\s+rejected\s+0\s+\S+$`,
	} {
		if !regexp.MustCompile(re).MatchString(stdout) {
			t.Errorf("consent output does not match %s:\n%s", re, stdout)
		}
	}
	stdout, _, err = opsRun(t, env, "consent", "--json", "--app", opsApp, opsOpenID)
	var l admin.Ledger
	if err != nil || json.Unmarshal([]byte(stdout), &l) != nil || len(l.Consents) != 2 {
		t.Errorf("consent --json = %v %q, want the ledger's JSON with 2 consents", err, stdout)
	}
}

func TestOpsAuditEventsAndDLQ(t *testing.T) {
	srv := admintest.Start(t, admintest.Options{})
	env := opsEnv(srv)
	base := time.Now().Add(-time.Minute).Unix()
	for i := range 3 {
		srv.Push(opsApp, admintest.PopupAccept(opsOpenID, opsTemplate, base+int64(i)))
		srv.Drained()
	}
	poison := schemas.WorkSubject(opsApp, "oPoison", schemas.WorkInbound)
	srv.PublishRaw(poison, "poison-ops", []byte(`{"not":"a cloudevent"}`))
	srv.Drained()

	stdout, _, err := opsRun(t, env, "audit", "--app", opsApp, "--events", "--limit", "2")
	if err != nil {
		t.Fatal(err)
	}
	rows := regexp.MustCompile(`(?m)^\S+\s+`+opsOpenID+`\s+subscribe_msg_popup_event\s+VRR0UEO9VJO…:accept\s+\S+$`).FindAllString(stdout, -1)
	cursor := regexp.MustCompile(`(?m)^more: repeat with --cursor (\S+)$`).FindStringSubmatch(stdout)
	if len(rows) != 2 || cursor == nil {
		t.Fatalf("audit --events --limit 2 printed:\n%s\nwant 2 popup rows and a cursor", stdout)
	}
	stdout, _, err = opsRun(t, env, "audit", "--app", opsApp, "--events", "--limit", "2", "--cursor", cursor[1])
	if err != nil || strings.Count(stdout, "subscribe_msg_popup_event") != 1 || strings.Contains(stdout, "more:") {
		t.Errorf("second page = %v:\n%s\nwant the last event and no cursor", err, stdout)
	}
	_, stderr, err := opsRun(t, env, "audit", "--app", opsApp, "--events", "--cursor", "!!!")
	if err == nil || !strings.Contains(stderr, "cursor") {
		t.Errorf("audit with a bad cursor = %v, stderr %q; want the API's 400 naming cursor", err, stderr)
	}

	stdout, _, err = opsRun(t, env, "dlq", "--app", opsApp)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\S+\s+(\S+)\s+` + opsApp + `\s+wxgate-processor\s+` + regexp.QuoteMeta(poison) + `\s+0\s+1\s+0\s+.*permanent`).FindStringSubmatch(stdout)
	if m == nil {
		t.Fatalf("dlq printed:\n%s\nwant the poison message's dead letter", stdout)
	}
	stdout, _, err = opsRun(t, env, "dlq", "list", "--consumer", "wxgate-other")
	if err != nil || strings.Contains(stdout, m[1]) {
		t.Errorf("dlq list --consumer wxgate-sends = %v:\n%s\nwant no events dead letter", err, stdout)
	}
	stdout, _, err = opsRun(t, env, "dlq", "redrive", m[1])
	if err != nil || !strings.Contains(stdout, "dead letter "+m[1]+" put back on "+poison+" (redrive 1)") {
		t.Errorf("dlq redrive = %v:\n%s", err, stdout)
	}
	_, _, err = opsRun(t, env, "dlq", "redrive", "no-such-dead-letter")
	var ae *apiError
	if !errors.As(err, &ae) || ae.Status != 404 {
		t.Errorf("dlq redrive of an unknown id = %v, want the API's 404", err)
	}
	stdout, _, err = opsRun(t, env, "dlq", "redrive", "--all", "--app", opsApp, "--errcode", "0")
	if err != nil || !regexp.MustCompile(`^redriven [1-9][0-9]* dead letters\n$`).MatchString(stdout) {
		t.Errorf("dlq redrive --all = %v: %q, want a count", err, stdout)
	}
	stdout, _, err = opsRun(t, env, "dlq", "delete", "--all", "--app", opsApp)
	if err != nil || !regexp.MustCompile(`^deleted [1-9][0-9]* dead letters\n$`).MatchString(stdout) {
		t.Errorf("dlq delete --all = %v: %q, want a count", err, stdout)
	}
	if _, _, err = opsRun(t, env, "dlq", "delete", m[1]); !errors.As(err, &ae) || ae.Status != 404 {
		t.Errorf("dlq delete of a deleted dead letter = %v, want the API's 404", err)
	}

	// The events were applied: replaying them, one or all, changes nothing.
	if _, _, err = opsRun(t, env, "replay", "--app", opsApp, "--since", "1h"); err == nil {
		t.Errorf("replay with --since alone succeeded, want a usage error")
	}
	stdout, _, err = opsRun(t, env, "replay", "--app", opsApp, "--since", "1h", "--until", time.Now().Add(time.Minute).UTC().Format(time.RFC3339))
	if err != nil || !regexp.MustCompile(`^applied 0 events, [1-9][0-9]* were no-ops\n$`).MatchString(stdout) {
		t.Errorf("replay of a time range = %v: %q, want only no-ops", err, stdout)
	}
	if _, _, err = opsRun(t, env, "replay", "--app", opsApp, "no-such-event"); !errors.As(err, &ae) || ae.Status != 404 {
		t.Errorf("replay of an unknown event = %v, want the API's 404", err)
	}
}

func TestOpsFlagsParse(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantPos []string
		wantApp string
	}{
		{"flags first", []string{"--app", "a", "m1"}, []string{"m1"}, "a"},
		{"flags after", []string{"m1", "--app", "a"}, []string{"m1"}, "a"},
		{"flags between", []string{"redrive", "--app=a", "id1"}, []string{"redrive", "id1"}, "a"},
		{"double dash ends flags", []string{"--app", "a", "--", "-odd-id", "--app"}, []string{"-odd-id", "--app"}, "a"},
		{"none", nil, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := ops{getenv: func(string) string { return "" }}.flags("test", io.Discard)
			app := f.fs.String("app", "", "")
			pos, err := f.parse(tt.args)
			if err != nil || strings.Join(pos, "|") != strings.Join(tt.wantPos, "|") || *app != tt.wantApp {
				t.Errorf("parse(%q) = %q, app %q, %v; want %q, app %q", tt.args, pos, *app, err, tt.wantPos, tt.wantApp)
			}
		})
	}
}
