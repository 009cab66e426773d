package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/wxgate/wxgate/internal/admin"
	"github.com/wxgate/wxgate/schemas"
)

// defaultAdminURL is the admin API of a `wxgate serve` with the default listen address.
const defaultAdminURL = "http://127.0.0.1:8080"

// ops runs the operator commands over the admin API. getenv supplies the
// defaults of --server (WXGATE_ADMIN_URL) and --token (WXGATE_ADMIN_TOKEN).
type ops struct {
	getenv func(string) string
}

// opsCommands returns the operator commands, reading their defaults from the
// process environment.
func opsCommands() []command {
	return ops{getenv: os.Getenv}.commands()
}

// commands returns the operator commands bound to o.
func (o ops) commands() []command {
	return []command{
		{"send", "request a subscription-message send over the admin API", o.send},
		{"status", "show a message's delivery status and history", o.status},
		{"consent", "show a user's consent ledger, or report wx.requestSubscribeMessage results", o.consent},
		{"audit", "list messages (or, with --events, received callback events), newest first", o.audit},
		{"dlq", "list dead letters, or redrive one", o.dlq},
		{"resend", "send again a message whose send outcome is unknown (it may reach the user twice)", o.resend},
		{"replay", "apply received events again, by id or by time range (idempotent)", o.replay},
	}
}

// opsFlags are the flags every operator command takes.
type opsFlags struct {
	fs     *flag.FlagSet
	server string
	token  string
	json   bool
	// envToken is WXGATE_ADMIN_TOKEN, kept out of the flag's default so that
	// usage output never shows it.
	envToken string
}

// flags returns a command's flag set with the common flags; synopsis is the
// usage line after "wxgate".
func (o ops) flags(synopsis string, stderr io.Writer) *opsFlags {
	f := &opsFlags{
		fs:       flag.NewFlagSet(strings.Fields(synopsis)[0], flag.ContinueOnError),
		envToken: o.getenv("WXGATE_ADMIN_TOKEN"),
	}
	f.fs.SetOutput(stderr)
	f.fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: wxgate %s\n\nflags:\n", synopsis)
		f.fs.PrintDefaults()
	}
	server := o.getenv("WXGATE_ADMIN_URL")
	if server == "" {
		server = defaultAdminURL
	}
	f.fs.StringVar(&f.server, "server", server, "admin API base `URL` (default from WXGATE_ADMIN_URL)")
	f.fs.StringVar(&f.token, "token", "", "admin bearer `token` (default from WXGATE_ADMIN_TOKEN, which keeps it out of the process list)")
	f.fs.BoolVar(&f.json, "json", false, "print the API's JSON instead of a table")
	return f
}

// parse parses args, allowing flags after positional arguments ("status ID
// --app X"); "--" ends the flags. It returns the positional arguments.
func (f *opsFlags) parse(args []string) ([]string, error) {
	var pos []string
	for {
		if err := parseFlags(f.fs, args); err != nil {
			return nil, err
		}
		rest := f.fs.Args()
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
}

// client returns the admin client the flags name.
func (f *opsFlags) client() (*adminClient, error) {
	token := f.token
	if token == "" {
		token = f.envToken
	}
	return newAdminClient(f.server, token)
}

// set reports whether a flag was given on the command line.
func (f *opsFlags) set(name string) bool {
	found := false
	f.fs.Visit(func(fl *flag.Flag) { found = found || fl.Name == name })
	return found
}

// usagef returns a usage error.
func usagef(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, args...))
}

// listFlag collects a repeatable flag's values.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	*l = append(*l, v)
	return nil
}

// pairs splits KEY=VALUE arguments of flag name into a map; a key may appear once.
func pairs(name string, args []string) (map[string]string, error) {
	out := make(map[string]string, len(args))
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok || k == "" {
			return nil, usagef("--%s %q: want KEY=VALUE", name, shorten(a, 40))
		}
		if _, dup := out[k]; dup {
			return nil, usagef("--%s: %s given twice", name, k)
		}
		out[k] = v
	}
	return out, nil
}

