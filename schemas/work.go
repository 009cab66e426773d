package schemas

import (
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
)

// The processor's work stream.
//
// Every message that changes a user's state (a push, a send request, a consent
// report) is also published on the work stream WXGATE_WORK, under a subject
// that names the user: "wxgate.work.{appid}.{user}.{kind}", where user is a
// hash of the openid. The stream rewrites that subject as it stores the
// message, adding the user's partition computed by the server itself:
// "wxgate.part.{partition}.{appid}.{user}.{kind}". Each partition has one
// durable consumer, read by one processor at a time, so one user's messages
// are applied by one processor at a time, in stream order, across the cluster.
//
// The WECHAT stream keeps the contract's subjects for downstream services; the
// work stream is the processor's queue (work-queue retention: a message is
// removed once acknowledged).
const (
	WorkStreamName = "WXGATE_WORK"
	// Partitions is the number of partitions of the work stream. Changing it
	// moves users between partitions: drain the work stream first.
	Partitions = 16
	// workPrefix and partPrefix are the subjects before and after the stream's
	// transform.
	workPrefix = "wxgate.work."
	partPrefix = "wxgate.part."
)

// Kinds of work, the last token of a work subject.
const (
	WorkInbound = "in"
	WorkSend    = "send"
	WorkReport  = "report"
)

// WorkSubjects is the work stream's subject filter: appid, user, kind.
const WorkSubjects = workPrefix + "*.*.*"

// WorkTransform returns the source and destination of the work stream's
// subject transform, which adds the partition of (appid, user).
func WorkTransform() (source, destination string) {
	return WorkSubjects, fmt.Sprintf("%s{{partition(%d,1,2)}}.{{wildcard(1)}}.{{wildcard(2)}}.{{wildcard(3)}}", partPrefix, Partitions)
}

// WorkSubject is the subject a message for the processor is published on.
func WorkSubject(appID, openID, kind string) string {
	return workPrefix + SubjectToken(appID) + "." + UserToken(openID) + "." + SubjectToken(kind)
}

// UserToken is the subject token of one user: the FNV-1a hash of the openid in
// hex. Openids differing only in case, or colliding, share a partition, which
// is harmless: the partition only chooses the processor.
func UserToken(openID string) string {
	h := fnv.New64a()
	_, _ = h.Write([]byte(openID))
	return strconv.FormatUint(h.Sum64(), 16)
}

// PartitionFilter is the subject filter of partition p's consumer.
func PartitionFilter(p int) string {
	return partPrefix + strconv.Itoa(p) + ".>"
}

// WorkMessage is what a stored work subject says: the partition, the app, the
// user token and the kind.
type WorkMessage struct {
	Partition int
	AppID     string
	User      string
	Kind      string
}

// ParseWorkSubject reads a subject as the work stream stores it
// ("wxgate.part.{partition}.{appid}.{user}.{kind}").
func ParseWorkSubject(subject string) (WorkMessage, error) {
	rest, ok := strings.CutPrefix(subject, partPrefix)
	parts := strings.Split(rest, ".")
	if !ok || len(parts) != 4 {
		return WorkMessage{}, fmt.Errorf("subject %q is not %s{partition}.{appid}.{user}.{kind}", subject, partPrefix)
	}
	p, err := strconv.Atoi(parts[0])
	if err != nil || p < 0 {
		return WorkMessage{}, fmt.Errorf("subject %q: partition %q is not a number", subject, parts[0])
	}
	return WorkMessage{Partition: p, AppID: parts[1], User: parts[2], Kind: parts[3]}, nil
}

// Subject is the subject to publish the message on again (a redrive): the
// stream puts it back in the same partition.
func (w WorkMessage) Subject() string {
	return workPrefix + w.AppID + "." + w.User + "." + w.Kind
}
