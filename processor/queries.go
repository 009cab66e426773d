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
