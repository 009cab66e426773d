// Package processor turns the WECHAT stream into state a business can rely on.
//
// Durable JetStream consumers feed handlers that return an error; settle (in
// ack.go) is the one place that turns it into ack, nak with backoff, or a dead
// letter. Every handler is idempotent, because the stream delivers at least once.
//
// State lives in a Store (declared here, implemented in internal/store), one
// document per natural key: a user's consent for one template (ledger.go), one
// message and its delivery state (delivery.go), one inbound event, one sent
// outcome, one dead letter. Every change is a single-document compare-and-set,
// so no multi-document transaction is needed, and each document remembers the
// ids of the changes applied to it, so a redelivered event changes nothing.
// Consent and delivery changes are published as CloudEvents on
// wechat.{appid}.consent.{event} and wechat.{appid}.delivery.{status}.
package processor
