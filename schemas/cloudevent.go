package schemas

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/url"
	"time"
)

// CloudEvent is the CloudEvents 1.0 JSON envelope of every message on the
// stream. Data is the event's data as JSON; its shape depends on Type and is
// described by the package's JSON Schemas.
type CloudEvent struct {
	SpecVersion     string          `json:"specversion"`
	ID              string          `json:"id"`
	Source          string          `json:"source"`
	Type            string          `json:"type"`
	Subject         string          `json:"subject,omitempty"`
	Time            time.Time       `json:"time"`
	DataContentType string          `json:"datacontenttype"`
	Data            json.RawMessage `json:"data"`
}

// CloudEvents attributes every wxgate message carries.
const (
	CloudEventsSpecVersion = "1.0"
	CloudEventsContentType = "application/json"
)

// CloudEventSource is the CloudEvents source of an app's messages: "/wechat/{appid}".
func CloudEventSource(appID string) string {
	return "/wechat/" + url.PathEscape(appID)
}

// NewCloudEvent builds the envelope of data, marshalled as JSON, for the app
// appID: source "/wechat/{appid}", specversion "1.0", datacontenttype
// "application/json", and t in UTC. The id, appID, type and time are
// required. It is safe for concurrent use.
func NewCloudEvent(id, appID, typ, subject string, t time.Time, data any) (CloudEvent, error) {
	switch {
	case id == "":
		return CloudEvent{}, malformedf("cloudevent: empty id")
	case appID == "":
		return CloudEvent{}, malformedf("cloudevent: empty appid")
	case typ == "":
		return CloudEvent{}, malformedf("cloudevent: empty type")
	case t.IsZero():
		return CloudEvent{}, malformedf("cloudevent: zero time")
	}
	raw, err := json.Marshal(data)
	if err != nil {
		return CloudEvent{}, fmt.Errorf("cloudevent: marshal data: %w", err)
	}
	return CloudEvent{
		SpecVersion:     CloudEventsSpecVersion,
		ID:              id,
		Source:          CloudEventSource(appID),
		Type:            typ,
		Subject:         subject,
		Time:            t.UTC(),
		DataContentType: CloudEventsContentType,
		Data:            raw,
	}, nil
}

// InboundCloudEvent builds the envelope of a received push: id e.ID(), type
// e.Type(), subject the user's openid, and time received in UTC, the moment
// the gateway received the push. The push's own CreateTime stays in the data
// as create_time: it is WeChat's clock, in whole seconds, and the same for
// every retry of a push. It is safe for concurrent use as long as the Event
// is not being modified.
func InboundCloudEvent(e *Event, received time.Time) (CloudEvent, error) {
	if e == nil {
		return CloudEvent{}, malformedf("cloudevent: no event")
	}
	return InboundCloudEventWithID(e, e.ID(), received)
}

// InboundCloudEventWithID is InboundCloudEvent with the id already known, as
// ParseEventWithID returns it.
func InboundCloudEventWithID(e *Event, id string, received time.Time) (CloudEvent, error) {
	if e == nil {
		return CloudEvent{}, malformedf("cloudevent: no event")
	}
	return NewCloudEvent(id, e.AppID, e.Type(), e.OpenID, received, e)
}

// DecodeCloudEvent decodes one envelope strictly: a single JSON object with
// specversion "1.0" and a non-empty id, source and type; datacontenttype, when
// present, is application/json; data_base64 is refused since wxgate's data is
// always JSON. Extension attributes are allowed and ignored, as CloudEvents
// requires of consumers. Every failure wraps ErrMalformed. It is safe for
// concurrent use.
func DecodeCloudEvent(b []byte) (CloudEvent, error) {
	if len(b) > MaxMessageSize {
		return CloudEvent{}, malformedf("cloudevent: larger than %d bytes", MaxMessageSize)
	}
	if f, err := DetectFormat(b); err != nil || f != FormatJSON {
		return CloudEvent{}, malformedf("cloudevent: not a JSON object")
	}
	var wire struct {
		CloudEvent
		DataBase64 *string `json:"data_base64"`
	}
	d := json.NewDecoder(bytes.NewReader(b))
	if err := d.Decode(&wire); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return CloudEvent{}, malformedf("cloudevent: %s has the wrong type", shortName(te.Field))
		}
		return CloudEvent{}, malformedf("cloudevent: %s", jsonErrorDetail(err))
	}
	if _, err := d.Token(); !errors.Is(err, io.EOF) {
		return CloudEvent{}, malformedf("cloudevent: data after the object")
	}
	ce := wire.CloudEvent
	switch {
	case ce.SpecVersion != CloudEventsSpecVersion:
		return CloudEvent{}, malformedf("cloudevent: specversion is not %s", CloudEventsSpecVersion)
	case ce.ID == "":
		return CloudEvent{}, malformedf("cloudevent: id is required")
	case ce.Source == "":
		return CloudEvent{}, malformedf("cloudevent: source is required")
	case ce.Type == "":
		return CloudEvent{}, malformedf("cloudevent: type is required")
	case wire.DataBase64 != nil:
		return CloudEvent{}, malformedf("cloudevent: data_base64 is not supported")
	}
	if ce.DataContentType != "" {
		mt, _, err := mime.ParseMediaType(ce.DataContentType)
		if err != nil || mt != CloudEventsContentType {
			return CloudEvent{}, malformedf("cloudevent: datacontenttype is not %s", CloudEventsContentType)
		}
	}
	if bytes.Equal(ce.Data, []byte("null")) {
		ce.Data = nil
	}
	return ce, nil
}