// failed prints an API error's fields to stderr and returns the error for main
// to print: exit 1. Other errors pass through.
func failed(stderr io.Writer, err error) error {
	var ae *apiError
	if errors.As(err, &ae) && len(ae.Fields) > 0 {
		fmt.Fprintln(stderr, "fields to fix:")
		tw := tabwriter.NewWriter(stderr, 2, 4, 2, ' ', 0)
		for _, f := range ae.Fields {
			field := f.Field
			if field == "" {
				field = "(body)"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", cell(field), cell(f.Rule), cell(f.Message))
		}
		tw.Flush()
	}
	return err
}

// printJSON writes an API reply indented.
func printJSON(w io.Writer, reply []byte) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, reply, "", "  "); err != nil {
		_, werr := w.Write(reply)
		return werr
	}
	buf.WriteByte('\n')
	_, err := w.Write(buf.Bytes())
	return err
}

// send: wxgate send --app APPID --to OPENID --template TID --data KEY=VALUE...
func (o ops) send(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := o.flags("send --app APPID --to OPENID --template TEMPLATE_ID --data KEY=VALUE... [flags]", stderr)
	var data listFlag
	app := f.fs.String("app", "", "the mini program's `appid` (required)")
	to := f.fs.String("to", "", "the recipient's `openid` (required)")
	tmpl := f.fs.String("template", "", "the private `template_id` (required)")
	f.fs.Var(&data, "data", "a keyword value as `KEY=VALUE` (thing1=text); repeat for each keyword")
	page := f.fs.String("page", "", "mini-program `page` the message opens, with an optional query")
	state := f.fs.String("state", "", "miniprogram_`state`: developer, trial or formal (WeChat's default)")
	lang := f.fs.String("lang", "", "`language`: zh_CN (WeChat's default), en_US, zh_HK or zh_TW")
	key := f.fs.String("idempotency-key", "", "`key` that makes a retry of this send return the same message")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("send: unexpected argument %q", shorten(pos[0], 40))
	}
	var missing []string
	for _, m := range []struct{ flag, value string }{{"--app", *app}, {"--to", *to}, {"--template", *tmpl}} {
		if m.value == "" {
			missing = append(missing, m.flag)
		}
	}
	if len(data) == 0 {
		missing = append(missing, "--data")
	}
	if len(missing) > 0 {
		return usagef("send: %s required", strings.Join(missing, ", "))
	}
	values, err := pairs("data", data)
	if err != nil {
		return err
	}
	c, err := f.client()
	if err != nil {
		return err
	}
	req := schemas.SendRequest{ToUser: *to, TemplateID: *tmpl, Page: *page, Data: values, MiniprogramState: *state, Lang: *lang}
	var out admin.Accepted
	reply, err := c.post(ctx, apiPath("apps", *app, "messages"), req, &out, "Idempotency-Key", *key)
	if err != nil {
		return failed(stderr, err)
	}
	if f.json {
		return printJSON(stdout, reply)
	}
	tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS")
	fmt.Fprintf(tw, "%s\t%s\n", cell(out.ID), cell(out.Status))
	return tw.Flush()
}

// status: wxgate status --app APPID MESSAGE_ID
func (o ops) status(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := o.flags("status --app APPID MESSAGE_ID [flags]", stderr)
	app := f.fs.String("app", "", "the mini program's `appid` (required)")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if *app == "" || len(pos) != 1 {
		return usagef("status: want --app APPID and one MESSAGE_ID")
	}
	c, err := f.client()
	if err != nil {
		return err
	}
	var m admin.MessageView
	reply, err := c.get(ctx, apiPath("apps", *app, "messages", pos[0]), nil, &m)
	if err != nil {
		return failed(stderr, err)
	}
	if f.json {
		return printJSON(stdout, reply)
	}
	errcode := "" // WeChat has not answered a send of it
	if m.ErrCode != nil {
		errcode = strconv.Itoa(*m.ErrCode)
	}
	tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
	for _, row := range [][2]string{
		{"id", m.ID}, {"touser", m.ToUser}, {"template_id", m.TemplateID}, {"status", m.Status},
		{"reason", m.Reason}, {"wechat_msgid", m.WeChatMsgID}, {"errcode", errcode},
		{"errmsg", m.ErrMsg}, {"attempts", strconv.Itoa(m.Attempts)},
		{"created_at", stamp(m.CreatedAt)}, {"updated_at", stamp(m.UpdatedAt)},
	} {
		fmt.Fprintf(tw, "%s\t%s\n", row[0], cell(row[1]))
	}
	fmt.Fprintln(tw, "\t")
	fmt.Fprintln(tw, "HISTORY\tAT\tDETAIL")
	for _, h := range m.History {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", cell(h.Status), stamp(h.At), cell(h.Detail))
	}
	return tw.Flush()
}

