package nn

import (
	"fmt"
	"math"

	"mom/gpu"
	"mom/shaders"
)

// IgnoreIndex is a target that skips its row: zero gradient, no loss.
const IgnoreIndex = 0xFFFFFFFF

// CrossEntropyArgs are the tensors of a softmax cross-entropy.
type CrossEntropyArgs struct {
	Logits, DLogits *Tensor // (T, V), V up to 65536; DLogits may be the same tensor as Logits (then the gradient overwrites the logits in place)
	Groups          int     // modalities
}

// CrossEntropy is softmax cross-entropy with its gradient fused in (llm.c
// style): one workgroup per row computes the row's log-sum-exp with an
// online max, then writes DLogits = weights[m]·(softmax − onehot(target))
// and the row's loss. A second dispatch sums the losses and counts the valid
// rows per modality in a fixed order (deterministic).
type CrossEntropy struct {
	t, v, groups int
	meta         *Tensor        // (2T + G) u32: targets, modality, weight bits
	rowLoss      *Tensor        // (T)
	sums, counts *Tensor        // (G)
	dummy        *Tensor        // the placeholder source binding when in place
	rows         []elemDispatch // one per row span
	sum          *gpu.BindGroup
	host         []uint32
}

// xentMaxV is the largest vocabulary the kernel is sized and tested for.
const xentMaxV = 65536

// NewCrossEntropy checks shapes and builds the dispatches.
func NewCrossEntropy(d *gpu.Device, a CrossEntropyArgs) (*CrossEntropy, error) {
	if a.Logits == nil || a.DLogits == nil {
		return nil, fmt.Errorf("nn: cross-entropy: Logits and DLogits are required")
	}
	if len(a.Logits.Shape) != 2 {
		return nil, fmt.Errorf("nn: cross-entropy: logits %s have shape %v, want (T, V)", a.Logits.Name, a.Logits.Shape)
	}
	t, v := a.Logits.Shape[0], a.Logits.Shape[1]
	if v > xentMaxV {
		return nil, fmt.Errorf("nn: cross-entropy: vocabulary %d of %s exceeds %d", v, a.Logits.Name, xentMaxV)
	}
	if err := CheckShape("cross-entropy dlogits", a.DLogits, t, v); err != nil {
		return nil, err
	}
	if a.Groups < 1 {
		return nil, fmt.Errorf("nn: cross-entropy: %d groups, want at least 1", a.Groups)
	}
	inplace := a.Logits.Buf == a.DLogits.Buf
	c := &CrossEntropy{t: t, v: v, groups: a.Groups, host: make([]uint32, 2*t+a.Groups)}
	var err error
	fail := func(e error) (*CrossEntropy, error) {
		c.Release()
		return nil, e
	}
	for _, x := range []struct {
		p    **Tensor
		name string
		n    int
	}{{&c.meta, ".xent_meta", 2*t + a.Groups}, {&c.rowLoss, ".xent_rowloss", t}, {&c.sums, ".xent_sums", a.Groups}, {&c.counts, ".xent_counts", a.Groups}} {
		if *x.p, err = NewTensor(d, a.Logits.Name+x.name, x.n); err != nil {
			return fail(err)
		}
	}
	// Until the first Update every row is ignored.
	for i := 0; i < t; i++ {
		c.host[i] = IgnoreIndex
	}
	if err := c.meta.UploadU32(c.host); err != nil {
		return fail(err)
	}
	if inplace {
		if c.dummy, err = NewTensor(d, "xent.placeholder", 4); err != nil {
			return fail(err)
		}
	}
	k, per := shaders.XEnt, 1
	if v%4 == 0 {
		k, per = shaders.XEnt4, 4
	}
	most := int(min(d.Limits.MaxComputeInvocationsPerWorkgroup, d.Limits.MaxComputeWorkgroupSizeX, 512))
	wg := 32
	for wg*2 <= most && wg*8 < v/per {
		wg *= 2
	}
	// Logits larger than one storage binding are bound in spans of rows, a
	// multiple of 64 rows each so that every span starts 256-byte aligned.
	span := t
	if lim := d.Limits.MaxStorageBufferBindingSize; uint64(t)*uint64(v)*4 > lim {
		span = int(lim/(uint64(v)*4)) / 64 * 64
		if span == 0 {
			return fail(fmt.Errorf("nn: cross-entropy: 64 rows of %d logits exceed the device's storage binding limit (%d bytes)", v, lim))
		}
	}
	for r0 := 0; r0 < t; r0 += span {
		ts := min(span, t-r0)
		cr := gpu.Constants{"V": float64(v), "T": float64(t), "TS": float64(ts), "ROW0": float64(r0),
			"G": float64(a.Groups), "WG": float64(wg), "INPLACE": overrideBool(inplace)}
		p, err := Pipeline(d, k, cr)
		if err != nil {
			return fail(fmt.Errorf("nn: cross-entropy of %s %v: %w", a.Logits.Name, a.Logits.Shape, err))
		}
		rs := elemSpan{r0 * v, ts * v}
		sb := spanBinding(a.Logits, rs)
		if inplace {
			sb = gpu.Buf(c.dummy.Buf)
		}
		g, err := d.BindGroup(p, sb, spanBinding(a.DLogits, rs), gpu.Buf(c.meta.Buf), gpu.Buf(c.rowLoss.Buf))
		if err != nil {
			return fail(fmt.Errorf("nn: cross-entropy of %s %v: %w", a.Logits.Name, a.Logits.Shape, err))
		}
		x, y := Grid(d, ts)
		c.rows = append(c.rows, elemDispatch{g, x, y})
	}
	cs := gpu.Constants{"T": float64(t), "G": float64(a.Groups), "WGS": float64(sumThreads(d, t))}
	if c.sum, err = Bind(d, shaders.XEntSums, cs, c.meta, c.rowLoss, c.sums, c.counts); err != nil {
		return fail(fmt.Errorf("nn: cross-entropy sums of %s %v: %w", a.Logits.Name, a.Logits.Shape, err))
	}
	return c, nil
}

