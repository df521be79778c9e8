package mom

import (
	"fmt"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"unsafe"

	"mom/gpu"
	"mom/nn"
)

// Param is one parameter tensor with its gradient.
type Param struct {
	Spec ParamSpec
	W    *nn.Tensor // value
	G    *nn.Tensor // gradient (accumulated by the backward kernels)
	H    *nn.Tensor // float16 copy of W that the GEMMs or the conv read (mixed precision; nil otherwise)
}

// projection is a Linear or a GroupedLinear.
type projection interface {
	RecordForward(r *gpu.Recorder)
	RecordBackward(r *gpu.Recorder)
	Release()
}

// layer holds one Mamba block's ops and the activations its backward needs.
type layer struct {
	norm                         *nn.RMSNorm
	inX, inZ, xpDt, xpB, xpC, dt projection
	out                          projection
	conv                         *nn.CausalConv1d
	scan                         *nn.SelectiveScan
	xn                           *nn.Tensor // (t, d) normed input
	x1, x2, z, delta, y          *nn.Tensor // (t, ed): conv input, conv output (u), gate, dt before softplus, scan output
	dtLow, bm, cm                *nn.Tensor // (t, r), (t, n), (t, n)
	f16                          halfLayer  // mixed precision: float16 copies of xn, x1, x2, dt_low, y (half.go)
}

// Model is a Mixture-of-Mamba (or, with no splits, dense Mamba) language
// model on the GPU, sized for one batch shape. Everything is allocated by
// NewModel; recording a step allocates nothing.
type Model struct {
	Cfg    Config
	B, L   int // batch size and sequence length
	T      int // tokens per batch, B·L
	Params []*Param
	byName map[string]*Param

	d        *gpu.Device
	routing  *nn.Routing
	embed    *nn.Embedding
	patchIn  *nn.Linear
	layers   []*layer
	normF    *nn.RMSNorm
	head     *nn.Linear
	xent     *nn.CrossEntropy
	patchOut *nn.Linear
	mse      *nn.MSE

	h       []*nn.Tensor // residual stream h[0..layers], (t, d)
	xf      *nn.Tensor   // (t, d) final normed
	logits  *nn.Tensor   // (t, v); the cross-entropy overwrites it with its gradient
	patches *nn.Tensor   // (t, p) noisy patches (Transfusion)
	noise   *nn.Tensor   // (t, p)
	pred    *nn.Tensor   // (t, p) predicted noise; then its gradient
	dpred   *nn.Tensor
	// gradients shared by all layers
	dh, dxf, dxn            *nn.Tensor // (t, d)
	embRows                 *nn.Tensor // dh as (T, d): the embedding's output gradient
	dy, du, ddelta, dz, dx1 *nn.Tensor // (t, ed)
	dB, dC                  *nn.Tensor // (t, n)
	ddtLow                  *nn.Tensor // (t, r)

	recompute  bool      // the backward recomputes x2 and delta (ModelOptions)
	deferEmbed bool      // the last backward stage leaves out the tied embedding's scatter (DeferEmbeddingBackward)
	f16        halfModel // mixed precision (half.go); the zero value in float32

	tensors []*nn.Tensor // every tensor made here, for Release
	scans   []*nn.SelectiveScan
	scratch *nn.Scratch // the split-K partial sums of every projection and the scans' backward workspace (they run in order)
}

// ModelOptions trade memory for time.
type ModelOptions struct {
	// Recompute keeps neither the conv output nor dt_proj's output of each
	// layer for the backward (two (t, ed) tensors per layer): the backward
	// recomputes them, as mamba_ssm's fused Mamba does, into one pair of
	// tensors shared by all layers. It costs a conv and a dt_proj forward
	// per layer; the numbers are the same.
	Recompute bool
	// Precision is the type of the copies of the weights and activations
	// that the GEMMs and the conv read: nn.F32 (the default) or nn.F16,
	// mixed precision (half.go; the adapter must offer shader-f16).
	Precision nn.DType
	// LossScale, in mixed precision, is the dynamic loss scale that the
	// backward multiplies the loss gradients by, and whose overflow flag
	// its casts raise (a trainer's; nil: unscaled). The model does not own
	// it.
	LossScale *nn.LossScale
}

