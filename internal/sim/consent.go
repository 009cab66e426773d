package sim

import "fmt"

// Actions a simulated user takes.
const (
	ActionAccept = "accept"
	ActionReject = "reject"
)

// maxAnswers bounds the templates of one popup or change; WeChat shows at most
// three per popup, the margin is for tests.
const maxAnswers = 100

// Consent is what a user has granted for one template.
type Consent struct {
	// Grants is the one-time sends left (one-time templates).
	Grants int `json:"grants"`
	// Accepted reports a standing accept (long-term templates).
	Accepted bool `json:"accepted"`
}

// Answer is a user's answer for one template in a popup.
type Answer struct {
	TemplateID string `json:"template_id"`
	Action     string `json:"action"` // ActionAccept or ActionReject
}

// consumeConsentLocked uses one grant for a one-time template, or checks the
// standing accept of a long-term one. The caller holds a.mu.
func (a *app) consumeConsentLocked(openID string, t *template) bool {
	c := a.consents[openID][t.ID]
	if c == nil {
		return false
	}
	if t.Type == TemplateLongTerm {
		return c.Accepted
	}
	if c.Grants <= 0 {
		return false
	}
	c.Grants--
	return true
}

// Subscribe records a user's answer to a popup in scene 0 (inside the mini
// program) for every template in templateIDs, and pushes the
// subscribe_msg_popup_event. See [Sim.Popup].
func (s *Sim) Subscribe(appID, openID, action string, templateIDs ...string) error {
	answers := make([]Answer, len(templateIDs))
	for i, id := range templateIDs {
		answers[i] = Answer{TemplateID: id, Action: action}
	}
	return s.Popup(appID, openID, 0, answers...)
}

// Popup records a user's answers to one subscription popup and pushes one
// subscribe_msg_popup_event listing them. Accepting a one-time template adds
// one send to its grants; accepting a long-term template allows sends until a
// reject; rejecting clears both. It is safe for concurrent use.
func (s *Sim) Popup(appID, openID string, scene int, answers ...Answer) error {
	a, err := s.lookupUser(appID, openID, len(answers))
	if err != nil {
		return err
	}
	items := make([]item, len(answers))
	for i, ans := range answers {
		if _, ok := a.templates[ans.TemplateID]; !ok {
			return fmt.Errorf("%w: %q", ErrUnknownTemplate, ans.TemplateID)
		}
		if ans.Action != ActionAccept && ans.Action != ActionReject {
			return fmt.Errorf("%w: %q is not accept or reject", ErrBadAction, ans.Action)
		}
		items[i] = item{TemplateID: ans.TemplateID, Status: ans.Action, Scene: scene, hasScene: true}
	}
	a.mu.Lock()
	for _, ans := range answers {
		t := a.templates[ans.TemplateID]
		user := a.consents[openID]
		if user == nil {
			user = map[string]*Consent{}
			a.consents[openID] = user
		}
		c := user[t.ID]
		if c == nil {
			c = &Consent{}
			user[t.ID] = c
		}
		switch {
		case ans.Action == ActionReject:
			*c = Consent{}
		case t.Type == TemplateLongTerm:
			c.Accepted = true
		default:
			c.Grants++
		}
	}
	a.mu.Unlock()
	s.emit(a, openID, eventPopup, items, 0)
	return nil
}

// Change records that a user turned templates off in WeChat's notification
// settings and pushes a subscribe_msg_change_event. WeChat pushes only
// rejects this way, so action must be ActionReject. It is safe for concurrent use.
func (s *Sim) Change(appID, openID, action string, templateIDs ...string) error {
	a, err := s.lookupUser(appID, openID, len(templateIDs))
	if err != nil {
		return err
	}
	if action != ActionReject {
		return fmt.Errorf("%w: %q: change events carry only reject", ErrBadAction, action)
	}
	items := make([]item, len(templateIDs))
	for i, id := range templateIDs {
		if _, ok := a.templates[id]; !ok {
			return fmt.Errorf("%w: %q", ErrUnknownTemplate, id)
		}
		items[i] = item{TemplateID: id, Status: ActionReject}
	}
	a.mu.Lock()
	for _, id := range templateIDs {
		delete(a.consents[openID], id)
	}
	if len(a.consents[openID]) == 0 {
		delete(a.consents, openID)
	}
	a.mu.Unlock()
	s.emit(a, openID, eventChange, items, 0)
	return nil
}

// Consents returns a user's consent per template id; templates never
// answered are absent. It is safe for concurrent use.
func (s *Sim) Consents(appID, openID string) (map[string]Consent, error) {
	a, err := s.lookupUser(appID, openID, 1)
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make(map[string]Consent, len(a.consents[openID]))
	for id, c := range a.consents[openID] {
		out[id] = *c
	}
	return out, nil
}

func (s *Sim) lookupUser(appID, openID string, n int) (*app, error) {
	a, ok := s.apps[appID]
	switch {
	case !ok:
		return nil, ErrUnknownApp
	case !validOpenID(openID):
		return nil, ErrBadOpenID
	case n == 0 || n > maxAnswers:
		return nil, fmt.Errorf("%w: between 1 and %d templates are needed", ErrUnknownTemplate, maxAnswers)
	}
	return a, nil
}