// replay: wxgate replay --app APPID EVENT_ID | --since T --until T
func (o ops) replay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := o.flags("replay --app APPID EVENT_ID\n       wxgate replay --app APPID --since TIME --until TIME [flags]", stderr)
	app := f.fs.String("app", "", "the mini program's `appid` (required)")
	page := addPageFlags(f)
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	since, until := *page.since, *page.until
	byRange := since != "" || until != ""
	switch {
	case *app == "":
		return usagef("replay: want --app APPID")
	case f.set("limit") || f.set("cursor"):
		return usagef("replay: --limit and --cursor are listing flags")
	case byRange && (len(pos) != 0 || since == "" || until == ""):
		return usagef("replay: want one EVENT_ID, or --since and --until")
	case !byRange && len(pos) != 1:
		return usagef("replay: want one EVENT_ID, or --since and --until")
	}
	c, err := f.client()
	if err != nil {
		return err
	}
	path, q := apiPath("apps", *app, "events", "replay"), url.Values{}
	if byRange {
		if err := page.query(q, time.Now()); err != nil {
			return err
		}
	} else {
		path = apiPath("apps", *app, "events", pos[0], "replay")
	}
	reply, err := c.call(ctx, http.MethodPost, path, q, nil)
	if err != nil {
		return failed(stderr, err)
	}
	if f.json {
		return printJSON(stdout, reply)
	}
	var res struct {
		Applied int `json:"applied"`
		NoOps   int `json:"noops"`
		Queued  int `json:"queued"`
	}
	if err := decodeReply(reply, &res); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "applied %d events, %d were no-ops\n", res.Applied, res.NoOps)
	if res.Queued > 0 {
		fmt.Fprintf(stdout, "%d more are queued and will be applied\n", res.Queued)
	}
	return nil
}

// resend: wxgate resend --app APPID --may-send-twice MESSAGE_ID
func (o ops) resend(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := o.flags("resend --app APPID --may-send-twice MESSAGE_ID [flags]", stderr)
	app := f.fs.String("app", "", "the mini program's `appid` (required)")
	twice := f.fs.Bool("may-send-twice", false, "confirm that WeChat may already have the first send, so the user may get the message twice (required)")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	switch {
	case *app == "" || len(pos) != 1:
		return usagef("resend: want --app APPID and one MESSAGE_ID")
	case !*twice:
		return usagef("resend: the message's first send may have reached the user; confirm with --may-send-twice")
	}
	c, err := f.client()
	if err != nil {
		return err
	}
	var m admin.MessageView
	reply, err := c.post(ctx, apiPath("apps", *app, "messages", pos[0], "resend"), map[string]string{"confirm": "may_send_twice"}, &m)
	if err != nil {
		return failed(stderr, err)
	}
	if f.json {
		return printJSON(stdout, reply)
	}
	fmt.Fprintf(stdout, "message %s (%s) put back on the stream to be sent again\n", cell(m.ID), cell(m.Status))
	return nil
}

