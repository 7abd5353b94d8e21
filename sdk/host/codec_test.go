package host

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"

	"github.com/tda-dev/tda/sdk"
	"github.com/tda-dev/tda/sdk/protocol/tdav1"
)

func testEvents(n int) []sdk.Event {
	t0 := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	out := make([]sdk.Event, n)
	for i := range out {
		out[i] = sdk.Event{Time: t0.Add(time.Duration(i) * time.Millisecond), Kind: sdk.KindLog,
			Source: "file.in", Origin: "/var/log/app.log", Line: []byte(fmt.Sprintf("line %06d of the batch", i))}
	}
	if n > 1 {
		out[1].Fields = map[string]string{"event": "login_failed"}
	}
	return out
}

// received runs encoded bytes through the codec as gRPC would: split into frames.
func received(t *testing.T, v any, b []byte) {
	t.Helper()
	var frames mem.BufferSlice
	for len(b) > 0 {
		n := min(len(b), 16<<10)
		frames = append(frames, mem.SliceBuffer(b[:n]))
		b = b[n:]
	}
	c := rawCodec{proto: encoding.GetCodecV2("proto")}
	if err := c.Unmarshal(frames, v); err != nil {
		t.Fatal(err)
	}
}

func sent(t *testing.T, v any) []byte {
	t.Helper()
	c := rawCodec{proto: encoding.GetCodecV2("proto")}
	data, err := c.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	defer data.Free()
	return data.Materialize()
}

// A source's batch is kept as received and forwarded to a processor as it is: the processor
// reads the protocol's ProcessRequest with the same events, watermark and final flag.
func TestSourceBatchForwardedAsReceived(t *testing.T) {
	for _, n := range []int{0, 3, 5000} { // 5000 events are pooled
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			in := testEvents(n)
			msg, err := proto.Marshal(&tdav1.SourceOut{Msg: &tdav1.SourceOut_Batch{Batch: &tdav1.SourceBatch{
				Batch:       sdk.EncodeBatch(in),
				Checkpoints: []*tdav1.Checkpoint{{Key: "k", Value: []byte("v")}, {Key: "old", Delete: true}}}}})
			if err != nil {
				t.Fatal(err)
			}
			pool := newBufPool()
			out := sourceOut{bufs: pool}
			received(t, &out, msg)
			if out.status != nil || len(out.checkpoints) != 2 || out.checkpoints[1].Key != "old" || !out.checkpoints[1].Delete {
				t.Fatalf("status %v, checkpoints %v", out.status, out.checkpoints)
			}
			if out.batch.Len() != n {
				t.Fatalf("%d events, want %d", out.batch.Len(), n)
			}
			wm := time.Date(2026, 11, 29, 11, 0, 0, 0, time.UTC)
			var req tdav1.ProcessRequest
			if err := proto.Unmarshal(sent(t, &processRequest{batch: out.batch, watermarkNs: wm.UnixNano(), final: true}), &req); err != nil {
				t.Fatal(err)
			}
			if req.WatermarkNs != wm.UnixNano() || !req.Final {
				t.Fatalf("watermark %d final %v", req.WatermarkNs, req.Final)
			}
			if got := sdk.DecodeBatch(req.Batch); len(got) != n || (n > 0 && !reflect.DeepEqual(got, in)) {
				t.Fatalf("forwarded events differ:\n got %+v\nwant %+v", got, in)
			}
			if got := out.batch.Events(); len(got) != n || (n > 0 && !reflect.DeepEqual(got, in)) {
				t.Fatal("decoded events differ")
			}
			out.batch.Release()
			if wantPooled := n == 5000; (len(pool.free) == 1) != wantPooled {
				t.Fatalf("%d buffers back in the pool, pooled %v", len(pool.free), wantPooled)
			}
		})
	}
}

func TestSourceStatusAndWriteRequest(t *testing.T) {
	msg, _ := proto.Marshal(&tdav1.SourceOut{Msg: &tdav1.SourceOut_Status{Status: &tdav1.Status{Reason: "disk gone"}}})
	out := sourceOut{bufs: newBufPool()}
	received(t, &out, msg)
	if out.batch != nil || out.status == nil || out.status.Reason != "disk gone" || out.status.Healthy {
		t.Fatalf("%+v", out)
	}
	in := testEvents(4)
	var req tdav1.WriteRequest
	if err := proto.Unmarshal(sent(t, &writeRequest{batch: NewBatch(in), deliveryID: 77}), &req); err != nil {
		t.Fatal(err)
	}
	if req.DeliveryId != 77 || !reflect.DeepEqual(sdk.DecodeBatch(req.Batch), in) {
		t.Fatalf("write request %v", &req)
	}
	resp, _ := proto.Marshal(&tdav1.ProcessResponse{Batch: sdk.EncodeBatch(in[:2])})
	var pr processResponse
	received(t, &pr, resp)
	if !reflect.DeepEqual(pr.batch.Events(), in[:2]) {
		t.Fatalf("response %+v", pr.batch.Events())
	}
}

