package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/wxgate/wxgate/internal/sim"
	"github.com/wxgate/wxgate/processor"
)

// result is what one run found.
type result struct {
	killAt float64
	n      int
	// acceptedAtKill and inFlightAtKill are the sends WeChat had accepted and
	// the sends it was working on when the process was killed.
	acceptedAtKill, inFlightAtKill int
	killAfter                      time.Duration
	// requestsRetried counts send requests that failed with the kill and were
	// made again, under the same Idempotency-Key, after the restart.
	requestsRetried int
	// ready is from the restart to /readyz; recovered is from the restart to
	// every message terminal or unknown, every push delivered and nothing left
	// to fetch.
	ready, recovered time.Duration
	// notRecovered, when not empty, is the state in which the messages
	// stayed: some never became terminal or unknown.
	notRecovered string

	statuses map[string]int // wxgate's messages by status
	accepted int            // sends WeChat accepted, by its own record
	answers  map[int]int64  // WeChat's answers to sends by errcode
	// copies counts wxgate's messages by how many times WeChat received them.
	copies map[int]int
	twice  int // messages WeChat received more than once
	// contradictions lists the messages whose audit contradicts WeChat, and
	// WeChat's receipts no message claims.
	contradictions []string
	// Messages that went through unknown: settled since by a sent event, or
	// unknown still (and of those, accepted by WeChat).
	wentUnknown, settledUnknown, leftUnknown, leftUnknownAccepted int

	events, pushesDelivered, pushesFailed, pushRetries int64

	logs       map[string]int // the restarted serve's log lines by message
	errorLines []string
	logPaths   [2]string
}

// tally compares wxgate's audit with what WeChat received. A receipt is
// matched to a message by msgid, and a receipt whose msgid no message names
// by user and template: each user has exactly one message.
func (r *result) tally(msgs []message, got []sim.Message, stats sim.AppStats) {
	r.statuses = statusCounts(msgs)
	r.accepted = len(got)
	r.answers = stats.Sends
	r.events, r.pushesDelivered, r.pushesFailed = stats.Events, stats.PushesSucceeded, stats.PushesFailed
	r.pushRetries = stats.PushAttempts - stats.Pushes
	if int64(len(got)) != stats.Sends[0] {
		r.contradictions = append(r.contradictions, fmt.Sprintf("WeChat counted %d accepted sends but lists %d", stats.Sends[0], len(got)))
	}

	byMsgID := map[string]*message{}
	byUser := map[string]*message{}
	for i := range msgs {
		m := &msgs[i]
		if m.WeChatMsgID != "" {
			byMsgID[m.WeChatMsgID] = m
		}
		key := m.ToUser + "/" + m.TemplateID
		if other := byUser[key]; other != nil {
			r.contradictions = append(r.contradictions, fmt.Sprintf("messages %s and %s are both for %s", other.ID, m.ID, key))
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
			r.contradictions = append(r.contradictions, fmt.Sprintf("WeChat accepted msgid %s for %s, which no message in the audit claims", g.MsgID, g.ToUser))
			continue
		}
		received[m.ID] = append(received[m.ID], g)
	}

	r.copies = map[int]int{}
	for i := range msgs {
		m := &msgs[i]
		copies := received[m.ID]
		k := len(copies)
		r.copies[k]++
		if k > 1 {
			r.twice++
		}
		switch m.Status {
		case processor.StatusRejected, processor.StatusInvalid, processor.StatusDead:
			if k > 0 {
				r.contradictions = append(r.contradictions, fmt.Sprintf("message %s (%s) is %s (%q) but WeChat accepted it as msgid %s", m.ID, m.ToUser, m.Status, m.Reason, copies[0].MsgID))
			}
		case processor.StatusSent, processor.StatusDelivered, processor.StatusFailed:
			if k == 0 {
				r.contradictions = append(r.contradictions, fmt.Sprintf("message %s (%s) is %s but WeChat never accepted it", m.ID, m.ToUser, m.Status))
			}
		}
		if m.WeChatMsgID != "" && k > 0 && !slices.ContainsFunc(copies, func(g sim.Message) bool { return g.MsgID == m.WeChatMsgID }) {
			r.contradictions = append(r.contradictions, fmt.Sprintf("message %s (%s) names msgid %s but WeChat accepted it as %s", m.ID, m.ToUser, m.WeChatMsgID, copies[0].MsgID))
		}
		if m.wentThrough(processor.StatusUnknown) {
			r.wentUnknown++
			if m.Status == processor.StatusDelivered || m.Status == processor.StatusFailed {
				r.settledUnknown++
			}
		}
		if m.Status == processor.StatusUnknown {
			r.leftUnknown++
			if k > 0 {
				r.leftUnknownAccepted++
			}
		}
	}
}

