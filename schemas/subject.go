package schemas

// NATS subjects and CloudEvents types of wxgate's stream.
//
// Every token that comes from outside (an appid, an event name, a status) goes
// through SubjectToken, so a hostile or odd value can never add a subject
// level or a wildcard.

// Stream settings: one JetStream stream holds every subject wxgate publishes.
const (
	StreamName     = "WECHAT"
	StreamSubjects = "wechat.>"
)

// maxSubjectToken bounds one subject token, in bytes.
const maxSubjectToken = 64

// SubjectToken makes s safe as one NATS subject token: lower case, with every
// byte outside [a-z0-9_-] replaced by '_', cut to 64 bytes, and "unknown" when
// empty. It is deterministic, so the same name always maps to the same token.
func SubjectToken(s string) string {
	if s == "" {
		return "unknown"
	}
	n := min(len(s), maxSubjectToken)
	b := make([]byte, n)
	for i := range n {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '_', c == '-':
			b[i] = c
		case c >= 'A' && c <= 'Z':
			b[i] = c + ('a' - 'A')
		default:
			b[i] = '_'
		}
	}
	return string(b)
}

// InboundSubject is the subject of a received push: "wechat.{appid}.in.{token}",
// where event is the push's Event, or its MsgType for a plain message.
func InboundSubject(appID, event string) string {
	return "wechat." + SubjectToken(appID) + ".in." + SubjectToken(event)
}

// ConsentSubject is the subject of a consent change: "wechat.{appid}.consent.{status}".
func ConsentSubject(appID, status string) string {
	return "wechat." + SubjectToken(appID) + ".consent." + SubjectToken(status)
}

// DeliverySubject is the subject of a message status change: "wechat.{appid}.delivery.{status}".
func DeliverySubject(appID, status string) string {
	return "wechat." + SubjectToken(appID) + ".delivery." + SubjectToken(status)
}

// SendSubject is the subject of send requests, the processor's work queue: "wechat.{appid}.send".
func SendSubject(appID string) string {
	return "wechat." + SubjectToken(appID) + ".send"
}

// eventToken is the subject token of an Event: its Event name, or its MsgType
// for a plain message.
func (e *Event) eventToken() string {
	if e.Event != "" {
		return SubjectToken(e.Event)
	}
	return SubjectToken(e.MsgType)
}

// Subject is the NATS subject the event is published on. It is safe for
// concurrent use as long as the Event is not being modified.
func (e *Event) Subject() string {
	return "wechat." + SubjectToken(e.AppID) + ".in." + e.eventToken()
}

// Type is the event's CloudEvents type, "wechat.in.{token}", with the token
// of its subject. It is safe for concurrent use as long as the Event is not
// being modified.
func (e *Event) Type() string {
	return "wechat.in." + e.eventToken()
}