// RecomputeSaves is the device memory ModelOptions.Recompute saves for
// batches of b sequences of length l: two (t, ed) tensors of every layer
// but one.
func (c Config) RecomputeSaves(b, l int) int64 {
	return int64(c.Layers-1) * 2 * int64(b*l) * int64(c.ED()) * 4
}

// NewModel allocates the model's parameters, activations and ops for batches
// of b sequences of length l.
func NewModel(d *gpu.Device, c Config, b, l int) (*Model, error) {
	return NewModelWith(d, c, b, l, ModelOptions{})
}

// NewModelWith is NewModel with options.
func NewModelWith(d *gpu.Device, c Config, b, l int, o ModelOptions) (_ *Model, err error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if b <= 0 || l <= 0 {
		return nil, fmt.Errorf("mom: batch %d x length %d must be positive", b, l)
	}
	if o.Precision != nn.F32 && o.Precision != nn.F16 {
		return nil, fmt.Errorf("mom: precision %s: want float32 or float16", o.Precision)
	}
	if err := CheckPrecision(d, o.Precision); err != nil {
		return nil, err
	}
	m := &Model{Cfg: c, B: b, L: l, T: b * l, d: d, byName: map[string]*Param{}, recompute: o.Recompute}
	m.f16 = halfModel{on: o.Precision == nn.F16, lossScale: o.LossScale}
	defer func() {
		if err != nil {
			m.Release()
		}
	}()
	T, D, E, N, R, V, G := m.T, c.DModel, c.ED(), c.DState, c.DtRank, c.Vocab, c.Groups()
	tenIn := func(cat gpu.MemCategory, name string, shape ...int) *nn.Tensor {
		if err != nil {
			return nil
		}
		var t *nn.Tensor
		t, err = nn.NewTensorIn(d, cat, name, shape...)
		if err == nil {
			m.tensors = append(m.tensors, t)
		}
		return t
	}
	ten := func(name string, shape ...int) *nn.Tensor { return tenIn(gpu.MemActivations, name, shape...) }
	for _, s := range c.ParamSpecs() {
		p := &Param{Spec: s, W: tenIn(gpu.MemParameters, s.Name, s.Shape...), G: tenIn(gpu.MemGradients, "grad."+s.Name, s.Shape...)}
		m.Params = append(m.Params, p)
		m.byName[s.Name] = p
	}
	for i := 0; i <= c.Layers; i++ {
		m.h = append(m.h, ten(fmt.Sprintf("h.%d", i), b, l, D))
	}
	m.xf, m.logits = ten("xf", b, l, D), ten("logits", b, l, V)
	m.dh, m.dxf, m.dxn = ten("dh", b, l, D), ten("dxf", b, l, D), ten("dxn", b, l, D)
	m.dy, m.du, m.ddelta, m.dz, m.dx1 = ten("dy", b, l, E), ten("du", b, l, E), ten("ddelta", b, l, E), ten("dz", b, l, E), ten("dx1", b, l, E)
	m.dB, m.dC, m.ddtLow = ten("dB", b, l, N), ten("dC", b, l, N), ten("ddt_low", b, l, R)
	if c.Continuous() {
		P := c.PatchDim
		m.patches, m.noise, m.pred, m.dpred = ten("patches", b, l, P), ten("noise", b, l, P), ten("pred", b, l, P), ten("dpred", b, l, P)
	}
	var x2, delta *nn.Tensor // shared by every layer when recomputed
	if o.Recompute {
		x2, delta = ten("x2.recomputed", b, l, E), ten("delta.recomputed", b, l, E)
	}
	// In mixed precision the float32 tensors that feed only GEMMs or the
	// conv (through their float16 copies) are shared by every layer.
	var xn, x1, dtLow, y *nn.Tensor
	if m.f16.on {
		xn, x1, dtLow, y = ten("xn.shared", b, l, D), ten("x1.shared", b, l, E), ten("dt_low.shared", b, l, R), ten("y.shared", b, l, E)
	}
	per := func(shared *nn.Tensor, name string, shape ...int) *nn.Tensor {
		if shared != nil {
			return shared
		}
		return ten(name, shape...)
	}
	for i := 0; i < c.Layers && err == nil; i++ {
		ly := &layer{
			xn: per(xn, fmt.Sprintf("l%d.xn", i), b, l, D),
			x1: per(x1, fmt.Sprintf("l%d.x1", i), b, l, E), x2: x2,
			z: ten(fmt.Sprintf("l%d.z", i), b, l, E), delta: delta,
			y:     per(y, fmt.Sprintf("l%d.y", i), b, l, E),
			dtLow: per(dtLow, fmt.Sprintf("l%d.dt_low", i), b, l, R),
			bm:    ten(fmt.Sprintf("l%d.B", i), b, l, N), cm: ten(fmt.Sprintf("l%d.C", i), b, l, N),
		}
		if !o.Recompute {
			ly.x2, ly.delta = ten(fmt.Sprintf("l%d.x2", i), b, l, E), ten(fmt.Sprintf("l%d.delta", i), b, l, E)
		}
		m.layers = append(m.layers, ly)
	}
	if err != nil {
		return nil, err
	}
	if m.f16.on {
		if err := m.allocHalf(); err != nil {
			return nil, err
		}
	}
	if !c.Splits.Dense() {
		if m.routing, err = nn.NewRouting(d, T, G); err != nil {
			return nil, err
		}
	}
	m.scratch = nn.NewScratch(d)
	m.reserveScratch()
	if err := m.build(); err != nil {
		return nil, err
	}
	if m.f16.on {
		if err := m.buildHalf(); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// reserveScratch sizes the shared split-K scratch for the largest of the
// projections build makes, so that it is allocated once.
func (m *Model) reserveScratch() {
	c, d := m.Cfg, m.d
	T, D, E, N, R, G := m.T, c.DModel, c.ED(), c.DState, c.DtRank, c.Groups()
	need := 0
	for _, p := range []struct {
		n, k        int
		bias, split bool
	}{
		{E, D, false, c.Splits.In}, {R, E, false, c.Splits.X}, {N, E, false, c.Splits.X},
		{E, R, true, c.Splits.Dt}, {D, E, false, c.Splits.Out}, {c.Vocab, D, false, false},
		{c.PatchDim, D, false, false}, {D, c.PatchDim, false, false},
	} {
		if p.n <= 0 || p.k <= 0 {
			continue
		}
		if p.split {
			need = max(need, nn.GroupedLinearScratch(d, T, G, p.n, p.k))
		} else {
			need = max(need, nn.LinearScratch(d, T, p.n, p.k, p.bias))
		}
	}
	need = max(need, nn.ScanWorkspace(d, m.B, m.L, E, N))
	m.scratch.Reserve(need)
}

// Param returns the parameter called name, or nil.
func (m *Model) Param(name string) *Param { return m.byName[name] }

// proj makes a projection: grouped over modalities when split, plain otherwise.
func (m *Model) proj(split bool, x, w, b, y, dy, dx, dw, db *nn.Tensor, accY, accDX bool) (projection, error) {
	if split {
		return nn.NewGroupedLinear(m.d, nn.GroupedLinearArgs{X: x, W: w, B: b, Y: y, DY: dy, DX: dx, DW: dw, DB: db,
			Routing: m.routing, AccumulateY: accY, AccumulateDX: accDX, Scratch: m.scratch})
	}
	return nn.NewLinear(m.d, nn.LinearArgs{X: x, W: w, B: b, Y: y, DY: dy, DX: dx, DW: dw, DB: db,
		AccumulateY: accY, AccumulateDX: accDX, Scratch: m.scratch})
}

func (m *Model) build() error {
	c, d := m.Cfg, m.d
	var err error
	P := func(name string) *Param { return m.byName[name] }
	h, wt := &m.f16, weight
	flat := func(t *nn.Tensor) *nn.Tensor { // (b, l, x) as (t, x)
		if err != nil || t == nil {
			return t
		}
		var v *nn.Tensor
		v, err = t.Reshape(m.T, t.Shape[len(t.Shape)-1])
		return v
	}
	emb := P(NameEmbed)
	h0, dh := flat(m.h[0]), flat(m.dh)
	m.embRows = dh
	logits := flat(m.logits)
	if err != nil {
		return err
	}
	if m.embed, err = nn.NewEmbedding(d, nn.EmbeddingArgs{E: emb.W, Out: h0, DOut: dh, DE: emb.G}); err != nil {
		return fmt.Errorf("mom: embedding: %w", err)
	}
	if c.Continuous() {
		pi := P(NamePatchIn)
		if m.patchIn, err = nn.NewLinear(d, nn.LinearArgs{X: in(m.patches, h.patches), W: wt(pi), Y: m.h[0], DY: in(m.dh, h.dh), DW: pi.G, AccumulateY: true,
			Scratch: m.scratch}); err != nil {
			return fmt.Errorf("mom: patch_in: %w", err)
		}
	}
	for i, ly := range m.layers {
		lp := func(name string) *Param { return m.byName[LayerParam(i, name)] }
		wrap := func(what string, e error) error { return fmt.Errorf("mom: layer %d %s: %w", i, what, e) }
		f := &ly.f16
		nw := lp("norm.weight")
		if ly.norm, err = nn.NewRMSNorm(d, nn.RMSNormArgs{X: m.h[i], W: nw.W, Y: ly.xn, DY: m.dxn, DX: m.dh, DW: nw.G,
			Eps: float32(c.Eps), AccumulateDX: true}); err != nil {
			return wrap("norm", err)
		}
		p := lp("mixer.in_proj_x.weight")
		if ly.inX, err = m.proj(c.Splits.In, in(ly.xn, f.xn), wt(p), nil, ly.x1, in(m.dx1, h.dx1), m.dxn, p.G, nil, false, false); err != nil {
			return wrap("in_proj x", err)
		}
		p = lp("mixer.in_proj_z.weight")
		if ly.inZ, err = m.proj(c.Splits.In, in(ly.xn, f.xn), wt(p), nil, ly.z, in(m.dz, h.dz), m.dxn, p.G, nil, false, true); err != nil {
			return wrap("in_proj z", err)
		}
		cw, cb := lp("mixer.conv1d.weight"), lp("mixer.conv1d.bias")
		if ly.conv, err = nn.NewCausalConv1d(d, nn.ConvArgs{Batch: m.B, Len: m.L, X: in(ly.x1, f.x1), W: wt(cw), Bias: cb.W, Y: ly.x2,
			DY: m.du, DX: m.dx1, DW: cw.G, DBias: cb.G, SiLU: true}); err != nil {
			return wrap("conv1d", err)
		}
		p = lp("mixer.x_proj_dt.weight")
		if ly.xpDt, err = m.proj(c.Splits.X, in(ly.x2, f.x2), wt(p), nil, ly.dtLow, in(m.ddtLow, h.ddtLow), m.du, p.G, nil, false, true); err != nil {
			return wrap("x_proj dt", err)
		}
		p = lp("mixer.x_proj_B.weight")
		if ly.xpB, err = m.proj(c.Splits.X, in(ly.x2, f.x2), wt(p), nil, ly.bm, in(m.dB, h.dB), m.du, p.G, nil, false, true); err != nil {
			return wrap("x_proj B", err)
		}
		p = lp("mixer.x_proj_C.weight")
		if ly.xpC, err = m.proj(c.Splits.X, in(ly.x2, f.x2), wt(p), nil, ly.cm, in(m.dC, h.dC), m.du, p.G, nil, false, true); err != nil {
			return wrap("x_proj C", err)
		}
		dw, db := lp("mixer.dt_proj.weight"), lp("mixer.dt_proj.bias")
		if ly.dt, err = m.proj(c.Splits.Dt, in(ly.dtLow, f.dtLow), wt(dw), db.W, ly.delta, in(m.ddelta, h.ddelta), m.ddtLow, dw.G, db.G, false, false); err != nil {
			return wrap("dt_proj", err)
		}
		al, dd := lp("mixer.A_log"), lp("mixer.D")
		if ly.scan, err = nn.NewSelectiveScan(d, nn.ScanArgs{Batch: m.B, Len: m.L, U: ly.x2, Delta: ly.delta, ALog: al.W,
			Bm: ly.bm, Cm: ly.cm, D: dd.W, Z: ly.z, Y: ly.y,
			DY: m.dy, DU: m.du, DDelta: m.ddelta, DALog: al.G, DB: m.dB, DC: m.dC, DD: dd.G, DZ: m.dz,
			Scratch: m.scratch}); err != nil {
			return wrap("selective scan", err)
		}
		m.scans = append(m.scans, ly.scan)
		p = lp("mixer.out_proj.weight")
		if ly.out, err = m.proj(c.Splits.Out, in(ly.y, f.y), wt(p), nil, m.h[i+1], in(m.dh, h.dh), m.dy, p.G, nil, true, false); err != nil {
			return wrap("out_proj", err)
		}
	}
	nf := P(NameNormF)
	if m.normF, err = nn.NewRMSNorm(d, nn.RMSNormArgs{X: m.h[c.Layers], W: nf.W, Y: m.xf, DY: m.dxf, DX: m.dh, DW: nf.G, Eps: float32(c.Eps)}); err != nil {
		return fmt.Errorf("mom: final norm: %w", err)
	}
	head := emb
	if !c.TieEmbeddings {
		head = P(NameHead)
	}
	if m.head, err = nn.NewLinear(d, nn.LinearArgs{X: in(m.xf, h.xf), W: wt(head), Y: m.logits, DY: in(m.logits, h.dlogits), DX: m.dxf, DW: head.G,
		Scratch: m.scratch}); err != nil {
		return fmt.Errorf("mom: head: %w", err)
	}
	if m.xent, err = nn.NewCrossEntropy(d, nn.CrossEntropyArgs{Logits: logits, DLogits: logits, Groups: c.Groups()}); err != nil {
		return fmt.Errorf("mom: cross-entropy: %w", err)
	}
	if c.Continuous() {
		po := P(NamePatchOut)
		if m.patchOut, err = nn.NewLinear(d, nn.LinearArgs{X: in(m.xf, h.xf), W: wt(po), Y: m.pred, DY: in(m.dpred, h.dpred), DX: m.dxf, DW: po.G, AccumulateDX: true,
			Scratch: m.scratch}); err != nil {
			return fmt.Errorf("mom: patch_out: %w", err)
		}
		pred, noise, dpred := flat(m.pred), flat(m.noise), flat(m.dpred)
		if err != nil {
			return err
		}
		if m.mse, err = nn.NewMSE(d, nn.MSEArgs{Pred: pred, Target: noise, DPred: dpred, Groups: c.Groups()}); err != nil {
			return fmt.Errorf("mom: diffusion loss: %w", err)
		}
	}
	return nil
}

// InitParams draws every parameter from its initialiser with seed and
// uploads it (see InitParamsProgress).
func (m *Model) InitParams(seed uint64) error { return m.InitParamsProgress(seed, nil) }

// InitParamsProgress draws every parameter with seed, block by block
// (InitParamBlock) on every core, straight into the device's transfer
// staging, and calls progress (if not nil) with the bytes done and the
// total after each piece.
func (m *Model) InitParamsProgress(seed uint64, progress func(done, total int64)) error {
	var total, done int64
	for _, p := range m.Params {
		total += p.W.Bytes()
	}
	for i, p := range m.Params {
		err := p.W.Buf.WriteWith(0, p.W.Bytes(), func(b []byte, pos int64) error {
			v := unsafe.Slice((*float32)(unsafe.Pointer(&b[0])), len(b)/4)
			initPiece(p.Spec, i, seed, v, int(pos/4))
			done += int64(len(b))
			if progress != nil {
				progress(done, total)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("mom: init %s: %w", p.Spec.Name, err)
		}
	}
	return nil
}

// initPiece draws the values first .. first+len(v) of parameter number
// index, its blocks spread over the cores.
func initPiece(s ParamSpec, index int, seed uint64, v []float32, first int) {
	k0, k1 := first/InitBlock, (first+len(v)+InitBlock-1)/InitBlock
	if k1-k0 == 1 && first == k0*InitBlock && first+len(v) == min(k1*InitBlock, s.Len()) {
		InitParamBlock(s, index, k0, seed, v) // one whole block
		return
	}
	var wg sync.WaitGroup
	next := make(chan int, k1-k0)
	for k := k0; k < k1; k++ {
		next <- k
	}
	close(next)
	for w := 0; w < min(runtime.GOMAXPROCS(0), k1-k0); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var tmp []float32
			for k := range next {
				lo, hi := k*InitBlock, min((k+1)*InitBlock, s.Len())
				if lo >= first && hi <= first+len(v) {
					InitParamBlock(s, index, k, seed, v[lo-first:hi-first])
					continue
				}
				// A block cut by the piece's edges: draw it whole, keep the part.
				if len(tmp) < hi-lo {
					tmp = make([]float32, hi-lo)
				}
				InitParamBlock(s, index, k, seed, tmp[:hi-lo])
				a, b := max(lo, first), min(hi, first+len(v))
				copy(v[a-first:b-first], tmp[a-lo:b-lo])
			}
		}()
	}
	wg.Wait()
}

// SetBatch uploads a batch (ids, routing table, targets, patches). accum is
// the number of micro-batches per optimizer step (the gradients average
// over them). Nothing is uploaded if the batch is invalid.
func (m *Model) SetBatch(b *Batch, accum int) error {
	if err := m.Cfg.ValidateBatch(b, m.T); err != nil {
		return err
	}
	return m.SetBatchShare(b, accum, 0)
}

// SetBatchShare uploads rows row0 .. row0+B-1 of a batch b that holds a
// multiple of B rows of L positions, with the loss weights of the whole of
// b: data-parallel ranks each upload their share of one global batch, and
// the sum of their gradients is the gradient of the whole batch's loss,
// the same as one process training on all of b. SetBatch is the share of
// a batch of exactly B rows. Nothing is uploaded if b is invalid.
func (m *Model) SetBatchShare(b *Batch, accum, row0 int) error {
	n := len(b.Inputs)
	if n == 0 || n%m.L != 0 || row0 < 0 || (row0+m.B)*m.L > n {
		return fmt.Errorf("mom: a batch of %d positions has no rows %d..%d of %d positions (the model holds %d rows)", n, row0, row0+m.B-1, m.L, m.B)
	}
	if err := m.Cfg.ValidateBatch(b, n); err != nil {
		return err
	}
	if accum < 1 {
		return fmt.Errorf("mom: accumulation steps %d must be at least 1", accum)
	}
	ce, mse, err := m.Cfg.LossWeights(b, accum)
	if err != nil {
		return err
	}
	lo, hi := row0*m.L, (row0+m.B)*m.L
	if err := m.embed.Update(b.Inputs[lo:hi]); err != nil {
		return err
	}
	if m.routing != nil {
		if err := m.routing.Update(b.Modality[lo:hi]); err != nil {
			return err
		}
	}
	if err := m.xent.Update(b.Targets[lo:hi], b.TargetModality[lo:hi], ce); err != nil {
		return err
	}
	if m.Cfg.Continuous() {
		P := m.Cfg.PatchDim
		if err := m.mse.Update(b.Modality[lo:hi], mse); err != nil {
			return err
		}
		if err := m.patches.Upload(b.NoisyPatches[lo*P : hi*P]); err != nil {
			return err
		}
		if err := m.noise.Upload(b.Noise[lo*P : hi*P]); err != nil {
			return err
		}
	}
	return nil
}

// RecordForward records the forward pass and the losses (whose kernels also
// write the loss gradients).
func (m *Model) RecordForward(r *gpu.Recorder) { m.RecordForwardWith(r, nil) }

// RecordBackward records the backward pass; parameter gradients accumulate.
// It is always the whole backward, with DeferEmbeddingBackward too.
func (m *Model) RecordBackward(r *gpu.Recorder) {
	for s := 0; s < m.BackwardStages(); s++ {
		m.RecordBackwardStage(r, s)
	}
	if m.deferEmbed {
		m.embed.RecordBackward(r)
	}
}

// DeferEmbeddingBackward is for data-parallel training with a token
// embedding tied to the head. From then on the last backward stage
// (RecordBackwardStage) leaves out the embedding's scatter of the gradient
// rows EmbeddingRows into the table's gradient, so that the table's
// gradient is final after stage 0 (the head's part; GradsFinishedBy says
// so) and can be summed over the ranks while the rest of the backward
// runs; the caller scatters every rank's rows into the summed gradient
// itself. RecordBackward still records the whole backward. It reports
// whether the model defers: false, and nothing changes, for an untied
// table.
func (m *Model) DeferEmbeddingBackward() bool {
	if !m.Cfg.TieEmbeddings {
		return false
	}
	m.deferEmbed = true
	return true
}

// EmbeddingRows is the gradient of the token embedding's output, (B*L, D),
// complete after the layer stages of the backward (after stage
// BackwardStages()-2): the rows the embedding's backward scatters into the
// table's gradient by token id.
func (m *Model) EmbeddingRows() *nn.Tensor { return m.embRows }

// BackwardStages is the number of parts the backward pass is recorded in
// by RecordBackwardStage: the head (with the final norm), each layer from
// the last to the first, then the embeddings.
func (m *Model) BackwardStages() int { return len(m.layers) + 2 }

// RecordBackwardStage records part s of the backward pass; recording the
// stages 0, 1, ... in order is RecordBackward. Between stages a caller may
// submit and read the gradients finished so far (GradsFinishedBy): the
// data-parallel trainer sends them to the other ranks while the GPU runs
// the later stages.
func (m *Model) RecordBackwardStage(r *gpu.Recorder, s int) {
	switch L := len(m.layers); {
	case s == 0:
		h := &m.f16
		rec(r, h.cDlogits)
		m.head.RecordBackward(r)
		if m.patchOut != nil {
			rec(r, h.cDpred)
			m.patchOut.RecordBackward(r)
		}
		m.normF.RecordBackward(r)
	case s <= L:
		ly, h := m.layers[L-s], &m.f16
		rec(r, h.cDh)
		ly.out.RecordBackward(r)
		if m.recompute {
			ly.conv.RecordForward(r)
			ly.dt.RecordForward(r)
		}
		ly.scan.RecordBackward(r)
		rec(r, h.cDdelta)
		ly.dt.RecordBackward(r)
		rec(r, h.cDdtLow)
		ly.xpDt.RecordBackward(r)
		rec(r, h.cDB)
		ly.xpB.RecordBackward(r)
		rec(r, h.cDC)
		ly.xpC.RecordBackward(r)
		ly.conv.RecordBackward(r)
		rec(r, h.cDx1)
		ly.inX.RecordBackward(r)
		rec(r, h.cDz)
		ly.inZ.RecordBackward(r)
		ly.norm.RecordBackward(r)
	case s == L+1:
		if !m.deferEmbed {
			m.embed.RecordBackward(r)
		}
		if m.patchIn != nil {
			rec(r, m.f16.cDh)
			m.patchIn.RecordBackward(r)
		}
	}
}

// GradsFinishedBy lists the parameters whose gradients backward stage s
// writes for the last time: after it they are final. Every parameter is
// listed by exactly one stage (a tied embedding, written by the head and by
// the embedding, by the last).
func (m *Model) GradsFinishedBy(s int) []*Param {
	last := map[*Param]int{}
	for st := 0; st < m.BackwardStages(); st++ {
		for _, p := range m.gradsWrittenBy(st) {
			last[p] = st
		}
	}
	var out []*Param
	for _, p := range m.Params {
		if st, ok := last[p]; ok && st == s {
			out = append(out, p)
		}
	}
	return out
}

// gradsWrittenBy lists the parameters whose gradients stage s writes.
func (m *Model) gradsWrittenBy(s int) []*Param {
	c := m.Cfg
	var names []string
	switch L := len(m.layers); {
	case s == 0:
		names = []string{NameNormF}
		if c.TieEmbeddings {
			names = append(names, NameEmbed)
		} else {
			names = append(names, NameHead)
		}
		if c.Continuous() {
			names = append(names, NamePatchOut)
		}
	case s <= L:
		prefix := LayerParam(L-s, "")
		for _, p := range m.Params {
			if strings.HasPrefix(p.Spec.Name, prefix) {
				names = append(names, p.Spec.Name)
			}
		}
	case s == L+1:
		if !m.deferEmbed {
			names = append(names, NameEmbed)
		}
		if c.Continuous() {
			names = append(names, NamePatchIn)
		}
	}
	out := make([]*Param, 0, len(names))
	for _, n := range names {
		if p := m.byName[n]; p != nil {
			out = append(out, p)
		}
	}
	return out
}

// RecordZeroGrads records zeroing every parameter gradient.
func (m *Model) RecordZeroGrads(r *gpu.Recorder) {
	for _, p := range m.Params {
		r.Clear(p.G.Buf, 0, p.G.Bytes())
	}
}

// RecordLosses records copying the batch's loss sums and counts into dst at
// byte offset off (Config.LossSlots floats), for a readback that does not stall.
func (m *Model) RecordLosses(r *gpu.Recorder, dst *gpu.Buffer, off int64) {
	G := int64(m.Cfg.Groups()) * 4
	r.Copy(m.xent.LossSums().Buf, 0, dst, off, G)
	r.Copy(m.xent.Counts().Buf, 0, dst, off+G, G)
	if m.mse != nil {
		r.Copy(m.mse.LossSums().Buf, 0, dst, off+2*G, G)
		r.Copy(m.mse.Counts().Buf, 0, dst, off+3*G, G)
	} else {
		r.Clear(dst, off+2*G, 2*G)
	}
}

// Release frees everything the model made on the device: every op's bind
// groups and own buffers, the routing tables, the shared split-K scratch
// and every tensor. Releasing twice is harmless.
func (m *Model) Release() {
	rel := func(r interface{ Release() }) {
		if r != nil && !reflect.ValueOf(r).IsNil() {
			r.Release()
		}
	}
	m.releaseHalf()
	rel(m.embed)
	rel(m.patchIn)
	for _, ly := range m.layers {
		for _, p := range []projection{ly.inX, ly.inZ, ly.xpDt, ly.xpB, ly.xpC, ly.dt, ly.out} {
			rel(p)
		}
		rel(ly.norm)
		rel(ly.conv)
	}
	for _, s := range m.scans {
		s.Release()
	}
	rel(m.normF)
	rel(m.head)
	rel(m.xent)
	rel(m.patchOut)
	rel(m.mse)
	rel(m.routing)
	m.scratch.Release()
	for _, t := range m.tensors {
		t.Release()
	}
	m.tensors, m.scans, m.layers = nil, nil, nil
	m.embed, m.patchIn, m.normF, m.head, m.xent, m.patchOut, m.mse, m.routing, m.scratch = nil, nil, nil, nil, nil, nil, nil, nil, nil
}
