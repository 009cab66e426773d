// Package gateway serves the WeChat message-push URL.
//
// For each push it checks the timestamp window, verifies signature and, for
// encrypted pushes, msg_signature (which covers the body), decrypts with the
// app's EncodingAESKey (falling back to the previous one during a rotation),
// parses XML or JSON into a schemas.Event and publishes it as a CloudEvent to
// JetStream with the event's stable id as Nats-Msg-Id and the time the push
// arrived as its time. It answers "success"
// only after the stream acknowledged the event, so anything WeChat believes
// delivered is stored; a retry of a stored push is acknowledged as a duplicate
// and stores nothing new. Every failure maps to one status in classify: 401 for
// signatures and stale timestamps, 404 for unknown apps, 400 for bodies that
// cannot be decrypted or parsed, 413 for oversized bodies and 503 when the
// stream did not acknowledge, so that WeChat retries.
package gateway
