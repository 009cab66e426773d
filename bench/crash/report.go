package main

import (
	"fmt"
	"io"
	"time"

	"github.com/wxgate/wxgate/bench/internal/audit"
	"github.com/wxgate/wxgate/internal/sim"
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
	answers  map[int]int64  // WeChat's answers to sends by errcode
	audit.Comparison

	events, pushesDelivered, pushesFailed, pushRetries int64

	logs       map[string]int // the restarted serve's log lines by message
	errorLines []string
	logPaths   [2]string
}

// tally compares wxgate's audit with what WeChat received (see audit.Compare).
func (r *result) tally(msgs []audit.Message, got []sim.Message, stats sim.AppStats) {
	r.statuses = audit.StatusCounts(msgs)
	r.answers = stats.Sends
	r.events, r.pushesDelivered, r.pushesFailed = stats.Events, stats.PushesSucceeded, stats.PushesFailed
	r.pushRetries = stats.PushAttempts - stats.Pushes
	r.Comparison = audit.Compare(msgs, got, stats.Sends[0])
}

// print writes the run's findings.
func (r *result) print(out io.Writer) {
	fmt.Fprintf(out, "kill: WeChat had accepted %d of %d sends and was working on %d; %d send requests were made again after the restart\n",
		r.acceptedAtKill, r.n, r.inFlightAtKill, r.requestsRetried)
	fmt.Fprintf(out, "restart: ready after %v, %s\n", r.ready.Round(time.Millisecond), r.recoveredText())
	fmt.Fprintf(out, "wxgate's audit: %s\n", audit.FormatStatuses(r.statuses))
	fmt.Fprintf(out, "WeChat: accepted %d sends; answers by errcode: %s\n", r.Accepted, audit.FormatAnswers(r.answers))
	fmt.Fprintf(out, "messages by copies WeChat received: %s\n", r.FormatCopies())
	fmt.Fprintf(out, "received twice by WeChat: %d (must be 0)\n", r.Twice)
	fmt.Fprintf(out, "audits that contradict WeChat: %d (must be 0)\n", len(r.Contradictions))
	for _, c := range r.Contradictions {
		fmt.Fprintf(out, "  - %s\n", c)
	}
	fmt.Fprintf(out, "unknown: %d went through it, %d settled by their sent event, %d still unknown (%d of them accepted by WeChat)\n",
		r.WentUnknown, r.SettledUnknown, r.LeftUnknown, r.LeftUnknownAccepted)
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
			i+1, 100*r.killAt, r.acceptedAtKill, r.inFlightAtKill, audit.FormatStatuses(r.statuses), r.Accepted, r.answers[43101],
			r.Twice, len(r.Contradictions), r.SettledUnknown, r.LeftUnknown, r.ready.Seconds(), r.recoveredCell())
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