// consent: wxgate consent --app APPID OPENID [--report TEMPLATE_ID=RESULT...]
func (o ops) consent(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := o.flags("consent --app APPID OPENID [--report TEMPLATE_ID=accept|reject|ban|filter...] [flags]", stderr)
	var report listFlag
	app := f.fs.String("app", "", "the mini program's `appid` (required)")
	f.fs.Var(&report, "report", "record a wx.requestSubscribeMessage result as `TEMPLATE_ID=RESULT`; repeat for each template")
	requestID := f.fs.String("request-id", "", "`id` of the reported call: reporting it again changes nothing (default: a new id each time)")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if *app == "" || len(pos) != 1 {
		return usagef("consent: want --app APPID and one OPENID")
	}
	if *requestID != "" && len(report) == 0 {
		return usagef("consent: --request-id goes with --report")
	}
	results, err := pairs("report", report)
	if err != nil {
		return err
	}
	for _, r := range report {
		tid, result, _ := strings.Cut(r, "=")
		switch result {
		case "accept", "reject", "ban", "filter":
		default:
			return usagef("consent: --report %s=%s: want accept, reject, ban or filter", shorten(tid, 64), shorten(result, 20))
		}
	}
	c, err := f.client()
	if err != nil {
		return err
	}
	var l admin.Ledger
	var reply []byte
	if len(results) > 0 {
		body := map[string]any{"openid": pos[0], "results": results}
		if *requestID != "" {
			body["request_id"] = *requestID
		}
		reply, err = c.post(ctx, apiPath("apps", *app, "consents"), body, &l)
	} else {
		reply, err = c.get(ctx, apiPath("apps", *app, "consents", pos[0]), nil, &l)
	}
	if err != nil {
		return failed(stderr, err)
	}
	if f.json {
		return printJSON(stdout, reply)
	}
	tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TEMPLATE_ID\tKIND\tSTATUS\tGRANTS\tUPDATED")
	for _, c := range l.Consents {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", cell(c.TemplateID), cell(c.Kind), cell(c.Status), c.Grants, stamp(c.UpdatedAt))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(l.Consents) == 0 {
		fmt.Fprintf(stdout, "no consents recorded for %s\n", cell(pos[0]))
	}
	if l.RequestID != "" {
		fmt.Fprintf(stdout, "recorded as request %s (report again with --request-id %s to retry safely)\n", cell(l.RequestID), cell(l.RequestID))
	}
	return nil
}

// pageFlags are the flags of a listing.
type pageFlags struct {
	since, until, cursor *string
	limit                *int
}

func addPageFlags(f *opsFlags) pageFlags {
	return pageFlags{
		since:  f.fs.String("since", "", "from this `time` on: RFC 3339, unix seconds, or a duration ago (24h)"),
		until:  f.fs.String("until", "", "before this `time`: RFC 3339, unix seconds, or a duration ago"),
		limit:  f.fs.Int("limit", 0, "at most `n` items (1 to 500; default 50)"),
		cursor: f.fs.String("cursor", "", "continue a listing from the `cursor` it printed"),
	}
}

// query adds the page parameters to q. A time given as a duration is turned
// into an instant that long before now.
func (p pageFlags) query(q url.Values, now time.Time) error {
	for name, v := range map[string]string{"since": *p.since, "until": *p.until} {
		if v == "" {
			continue
		}
		if d, err := time.ParseDuration(v); err == nil {
			if d < 0 {
				return usagef("--%s %s: a duration means that long ago and must not be negative", name, v)
			}
			v = now.Add(-d).UTC().Format(time.RFC3339)
		}
		q.Set(name, v)
	}
	if *p.limit != 0 {
		q.Set("limit", strconv.Itoa(*p.limit))
	}
	if *p.cursor != "" {
		q.Set("cursor", *p.cursor)
	}
	return nil
}

// printMore tells how to fetch the next page.
func printMore(w io.Writer, next string) {
	if next != "" {
		fmt.Fprintf(w, "more: repeat with --cursor %s\n", cell(next))
	}
}

