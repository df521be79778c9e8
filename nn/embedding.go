package nn

import (
	"fmt"

	"mom/gpu"
	"mom/shaders"
)

// EmbeddingArgs are the tensors of a token embedding.
type EmbeddingArgs struct {
	E, Out, DOut, DE *Tensor // E (V, D); Out (T, D); DOut (T, D) and DE (V, D) nil for forward-only
}

// Embedding gathers table rows by token id: out[t] = E[ids[t]]. The
// backward dE[v] += Σ_{t: ids[t]=v} dOut[t] is deterministic and uses no
// atomics: Update builds, on the host, the positions sorted by id with the
// offsets of each distinct id, and one workgroup per distinct id sums its
// rows in position order.
type Embedding struct {
	t, v, d    int
	ids, index *Tensor
	fwd, bwd   *gpu.BindGroup
	fx, fy     int
	bx, by     int
	// host scratch, reused by every Update
	count []uint32 // (V)
	host  []uint32 // (3T+2) the index as uploaded
}

// NewEmbedding checks shapes and builds the dispatches.
func NewEmbedding(dev *gpu.Device, a EmbeddingArgs) (*Embedding, error) {
	if a.E == nil || a.Out == nil {
		return nil, fmt.Errorf("nn: embedding: E and Out are required")
	}
	if len(a.E.Shape) != 2 {
		return nil, fmt.Errorf("nn: embedding: table %s has shape %v, want (V, D)", a.E.Name, a.E.Shape)
	}
	v, d := a.E.Shape[0], a.E.Shape[1]
	if len(a.Out.Shape) != 2 {
		return nil, fmt.Errorf("nn: embedding: output %s has shape %v, want (T, %d)", a.Out.Name, a.Out.Shape, d)
	}
	t := a.Out.Shape[0]
	if err := CheckShape("embedding output", a.Out, t, d); err != nil {
		return nil, err
	}
	back := a.DOut != nil || a.DE != nil
	if back {
		if err := CheckShape("embedding dout", a.DOut, t, d); err != nil {
			return nil, err
		}
		if err := CheckShape("embedding dE", a.DE, v, d); err != nil {
			return nil, err
		}
		if shareBuffer(a.DE, a.DOut) {
			return nil, fmt.Errorf("nn: embedding: DE and DOut share a buffer")
		}
	}
	if shareBuffer(a.E, a.Out) {
		return nil, fmt.Errorf("nn: embedding: Out and E share a buffer")
	}
	e := &Embedding{t: t, v: v, d: d}
	var err error
	fail := func(x error) (*Embedding, error) {
		e.Release()
		return nil, x
	}
	if e.ids, err = NewTensor(dev, a.Out.Name+".ids", t); err != nil {
		return fail(err)
	}
	c := gpu.Constants{"D": float64(d), "T": float64(t)}
	kf, per := shaders.EmbeddingFwd, 1
	if d%4 == 0 {
		kf, per = shaders.EmbeddingFwd4, 4
	}
	if e.fwd, err = Bind(dev, kf, c, e.ids, a.E, a.Out); err != nil {
		return fail(fmt.Errorf("nn: embedding %s %v: %w", a.E.Name, a.E.Shape, err))
	}
	e.fx, e.fy = Grid(dev, CeilDiv(t*d/per, 256))
	if !back {
		return e, nil
	}
	if e.index, err = NewTensor(dev, a.Out.Name+".index", 3*t+2); err != nil {
		return fail(err)
	}
	// zeros: no distinct ids until the first Update
	e.host = make([]uint32, 3*t+2)
	e.count = make([]uint32, v)
	if err := e.index.UploadU32(e.host); err != nil {
		return fail(err)
	}
	wg := 32
	for wg < 256 && wg < CeilDiv(d, per) {
		wg *= 2
	}
	kb := shaders.EmbeddingBwd
	if per == 4 {
		kb = shaders.EmbeddingBwd4
	}
	cb := gpu.Constants{"D": float64(d), "T": float64(t), "WG": float64(wg)}
	if e.bwd, err = Bind(dev, kb, cb, e.index, a.DOut, a.DE); err != nil {
		return fail(fmt.Errorf("nn: embedding backward %s %v: %w", a.E.Name, a.E.Shape, err))
	}
	e.bx, e.by = Grid(dev, t)
	return e, nil
}

