package nn

import (
	"fmt"

	"mom/gpu"
	"mom/shaders"
)

// ConvArgs are the tensors of a depthwise causal conv1d over the sequence.
type ConvArgs struct {
	Batch, Len int
	// X (Batch, Len, C); W (C, K); Bias (C); Y (Batch, Len, C).
	X, W, Bias, Y *Tensor
	// Backward; all nil for forward only. DX is written (=); DW and DBias
	// accumulate (+=).
	DY, DX, DW, DBias *Tensor
	// SiLU fuses y = silu(conv(x)).
	SiLU bool
}

// CausalConv1d is y = [silu](bias + sum_j w[c,j] * x[l-(K-1)+j]) per channel,
// with K (d_conv) up to 8, and its backward.
type CausalConv1d struct {
	a              ConvArgs
	c, k           int
	fwd, bwd, red  *gpu.BindGroup
	fx, fy         int // forward grid
	bx, by, rx, ry int // backward and reduce grids
	backward       bool
	owned          []*Tensor
	groups         []*gpu.BindGroup
}

// Tiling of conv1d.wgsl: steps per thread, and the backward's channels x row
// tiles per workgroup.
const (
	convLT = 8
	convCW = 32
	convRW = 8
)

// NewCausalConv1d validates the shapes, compiles the kernels and allocates
// the backward's partial sums and a small uniform; Release frees them.
func NewCausalConv1d(d *gpu.Device, a ConvArgs) (*CausalConv1d, error) {
	const op = "CausalConv1d"
	if a.Batch <= 0 || a.Len <= 0 {
		return nil, fmt.Errorf("nn: %s: batch %d and length %d must be positive", op, a.Batch, a.Len)
	}
	if a.W == nil || len(a.W.Shape) != 2 {
		return nil, fmt.Errorf("nn: %s: W must be (C, K), got %v", op, scanShapeOf(a.W))
	}
	ch, k := a.W.Shape[0], a.W.Shape[1]
	if k > shaders.ConvMaxTaps {
		return nil, fmt.Errorf("nn: %s: kernel width %d exceeds %d", op, k, shaders.ConvMaxTaps)
	}
	b, l := a.Batch, a.Len
	for _, c := range []struct {
		t     *Tensor
		shape []int
	}{{a.X, []int{b, l, ch}}, {a.Bias, []int{ch}}, {a.Y, []int{b, l, ch}}} {
		if err := CheckShape(op, c.t, c.shape...); err != nil {
			return nil, err
		}
	}
	bw := []*Tensor{a.DY, a.DX, a.DW, a.DBias}
	set := 0
	for _, t := range bw {
		if t != nil {
			set++
		}
	}
	if set != 0 && set != len(bw) {
		return nil, fmt.Errorf("nn: %s: the backward needs all of DY, DX, DW, DBias (or none of them for forward only)", op)
	}
	cv := &CausalConv1d{a: a, c: ch, k: k, backward: set != 0}
	if cv.backward {
		for _, c := range []struct {
			t     *Tensor
			shape []int
		}{{a.DY, []int{b, l, ch}}, {a.DX, []int{b, l, ch}}, {a.DW, []int{ch, k}}, {a.DBias, []int{ch}}} {
			if err := CheckShape(op, c.t, c.shape...); err != nil {
				return nil, err
			}
		}
	}
	if err := scanCheckAliases(op, []*Tensor{a.X, a.W, a.Bias, a.DY}, []*Tensor{a.Y, a.DX, a.DW, a.DBias}); err != nil {
		return nil, err
	}
	for _, t := range []*Tensor{a.X, a.DY} {
		if t != nil && t.Bytes() > int64(d.Limits.MaxStorageBufferBindingSize) {
			return nil, fmt.Errorf("nn: %s: %s (%d bytes) exceeds the device's largest storage binding (%d)", op, t.Name, t.Bytes(), d.Limits.MaxStorageBufferBindingSize)
		}
	}
	if err := cv.build(d); err != nil {
		cv.Release()
		return nil, fmt.Errorf("nn: %s (B=%d L=%d C=%d K=%d): %w", op, b, l, ch, k, err)
	}
	return cv, nil
}

func (cv *CausalConv1d) build(d *gpu.Device) error {
	a := cv.a
	b, l, ch, k := a.Batch, a.Len, cv.c, cv.k
	ntile := CeilDiv(l, convLT)
	nrb := CeilDiv(b*ntile, convRW)
	ncb := CeilDiv(ch, convCW)
	c := gpu.Constants{"K": float64(k), "SILU": scanBool(a.SiLU), "LT": convLT, "CW": convCW, "RW": convRW, "WGB": convCW * convRW}
	dims, err := uniformDims(d, "conv1d.dims", shaders.ConvDimsWords, b, l, ch, ntile, nrb, ncb)
	if err != nil {
		return err
	}
	cv.owned = append(cv.owned, dims)
	bind := func(kern shaders.Kernel, ts ...*Tensor) (*gpu.BindGroup, error) {
		g, err := Bind(d, kern, c, ts...)
		if err != nil {
			return nil, err
		}
		cv.groups = append(cv.groups, g)
		return g, nil
	}
	if cv.fwd, err = bind(shaders.ConvForward, a.X, a.W, a.Bias, a.Y, dims); err != nil {
		return err
	}
	cv.fx, cv.fy = Grid(d, CeilDiv(b*ntile*ch, 256))
	if !cv.backward {
		return nil
	}
	part, err := NewTensor(d, "conv1d.partials", nrb, ch, k+1)
	if err != nil {
		return err
	}
	cv.owned = append(cv.owned, part)
	if cv.bwd, err = bind(shaders.ConvBackward, a.X, a.W, a.Bias, a.DY, a.DX, part, dims); err != nil {
		return err
	}
	cv.bx, cv.by = Grid(d, ncb*nrb)
	if cv.red, err = bind(shaders.ConvReduce, part, a.DW, a.DBias, dims); err != nil {
		return err
	}
	cv.rx, cv.ry = Grid(d, CeilDiv(ch*(k+1), 256))
	return nil
}

// RecordForward records y = [silu](conv(x)).
func (cv *CausalConv1d) RecordForward(r *gpu.Recorder) { r.Dispatch(cv.fwd, cv.fx, cv.fy, 1) }

// RecordBackward records dx = (conv^T)(dpre), dw += ..., dbias += .... On an
// op built without backward tensors it records an invalid dispatch, which
// makes the recorder's Submit fail.
func (cv *CausalConv1d) RecordBackward(r *gpu.Recorder) {
	if !cv.backward {
		r.Dispatch(nil, 1, 1, 1)
		return
	}
	r.Dispatch(cv.bwd, cv.bx, cv.by, 1)
	r.Dispatch(cv.red, cv.rx, cv.ry, 1)
}

// Release frees the op's own buffers and bind groups (not the tensors of
// its ConvArgs).
func (cv *CausalConv1d) Release() {
	for _, g := range cv.groups {
		g.Release()
	}
	cv.groups = nil
	for _, t := range cv.owned {
		t.Release()
	}
	cv.owned = nil
}

// Conv FLOPs per output element: forward 2K+1 (+4 for SiLU); backward 6K+7
// (recompute pre 2K+1, the SiLU derivative ~6 folded in, dx 2K, dw 2K,
// dbias 1). Compulsory bytes: x (and dy) read once, y (dx) written once,
// the weights read and their gradients read and written.
