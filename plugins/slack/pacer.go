package slack

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/tda-dev/tda/sdk"
)

// pacer keeps one webhook within Slack's rate limit: at most one message per interval, and
// nothing at all before the end of a Retry-After that Slack asked for (Slack disables apps
// that keep sending while limited).
//
// Slack counts messages when they arrive, which the sender cannot see: a message may take
// long to arrive (a new connection, a busy machine) and the next one little. The interval is
// therefore kept from the end of the previous message's request, when Slack's answer is in
// hand and the message has certainly arrived, to the start of the next request, with one
// request in flight per webhook. Invariant: two messages to one webhook arrive at least
// interval apart, whatever the delays in between.
type pacer struct {
	// turn holds a token while a message to the webhook is being paced or sent.
	turn chan struct{}

	mu        sync.Mutex
	interval  time.Duration
	notBefore time.Time // the end of Slack's last Retry-After
	lastDone  time.Time // when the previous request ended
}

// pacers hands out one pacer per webhook URL, so every sink instance of a plugin process that
// posts to the same webhook shares its limit.
type pacers struct {
	mu sync.Mutex
	m  map[string]*pacer
}

func newPacers() *pacers { return &pacers{m: map[string]*pacer{}} }

// get returns the webhook's pacer; sinks that ask for different intervals share the longest.
func (p *pacers) get(webhook string, interval time.Duration) *pacer {
	p.mu.Lock()
	defer p.mu.Unlock()
	pc, ok := p.m[webhook]
	if !ok {
		pc = &pacer{turn: make(chan struct{}, 1), interval: interval}
		p.m[webhook] = pc
		return pc
	}
	pc.mu.Lock()
	if interval > pc.interval {
		pc.interval = interval
	}
	pc.mu.Unlock()
	return pc
}

// acquire blocks until a message may be sent and returns the function to call once its
// request has ended (answered or failed), after any pause Slack asked for is recorded. When
// the wait would outlast ctx, or Slack asked for a pause, it returns an sdk.Retry error with
// the time left instead of sending late.
func (p *pacer) acquire(ctx context.Context, now func() time.Time) (done func(), err error) {
	select {
	case p.turn <- struct{}{}:
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, sdk.Retry(errors.New("another message to this webhook is being sent"), p.currentInterval())
		}
		return nil, ctx.Err()
	}
	held := true
	defer func() {
		if held {
			<-p.turn
		}
	}()
	p.mu.Lock()
	nb, next := p.notBefore, p.lastDone.Add(p.interval)
	interval := p.interval
	p.mu.Unlock()
	t := now()
	if left := nb.Sub(t); left > 0 {
		return nil, sdk.Retry(fmt.Errorf("Slack rate-limited this webhook; next message allowed in %s",
			left.Round(time.Millisecond)), left)
	}
	if delay := next.Sub(t); delay > 0 {
		if dl, ok := ctx.Deadline(); ok && dl.Before(t.Add(delay)) {
			return nil, sdk.Retry(fmt.Errorf("pacing messages to one per %s", sdk.FormatDuration(interval)), delay)
		}
		timer := time.NewTimer(delay)
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	held = false
	return func() {
		p.mu.Lock()
		p.lastDone = now()
		p.mu.Unlock()
		<-p.turn
	}, nil
}

func (p *pacer) currentInterval() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.interval
}

// pause records a Retry-After from Slack.
func (p *pacer) pause(until time.Time) {
	p.mu.Lock()
	if until.After(p.notBefore) {
		p.notBefore = until
	}
	p.mu.Unlock()
}
