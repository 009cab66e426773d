package console

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/wxgate/wxgate/internal/admin"
	"github.com/wxgate/wxgate/processor"
	"github.com/wxgate/wxgate/schemas"
)

// rules are the keyword rules in words, as the API checks them
// (schemas.CheckKeyword); WeChat publishes the same table.
var rules = map[string]string{
	schemas.KeywordThing:           "text, at most 20 characters",
	schemas.KeywordNumber:          "a number, at most 32 characters, decimals allowed",
	schemas.KeywordLetter:          "Latin letters only, at most 32",
	schemas.KeywordSymbol:          "symbols only, at most 5",
	schemas.KeywordCharacterString: "letters, digits and symbols, at most 32",
	schemas.KeywordTime:            "a time of day (15:01), optionally with a date; a range may be given",
	schemas.KeywordDate:            "a date (2024-05-01 or 2024年5月1日), optionally with a time",
	schemas.KeywordAmount:          "an amount of money, with an optional currency symbol and up to two decimals",
	schemas.KeywordPhoneNumber:     "a phone number: digits, +, - and spaces, at most 17",
	schemas.KeywordCarNumber:       "a vehicle registration number, at most 8 characters",
	schemas.KeywordName:            "a name: at most 10 Chinese characters or 20 letters",
	schemas.KeywordPhrase:          "Chinese characters only, at most 5",
	schemas.KeywordEnum:            "one of the template's listed values",
}

// keywordView is a template keyword with its rule in words.
type keywordView struct {
	schemas.Keyword
	Rule  string
	Value string
	Error string
}

// templatesPage lists an app's templates.
type templatesPage struct {
	base
	Items   []templateView
	Unknown bool
}

type templateView struct {
	schemas.Template
	Keywords []keywordView
}

func viewTemplate(t schemas.Template, data map[string]string, errs map[string]string) templateView {
	v := templateView{Template: t}
	for _, k := range t.Keywords {
		rule := rules[k.Type]
		if rule == "" {
			rule = "text (a keyword type this version does not know)"
		}
		v.Keywords = append(v.Keywords, keywordView{Keyword: k, Rule: rule, Value: data[k.Key], Error: errs["data."+k.Key]})
	}
	return v
}

// templateList answers GET /console/apps/{appid}/templates.
func (c *Console) templateList(ctx *gin.Context) error {
	appID := ctx.Param("appid")
	p := &templatesPage{base: c.common(ctx, "Templates", "templates", appID)}
	ts, err := c.templates.Templates(ctx.Request.Context(), appID)
	if err != nil {
		c.log.Warn("console: the app's templates are unknown", "appid", appID, "err", err)
		p.Unknown = true
	}
	for _, t := range ts {
		p.Items = append(p.Items, viewTemplate(t, nil, nil))
	}
	c.render(ctx, http.StatusOK, "templates", p)
	return nil
}

// sendForm is a template's form: the data to check, and to send.
type sendForm struct {
	base
	T       templateView
	ToUser  string
	Page    string
	Errors  map[string]string
	Other   []string
	Checked bool
	Sent    *processor.Message
}

// Error returns the problem with a field, or "".
func (f *sendForm) Error(field string) string { return f.Errors[field] }

// template reads the template in the path.
func (c *Console) template(ctx *gin.Context) (*schemas.Template, error) {
	tid := ctx.Param("tid")
	if checkID(tid) != "" {
		return nil, processor.ErrNotFound
	}
	t, err := c.templates.Template(ctx.Request.Context(), ctx.Param("appid"), tid)
	if errors.Is(err, schemas.ErrNoSuchTemplate) || (err == nil && t == nil) {
		return nil, processor.ErrNotFound
	}
	return t, err
}

// templateForm answers GET /console/apps/{appid}/templates/{tid}.
func (c *Console) templateForm(ctx *gin.Context) error {
	t, err := c.template(ctx)
	if err != nil {
		return err
	}
	p := &sendForm{base: c.common(ctx, "Template "+t.Title, "templates", ctx.Param("appid")), T: viewTemplate(*t, nil, nil),
		ToUser: ctx.Query("touser")}
	c.render(ctx, http.StatusOK, "send", p)
	return nil
}

// templateSubmit answers POST /console/apps/{appid}/templates/{tid}: the data
// is checked with the admin API's rules against the template; with
// action=send and no problem, it is sent as the API's POST .../messages would.
func (c *Console) templateSubmit(ctx *gin.Context) error {
	appID := ctx.Param("appid")
	t, err := c.template(ctx)
	if err != nil {
		return err
	}
	send := ctx.PostForm("action") == "send"
	if send {
		if err := c.need(ctx, admin.RoleSend, appID); err != nil {
			c.record(ctx, "/console/apps/{appid}/templates/{tid}", appID, map[string]string{"template_id": bounded(t.ID)}, http.StatusForbidden)
			return err
		}
	}
	req := &schemas.SendRequest{
		ToUser: strings.TrimSpace(ctx.PostForm("touser")), TemplateID: t.ID,
		Page: strings.TrimSpace(ctx.PostForm("page")), Data: map[string]string{},
	}
	for _, k := range t.Keywords {
		if v := ctx.PostForm("data." + k.Key); v != "" {
			req.Data[k.Key] = v
		}
	}
	p := &sendForm{base: c.common(ctx, "Template "+t.Title, "templates", appID), ToUser: req.ToUser, Page: req.Page,
		Errors: map[string]string{}, Checked: true}
	for _, fe := range c.sends.Check(req, t) {
		if fe.Field == "data" && len(req.Data) == 0 {
			continue // every keyword is reported as required on its own
		}
		if _, seen := p.Errors[fe.Field]; !seen {
			p.Errors[fe.Field] = fe.Message
		}
		if fe.Field != "touser" && fe.Field != "page" && !strings.HasPrefix(fe.Field, "data.") {
			p.Other = append(p.Other, fe.Message)
		}
	}
	p.T = viewTemplate(*t, req.Data, p.Errors)
	if len(p.Errors) > 0 {
		c.render(ctx, http.StatusBadRequest, "send", p)
		return nil
	}
	if send {
		m, err := c.svc.RequestSend(ctx.Request.Context(), appID, req, "")
		status := http.StatusSeeOther
		if err != nil {
			status, _ = classify(err)
		}
		targets := map[string]string{"template_id": bounded(t.ID), "touser": bounded(req.ToUser)}
		if m != nil {
			targets["id"] = m.ID
		}
		c.record(ctx, "/console/apps/{appid}/templates/{tid}", appID, targets, status)
		if err != nil {
			return err
		}
		ctx.Redirect(http.StatusSeeOther, prefix+"/apps/"+appID+"/messages/"+url.PathEscape(m.ID))
		return nil
	}
	c.render(ctx, http.StatusOK, "send", p)
	return nil
}
