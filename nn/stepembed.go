package nn

import (
	"fmt"

	"mom/gpu"
	"mom/shaders"
)

// StepEmbeddingArgs are the tensors of a StepEmbedding.
type StepEmbeddingArgs struct {
	// E (V, D); IDs (S) u32, on the device; Out (S, D); Group (S) u32,
	// written.
	E, IDs, Out, Group *Tensor
	// Ends are the ends of the modalities' vocabulary ranges, which are
	// contiguous from 0: modality g owns [Ends[g-1], Ends[g]) (Ends[-1] =
	// 0); the last end is V.
	Ends []int
}

// StepEmbedding is the embedding of the recurrent step mode: Out[s] =
// E[IDs[s]] for ids that are already on the device (the sampler wrote
// them), and Group[s] = the modality of IDs[s], which routes the step's
// per-modality projections. See shaders/embed_step.wgsl.
type StepEmbedding struct {
	g     *gpu.BindGroup
	x, y  int
	owned []*Tensor
}

// NewStepEmbedding validates the shapes and ranges and binds the kernel.
func NewStepEmbedding(d *gpu.Device, a StepEmbeddingArgs) (*StepEmbedding, error) {
	const op = "StepEmbedding"
	if a.E == nil || len(a.E.Shape) != 2 {
		return nil, fmt.Errorf("nn: %s: E must be (V, D), got %v", op, scanShapeOf(a.E))
	}
	if a.IDs == nil || len(a.IDs.Shape) != 1 {
		return nil, fmt.Errorf("nn: %s: IDs must be (S), got %v", op, scanShapeOf(a.IDs))
	}
	v, dm, s := a.E.Shape[0], a.E.Shape[1], a.IDs.Shape[0]
	if err := CheckShape(op, a.Out, s, dm); err != nil {
		return nil, err
	}
	if err := CheckShape(op, a.Group, s); err != nil {
		return nil, err
	}
	g := len(a.Ends)
	if g == 0 || a.Ends[g-1] != v {
		return nil, fmt.Errorf("nn: %s: range ends %v must end at the vocabulary size %d", op, a.Ends, v)
	}
	ends := make([]uint32, g)
	for i, e := range a.Ends {
		if e <= 0 || (i > 0 && e <= a.Ends[i-1]) {
			return nil, fmt.Errorf("nn: %s: range ends %v must be positive and increasing", op, a.Ends)
		}
		ends[i] = uint32(e)
	}
	if err := scanCheckAliases(op, []*Tensor{a.E, a.IDs}, []*Tensor{a.Out, a.Group}); err != nil {
		return nil, err
	}
	se := &StepEmbedding{}
	wrap := func(err error) error {
		se.Release()
		return fmt.Errorf("nn: %s (S=%d V=%d D=%d G=%d): %w", op, s, v, dm, g, err)
	}
	et, err := NewTensor(d, "embed_step.ends", g)
	if err != nil {
		return nil, wrap(err)
	}
	se.owned = append(se.owned, et)
	if err := et.UploadU32(ends); err != nil {
		return nil, wrap(err)
	}
	dims, err := uniformDims(d, "embed_step.dims", shaders.EmbedStepDimsWords, s, dm, v, g)
	if err != nil {
		return nil, wrap(err)
	}
	se.owned = append(se.owned, dims)
	if se.g, err = Bind(d, shaders.EmbedStep, nil, a.IDs, a.E, et, a.Out, a.Group, dims); err != nil {
		return nil, wrap(err)
	}
	se.x, se.y = Grid(d, CeilDiv(s*dm, 256))
	return se, nil
}

// Record records the lookup.
func (se *StepEmbedding) Record(r *gpu.Recorder) { r.Dispatch(se.g, se.x, se.y, 1) }

// Release frees the op's own buffers and bind group.
func (se *StepEmbedding) Release() {
	se.g.Release()
	releaseTensors(se.owned)
	se.owned = nil
}
