package host

import (
	"sync"
	"sync/atomic"
	"time"
)

// Memory the host has used before is cheap; fresh memory is not: the kernel faults it in page
// by page, which costs more than reading a batch off the socket (several milliseconds per MiB
// in virtual machines). A host that allocated a new buffer for every batch it receives from
// a source would fault in the whole stream, because the garbage collector lets the heap grow
// to twice what is live and the runtime returns what it frees to the kernel. bufPool keeps
// the memory of received batches for the next ones instead.

const (
	// pooledMin is the smallest message whose memory is pooled.
	pooledMin = 64 << 10
	// poolMaxFree bounds the memory a pool keeps unused: about two of a fast source's
	// batches, what is let go between two credits. What the agent holds at once is bounded
	// by max_inflight_bytes and the replay hold (4 MiB and 2 MiB by default); more free
	// buffers would only wait for the idle timeout, counted in the agent's memory.
	poolMaxFree = 2 << 20
	// poolIdle is how long an unused buffer is kept.
	poolIdle = 30 * time.Second
)

// bufPool is a free list of buffers, most recently released first (warm memory first).
type bufPool struct {
	mu        sync.Mutex
	free      []*pooledBuf
	freeBytes int
	now       func() time.Time
}

func newBufPool() *bufPool { return &bufPool{now: time.Now} }

// pooledBuf is a buffer shared by the batches that point into it. It goes back to its pool
// when the last of them releases it.
type pooledBuf struct {
	b     []byte
	refs  atomic.Int32
	pool  *bufPool
	freed time.Time
}

// bufSize is the capacity of a new buffer for a message of n bytes: room for a slightly
// larger batch later, in 64 KiB steps.
func bufSize(n int) int { return (n + n/8 + pooledMin - 1) / pooledMin * pooledMin }

// fits reports whether a free buffer of capacity c may hold a message of n bytes: large
// enough, and at most twice the buffer a new one would be. A small batch never pins a large
// buffer: the bounds on the agent's memory (max_inflight_bytes, the replay hold) count a
// batch's bytes, so its buffer must be about its size, not the size of the largest batch
// seen.
func fits(c, n int) bool { return c >= n && c <= 2*bufSize(n) }

// get returns a buffer of length n with one reference: a free one that fits, most recently
// released first, else a new one.
func (p *bufPool) get(n int) *pooledBuf {
	p.mu.Lock()
	p.trimLocked()
	for i := len(p.free) - 1; i >= 0; i-- {
		pb := p.free[i]
		if !fits(cap(pb.b), n) {
			continue
		}
		copy(p.free[i:], p.free[i+1:])
		p.free[len(p.free)-1] = nil
		p.free = p.free[:len(p.free)-1]
		p.freeBytes -= cap(pb.b)
		p.mu.Unlock()
		pb.b = pb.b[:n]
		pb.refs.Store(1)
		return pb
	}
	p.mu.Unlock()
	pb := &pooledBuf{b: make([]byte, n, bufSize(n)), pool: p}
	pb.refs.Store(1)
	return pb
}

func (pb *pooledBuf) retain() { pb.refs.Add(1) }

func (pb *pooledBuf) release() {
	switch n := pb.refs.Add(-1); {
	case n == 0:
		pb.pool.put(pb)
	case n < 0:
		panic("host: batch buffer released more often than retained")
	}
}

func (p *bufPool) put(pb *pooledBuf) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.trimLocked()
	if p.freeBytes+cap(pb.b) > poolMaxFree {
		return // left to the garbage collector
	}
	pb.freed = p.now()
	p.free = append(p.free, pb)
	p.freeBytes += cap(pb.b)
}

// trimLocked drops the buffers unused for poolIdle, oldest first.
func (p *bufPool) trimLocked() {
	if len(p.free) == 0 || p.now().Sub(p.free[0].freed) < poolIdle {
		return
	}
	cut := p.now().Add(-poolIdle)
	i := 0
	for i < len(p.free) && p.free[i].freed.Before(cut) {
		p.freeBytes -= cap(p.free[i].b)
		p.free[i] = nil
		i++
	}
	p.free = append(p.free[:0], p.free[i:]...)
}

// releaser hands a buffer reference to gRPC, which releases it once it has written the
// bytes (mem.BufferPool's Put).
type releaser struct{ pb *pooledBuf }

func (r releaser) Get(int) *[]byte { panic("host: releaser hands out no buffers") }
func (r releaser) Put(*[]byte)     { r.pb.release() }