// Update uploads a batch of T ids and, with a backward, the inverted index.
// An id >= V is an error naming its position; nothing is uploaded then.
func (e *Embedding) Update(ids []uint32) error {
	if len(ids) != e.t {
		return fmt.Errorf("nn: embedding: %d ids, want T = %d", len(ids), e.t)
	}
	for i, id := range ids {
		if int64(id) >= int64(e.v) {
			return fmt.Errorf("nn: embedding: ids[%d] = %d is out of range for a table of %d rows", i, id, e.v)
		}
	}
	if e.index != nil {
		e.buildIndex(ids)
	}
	if err := e.ids.UploadU32(ids); err != nil {
		return fmt.Errorf("nn: embedding: %w", err)
	}
	if e.index != nil {
		if err := e.index.UploadU32(e.host); err != nil {
			return fmt.Errorf("nn: embedding: %w", err)
		}
	}
	return nil
}

// buildIndex fills e.host by a counting sort of the positions by id, stable
// (positions ascending within an id).
func (e *Embedding) buildIndex(ids []uint32) {
	t := e.t
	offsets := e.host[1 : t+2]
	uniq := e.host[t+2 : 2*t+2]
	perm := e.host[2*t+2 : 3*t+2]
	for _, id := range ids {
		e.count[id]++
	}
	nu, run := 0, uint32(0)
	for v, c := range e.count {
		if c == 0 {
			continue
		}
		uniq[nu] = uint32(v)
		offsets[nu] = run
		e.count[v] = run // from here on: the next free slot of id v
		run += c
		nu++
	}
	offsets[nu] = run
	for pos, id := range ids {
		perm[e.count[id]] = uint32(pos)
		e.count[id]++
	}
	for _, v := range uniq[:nu] {
		e.count[v] = 0
	}
	e.host[0] = uint32(nu)
}

// RecordForward records the gather.
func (e *Embedding) RecordForward(r *gpu.Recorder) { r.Dispatch(e.fwd, e.fx, e.fy, 1) }

// RecordBackward records dE += the scattered dOut rows; nothing for a
// forward-only embedding. The dispatch covers T slots whatever the batch, so
// a step can be recorded before its Update.
func (e *Embedding) RecordBackward(r *gpu.Recorder) {
	if e.bwd != nil {
		r.Dispatch(e.bwd, e.bx, e.by, 1)
	}
}

// Release frees the op's own buffers.
func (e *Embedding) Release() {
	e.fwd.Release()
	e.bwd.Release()
	e.fwd, e.bwd = nil, nil
	releaseTensors([]*Tensor{e.ids, e.index})
	e.ids, e.index = nil, nil
}

func init() {
	RegisterBench(func(size BenchSize) []BenchCase {
		t, v, d := 4096, 8192, 512
		if size == BenchLarge {
			t, v, d = 16384, 65536, 2048
		}
		setup := func(dev *gpu.Device) (*Embedding, []*Tensor, error) {
			var ts []*Tensor
			for _, s := range []struct {
				name string
				r    int
			}{{"E", v}, {"out", t}, {"dout", t}, {"dE", v}} {
				x, err := NewTensor(dev, s.name, s.r, d)
				if err != nil {
					releaseTensors(ts)
					return nil, nil, err
				}
				ts = append(ts, x)
			}
			e, err := NewEmbedding(dev, EmbeddingArgs{E: ts[0], Out: ts[1], DOut: ts[2], DE: ts[3]})
			if err != nil {
				releaseTensors(ts)
				return nil, nil, err
			}
			// Zipf-like ids: a few very frequent tokens, a long tail.
			ids := make([]uint32, t)
			x := uint64(1)
			for i := range ids {
				x = x*6364136223846793005 + 1442695040888963407
				u := float64(x>>11) / (1 << 53)
				ids[i] = uint32(float64(v) * u * u * u)
			}
			if err := e.Update(ids); err != nil {
				e.Release()
				releaseTensors(ts)
				return nil, nil, err
			}
			return e, ts, nil
		}
		return []BenchCase{{
			Name: fmt.Sprintf("embedding_fwd/t=%d/v=%d/d=%d", t, v, d),
			Setup: func(dev *gpu.Device) (*BenchRun, error) {
				e, ts, err := setup(dev)
				if err != nil {
					return nil, err
				}
				return &BenchRun{Record: e.RecordForward, Bytes: float64(8*t*d + 4*t),
					Cleanup: func() { e.Release(); releaseTensors(ts) }}, nil
			},
		}, {
			Name: fmt.Sprintf("embedding_bwd/t=%d/v=%d/d=%d", t, v, d),
			Setup: func(dev *gpu.Device) (*BenchRun, error) {
				e, ts, err := setup(dev)
				if err != nil {
					return nil, err
				}
				nu := 0
				ids, _ := e.index.DownloadU32()
				if len(ids) > 0 {
					nu = int(ids[0])
				}
				// read every dout row, read and write each used dE row
				return &BenchRun{Record: e.RecordBackward, FLOPs: float64(t * d), Bytes: float64(4*t*d + 8*nu*d + 4*(3*t+2)),
					Cleanup: func() { e.Release(); releaseTensors(ts) }}, nil
			},
		}}
	})
}
