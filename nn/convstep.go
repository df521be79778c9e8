package nn

import (
	"fmt"

	"mom/gpu"
	"mom/shaders"
)

// ConvStepArgs are the tensors of one step of a depthwise causal conv1d for
// S streams (the recurrent step mode of CausalConv1d).
type ConvStepArgs struct {
	// X, Y (S, C): this step's input and output; W (C, K); Bias (C);
	// State (S, C, K-1): each stream's last K-1 inputs, oldest first,
	// updated in place (nil when K = 1).
	X, W, Bias, State, Y *Tensor
	// SiLU fuses y = silu(conv(x)).
	SiLU bool
}

// ConvStep is one step of CausalConv1d per stream: y = [silu](bias + the
// filter over the state's K-1 inputs and x), then x joins the state (see
// shaders/conv_step.wgsl). A stream whose state holds the last K-1 inputs
// of a sequence (zeros before its start) gets what CausalConv1d gives at
// the sequence's next position.
type ConvStep struct {
	s, c, k int
	g       *gpu.BindGroup
	x, y    int
	owned   []*Tensor
}

// NewConvStep validates the shapes and binds the kernel.
func NewConvStep(d *gpu.Device, a ConvStepArgs) (*ConvStep, error) {
	const op = "ConvStep"
	if a.X == nil || len(a.X.Shape) != 2 {
		return nil, fmt.Errorf("nn: %s: X must be (S, C), got %v", op, scanShapeOf(a.X))
	}
	if a.W == nil || len(a.W.Shape) != 2 {
		return nil, fmt.Errorf("nn: %s: W must be (C, K), got %v", op, scanShapeOf(a.W))
	}
	s, c, k := a.X.Shape[0], a.X.Shape[1], a.W.Shape[1]
	if k > shaders.ConvMaxTaps {
		return nil, fmt.Errorf("nn: %s: kernel width %d exceeds %d", op, k, shaders.ConvMaxTaps)
	}
	for _, t := range []struct {
		t     *Tensor
		shape []int
	}{{a.W, []int{c, k}}, {a.Bias, []int{c}}, {a.Y, []int{s, c}}} {
		if err := CheckShape(op, t.t, t.shape...); err != nil {
			return nil, err
		}
	}
	cs := &ConvStep{s: s, c: c, k: k}
	st := a.State
	if k > 1 {
		if err := CheckShape(op, st, s, c, k-1); err != nil {
			return nil, err
		}
	} else {
		if st != nil {
			return nil, fmt.Errorf("nn: %s: a filter of width 1 keeps no state, got State %v", op, st.Shape)
		}
		var err error
		if st, err = NewTensor(d, "conv_step.nostate", 1); err != nil {
			return nil, err
		}
		cs.owned = append(cs.owned, st)
	}
	if err := scanCheckAliases(op, []*Tensor{a.X, a.W, a.Bias}, []*Tensor{st, a.Y}); err != nil {
		cs.Release()
		return nil, err
	}
	wrap := func(err error) error {
		cs.Release()
		return fmt.Errorf("nn: %s (S=%d C=%d K=%d): %w", op, s, c, k, err)
	}
	dims, err := uniformDims(d, "conv_step.dims", shaders.ConvStepDimsWords, s, c, 0)
	if err != nil {
		return nil, wrap(err)
	}
	cs.owned = append(cs.owned, dims)
	if cs.g, err = Bind(d, shaders.ConvStep, gpu.Constants{"K": float64(k), "SILU": scanBool(a.SiLU)},
		a.X, a.W, a.Bias, st, a.Y, dims); err != nil {
		return nil, wrap(err)
	}
	cs.x, cs.y = Grid(d, CeilDiv(s*c, 256))
	return cs, nil
}

// Record records the step.
func (cs *ConvStep) Record(r *gpu.Recorder) { r.Dispatch(cs.g, cs.x, cs.y, 1) }

// Release frees the op's own buffers and bind group.
func (cs *ConvStep) Release() {
	cs.g.Release()
	releaseTensors(cs.owned)
	cs.owned = nil
}

// ConvTailArgs are the tensors of ConvTail.
type ConvTailArgs struct {
	Batch, Len int
	// X (Batch, Len, C): a conv's input sequence; Tail (Batch, C, K-1): the
	// conv state after it, written. K (the filter width) is Tail's last dim
	// plus one, at least 2.
	X, Tail *Tensor
}

// ConvTail extracts the conv state a sequence leaves (its last K-1 inputs
// per channel, zeros before its start), which ConvStep continues from: the
// hand-over of a parallel prefill to the step mode.
type ConvTail struct {
	g     *gpu.BindGroup
	x, y  int
	owned []*Tensor
}

// NewConvTail validates the shapes and binds the kernel.
func NewConvTail(d *gpu.Device, a ConvTailArgs) (*ConvTail, error) {
	const op = "ConvTail"
	if a.Batch <= 0 || a.Len <= 0 {
		return nil, fmt.Errorf("nn: %s: batch %d and length %d must be positive", op, a.Batch, a.Len)
	}
	if a.X == nil || len(a.X.Shape) != 3 {
		return nil, fmt.Errorf("nn: %s: X must be (Batch, Len, C), got %v", op, scanShapeOf(a.X))
	}
	c := a.X.Shape[2]
	if err := CheckShape(op, a.X, a.Batch, a.Len, c); err != nil {
		return nil, err
	}
	if a.Tail == nil || len(a.Tail.Shape) != 3 {
		return nil, fmt.Errorf("nn: %s: Tail must be (Batch, C, K-1), got %v", op, scanShapeOf(a.Tail))
	}
	k := a.Tail.Shape[2] + 1
	if k > shaders.ConvMaxTaps {
		return nil, fmt.Errorf("nn: %s: kernel width %d exceeds %d", op, k, shaders.ConvMaxTaps)
	}
	if err := CheckShape(op, a.Tail, a.Batch, c, k-1); err != nil {
		return nil, err
	}
	if shareBuffer(a.X, a.Tail) {
		return nil, fmt.Errorf("nn: %s: Tail %s is X's buffer", op, a.Tail.Name)
	}
	ct := &ConvTail{}
	wrap := func(err error) error {
		ct.Release()
		return fmt.Errorf("nn: %s (B=%d L=%d C=%d K=%d): %w", op, a.Batch, a.Len, c, k, err)
	}
	dims, err := uniformDims(d, "conv_tail.dims", shaders.ConvStepDimsWords, a.Batch, c, a.Len)
	if err != nil {
		return nil, wrap(err)
	}
	ct.owned = append(ct.owned, dims)
	if ct.g, err = Bind(d, shaders.ConvTail, gpu.Constants{"K": float64(k)}, a.X, a.Tail, dims); err != nil {
		return nil, wrap(err)
	}
	ct.x, ct.y = Grid(d, CeilDiv(a.Batch*c*(k-1), 256))
	return ct, nil
}

// Record records the extraction.
func (ct *ConvTail) Record(r *gpu.Recorder) { r.Dispatch(ct.g, ct.x, ct.y, 1) }

// Release frees the op's own buffers and bind group.
func (ct *ConvTail) Release() {
	ct.g.Release()
	releaseTensors(ct.owned)
	ct.owned = nil
}
