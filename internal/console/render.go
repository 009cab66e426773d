package console

import (
	"bytes"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"
	_ "time/tzdata" // operators' time zones, whatever the host has installed

	"github.com/gin-gonic/gin"

	"github.com/wxgate/wxgate/internal/admin"
)

// base is what every page's layout needs: the signed-in operator, the app
// being viewed and the apps to switch to, the CSRF token for its forms, and
// the time zone its times are shown in.
type base struct {
	Title   string
	Section string
	AppID   string
	Apps    []string
	Token   string // the token's name, never the token
	CSRF    string
	Zone    *time.Location
	// Admin and Send say whether the operator may act, so that pages offer
	// only the actions that would be allowed.
	Admin, Send bool
}

// common returns the parts of base a page of app (or of none) shares.
func (c *Console) common(ctx *gin.Context, title, section, appID string) base {
	s := sessionOf(ctx)
	b := base{Title: title, Section: section, AppID: appID, Token: s.id.Name(), CSRF: s.csrf, Zone: c.zoneOf(ctx)}
	for _, id := range c.apps {
		if s.id.Allows(admin.RoleRead, id) {
			b.Apps = append(b.Apps, id)
		}
	}
	if appID != "" {
		b.Admin = s.id.Allows(admin.RoleAdmin, appID)
		b.Send = s.id.Allows(admin.RoleSend, appID)
	}
	return b
}

// Time renders an instant in the operator's zone, with UTC on hover and in
// the machine-readable datetime attribute.
func (b *base) Time(t time.Time) template.HTML {
	if t.IsZero() {
		return "—"
	}
	zone := b.Zone
	if zone == nil {
		zone = time.UTC
	}
	return template.HTML(fmt.Sprintf(`<time datetime="%s" title="%s">%s</time>`,
		t.UTC().Format(time.RFC3339Nano), t.UTC().Format("2006-01-02 15:04:05.000 UTC"),
		template.HTMLEscapeString(t.In(zone).Format("2006-01-02 15:04:05 MST"))))
}

// ZoneName names the zone times are shown in.
func (b *base) ZoneName() string {
	if b.Zone == nil {
		return "UTC"
	}
	return b.Zone.String()
}

// page is what every page's data gives the layout.
type page interface{ layout() *base }

func (b *base) layout() *base { return b }

// zoneOf returns the operator's time zone: the one the browser told at
// sign-in, or the console's default.
func (c *Console) zoneOf(ctx *gin.Context) *time.Location {
	if z, err := ctx.Cookie(cookieZone); err == nil {
		if loc, err := loadZone(z); err == nil {
			return loc
		}
	}
	return c.zone
}

// loadZone loads an IANA zone name such as Asia/Shanghai; names are bounded
// and must look like one, so that a cookie cannot make it read any file.
func loadZone(name string) (*time.Location, error) {
	if len(name) > 64 || strings.Contains(name, "..") || strings.Trim(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_/+-") != "" {
		return nil, fmt.Errorf("not a time zone name")
	}
	return time.LoadLocation(name)
}

// funcs are the templates' helpers.
var funcs = template.FuncMap{
	"query": func(kv ...string) template.URL {
		v := url.Values{}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] != "" {
				v.Set(kv[i], kv[i+1])
			}
		}
		return template.URL(v.Encode())
	},
	"pathEscape": url.PathEscape,
	"statusClass": func(s string) string {
		switch s {
		case "delivered", "sent", "accepted", "accept", "success":
			return "ok"
		case "failed", "dead", "rejected", "invalid", "reject", "banned", "ban":
			return "bad"
		case "unknown":
			return "warn"
		}
		return "neutral"
	},
}

// parsePages parses every page with the layout, each page into a template
// set of its own so that each defines its own "content".
func parsePages() (map[string]*template.Template, error) {
	layout, err := template.New("layout.html").Funcs(funcs).ParseFS(files, "templates/layout.html")
	if err != nil {
		return nil, err
	}
	names, err := fs.Glob(files, "templates/*.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{}
	for _, n := range names {
		name := strings.TrimSuffix(path.Base(n), ".html")
		if name == "layout" {
			continue
		}
		t, err := template.Must(layout.Clone()).ParseFS(files, n)
		if err != nil {
			return nil, err
		}
		pages[name] = t
	}
	return pages, nil
}

// render writes the page name with data; a template that fails is logged and
// answered 500 without a half-written page.
func (c *Console) render(ctx *gin.Context, status int, name string, data page) {
	b := data.layout()
	if b.Zone == nil {
		b.Zone = c.zoneOf(ctx)
	}
	if b.Token == "" {
		s := sessionOf(ctx)
		b.Token, b.CSRF = s.id.Name(), firstNonEmpty(b.CSRF, s.csrf)
	}
	var buf bytes.Buffer
	if err := c.pages[name].ExecuteTemplate(&buf, "layout.html", data); err != nil {
		c.log.Error("console page not rendered", "page", name, "err", err)
		ctx.Data(http.StatusInternalServerError, "text/plain; charset=utf-8", []byte("internal error\n"))
		return
	}
	ctx.Data(status, "text/html; charset=utf-8", buf.Bytes())
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