// audit: wxgate audit --app APPID [filters] [--events]
func (o ops) audit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := o.flags("audit --app APPID [--events] [filters] [flags]", stderr)
	app := f.fs.String("app", "", "the mini program's `appid` (required)")
	events := f.fs.Bool("events", false, "list received callback events instead of messages")
	to := f.fs.String("to", "", "only this user's (`openid`) messages or events")
	tmpl := f.fs.String("template", "", "only messages of this `template_id`")
	status := f.fs.String("status", "", "only messages in this `status` (queued, sending, sent, delivered, failed, rejected, invalid, dead)")
	event := f.fs.String("event", "", "with --events, only this `event` (subscribe_msg_popup_event, ...)")
	page := addPageFlags(f)
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if *app == "" || len(pos) > 0 {
		return usagef("audit: want --app APPID and no arguments")
	}
	if *events && (*tmpl != "" || *status != "") {
		return usagef("audit: --template and --status filter messages, not --events")
	}
	if !*events && *event != "" {
		return usagef("audit: --event goes with --events")
	}
	q := url.Values{}
	if err := page.query(q, time.Now()); err != nil {
		return err
	}
	c, err := f.client()
	if err != nil {
		return err
	}
	if *events {
		setIf(q, "openid", *to)
		setIf(q, "event", *event)
		var l admin.List[admin.EventView]
		reply, err := c.get(ctx, apiPath("apps", *app, "events"), q, &l)
		if err != nil {
			return failed(stderr, err)
		}
		if f.json {
			return printJSON(stdout, reply)
		}
		tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "RECEIVED\tOPENID\tEVENT\tITEMS\tID")
		for _, e := range l.Items {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", stamp(e.ReceivedAt), cell(e.OpenID), cell(e.Event), cell(items(e.Data.Items)), cell(e.ID))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		printMore(stdout, l.NextCursor)
		return nil
	}
	setIf(q, "touser", *to)
	setIf(q, "template_id", *tmpl)
	setIf(q, "status", *status)
	var l admin.List[admin.MessageView]
	reply, err := c.get(ctx, apiPath("apps", *app, "messages"), q, &l)
	if err != nil {
		return failed(stderr, err)
	}
	if f.json {
		return printJSON(stdout, reply)
	}
	tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CREATED\tID\tTOUSER\tTEMPLATE_ID\tSTATUS\tATTEMPTS\tERRCODE")
	for _, m := range l.Items {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\n", stamp(m.CreatedAt), cell(m.ID), cell(m.ToUser), cell(m.TemplateID), cell(m.Status), m.Attempts, m.ErrCode)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	printMore(stdout, l.NextCursor)
	return nil
}

// items summarises a subscription event's items as TEMPLATE:STATUS entries.
func items(its []schemas.Item) string {
	parts := make([]string, 0, len(its))
	for _, it := range its {
		s := it.Status
		if it.MsgID != "" {
			s = it.ErrorStatus
		}
		parts = append(parts, shorten(it.TemplateID, 14)+":"+s)
	}
	return strings.Join(parts, " ")
}

// dlq: wxgate dlq [list] [filters] | wxgate dlq redrive ID
func (o ops) dlq(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := o.flags("dlq [list] [filters] [flags]\n"+
		"       wxgate dlq redrive ID | wxgate dlq redrive --all [filters]\n"+
		"       wxgate dlq delete ID | wxgate dlq delete --all [filters]", stderr)
	app := f.fs.String("app", "", "only this `appid`'s dead letters")
	consumer := f.fs.String("consumer", "", "only this `consumer`'s dead letters (wxgate-processor)")
	errcode := f.fs.String("errcode", "", "only the dead letters WeChat's `errcode` caused")
	all := f.fs.Bool("all", false, "redrive or delete every dead letter the filters match (all of them with no filter)")
	page := addPageFlags(f)
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	sub := "list"
	if len(pos) > 0 {
		sub, pos = pos[0], pos[1:]
	}
	q := url.Values{}
	if err := page.query(q, time.Now()); err != nil {
		return err
	}
	setIf(q, "appid", *app)
	setIf(q, "consumer", *consumer)
	setIf(q, "errcode", *errcode)
	switch sub {
	case "list":
		if len(pos) > 0 || *all {
			return usagef("dlq list: takes filters only")
		}
		return o.listDeadLetters(ctx, f, q, stdout, stderr)
	case "redrive", "delete":
		switch {
		case *all && len(pos) == 0:
			q.Del("limit")
			q.Del("cursor")
			if len(q) == 0 {
				q.Set("all", "true")
			}
			return o.bulkDeadLetters(ctx, f, sub, q, stdout, stderr)
		case !*all && len(pos) == 1:
			for _, name := range []string{"app", "consumer", "errcode", "since", "until", "limit", "cursor"} {
				if f.set(name) {
					return usagef("dlq %s ID: --%s filters --all only", sub, name)
				}
			}
			if sub == "delete" {
				return o.deleteDeadLetter(ctx, f, pos[0], stdout, stderr)
			}
			return o.redrive(ctx, f, pos[0], stdout, stderr)
		}
		return usagef("dlq %s: want one dead letter ID, or --all with filters", sub)
	}
	return usagef("dlq: unknown subcommand %q: want list, redrive or delete", shorten(sub, 40))
}

