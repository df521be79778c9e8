package mom

import (
	"fmt"

	"mom/gpu"
	"mom/nn"
)

// Mixed precision (ModelOptions.Precision nn.F16): the GEMMs and the conv
// read float16 copies of their weights and their activations, made by
// nn.Cast, and accumulate in float32; everything else stays float32: the
// master weights and their gradients, the residual stream, the norms, the
// scan's inputs and state, the losses. In the backward, the gradient that
// enters each GEMM (dY) is cast to float16 too; the loss gradients are
// multiplied by the dynamic loss scale as they are (ModelOptions.LossScale),
// so that every parameter gradient carries it, and every backward cast
// raises the loss scale's overflow flag where a value leaves the float16
// range. The casts, in recording order:
//
//	forward:  every GEMM and conv weight W -> W16 (at the start: the masters
//	          changed since the last forward, by the optimizer or a load)
//	          patches -> patches16 (patch_in); per layer xn -> xn16 (in_proj),
//	          x1 -> x1_16 (conv), x2 -> x2_16 (x_proj), dt_low -> dt_low16
//	          (dt_proj), y -> y16 (out_proj); xf -> xf16 (head, patch_out)
//	backward: dlogits, dpred -> times the loss scale -> 16; per layer dh
//	          (out_proj), ddelta (dt_proj), ddt_low, dB, dC (x_proj), dx1,
//	          dz (in_proj) -> 16; dh -> 16 again for patch_in
//
// Where a float32 activation feeds nothing but GEMMs or the conv (xn, x1,
// dt_low, y), the float16 copy is what the backward keeps, and one float32
// tensor serves every layer.

// halfLayer is one layer's float16 activations and the casts that make
// them (all nil in float32).
type halfLayer struct {
	xn, x1, x2, dtLow, y      *nn.Tensor // float16 copies, (t, d), (t, ed) x2, (t, r), (t, ed)
	cXn, cX1, cX2, cDtLow, cY *nn.Cast
}

// halfModel is the model-wide float16 side (the zero value in float32).
type halfModel struct {
	on        bool
	lossScale *nn.LossScale // nil: the loss gradients are not scaled
	weights   *nn.Cast      // every Param.H from its W
	xf        *nn.Tensor    // (t, d) the head's and patch_out's input
	patches   *nn.Tensor    // (t, p) patch_in's input
	cXf       *nn.Cast
	cPatches  *nn.Cast
	// The gradients that enter a GEMM's backward, shared by every layer:
	// dlogits (t, v), dpred (t, p), dh (t, d), ddelta, dx1, dz (t, ed),
	// ddtLow (t, r), dB, dC (t, n).
	dlogits, dpred, dh, ddelta, ddtLow, dB, dC, dx1, dz          *nn.Tensor
	cDlogits, cDpred, cDh, cDdelta, cDdtLow, cDB, cDC, cDx1, cDz *nn.Cast
}

// CheckPrecision returns an error unless d can train in precision p
// (float16 needs the shader-f16 feature): run it before anything is
// written.
func CheckPrecision(d *gpu.Device, p nn.DType) error {
	if p == nn.F16 && !d.Has(gpu.FeatureShaderF16) {
		return fmt.Errorf("mom: --precision f16 needs the WebGPU feature %s, which %s does not offer "+
			"(Dawn refuses it on NVIDIA GPUs; wgpu-native offers it there, as lavapipe and Metal do): use --precision f32, or --runtime wgpu",
			gpu.FeatureShaderF16, d)
	}
	return nil
}

// ParsePrecision reads "f32" or "f16" (also "float32", "float16"; "" is
// f32).
func ParsePrecision(s string) (nn.DType, error) {
	switch s {
	case "", "f32", "float32", "fp32":
		return nn.F32, nil
	case "f16", "float16", "fp16":
		return nn.F16, nil
	}
	return nn.F32, fmt.Errorf("precision %q: want f32 or f16", s)
}

