package nn

import (
	"fmt"
	"math/bits"

	"mom/gpu"
	"mom/shaders"
)

// RMSNormArgs are the tensors of an RMSNorm: y = x / sqrt(mean(x²) + eps) * w
// per row of D.
type RMSNormArgs struct {
	X, W, Y    *Tensor // X, Y: (..., D) leading dims flattened to rows; W: (D)
	DY, DX, DW *Tensor // backward; nil for forward-only; DW accumulates (+=)

	Eps          float32
	AccumulateDX bool // DX += instead of DX = (the residual stream's gradient)
}

// RMSNorm is root-mean-square normalisation with a learned scale. One
// workgroup normalises a row, each thread keeping its columns in registers
// (rows of up to 8 × the device's workgroup size, 8192 columns with 1024
// threads). The forward saves the per-row reciprocal rms for the backward.
// The backward is deterministic: the weight gradient is summed over fixed
// chunks of rows and then over the chunks, with no atomics.
type RMSNorm struct {
	rows, d       int
	rstd, dwp     *Tensor
	fwd, bwd, dw  *gpu.BindGroup
	fx, fy        int // forward grid
	bx, by        int // backward grid
	dwGroups      int
	backwardReady bool
}

// rmsnormMaxCols is MAXC of rmsnorm.wgsl: columns a thread keeps in registers.
const rmsnormMaxCols = 8

// rmsnormLayout picks the threads per row (a power of two) and the columns
// per thread for rows of d.
func rmsnormLayout(dev *gpu.Device, d int) (wg, nc int, err error) {
	most := int(min(dev.Limits.MaxComputeInvocationsPerWorkgroup, dev.Limits.MaxComputeWorkgroupSizeX, 1024))
	wg = 32
	for wg < CeilDiv(d, 4) && wg < 256 {
		wg *= 2
	}
	for wg*rmsnormMaxCols < d && wg*2 <= most {
		wg *= 2
	}
	if wg > most {
		wg = 1 << (bits.Len(uint(most)) - 1)
	}
	nc = CeilDiv(d, wg)
	if nc > rmsnormMaxCols {
		return 0, 0, fmt.Errorf("rows of %d exceed %d threads x %d columns", d, wg, rmsnormMaxCols)
	}
	return wg, nc, nil
}

