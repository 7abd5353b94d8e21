package slack

import (
	"context"
	"fmt"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/tda-dev/tda/sdk"
)

// pacer keeps one webhook within Slack's rate limit: at most one message per interval, and
// nothing at all before the end of a Retry-After that Slack asked for (Slack disables apps
// that keep sending while limited).
type pacer struct {
	limiter *rate.Limiter

	mu        sync.Mutex
	notBefore time.Time
}

// pacers hands out one pacer per webhook URL, so every sink instance of a plugin process that
// posts to the same webhook shares its limit.
type pacers struct {
	mu sync.Mutex
	m  map[string]*pacer
}

func newPacers() *pacers { return &pacers{m: map[string]*pacer{}} }

func (p *pacers) get(webhook string, interval time.Duration) *pacer {
	p.mu.Lock()
	defer p.mu.Unlock()
	pc, ok := p.m[webhook]
	if !ok {
		pc = &pacer{limiter: rate.NewLimiter(rate.Every(interval), 1)}
		p.m[webhook] = pc
	} else if lim := rate.Every(interval); lim < pc.limiter.Limit() {
		pc.limiter.SetLimit(lim)
	}
	return pc
}

// wait blocks until a message may be sent. When the wait would outlast ctx, or Slack asked
// for a pause, it returns an sdk.Retry error with the time left instead of sending late.
func (p *pacer) wait(ctx context.Context, now time.Time) error {
	p.mu.Lock()
	nb := p.notBefore
	p.mu.Unlock()
	if left := nb.Sub(now); left > 0 {
		return sdk.Retry(fmt.Errorf("Slack rate-limited this webhook; next message allowed in %s",
			left.Round(time.Millisecond)), left)
	}
	r := p.limiter.ReserveN(now, 1)
	if !r.OK() {
		return fmt.Errorf("rate limiter refused the message")
	}
	delay := r.DelayFrom(now)
	if delay == 0 {
		return nil
	}
	if dl, ok := ctx.Deadline(); ok && dl.Before(now.Add(delay)) {
		r.CancelAt(now)
		return sdk.Retry(fmt.Errorf("pacing messages to one per %s", sdk.FormatDuration(time.Duration(float64(time.Second)/float64(p.limiter.Limit())))), delay)
	}
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		r.Cancel()
		return ctx.Err()
	}
}

// pause records a Retry-After from Slack.
func (p *pacer) pause(until time.Time) {
	p.mu.Lock()
	if until.After(p.notBefore) {
		p.notBefore = until
	}
	p.mu.Unlock()
}
