package audit

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/wxgate/wxgate/internal/sim"
	"github.com/wxgate/wxgate/processor"
)

// Comparison is what wxgate's audit and WeChat's record say together.
type Comparison struct {
	// Accepted is how many sends WeChat accepted, by its list.
	Accepted int
	// Copies counts wxgate's messages by how many times WeChat received them.
	Copies map[int]int
	// Twice counts the messages WeChat received more than once.
	Twice int
	// Contradictions lists the messages whose audit contradicts WeChat, and
	// WeChat's receipts that no message claims.
	Contradictions []string
	// Messages that went through unknown: settled since by a sent event, or
	// unknown still (and of those, accepted by WeChat).
	WentUnknown, SettledUnknown, LeftUnknown, LeftUnknownAccepted int
}

// Compare compares wxgate's audit msgs with the sends WeChat accepted, got,
// and accepted, WeChat's count of them. A receipt is matched to a message by
// msgid, and a receipt whose msgid no message names by user and template:
// each user must have exactly one message of the template.
func Compare(msgs []Message, got []sim.Message, accepted int64) Comparison {
	r := Comparison{Accepted: len(got), Copies: map[int]int{}}
	if int64(len(got)) != accepted {
		r.Contradictions = append(r.Contradictions, fmt.Sprintf("WeChat counted %d accepted sends but lists %d", accepted, len(got)))
	}
	byMsgID := map[string]*Message{}
	byUser := map[string]*Message{}
	for i := range msgs {
		m := &msgs[i]
		if m.WeChatMsgID != "" {
			byMsgID[m.WeChatMsgID] = m
		}
		key := m.ToUser + "/" + m.TemplateID
		if other := byUser[key]; other != nil {
			r.Contradictions = append(r.Contradictions, fmt.Sprintf("messages %s and %s are both for %s", other.ID, m.ID, key))
		}
		byUser[key] = m
	}
	received := map[string][]sim.Message{}
	for _, g := range got {
		m := byMsgID[g.MsgID]
		if m == nil {
			m = byUser[g.ToUser+"/"+g.TemplateID]
		}
		if m == nil {
			r.Contradictions = append(r.Contradictions, fmt.Sprintf("WeChat accepted msgid %s for %s, which no message in the audit claims", g.MsgID, g.ToUser))
			continue
		}
		received[m.ID] = append(received[m.ID], g)
	}
	for i := range msgs {
		m := &msgs[i]
		copies := received[m.ID]
		k := len(copies)
		r.Copies[k]++
		if k > 1 {
			r.Twice++
		}
		switch m.Status {
		case processor.StatusRejected, processor.StatusInvalid, processor.StatusDead:
			if k > 0 {
				r.Contradictions = append(r.Contradictions, fmt.Sprintf("message %s (%s) is %s (%q) but WeChat accepted it as msgid %s", m.ID, m.ToUser, m.Status, m.Reason, copies[0].MsgID))
			}
		case processor.StatusSent, processor.StatusDelivered, processor.StatusFailed:
			if k == 0 {
				r.Contradictions = append(r.Contradictions, fmt.Sprintf("message %s (%s) is %s but WeChat never accepted it", m.ID, m.ToUser, m.Status))
			}
		}
		if m.WeChatMsgID != "" && k > 0 && !slices.ContainsFunc(copies, func(g sim.Message) bool { return g.MsgID == m.WeChatMsgID }) {
			r.Contradictions = append(r.Contradictions, fmt.Sprintf("message %s (%s) names msgid %s but WeChat accepted it as %s", m.ID, m.ToUser, m.WeChatMsgID, copies[0].MsgID))
		}
		if m.WentThrough(processor.StatusUnknown) {
			r.WentUnknown++
			if m.Status == processor.StatusDelivered || m.Status == processor.StatusFailed {
				r.SettledUnknown++
			}
		}
		if m.Status == processor.StatusUnknown {
			r.LeftUnknown++
			if k > 0 {
				r.LeftUnknownAccepted++
			}
		}
	}
	return r
}

// FormatCopies renders Copies as "198×1, 2×0".
func (r Comparison) FormatCopies() string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(r.Copies)) {
		parts = append(parts, fmt.Sprintf("%d×%d", r.Copies[k], k))
	}
	return strings.Join(parts, ", ")
}

// StatusCounts counts msgs by status.
func StatusCounts(msgs []Message) map[string]int {
	counts := map[string]int{}
	for _, m := range msgs {
		counts[m.Status]++
	}
	return counts
}

// Settled reports whether no message is queued, sending or sent: every one
// is terminal or unknown.
func Settled(counts map[string]int) bool {
	return counts[processor.StatusQueued]+counts[processor.StatusSending]+counts[processor.StatusSent] == 0
}

// statusOrder is the order statuses are listed in.
var statusOrder = []string{
	processor.StatusDelivered, processor.StatusFailed, processor.StatusSent, processor.StatusUnknown,
	processor.StatusRejected, processor.StatusInvalid, processor.StatusDead, processor.StatusQueued, processor.StatusSending,
}

// FormatStatuses renders counts by status as "delivered 198, rejected 2".
func FormatStatuses(counts map[string]int) string {
	var parts []string
	for _, s := range statusOrder {
		if counts[s] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", s, counts[s]))
		}
	}
	for _, s := range slices.Sorted(maps.Keys(counts)) {
		if !slices.Contains(statusOrder, s) {
			parts = append(parts, fmt.Sprintf("%s %d", s, counts[s]))
		}
	}
	return strings.Join(parts, ", ")
}

// FormatAnswers renders WeChat's answers by errcode as "198×0, 2×43101".
func FormatAnswers(answers map[int]int64) string {
	var parts []string
	for _, code := range slices.Sorted(maps.Keys(answers)) {
		parts = append(parts, fmt.Sprintf("%d×%d", answers[code], code))
	}
	return strings.Join(parts, ", ")
}
