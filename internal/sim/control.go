package sim

import (
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"slices"
)

const maxControlBody = 64 << 10

// routes registers the WeChat APIs and the control API.
func (s *Sim) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /cgi-bin/token", s.handleToken)
	mux.HandleFunc("POST /cgi-bin/stable_token", s.handleStableToken)
	mux.HandleFunc("POST /cgi-bin/message/subscribe/send", s.handleSend)
	mux.HandleFunc("GET /wxaapi/newtmpl/gettemplate", s.handleGetTemplate)

	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("POST /sim/apps/{appid}/users/{openid}/subscribe", s.handleSubscribe)
	mux.HandleFunc("POST /sim/apps/{appid}/users/{openid}/change", s.handleChange)
	mux.HandleFunc("GET /sim/apps/{appid}/users/{openid}/consents", s.handleConsents)
	mux.HandleFunc("GET /sim/apps/{appid}/messages", s.handleMessages)
	mux.HandleFunc("GET /sim/faults", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, s.CurrentFaults())
	})
	mux.HandleFunc("POST /sim/faults", s.handleFaults)
	mux.HandleFunc("GET /sim/stats", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, s.Stats())
	})
	mux.HandleFunc("POST /sim/reset", func(w http.ResponseWriter, _ *http.Request) {
		s.Reset()
		writeJSON(w, http.StatusOK, controlOK{OK: true})
	})
	return mux
}

type controlOK struct {
	OK bool `json:"ok"`
}

type controlError struct {
	Error string `json:"error"`
}

// writeControlErr maps an operation's error to a status; the sentinel
// messages name only the caller's own input, so they are safe to return.
func writeControlErr(w http.ResponseWriter, err error) {
	status := http.StatusBadRequest
	if errors.Is(err, ErrUnknownApp) {
		status = http.StatusNotFound
	}
	writeJSON(w, status, controlError{Error: err.Error()})
}

// decodeControl reads a bounded JSON body into v.
func decodeControl(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxControlBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeJSON(w, http.StatusBadRequest, controlError{Error: "malformed JSON body: " + err.Error()})
		return false
	}
	return true
}

// userRequest is the body of the subscribe and change control calls: either
// one action for template_ids, or per-template results.
type userRequest struct {
	TemplateIDs []string          `json:"template_ids"`
	Action      string            `json:"action"`
	Scene       int               `json:"scene"`
	Results     map[string]string `json:"results"`
}

func (s *Sim) handleSubscribe(w http.ResponseWriter, r *http.Request) {
	var req userRequest
	if !decodeControl(w, r, &req) {
		return
	}
	answers := make([]Answer, 0, len(req.TemplateIDs)+len(req.Results))
	for _, id := range req.TemplateIDs {
		answers = append(answers, Answer{TemplateID: id, Action: req.Action})
	}
	for _, id := range slices.Sorted(maps.Keys(req.Results)) {
		answers = append(answers, Answer{TemplateID: id, Action: req.Results[id]})
	}
	if err := s.Popup(r.PathValue("appid"), r.PathValue("openid"), req.Scene, answers...); err != nil {
		writeControlErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, controlOK{OK: true})
}

func (s *Sim) handleChange(w http.ResponseWriter, r *http.Request) {
	var req userRequest
	if !decodeControl(w, r, &req) {
		return
	}
	if req.Action == "" {
		req.Action = ActionReject
	}
	if err := s.Change(r.PathValue("appid"), r.PathValue("openid"), req.Action, req.TemplateIDs...); err != nil {
		writeControlErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, controlOK{OK: true})
}

func (s *Sim) handleConsents(w http.ResponseWriter, r *http.Request) {
	c, err := s.Consents(r.PathValue("appid"), r.PathValue("openid"))
	if err != nil {
		writeControlErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

func (s *Sim) handleMessages(w http.ResponseWriter, r *http.Request) {
	msgs, err := s.Messages(r.PathValue("appid"))
	if err != nil {
		writeControlErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, msgs)
}

func (s *Sim) handleFaults(w http.ResponseWriter, r *http.Request) {
	var f Faults
	if !decodeControl(w, r, &f) {
		return
	}
	if err := s.SetFaults(f); err != nil {
		writeControlErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, s.CurrentFaults())
}

// gettemplate response shapes, as WeChat names the fields.
type (
	templateList struct {
		Errcode int            `json:"errcode"`
		Errmsg  string         `json:"errmsg"`
		Data    []templateInfo `json:"data"`
	}
	templateInfo struct {
		PriTmplID            string         `json:"priTmplId"`
		Title                string         `json:"title"`
		Content              string         `json:"content"`
		Example              string         `json:"example"`
		Type                 int            `json:"type"`
		KeywordEnumValueList []keywordEnums `json:"keywordEnumValueList,omitempty"`
	}
	keywordEnums struct {
		KeywordCode   string   `json:"keywordCode"`
		EnumValueList []string `json:"enumValueList"`
	}
)

// handleGetTemplate serves GET /wxaapi/newtmpl/gettemplate: the token's app's templates.
func (s *Sim) handleGetTemplate(w http.ResponseWriter, r *http.Request) {
	appID, code := s.checkToken(r.URL.Query().Get("access_token"))
	if code != 0 {
		writeErr(w, code)
		return
	}
	a := s.apps[appID]
	out := templateList{Errmsg: "ok", Data: make([]templateInfo, 0, len(a.order))}
	for _, t := range a.order {
		info := templateInfo{PriTmplID: t.ID, Title: t.Title, Content: t.Content, Example: t.Example, Type: t.Type}
		// Keys in content order keep the answer stable; WeChat names them "enum2.DATA".
		for _, k := range t.keys {
			if vals, ok := t.Enums[k]; ok {
				info.KeywordEnumValueList = append(info.KeywordEnumValueList,
					keywordEnums{KeywordCode: k + ".DATA", EnumValueList: vals})
			}
		}
		out.Data = append(out.Data, info)
	}
	writeJSON(w, http.StatusOK, out)
}