// rec records c if there is one (float32 has none).
func rec(r *gpu.Recorder, c *nn.Cast) {
	if c != nil {
		c.Record(r)
	}
}

// in returns the tensor a GEMM or the conv reads: the float16 copy when
// there is one.
func in(t32, t16 *nn.Tensor) *nn.Tensor {
	if t16 != nil {
		return t16
	}
	return t32
}

// ten16 allocates a float16 tensor owned by the model.
func (m *Model) ten16(cat gpu.MemCategory, name string, shape ...int) (*nn.Tensor, error) {
	t, err := nn.NewTensorOf(m.d, cat, nn.F16, name, shape...)
	if err != nil {
		return nil, err
	}
	m.tensors = append(m.tensors, t)
	return t, nil
}

// weight returns the tensor a GEMM or the conv reads for p: its float16
// copy in mixed precision, else W.
func weight(p *Param) *nn.Tensor { return in(p.W, p.H) }

// gemmWeights names the parameters that the GEMMs and the conv read: those
// that get a float16 copy.
func (c Config) gemmWeights() []string {
	var out []string
	for i := 0; i < c.Layers; i++ {
		for _, n := range []string{"mixer.in_proj_x.weight", "mixer.in_proj_z.weight", "mixer.conv1d.weight", "mixer.x_proj_dt.weight",
			"mixer.x_proj_B.weight", "mixer.x_proj_C.weight", "mixer.dt_proj.weight", "mixer.out_proj.weight"} {
			out = append(out, LayerParam(i, n))
		}
	}
	if c.TieEmbeddings {
		out = append(out, NameEmbed)
	} else {
		out = append(out, NameHead)
	}
	if c.Continuous() {
		out = append(out, NamePatchIn, NamePatchOut)
	}
	return out
}

// allocHalf allocates the float16 weights, activations and gradients
// (before build).
func (m *Model) allocHalf() error {
	c := m.Cfg
	b, l, D, E, N, R := m.B, m.L, c.DModel, c.ED(), c.DState, c.DtRank
	h := &m.f16
	for _, name := range c.gemmWeights() {
		p := m.byName[name]
		if p == nil {
			return fmt.Errorf("mom: mixed precision: no parameter %s", name)
		}
		var err error
		if p.H, err = m.ten16(gpu.MemParameters, "f16."+name, p.Spec.Shape...); err != nil {
			return err
		}
	}
	var err error
	ten := func(name string, shape ...int) *nn.Tensor {
		if err != nil {
			return nil
		}
		var t *nn.Tensor
		t, err = m.ten16(gpu.MemActivations, name, shape...)
		return t
	}
	for i, ly := range m.layers {
		f := &ly.f16
		f.xn, f.x1, f.x2 = ten(fmt.Sprintf("l%d.xn.f16", i), b, l, D), ten(fmt.Sprintf("l%d.x1.f16", i), b, l, E), ten(fmt.Sprintf("l%d.x2.f16", i), b, l, E)
		f.dtLow, f.y = ten(fmt.Sprintf("l%d.dt_low.f16", i), b, l, R), ten(fmt.Sprintf("l%d.y.f16", i), b, l, E)
	}
	h.xf = ten("xf.f16", b, l, D)
	h.dlogits = ten("dlogits.f16", b, l, c.Vocab)
	h.dh, h.ddelta, h.dx1, h.dz = ten("dh.f16", b, l, D), ten("ddelta.f16", b, l, E), ten("dx1.f16", b, l, E), ten("dz.f16", b, l, E)
	h.ddtLow, h.dB, h.dC = ten("ddt_low.f16", b, l, R), ten("dB.f16", b, l, N), ten("dC.f16", b, l, N)
	if c.Continuous() {
		h.patches, h.dpred = ten("patches.f16", b, l, c.PatchDim), ten("dpred.f16", b, l, c.PatchDim)
	}
	return err
}

