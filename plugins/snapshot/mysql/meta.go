package mysql

import (
	"context"

	"github.com/tda-dev/tda/plugins/snapshot/provider"
)

// The dumps, their metadata and the writers' locks are the dump directory's
// (internal/dumpdir, shared with the other providers that dump into a directory).

// Get implements provider.Provider.
func (p *Provider) Get(ctx context.Context, id string) (provider.Snapshot, error) {
	return p.dir.Get(ctx, id)
}

// List implements provider.Provider: every metadata file in the dump directory.
func (p *Provider) List(ctx context.Context) ([]provider.Snapshot, error) { return p.dir.List(ctx) }

// Delete implements provider.Provider: removes the dump, then its metadata.
func (p *Provider) Delete(ctx context.Context, id string) error { return p.dir.Delete(ctx, id) }

// Verify checks a snapshot's dump against its recorded checksum.
func (p *Provider) Verify(ctx context.Context, id string) error { return p.dir.Verify(ctx, id) }

// Wait implements provider.Provider: a dump this process writes is waited for, one another
// process writes is polled.
func (p *Provider) Wait(ctx context.Context, id string) (provider.Snapshot, error) {
	p.mu.Lock()
	var done <-chan struct{}
	if j := p.jobs[id]; j != nil {
		done = j
	}
	p.mu.Unlock()
	return p.dir.Wait(ctx, id, done)
}
