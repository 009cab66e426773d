package processor

import (
	"context"
	"fmt"
	"time"

	"github.com/wxgate/wxgate/internal/derrors"
	"github.com/wxgate/wxgate/schemas"
)

// Store errors, which implementations wrap: the kinds of internal/derrors.
var (
	// ErrNotFound: no document with that key.
	ErrNotFound = derrors.NotFound
	// ErrConflict: the document changed since it was read (a compare-and-set
	// lost); re-read and retry.
	ErrConflict = derrors.Conflict
	// ErrDuplicate: a document with that unique key exists already.
	ErrDuplicate = derrors.Duplicate
	// ErrUnavailable: the store could not be reached; the work is retried later.
	ErrUnavailable = derrors.Unavailable
	// ErrBadCursor: a list cursor the store did not issue.
	ErrBadCursor = fmt.Errorf("%w: bad cursor", derrors.Invalid)
)

// Limits of list queries.
const (
	DefaultLimit = 50
	MaxLimit     = 500
)

// Store keeps the processor's state. Every write is a single-document atomic
// operation keyed by a natural id: an insert that fails on a duplicate id, or a
// replace guarded by the version read before (compare-and-set). Every document
// is found by its _id. Implementations are safe for concurrent use and wrap
// ErrNotFound, ErrConflict, ErrDuplicate and ErrUnavailable.
type Store interface {
	Ping(ctx context.Context) error

	// InsertEvents stores inbound events in one call; an id stored before is
	// skipped, not an error (a redelivery).
	InsertEvents(ctx context.Context, events []EventRecord) error
	Events(ctx context.Context, q EventQuery) ([]EventRecord, string, error)
	// Event reads one inbound event of an app by its id.
	Event(ctx context.Context, appID, id string) (*EventRecord, error)

	Consent(ctx context.Context, id string) (*Consent, error)
	// SaveConsent writes c if the stored version is still c.Version-1 (ErrConflict
	// otherwise); version 1 inserts it (ErrDuplicate when it exists).
	SaveConsent(ctx context.Context, c *Consent) error
	Consents(ctx context.Context, appID, openID string) ([]Consent, error)

	Message(ctx context.Context, appID, id string) (*Message, error)
	// SaveMessage writes m with the same compare-and-set rule as SaveConsent.
	SaveMessage(ctx context.Context, m *Message) error
	Messages(ctx context.Context, q MessageQuery) ([]Message, string, error)

	// Outcome reads the record of one WeChat msgid (see Outcome).
	Outcome(ctx context.Context, appID, msgID string) (*Outcome, error)
	// SaveOutcome writes o with the same compare-and-set rule as SaveConsent.
	SaveOutcome(ctx context.Context, o *Outcome) error

	// PutOutbox records that a message's send event is about to be published;
	// DeleteOutbox that it was; Outbox lists what is left, oldest first (the
	// collection holds only the publishes in flight or lost).
	PutOutbox(ctx context.Context, e *OutboxEntry) error
	DeleteOutbox(ctx context.Context, id string) error
	Outbox(ctx context.Context, limit int) ([]OutboxEntry, error)

	PutDeadLetter(ctx context.Context, d *DeadLetter) error
	DeadLetter(ctx context.Context, id string) (*DeadLetter, error)
	SaveDeadLetter(ctx context.Context, d *DeadLetter) error
	// DeleteDeadLetter removes one dead letter; deleting one that is gone is not an error.
	DeleteDeadLetter(ctx context.Context, id string) error
	DeadLetters(ctx context.Context, q DeadLetterQuery) ([]DeadLetter, string, error)
}

// EventRecord is one inbound event in the audit trail. Data has the field names
// of the stream and the API.
type EventRecord struct {
	ID      string `bson:"_id" json:"id"`
	AppID   string `bson:"appid" json:"appid"`
	OpenID  string `bson:"openid" json:"openid"`
	Event   string `bson:"event" json:"event"`
	Subject string `bson:"subject" json:"subject"`
	// ReceivedAt is when the gateway received the push (the CloudEvent's time).
	ReceivedAt time.Time     `bson:"received_at" json:"received_at"`
	Data       schemas.Event `bson:"data" json:"data"`
}

// OutboxEntry is a message whose send event may not be on the stream yet.
type OutboxEntry struct {
	ID    string    `bson:"_id"` // the message id
	AppID string    `bson:"appid"`
	At    time.Time `bson:"at"`
}

// DeadLetter is a stream message the processor gave up on, with the reason.
type DeadLetter struct {
	ID       string `bson:"_id" json:"id"`
	AppID    string `bson:"appid" json:"appid"`
	Consumer string `bson:"consumer" json:"consumer"`
	Subject  string `bson:"subject" json:"subject"`
	MsgID    string `bson:"msg_id" json:"msg_id"`
	Data     string `bson:"data" json:"data"`
	Reason   string `bson:"reason" json:"reason"`
	// ErrCode is WeChat's errcode when WeChat's answer was the cause, else 0.
	ErrCode    int        `bson:"errcode" json:"errcode"`
	Deliveries int        `bson:"deliveries" json:"deliveries"`
	At         time.Time  `bson:"at" json:"at"`
	Redrives   int        `bson:"redrives" json:"redrives"`
	RedrivenAt *time.Time `bson:"redriven_at,omitempty" json:"redriven_at,omitempty"`
	Version    int64      `bson:"version" json:"-"`
}

// Page is the common part of list queries: newest first, Limit at most, after Cursor.
type Page struct {
	Since, Until time.Time // zero: unbounded
	Limit        int
	Cursor       string // opaque, from the previous page's next cursor
}

// EventQuery filters the events audit trail.
type EventQuery struct {
	AppID, OpenID, Event string
	Page
}

// MessageQuery filters messages.
type MessageQuery struct {
	AppID, ToUser, TemplateID, Status string
	Page
}

// DeadLetterQuery filters dead letters.
type DeadLetterQuery struct {
	AppID, Consumer string
	// ErrCode, when not nil, keeps the dead letters WeChat's errcode caused.
	ErrCode *int
	Page
}