// listDeadLetters prints one page of dead letters.
func (o ops) listDeadLetters(ctx context.Context, f *opsFlags, q url.Values, stdout, stderr io.Writer) error {
	c, err := f.client()
	if err != nil {
		return err
	}
	var l admin.List[admin.DeadLetterView]
	reply, err := c.get(ctx, "/dlq", q, &l)
	if err != nil {
		return failed(stderr, err)
	}
	if f.json {
		return printJSON(stdout, reply)
	}
	tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "AT\tID\tAPPID\tCONSUMER\tSUBJECT\tERRCODE\tDELIVERIES\tREDRIVES\tREASON")
	for _, d := range l.Items {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\n", stamp(d.At), cell(d.ID), cell(d.AppID), cell(d.Consumer), cell(d.Subject), d.ErrCode, d.Deliveries, d.Redrives, cell(shorten(d.Reason, 80)))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	printMore(stdout, l.NextCursor)
	return nil
}

// bulkDeadLetters redrives or deletes every dead letter the filters match.
func (o ops) bulkDeadLetters(ctx context.Context, f *opsFlags, verb string, q url.Values, stdout, stderr io.Writer) error {
	c, err := f.client()
	if err != nil {
		return err
	}
	method, path, key := http.MethodPost, "/dlq/redrive", "redriven"
	if verb == "delete" {
		method, path, key = http.MethodDelete, "/dlq", "deleted"
	}
	reply, err := c.call(ctx, method, path, q, nil)
	if err != nil {
		return failed(stderr, err)
	}
	if f.json {
		return printJSON(stdout, reply)
	}
	var counts map[string]int
	if err := decodeReply(reply, &counts); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s %d dead letters\n", key, counts[key])
	return nil
}

// deleteDeadLetter deletes one dead letter.
func (o ops) deleteDeadLetter(ctx context.Context, f *opsFlags, id string, stdout, stderr io.Writer) error {
	c, err := f.client()
	if err != nil {
		return err
	}
	if _, err := c.call(ctx, http.MethodDelete, apiPath("dlq", id), nil, nil); err != nil {
		return failed(stderr, err)
	}
	fmt.Fprintf(stdout, "dead letter %s deleted\n", cell(id))
	return nil
}

// redrive puts one dead letter back on the stream.
func (o ops) redrive(ctx context.Context, f *opsFlags, id string, stdout, stderr io.Writer) error {
	c, err := f.client()
	if err != nil {
		return err
	}
	var d admin.DeadLetterView
	reply, err := c.post(ctx, apiPath("dlq", id, "redrive"), nil, &d)
	if err != nil {
		return failed(stderr, err)
	}
	if f.json {
		return printJSON(stdout, reply)
	}
	fmt.Fprintf(stdout, "dead letter %s put back on %s (redrive %d)\n", cell(d.ID), cell(d.Subject), d.Redrives)
	return nil
}

func setIf(q url.Values, name, v string) {
	if v != "" {
		q.Set(name, v)
	}
}

// stamp formats a time for a table; the zero time is "-".
func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// cell makes a server-supplied value safe for one table cell: control
// characters (tabs, newlines, terminal escapes) become spaces, and an empty
// value is "-".
func cell(s string) string {
	if s == "" {
		return "-"
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return ' '
		}
		return r
	}, s)
}

// shorten cuts s to at most n bytes on a character boundary, marking the cut.
func shorten(s string, n int) string { return schemas.Truncate(s, n) }