// Update uploads one batch: targets (IgnoreIndex skips a row: zero gradient,
// no loss), the modality of each row (< Groups), and weights[g] that scale
// the gradient of group g's rows (the trainer passes 1/valid-count for a
// mean, divided by accumulation steps). Nothing is uploaded on error.
func (c *CrossEntropy) Update(targets, modality []uint32, weights []float32) error {
	if len(targets) != c.t || len(modality) != c.t || len(weights) != c.groups {
		return fmt.Errorf("nn: cross-entropy: %d targets, %d modalities, %d weights; want %d, %d, %d",
			len(targets), len(modality), len(weights), c.t, c.t, c.groups)
	}
	for i, tg := range targets {
		if tg != IgnoreIndex && int64(tg) >= int64(c.v) {
			return fmt.Errorf("nn: cross-entropy: targets[%d] = %d is out of range for a vocabulary of %d (IgnoreIndex skips a row)", i, tg, c.v)
		}
	}
	for i, m := range modality {
		if int64(m) >= int64(c.groups) {
			return fmt.Errorf("nn: cross-entropy: modality[%d] = %d, want < %d groups", i, m, c.groups)
		}
	}
	for g, w := range weights {
		if !finiteF32(w) {
			return fmt.Errorf("nn: cross-entropy: weights[%d] = %g is not finite", g, w)
		}
	}
	copy(c.host, targets)
	copy(c.host[c.t:], modality)
	for g, w := range weights {
		c.host[2*c.t+g] = math.Float32bits(w)
	}
	if err := c.meta.UploadU32(c.host); err != nil {
		return fmt.Errorf("nn: cross-entropy: %w", err)
	}
	return nil
}

// Record records the fused loss and gradient, then the per-group sums.
func (c *CrossEntropy) Record(r *gpu.Recorder) {
	for _, x := range c.rows {
		r.Dispatch(x.g, x.x, x.y, 1)
	}
	r.Dispatch(c.sum, 1, 1, 1)
}

// LossSums is (Groups): Σ of per-row −log p(target) over valid rows, unweighted.
func (c *CrossEntropy) LossSums() *Tensor { return c.sums }

// Counts is (Groups): valid rows per group (float).
func (c *CrossEntropy) Counts() *Tensor { return c.counts }

// RowLosses is (T): each row's −log p(target), 0 for ignored rows.
func (c *CrossEntropy) RowLosses() *Tensor { return c.rowLoss }

// sumThreads is the workgroup size of a one-workgroup reduction over t rows.
func sumThreads(d *gpu.Device, t int) int {
	most := int(min(d.Limits.MaxComputeInvocationsPerWorkgroup, d.Limits.MaxComputeWorkgroupSizeX, 1024))
	n := 32
	for n*2 <= most && n < t {
		n *= 2
	}
	return n
}

// Release frees the op's own buffers.
func (c *CrossEntropy) Release() {
	releaseDispatches(c.rows)
	c.sum.Release()
	c.rows, c.sum = nil, nil
	releaseTensors([]*Tensor{c.meta, c.rowLoss, c.sums, c.counts, c.dummy})
}
