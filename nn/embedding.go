package nn

import (
	"fmt"

	"mom/gpu"
	"mom/shaders"
)

// EmbeddingArgs are the tensors of a token embedding.
type EmbeddingArgs struct {
	E, Out, DOut, DE *Tensor // E (V, D); Out (T, D); DOut (T, D) and DE (V, D) nil for forward-only; Out nil for backward-only
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
	back := a.DOut != nil || a.DE != nil
	if a.E == nil || (a.Out == nil && a.DOut == nil) {
		return nil, fmt.Errorf("nn: embedding: E and Out (or DOut and DE) are required")
	}
	if len(a.E.Shape) != 2 {
		return nil, fmt.Errorf("nn: embedding: table %s has shape %v, want (V, D)", a.E.Name, a.E.Shape)
	}
	v, d := a.E.Shape[0], a.E.Shape[1]
	rows := a.Out
	if rows == nil {
		rows = a.DOut // backward-only: T from the output gradient
	}
	if len(rows.Shape) != 2 {
		return nil, fmt.Errorf("nn: embedding: output %s has shape %v, want (T, %d)", rows.Name, rows.Shape, d)
	}
	t := rows.Shape[0]
	if a.Out != nil {
		if err := CheckShape("embedding output", a.Out, t, d); err != nil {
			return nil, err
		}
	}
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
	if a.Out != nil && shareBuffer(a.E, a.Out) {
		return nil, fmt.Errorf("nn: embedding: Out and E share a buffer")
	}
	e := &Embedding{t: t, v: v, d: d}
	var err error
	fail := func(x error) (*Embedding, error) {
		e.Release()
		return nil, x
	}
	if e.ids, err = NewTensor(dev, rows.Name+".ids", t); err != nil {
		return fail(err)
	}
	c := gpu.Constants{"D": float64(d), "T": float64(t)}
	kf, per := shaders.EmbeddingFwd, 1
	if d%4 == 0 {
		kf, per = shaders.EmbeddingFwd4, 4
	}
	if a.Out != nil {
		if e.fwd, err = Bind(dev, kf, c, e.ids, a.E, a.Out); err != nil {
			return fail(fmt.Errorf("nn: embedding %s %v: %w", a.E.Name, a.E.Shape, err))
		}
		e.fx, e.fy = Grid(dev, CeilDiv(t*d/per, 256))
	}
	if !back {
		return e, nil
	}
	if e.index, err = NewTensor(dev, rows.Name+".index", 3*t+2); err != nil {
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

// RecordForward records the gather; nothing for a backward-only embedding.
func (e *Embedding) RecordForward(r *gpu.Recorder) {
	if e.fwd != nil {
		r.Dispatch(e.fwd, e.fx, e.fy, 1)
	}
}

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