// A pooled batch's memory goes back to the pool only after its last holder released it,
// gRPC's reference included, and what was decoded from it keeps its own lines.
func TestPooledBatchLifetime(t *testing.T) {
	in := testEvents(5000)
	msg, _ := proto.Marshal(&tdav1.SourceOut{Msg: &tdav1.SourceOut_Batch{Batch: &tdav1.SourceBatch{Batch: sdk.EncodeBatch(in)}}})
	pool := newBufPool()
	out := sourceOut{bufs: pool}
	received(t, &out, msg)
	b := out.batch
	events := b.Events()
	shared := b.Share()
	b.Retain()
	data, err := rawCodec{proto: encoding.GetCodecV2("proto")}.Marshal(&processRequest{batch: b})
	if err != nil {
		t.Fatal(err)
	}
	b.Release()
	b.Release()
	shared.Release()
	if len(pool.free) != 0 {
		t.Fatal("the memory went back to the pool while gRPC still held it")
	}
	data.Free()
	if len(pool.free) != 1 {
		t.Fatalf("%d buffers in the pool after the last release", len(pool.free))
	}
	clear(pool.free[0].b)
	if !reflect.DeepEqual(events, in) {
		t.Fatal("decoded events changed with the pooled memory")
	}
	defer func() {
		if recover() == nil {
			t.Fatal("using a released batch did not panic")
		}
	}()
	b.Raw()
}

func TestPoolReusesWarmMemory(t *testing.T) {
	now := time.Unix(0, 0)
	p := newBufPool()
	p.now = func() time.Time { return now }
	a := p.get(100 << 10)
	b := p.get(200 << 10)
	a.release()
	b.release()
	if c := p.get(90 << 10); c != b {
		t.Fatal("the most recently released buffer that fits is not reused first")
	}
	if c := p.get(150 << 10); c == a {
		t.Fatal("a buffer too small was reused")
	}
	now = now.Add(poolIdle + time.Second)
	p.get(1)
	if len(p.free) != 0 || p.freeBytes != 0 {
		t.Fatalf("idle buffers kept: %d (%d bytes)", len(p.free), p.freeBytes)
	}
}

// A full pool keeps no more unused memory than poolMaxFree, whatever is released into it:
// the buffers past the bound, and a buffer larger than the bound, are left to the garbage
// collector.
func TestPoolWhenFull(t *testing.T) {
	for _, size := range []int{64 << 10, 1 << 20, poolMaxFree, poolMaxFree + 1} {
		p := newBufPool()
		var bufs []*pooledBuf
		for range 2*poolMaxFree/size + 2 {
			bufs = append(bufs, p.get(size))
		}
		for i, b := range bufs {
			b.release()
			if p.freeBytes > poolMaxFree {
				t.Fatalf("size %d: %d bytes free after %d releases, bound %d", size, p.freeBytes, i+1, poolMaxFree)
			}
		}
		sum := 0
		for _, b := range p.free {
			sum += cap(b.b)
		}
		if sum != p.freeBytes {
			t.Fatalf("size %d: free list holds %d bytes, counted %d", size, sum, p.freeBytes)
		}
		if cap(bufs[0].b) > poolMaxFree {
			if len(p.free) != 0 {
				t.Fatalf("a buffer larger than the bound (%d bytes) was kept", cap(bufs[0].b))
			}
			continue
		}
		if len(p.free) == 0 || p.free[0] != bufs[0] {
			t.Fatalf("size %d: the pool kept nothing although the first buffer fits", size)
		}
	}
}

// A small batch does not take a large free buffer: what it pins stays about its size, so the
// bounds that count batch bytes bound the memory too.
func TestPoolSizesBuffersToTheBatch(t *testing.T) {
	for _, tt := range []struct {
		name      string
		free, get int
		reused    bool
	}{
		{"same size", 1 << 20, 1 << 20, true},
		{"half the size", 1 << 20, 1<<20/2 + 1, true},
		{"a small batch and a large buffer", 1 << 20, 16 << 10, false},
		{"a tiny batch and a buffer of one pooling step", pooledMin, 1, true},
		{"a buffer too small", 64 << 10, 1 << 20, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := newBufPool()
			b := p.get(tt.free)
			b.release()
			got := p.get(tt.get)
			if (got == b) != tt.reused {
				t.Fatalf("a %d-byte buffer (capacity %d) for a %d-byte batch: reused %v, want %v",
					tt.free, cap(b.b), tt.get, got == b, tt.reused)
			}
			if cap(got.b) < tt.get || cap(got.b) > 2*bufSize(tt.get) {
				t.Fatalf("a %d-byte batch got a buffer of %d bytes", tt.get, cap(got.b))
			}
		})
	}
}