// statusOrder is the order statuses are listed in.
var statusOrder = []string{
	processor.StatusDelivered, processor.StatusFailed, processor.StatusSent, processor.StatusUnknown,
	processor.StatusRejected, processor.StatusInvalid, processor.StatusDead, processor.StatusQueued, processor.StatusSending,
}

func formatStatuses(counts map[string]int) string {
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

func formatAnswers(answers map[int]int64) string {
	var parts []string
	for _, code := range slices.Sorted(maps.Keys(answers)) {
		parts = append(parts, fmt.Sprintf("%d×%d", answers[code], code))
	}
	return strings.Join(parts, ", ")
}

// print writes the run's findings.
func (r *result) print(out io.Writer) {
	fmt.Fprintf(out, "kill: WeChat had accepted %d of %d sends and was working on %d; %d send requests were made again after the restart\n",
		r.acceptedAtKill, r.n, r.inFlightAtKill, r.requestsRetried)
	fmt.Fprintf(out, "restart: ready after %v, %s\n", r.ready.Round(time.Millisecond), r.recoveredText())
	fmt.Fprintf(out, "wxgate's audit: %s\n", formatStatuses(r.statuses))
	fmt.Fprintf(out, "WeChat: accepted %d sends; answers by errcode: %s\n", r.accepted, formatAnswers(r.answers))
	fmt.Fprintf(out, "messages by copies WeChat received: ")
	for i, k := range slices.Sorted(maps.Keys(r.copies)) {
		if i > 0 {
			fmt.Fprint(out, ", ")
		}
		fmt.Fprintf(out, "%d×%d", r.copies[k], k)
	}
	fmt.Fprintln(out)
	fmt.Fprintf(out, "received twice by WeChat: %d (must be 0)\n", r.twice)
	fmt.Fprintf(out, "audits that contradict WeChat: %d (must be 0)\n", len(r.contradictions))
	for _, c := range r.contradictions {
		fmt.Fprintf(out, "  - %s\n", c)
	}
	fmt.Fprintf(out, "unknown: %d went through it, %d settled by their sent event, %d still unknown (%d of them accepted by WeChat)\n",
		r.wentUnknown, r.settledUnknown, r.leftUnknown, r.leftUnknownAccepted)
	fmt.Fprintf(out, "pushes: %d events, %d delivered, %d given up, %d retries\n", r.events, r.pushesDelivered, r.pushesFailed, r.pushRetries)
	fmt.Fprintf(out, "restarted serve's log: %d %q, %d %q, %d %q, %d %q, %d at ERROR\n",
		r.logs[logUnknown], logUnknown, r.logs[logKept], logKept, r.logs[logSettled], logSettled,
		r.logs[logDeadLetter], logDeadLetter, r.logs["ERROR"])
	for _, l := range r.errorLines {
		fmt.Fprintf(out, "  %s\n", l)
	}
	fmt.Fprintf(out, "logs: %s, %s\n", r.logPaths[0], r.logPaths[1])
}

// printTable writes one Markdown table line per run.
func printTable(out io.Writer, o flags, results []*result) {
	fmt.Fprintf(out, "%d sends per run, WeChat latency %v\n\n", o.n, o.latency)
	fmt.Fprintln(out, "| run | kill at | WeChat at the kill: accepted / in flight | wxgate's audit | WeChat accepted | 43101 | received twice | contradictions | unknown: settled / left | ready | recovered |")
	fmt.Fprintln(out, "|---|---|---|---|---|---|---|---|---|---|---|")
	for i, r := range results {
		fmt.Fprintf(out, "| %d | %.0f%% | %d / %d | %s | %d | %d | %d | %d | %d / %d | %.1fs | %s |\n",
			i+1, 100*r.killAt, r.acceptedAtKill, r.inFlightAtKill, formatStatuses(r.statuses), r.accepted, r.answers[43101],
			r.twice, len(r.contradictions), r.settledUnknown, r.leftUnknown, r.ready.Seconds(), r.recoveredCell())
	}
}

func (r *result) recoveredText() string {
	if r.notRecovered != "" {
		return "NOT RECOVERED: " + r.notRecovered
	}
	return fmt.Sprintf("recovered after %v", r.recovered.Round(time.Millisecond))
}

func (r *result) recoveredCell() string {
	if r.notRecovered != "" {
		return "not recovered"
	}
	return fmt.Sprintf("%.1fs", r.recovered.Seconds())
}
