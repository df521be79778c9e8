package nn

import (
	"fmt"

	"mom/gpu"
	"mom/shaders"
)

// GradNorm computes the global L2 norm of many gradient tensors and the clip
// scale min(1, maxNorm/(norm+1e-6)) on the device, without readback, in a
// fixed summation order (deterministic): one partial-sums dispatch per group
// of sumSqRanges tensors (or binding-sized ranges of a large tensor) into a
// small buffer, then one finishing dispatch.
type GradNorm struct {
	ds                      []elemDispatch
	fin                     *gpu.BindGroup
	part, norm, scale, zero *Tensor
}

// sumSqRanges is the number of gradient ranges one sumsq dispatch takes
// (shaders.SumSq; with its partials, 7 storage buffers, within WebGPU's
// guaranteed 8). On an H200 the gradient norm of the 94m MoM model took
// 2.3 ms of a 102 ms step with a dispatch per tensor (262 of them, each
// behind a pipeline barrier), against 0.2 ms for its bytes.
const sumSqRanges = 6

// sumSqWorkgroups is the number of workgroups of a range of n elements, as
// gradnorm.wgsl's wgs: about 8 elements per invocation, from 1 to 1024.
func sumSqWorkgroups(n int) int { return min(max(CeilDiv(n, 256*8), 1), 1024) }

// NewGradNorm prepares the norm of grads with clipping to maxNorm (maxNorm
// <= 0: Scale is always 1).
func NewGradNorm(d *gpu.Device, grads []*Tensor, maxNorm float32) (*GradNorm, error) {
	return newGradNorm(d, grads, maxNorm, nil)
}

// NewGradNormScaled is NewGradNorm for gradients that carry the dynamic
// loss scale ls (mixed precision: the loss gradient was multiplied by it).
// Its finish detects an overflow (ls's flag raised by a cast, or a sum of
// squares that is not finite), all on the device:
//   - clean: Norm is the norm of the true (unscaled) gradients and Scale the
//     clip scale divided by the loss scale, so that AdamW unscales and
//     clips in one multiply; after ls's growth interval of clean steps the
//     loss scale doubles;
//   - overflow: Norm and Scale are 0 (AdamW skips the step), the loss scale
//     halves and the skip is counted in ls's state.
//
// The flag is cleared for the next step. The twin is ref.GradNormScaled.
func NewGradNormScaled(d *gpu.Device, grads []*Tensor, maxNorm float32, ls *LossScale) (*GradNorm, error) {
	if ls == nil {
		return nil, fmt.Errorf("nn: grad norm: no loss scale")
	}
	return newGradNorm(d, grads, maxNorm, ls)
}

func newGradNorm(d *gpu.Device, grads []*Tensor, maxNorm float32, ls *LossScale) (*GradNorm, error) {
	if len(grads) == 0 {
		return nil, fmt.Errorf("nn: grad norm: no gradient tensors")
	}
	if !finiteF32(maxNorm) {
		return nil, fmt.Errorf("nn: grad norm: maxNorm %g is not finite", maxNorm)
	}
	seen := map[*gpu.Buffer]string{}
	type rng struct {
		t *Tensor
		s elemSpan
	}
	var rs []rng
	for i, g := range grads {
		if g == nil {
			return nil, fmt.Errorf("nn: grad norm: gradient %d is nil", i)
		}
		if prev, ok := seen[g.Buf]; ok {
			return nil, fmt.Errorf("nn: grad norm: gradient %d (%s) shares its buffer with %s; it would count twice", i, g.Name, prev)
		}
		seen[g.Buf] = g.Name
		for _, s := range elemSpans(d, g.Len()) {
			rs = append(rs, rng{g, s})
		}
	}
	n := &GradNorm{}
	var err error
	fail := func(e error) (*GradNorm, error) {
		releaseDispatches(n.ds)
		releaseTensors([]*Tensor{n.part, n.norm, n.scale, n.zero})
		return nil, e
	}
	// The groups: sumSqRanges ranges each, the last filled up with a
	// one-element zero tensor; each group's partials start 256-byte aligned.
	if n.zero, err = NewTensor(d, "gradnorm.zero", 1); err != nil {
		return fail(err)
	}
	if err := n.zero.Upload([]float32{0}); err != nil {
		return fail(err)
	}
	type group struct {
		bs     []gpu.Binding
		wgs    int
		offset int
	}
	var groups []group
	total := 0
	for i := 0; i < len(rs); i += sumSqRanges {
		gr := group{offset: total}
		for j := i; j < i+sumSqRanges; j++ {
			if j < len(rs) {
				gr.bs = append(gr.bs, spanBinding(rs[j].t, rs[j].s))
				gr.wgs += sumSqWorkgroups(rs[j].s.n)
			} else {
				gr.bs = append(gr.bs, gpu.Buf(n.zero.Buf))
				gr.wgs += sumSqWorkgroups(1)
			}
		}
		groups = append(groups, gr)
		total += CeilDiv(gr.wgs, 64) * 64
	}
	if n.part, err = NewTensor(d, "gradnorm.partials", total); err != nil {
		return fail(err)
	}
	if err := n.part.Upload(make([]float32, total)); err != nil {
		return fail(err)
	}
	if n.norm, err = NewTensor(d, "gradnorm.norm", 1); err != nil {
		return fail(err)
	}
	if n.scale, err = NewTensor(d, "gradnorm.scale", 1); err != nil {
		return fail(err)
	}
	p, err := Pipeline(d, shaders.SumSq, nil)
	if err != nil {
		return fail(fmt.Errorf("nn: grad norm: %w", err))
	}
	for gi, gr := range groups {
		bs := append(gr.bs, spanBinding(n.part, elemSpan{gr.offset, gr.wgs}))
		g, err := d.BindGroup(p, bs...)
		if err != nil {
			first := rs[gi*sumSqRanges].t
			return fail(fmt.Errorf("nn: grad norm of the group from %s %v: %w", first.Name, first.Shape, err))
		}
		n.ds = append(n.ds, elemDispatch{g, gr.wgs, 1})
	}
	if ls == nil {
		n.fin, err = Bind(d, shaders.GradNormFinish, gpu.Constants{"MAX_NORM": float64(maxNorm)}, n.part, n.norm, n.scale)
	} else {
		n.fin, err = Bind(d, shaders.GradNormFinishScaled, ls.constants(maxNorm), n.part, n.norm, n.scale, ls.state, ls.flag)
	}
	if err != nil {
		return fail(fmt.Errorf("nn: grad norm: %w", err))
	}
	return n, nil
}

// Record records the partial sums and the finish.
func (n *GradNorm) Record(r *gpu.Recorder) {
	for _, x := range n.ds {
		r.Dispatch(x.g, x.x, x.y, 1)
	}
	r.Dispatch(n.fin, 1, 1, 1)
}

// Norm is the global gradient norm, (1) (with a loss scale: unscaled,
// and 0 for a skipped step).
func (n *GradNorm) Norm() *Tensor { return n.norm }

// Scale is the clip scale, (1): min(1, maxNorm/(Norm+1e-6)), or 1; with
// a loss scale, that divided by the loss scale, or 0 for a skipped step.
func (n *GradNorm) Scale() *Tensor { return n.scale }

// Release frees the op's own buffers (not the gradients).
func (n *GradNorm) Release() {
	releaseDispatches(n.ds)
	n.fin.Release()
	n.ds, n.fin = nil, nil
	releaseTensors([]*Tensor{n.part, n.norm, n.scale, n.zero})
	n.part, n.norm, n.scale, n.zero = nil, nil, nil, nil
}