// NewRMSNorm checks shapes, allocates the saved per-row rstd (and, with a
// backward, the weight-gradient partials) and builds the dispatches.
func NewRMSNorm(dev *gpu.Device, a RMSNormArgs) (*RMSNorm, error) {
	if a.X == nil || a.W == nil || a.Y == nil {
		return nil, fmt.Errorf("nn: rmsnorm: X, W and Y are required")
	}
	if len(a.X.Shape) < 1 {
		return nil, fmt.Errorf("nn: rmsnorm: %s has no dimensions", a.X.Name)
	}
	d := a.X.Shape[len(a.X.Shape)-1]
	rows := a.X.Len() / d
	if err := CheckShape("rmsnorm weight", a.W, d); err != nil {
		return nil, err
	}
	if err := CheckShape("rmsnorm output", a.Y, a.X.Shape...); err != nil {
		return nil, err
	}
	if shareBuffer(a.X, a.Y) {
		return nil, fmt.Errorf("nn: rmsnorm: Y %s is X's buffer (in place is not supported)", a.Y.Name)
	}
	back := a.DY != nil || a.DX != nil || a.DW != nil
	if back {
		if a.DY == nil || a.DX == nil || a.DW == nil {
			return nil, fmt.Errorf("nn: rmsnorm: the backward needs DY, DX and DW together")
		}
		if err := CheckShape("rmsnorm dy", a.DY, a.X.Shape...); err != nil {
			return nil, err
		}
		if err := CheckShape("rmsnorm dx", a.DX, a.X.Shape...); err != nil {
			return nil, err
		}
		if err := CheckShape("rmsnorm dw", a.DW, d); err != nil {
			return nil, err
		}
		for _, t := range []*Tensor{a.X, a.W, a.DY} {
			if shareBuffer(a.DX, t) {
				return nil, fmt.Errorf("nn: rmsnorm: DX %s shares its buffer with %s", a.DX.Name, t.Name)
			}
		}
	}
	if !(a.Eps >= 0) || !finiteF32(a.Eps) {
		return nil, fmt.Errorf("nn: rmsnorm: eps %g must be finite and non-negative", a.Eps)
	}
	wg, nc, err := rmsnormLayout(dev, d)
	if err != nil {
		return nil, fmt.Errorf("nn: rmsnorm of %s %v: %w", a.X.Name, a.X.Shape, err)
	}
	n := &RMSNorm{rows: rows, d: d}
	fail := func(e error) (*RMSNorm, error) {
		n.Release()
		return nil, e
	}
	if n.rstd, err = NewTensor(dev, a.X.Name+".rstd", rows); err != nil {
		return fail(err)
	}
	c := gpu.Constants{"D": float64(d), "NROWS": float64(rows), "WG": float64(wg), "NC": float64(nc), "EPS": float64(a.Eps)}
	if n.fwd, err = Bind(dev, shaders.RMSNormFwd, c, a.X, a.W, a.Y, n.rstd); err != nil {
		return fail(fmt.Errorf("nn: rmsnorm of %s %v: %w", a.X.Name, a.X.Shape, err))
	}
	n.fx, n.fy = Grid(dev, rows)
	if !back {
		return n, nil
	}
	// Rows per backward workgroup: about 512 chunks at large sizes, so that
	// the partials stay small and the chunk reduction short.
	per := max(1, CeilDiv(rows, 512))
	chunks := CeilDiv(rows, per)
	if n.dwp, err = NewTensor(dev, a.X.Name+".rmsnorm_dw_partials", chunks, d); err != nil {
		return fail(err)
	}
	cb := gpu.Constants{"D": float64(d), "NROWS": float64(rows), "WG": float64(wg), "NC": float64(nc),
		"ROWS": float64(per), "NCHUNK": float64(chunks), "ACC_DX": overrideBool(a.AccumulateDX)}
	if n.bwd, err = Bind(dev, shaders.RMSNormBwd, cb, a.X, a.W, a.DY, n.rstd, a.DX, n.dwp); err != nil {
		return fail(fmt.Errorf("nn: rmsnorm backward of %s %v: %w", a.X.Name, a.X.Shape, err))
	}
	n.bx, n.by = Grid(dev, chunks)
	if n.dw, err = Bind(dev, shaders.RMSNormDW, gpu.Constants{"D": float64(d), "NCHUNK": float64(chunks)}, n.dwp, a.DW); err != nil {
		return fail(fmt.Errorf("nn: rmsnorm backward of %s %v: %w", a.X.Name, a.X.Shape, err))
	}
	n.dwGroups = CeilDiv(d, 32)
	n.backwardReady = true
	return n, nil
}

// RecordForward records y and the saved rstd.
func (n *RMSNorm) RecordForward(r *gpu.Recorder) { r.Dispatch(n.fwd, n.fx, n.fy, 1) }

// RecordBackward records dx and dw += (after RecordForward of the same x in
// this or an earlier submit). It records nothing for a forward-only norm.
func (n *RMSNorm) RecordBackward(r *gpu.Recorder) {
	if !n.backwardReady {
		return
	}
	r.Dispatch(n.bwd, n.bx, n.by, 1)
	r.Dispatch(n.dw, n.dwGroups, 1, 1)
}

// Rstd is the saved per-row reciprocal rms, (rows).
func (n *RMSNorm) Rstd() *Tensor { return n.rstd }

// Release frees the op's own buffers.
func (n *RMSNorm) Release() {
	for _, g := range []*gpu.BindGroup{n.fwd, n.bwd, n.dw} {
		g.Release()
	}
	n.fwd, n.bwd, n.dw = nil, nil, nil
	releaseTensors([]*Tensor{n.rstd, n.dwp})
	n.rstd, n.dwp = nil, nil
}