// buildHalf makes the casts (after build, which made the weights' copies).
func (m *Model) buildHalf() error {
	h := &m.f16
	var err error
	cast := func(what string, src, dst *nn.Tensor, scaled, flag bool) *nn.Cast {
		if err != nil || src == nil {
			return nil
		}
		a := nn.CastArgs{Src: []*nn.Tensor{src}, Dst: []*nn.Tensor{dst}}
		if h.lossScale != nil && scaled {
			a.Scale = h.lossScale.State()
		}
		if h.lossScale != nil && flag {
			a.Overflow = h.lossScale.Overflow()
		}
		var c *nn.Cast
		if c, err = nn.NewCast(m.d, a); err != nil {
			err = fmt.Errorf("mom: float16 copy of %s: %w", what, err)
		}
		return c
	}
	var ws, hs []*nn.Tensor
	for _, p := range m.Params {
		if p.H != nil {
			ws, hs = append(ws, p.W), append(hs, p.H)
		}
	}
	if h.weights, err = nn.NewCast(m.d, nn.CastArgs{Src: ws, Dst: hs}); err != nil {
		return fmt.Errorf("mom: float16 copies of the weights: %w", err)
	}
	for i, ly := range m.layers {
		f := &ly.f16
		f.cXn = cast(fmt.Sprintf("layer %d xn", i), ly.xn, f.xn, false, false)
		f.cX1 = cast(fmt.Sprintf("layer %d x1", i), ly.x1, f.x1, false, false)
		f.cX2 = cast(fmt.Sprintf("layer %d x2", i), ly.x2, f.x2, false, false)
		f.cDtLow = cast(fmt.Sprintf("layer %d dt_low", i), ly.dtLow, f.dtLow, false, false)
		f.cY = cast(fmt.Sprintf("layer %d y", i), ly.y, f.y, false, false)
	}
	h.cXf = cast("xf", m.xf, h.xf, false, false)
	h.cPatches = cast("patches", m.patches, h.patches, false, false)
	h.cDlogits = cast("dlogits", m.logits, h.dlogits, true, true)
	h.cDpred = cast("dpred", m.dpred, h.dpred, true, true)
	h.cDh = cast("dh", m.dh, h.dh, false, true)
	h.cDdelta = cast("ddelta", m.ddelta, h.ddelta, false, true)
	h.cDdtLow = cast("ddt_low", m.ddtLow, h.ddtLow, false, true)
	h.cDB = cast("dB", m.dB, h.dB, false, true)
	h.cDC = cast("dC", m.dC, h.dC, false, true)
	h.cDx1 = cast("dx1", m.dx1, h.dx1, false, true)
	h.cDz = cast("dz", m.dz, h.dz, false, true)
	return err
}

// releaseHalf frees the casts (the tensors are among m.tensors).
func (m *Model) releaseHalf() {
	h := &m.f16
	for _, c := range []*nn.Cast{h.weights, h.cXf, h.cPatches, h.cDlogits, h.cDpred, h.cDh, h.cDdelta, h.cDdtLow, h.cDB, h.cDC, h.cDx1, h.cDz} {
		c.Release()
	}
	for _, ly := range m.layers {
		f := &ly.f16
		for _, c := range []*nn.Cast{f.cXn, f.cX1, f.cX2, f.cDtLow, f.cY} {
			c.Release()
		}
		ly.f16 = halfLayer{}
	}
	m.f16 = halfModel{}
}

// Precision is the type of the copies the GEMMs and the conv read.
func (m *Model) Precision() nn.DType {
	if m.f16.on {
		return nn.F16
	}
	return nn.F32
}

// LossScale is the dynamic loss scale the model's backward multiplies the
// loss gradients by (ModelOptions.LossScale), or nil.
func (m *Model) LossScale() *nn.LossScale { return m.f16.lossScale }
