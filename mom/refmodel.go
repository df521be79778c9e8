package mom

import (
	"fmt"

	"mom/nn/ref"
)

// RefStep runs one forward and backward pass of the model on the CPU in
// float64, composed from the reference twins in nn/ref, in the same order
// as the GPU model. params maps parameter names to values; it returns the
// loss record (Config.LossSlots values, as the GPU's RecordLosses) and the
// gradient of every parameter. It is the truth the GPU model is tested
// against, and slow: for tiny configs only.
func RefStep(c Config, params map[string][]float64, b *Batch, B, L, accum int) (losses []float64, grads map[string][]float64, err error) {
	if err := c.Validate(); err != nil {
		return nil, nil, err
	}
	T := B * L
	if err := c.ValidateBatch(b, T); err != nil {
		return nil, nil, err
	}
	ceW32, mseW32, err := c.LossWeights(b, accum)
	if err != nil {
		return nil, nil, err
	}
	ceW, mseW := widen(ceW32), widen(mseW32)
	specs := c.ParamSpecs()
	grads = map[string][]float64{}
	for _, s := range specs {
		p, ok := params[s.Name]
		if !ok || len(p) != s.Len() {
			return nil, nil, fmt.Errorf("mom: reference step: parameter %s has %d values, want %d", s.Name, len(p), s.Len())
		}
		grads[s.Name] = make([]float64, s.Len())
	}
	D, E, N, R, K, V, G, P := c.DModel, c.ED(), c.DState, c.DtRank, c.DConv, c.Vocab, c.Groups(), c.PatchDim
	eps := c.Eps
	mk := func(n int) []float64 { return make([]float64, n) }
	lp := func(i int, name string) string { return LayerParam(i, name) }
	// proj runs a projection: grouped by input modality when split.
	proj := func(split bool, y, x, w, bias []float64, rows, n, k int, acc bool) {
		if split {
			ref.GroupedLinear(y, x, w, bias, b.Modality, rows, G, n, k, acc)
		} else {
			ref.Linear(y, x, w, bias, rows, n, k, acc)
		}
	}
	projBack := func(split bool, dx, dw, db, dy, x, w []float64, rows, n, k int, accDX bool) {
		if split {
			ref.GroupedLinearBackward(dx, dw, db, dy, x, w, b.Modality, rows, G, n, k, accDX)
		} else {
			ref.LinearBackward(dx, dw, db, dy, x, w, rows, n, k, accDX)
		}
	}
	type acts struct {
		xn, rstd, x1, x2, z, delta, y, dtLow, bm, cm []float64
	}
	h := make([][]float64, c.Layers+1)
	h[0] = mk(T * D)
	ref.Embedding(h[0], params[NameEmbed], b.Inputs, T, D)
	var patches []float64
	if c.Continuous() {
		patches = widen(b.NoisyPatches)
		ref.Linear(h[0], patches, params[NamePatchIn], nil, T, D, P, true)
	}
	as := make([]acts, c.Layers)
	for i := 0; i < c.Layers; i++ {
		a := acts{xn: mk(T * D), rstd: mk(T), x1: mk(T * E), x2: mk(T * E), z: mk(T * E), delta: mk(T * E), y: mk(T * E),
			dtLow: mk(T * R), bm: mk(T * N), cm: mk(T * N)}
		ref.RMSNorm(a.xn, a.rstd, h[i], params[lp(i, "norm.weight")], T, D, eps)
		proj(c.Splits.In, a.x1, a.xn, params[lp(i, "mixer.in_proj_x.weight")], nil, T, E, D, false)
		proj(c.Splits.In, a.z, a.xn, params[lp(i, "mixer.in_proj_z.weight")], nil, T, E, D, false)
		ref.CausalConv1d(a.x2, a.x1, params[lp(i, "mixer.conv1d.weight")], params[lp(i, "mixer.conv1d.bias")], B, L, E, K, true)
		proj(c.Splits.X, a.dtLow, a.x2, params[lp(i, "mixer.x_proj_dt.weight")], nil, T, R, E, false)
		proj(c.Splits.X, a.bm, a.x2, params[lp(i, "mixer.x_proj_B.weight")], nil, T, N, E, false)
		proj(c.Splits.X, a.cm, a.x2, params[lp(i, "mixer.x_proj_C.weight")], nil, T, N, E, false)
		proj(c.Splits.Dt, a.delta, a.dtLow, params[lp(i, "mixer.dt_proj.weight")], params[lp(i, "mixer.dt_proj.bias")], T, E, R, false)
		ref.SelectiveScan(a.y, a.x2, a.delta, params[lp(i, "mixer.A_log")], a.bm, a.cm, params[lp(i, "mixer.D")], a.z, B, L, E, N)
		h[i+1] = append([]float64(nil), h[i]...)
		proj(c.Splits.Out, h[i+1], a.y, params[lp(i, "mixer.out_proj.weight")], nil, T, D, E, true)
		as[i] = a
	}
	xf, rstdF := mk(T*D), mk(T)
	ref.RMSNorm(xf, rstdF, h[c.Layers], params[NameNormF], T, D, eps)
	headName := NameEmbed
	if !c.TieEmbeddings {
		headName = NameHead
	}
	logits := mk(T * V)
	ref.Linear(logits, xf, params[headName], nil, T, V, D, false)
	losses = mk(4 * G)
	dlogits := mk(T * V)
	ref.CrossEntropy(dlogits, mk(T), losses[:G], losses[G:2*G], logits, b.Targets, b.TargetModality, ceW, T, V, G)
	var pred, dpred []float64
	if c.Continuous() {
		pred, dpred = mk(T*P), mk(T*P)
		ref.Linear(pred, xf, params[NamePatchOut], nil, T, P, D, false)
		ref.MSE(dpred, mk(T), losses[2*G:3*G], losses[3*G:], pred, widen(b.Noise), b.Modality, mseW, T, P, G)
	}

	// Backward, in the GPU model's order.
	dxf := mk(T * D)
	ref.LinearBackward(dxf, grads[headName], nil, dlogits, xf, params[headName], T, V, D, false)
	if c.Continuous() {
		ref.LinearBackward(dxf, grads[NamePatchOut], nil, dpred, xf, params[NamePatchOut], T, P, D, true)
	}
	dh := mk(T * D)
	ref.RMSNormBackward(dh, grads[NameNormF], dxf, h[c.Layers], params[NameNormF], T, D, eps, false)
	dy, du, ddelta, dz, dx1 := mk(T*E), mk(T*E), mk(T*E), mk(T*E), mk(T*E)
	dB, dC, ddtLow, dxn := mk(T*N), mk(T*N), mk(T*R), mk(T*D)
	for i := c.Layers - 1; i >= 0; i-- {
		a := as[i]
		g := func(name string) []float64 { return grads[lp(i, name)] }
		pp := func(name string) []float64 { return params[lp(i, name)] }
		projBack(c.Splits.Out, dy, g("mixer.out_proj.weight"), nil, dh, a.y, pp("mixer.out_proj.weight"), T, D, E, false)
		ref.SelectiveScanBackward(du, ddelta, g("mixer.A_log"), dB, dC, g("mixer.D"), dz, dy,
			a.x2, a.delta, pp("mixer.A_log"), a.bm, a.cm, pp("mixer.D"), a.z, B, L, E, N)
		projBack(c.Splits.Dt, ddtLow, g("mixer.dt_proj.weight"), g("mixer.dt_proj.bias"), ddelta, a.dtLow, pp("mixer.dt_proj.weight"), T, E, R, false)
		projBack(c.Splits.X, du, g("mixer.x_proj_dt.weight"), nil, ddtLow, a.x2, pp("mixer.x_proj_dt.weight"), T, R, E, true)
		projBack(c.Splits.X, du, g("mixer.x_proj_B.weight"), nil, dB, a.x2, pp("mixer.x_proj_B.weight"), T, N, E, true)
		projBack(c.Splits.X, du, g("mixer.x_proj_C.weight"), nil, dC, a.x2, pp("mixer.x_proj_C.weight"), T, N, E, true)
		ref.CausalConv1dBackward(dx1, g("mixer.conv1d.weight"), g("mixer.conv1d.bias"), du, a.x1, pp("mixer.conv1d.weight"), pp("mixer.conv1d.bias"), B, L, E, K, true)
		projBack(c.Splits.In, dxn, g("mixer.in_proj_x.weight"), nil, dx1, a.xn, pp("mixer.in_proj_x.weight"), T, E, D, false)
		projBack(c.Splits.In, dxn, g("mixer.in_proj_z.weight"), nil, dz, a.xn, pp("mixer.in_proj_z.weight"), T, E, D, true)
		ref.RMSNormBackward(dh, g("norm.weight"), dxn, h[i], pp("norm.weight"), T, D, eps, true)
	}
	ref.EmbeddingBackward(grads[NameEmbed], dh, b.Inputs, T, D)
	if c.Continuous() {
		ref.LinearBackward(nil, grads[NamePatchIn], nil, dh, patches, params[NamePatchIn], T, D, P, false)
	}
	return losses, grads, nil
}

func widen(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

// RefLoss is the total loss of RefStep's loss record (the quantity whose
// gradient RefStep returns, up to the accumulation factor).
func RefLoss(c Config, b *Batch, losses []float64) float64 {
	ce, mse, err := c.LossWeights(b, 1)
	if err != nil {
		return 0
	}
	G := c.Groups()
	var total float64
	for g := 0; g < G; g++ {
		total += float64(ce[g])*losses[g] + float64(mse[g])*losses[2*G+g]
	}
	return total
}
