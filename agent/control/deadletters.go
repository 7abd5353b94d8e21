package control

import (
	"context"
	"encoding/json"
	"sync"

	"github.com/tda-dev/tda/agent/deadletter"
	"github.com/tda-dev/tda/agent/ops"
)

// LateLetters is the runtime's dead-letter store for the operations service, which is built
// before the runtime (the runtime's Observe option needs the service first). Until Bind, and
// when bound to nil, every call says the store is not there yet.
type LateLetters struct {
	mu sync.RWMutex
	l  deadletter.Letters
}

var _ deadletter.Letters = (*LateLetters)(nil)

// Bind sets the store (the runtime's DeadLetters).
func (b *LateLetters) Bind(l deadletter.Letters) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.l = l
}

func (b *LateLetters) get() (deadletter.Letters, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.l == nil {
		return nil, &ops.Error{Kind: ops.KindUnavailable,
			Message: "the running agent has no dead-letter store open: see its log (tda run)"}
	}
	return b.l, nil
}

// List implements deadletter.Letters.
func (b *LateLetters) List(ctx context.Context) ([]deadletter.Letter, error) {
	l, err := b.get()
	if err != nil {
		return nil, err
	}
	return l.List(ctx)
}

// Show implements deadletter.Letters.
func (b *LateLetters) Show(ctx context.Context, id uint64) (deadletter.Letter, []json.RawMessage, error) {
	l, err := b.get()
	if err != nil {
		return deadletter.Letter{}, nil, err
	}
	return l.Show(ctx, id)
}

// Replay implements deadletter.Letters.
func (b *LateLetters) Replay(ctx context.Context, id uint64) error {
	l, err := b.get()
	if err != nil {
		return err
	}
	return l.Replay(ctx, id)
}

// Drop implements deadletter.Letters.
func (b *LateLetters) Drop(ctx context.Context, id uint64) error {
	l, err := b.get()
	if err != nil {
		return err
	}
	return l.Drop(ctx, id)
}
