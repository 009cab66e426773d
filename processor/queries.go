package processor

import "context"

// Messages lists an app's messages, newest first.
func (p *Processor) Messages(ctx context.Context, q MessageQuery) ([]Message, string, error) {
	return p.store.Messages(ctx, q)
}

// Events lists an app's inbound events, newest first.
func (p *Processor) Events(ctx context.Context, q EventQuery) ([]EventRecord, string, error) {
	return p.store.Events(ctx, q)
}

// DeadLetters lists dead letters, newest first.
func (p *Processor) DeadLetters(ctx context.Context, q DeadLetterQuery) ([]DeadLetter, string, error) {
	return p.store.DeadLetters(ctx, q)
}

// Ready checks that the store answers.
func (p *Processor) Ready(ctx context.Context) error { return p.store.Ping(ctx) }

// Counts are an app's figures over a time window, for the console's overview.
type Counts struct {
	// Messages counts the messages created in the window, by status.
	Messages map[string]int
	// Events counts the callbacks received in the window by event, and the
	// items of popup and change events by answer ("subscribe_msg_popup_event
	// accept"); a sent event's outcome shows in its message's status.
	Events map[string]int
	// DeadLetters counts the app's dead letters never redriven, of any time.
	DeadLetters int
}

// DeadLetter reads one dead letter.
func (p *Processor) DeadLetter(ctx context.Context, id string) (*DeadLetter, error) {
	return p.store.DeadLetter(ctx, id)
}
