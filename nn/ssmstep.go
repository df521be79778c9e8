package nn

import (
	"fmt"

	"mom/gpu"
	"mom/shaders"
)

// SSMStepArgs are the tensors of one selective state update for S streams
// (the recurrent step mode of SelectiveScan).
type SSMStepArgs struct {
	// U, Delta, Z, Y (S, ED); ALog (ED, N); D (ED); State (S, ED, N),
	// updated in place. Delta holds dt_proj's output with its bias, as in
	// SelectiveScan; the kernel applies softplus. Z may be nil (no gate).
	U, Delta, Z, ALog, D, Y, State *Tensor
	// BC (S, W) holds B in columns [BCol, BCol+N) and C in [CCol, CCol+N)
	// (x_proj's output matrix, whose other columns may hold dt_low).
	BC         *Tensor
	BCol, CCol int
}

// SSMStep is one step of SelectiveScan's recurrence per stream:
// dt = softplus(delta), h = exp(dt*A)*h + dt*B*u, y = (C.h + D*u)*silu(z)
// (see shaders/ssm_step.wgsl). State has the layout of the scan's Final,
// so a stream continues from a prefill's final state after a copy.
type SSMStep struct {
	g     *gpu.BindGroup
	x, y  int
	owned []*Tensor
}

// NewSSMStep validates the shapes and binds the kernel.
func NewSSMStep(d *gpu.Device, a SSMStepArgs) (*SSMStep, error) {
	const op = "SSMStep"
	if a.U == nil || len(a.U.Shape) != 2 {
		return nil, fmt.Errorf("nn: %s: U must be (S, ED), got %v", op, scanShapeOf(a.U))
	}
	if a.ALog == nil || len(a.ALog.Shape) != 2 {
		return nil, fmt.Errorf("nn: %s: ALog must be (ED, N), got %v", op, scanShapeOf(a.ALog))
	}
	if a.BC == nil || len(a.BC.Shape) != 2 {
		return nil, fmt.Errorf("nn: %s: BC must be (S, W), got %v", op, scanShapeOf(a.BC))
	}
	s, ed, n, w := a.U.Shape[0], a.U.Shape[1], a.ALog.Shape[1], a.BC.Shape[1]
	for _, c := range []struct {
		t     *Tensor
		shape []int
	}{{a.Delta, []int{s, ed}}, {a.ALog, []int{ed, n}}, {a.D, []int{ed}}, {a.Y, []int{s, ed}},
		{a.State, []int{s, ed, n}}, {a.BC, []int{s, w}}} {
		if err := CheckShape(op, c.t, c.shape...); err != nil {
			return nil, err
		}
	}
	if a.Z != nil {
		if err := CheckShape(op, a.Z, s, ed); err != nil {
			return nil, err
		}
	}
	if a.BCol < 0 || a.CCol < 0 || a.BCol+n > w || a.CCol+n > w {
		return nil, fmt.Errorf("nn: %s: B at column %d and C at column %d of %d states do not fit BC's %d columns", op, a.BCol, a.CCol, n, w)
	}
	if err := scanCheckAliases(op, []*Tensor{a.U, a.Delta, a.Z, a.ALog, a.BC, a.D}, []*Tensor{a.Y, a.State}); err != nil {
		return nil, err
	}
	st := &SSMStep{}
	wrap := func(err error) error {
		st.Release()
		return fmt.Errorf("nn: %s (S=%d ED=%d N=%d): %w", op, s, ed, n, err)
	}
	dims, err := uniformDims(d, "ssm_step.dims", shaders.SSMStepDimsWords, s, ed, w, a.BCol, a.CCol)
	if err != nil {
		return nil, wrap(err)
	}
	st.owned = append(st.owned, dims)
	z := a.Z
	if z == nil {
		z = a.U // bound, never read
	}
	if st.g, err = Bind(d, shaders.SSMStep, gpu.Constants{"N": float64(n), "GATE": scanBool(a.Z != nil)},
		a.U, a.Delta, z, a.ALog, a.BC, a.D, a.Y, a.State, dims); err != nil {
		return nil, wrap(err)
	}
	st.x, st.y = Grid(d, CeilDiv(s*ed, 256))
	return st, nil
}

// Record records the step.
func (st *SSMStep) Record(r *gpu.Recorder) { r.Dispatch(st.g, st.x, st.y, 1) }

// Release frees the op's own buffers and bind group.
func (st *SSMStep) Release() {
	st.g.Release()
	releaseTensors(st.owned)
	st.owned = nil
}
