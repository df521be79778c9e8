package nn

import (
	"fmt"
	"math"

	"mom/gpu"
	"mom/shaders"
)

// AdamWArgs configures an AdamW optimizer over parallel lists of parameters,
// gradients and moments.
type AdamWArgs struct {
	Params, Grads, M, V []*Tensor // parallel lists; M and V zero-initialised by the caller
	Decay               []bool    // weight decay per parameter (false for norms, biases, A_log, D)
	ClipScale           *Tensor   // (1) from GradNorm, or nil for no clipping; 0 on the device skips the step

	Beta1, Beta2, Eps, WeightDecay float32
}

// AdamW is AdamW with decoupled weight decay: per parameter,
//
//	g = grad·scale; m = b1·m + (1−b1)·g; v = b2·v + (1−b2)·g²
//	p -= lr·( (m/(1−b1^t)) / (sqrt(v/(1−b2^t)) + eps) + wd·p )
//
// recorded as one dispatch per parameter (per binding-sized range of a large
// one). The learning rate and bias corrections live in a small device buffer
// written by SetStep, so a recorded step needs no new pipelines. A clip
// scale of exactly 0 (GradNorm's with a loss scale, at an overflow) skips
// the update on the device: parameters and moments stay as they are.
type AdamW struct {
	a    AdamWArgs
	ds   []elemDispatch
	hp   *Tensor // (3) lr, 1-b1^t, 1-b2^t
	ones *Tensor // (1) the scale when ClipScale is nil
}

// NewAdamW checks the lists and shapes and builds the per-parameter
// dispatches.
func NewAdamW(d *gpu.Device, a AdamWArgs) (*AdamW, error) {
	n := len(a.Params)
	if n == 0 {
		return nil, fmt.Errorf("nn: adamw: no parameters")
	}
	if len(a.Grads) != n || len(a.M) != n || len(a.V) != n || len(a.Decay) != n {
		return nil, fmt.Errorf("nn: adamw: list lengths differ: %d params, %d grads, %d m, %d v, %d decay flags",
			n, len(a.Grads), len(a.M), len(a.V), len(a.Decay))
	}
	for _, h := range []struct {
		name string
		v    float32
		ok   bool
	}{
		{"beta1", a.Beta1, a.Beta1 >= 0 && a.Beta1 < 1},
		{"beta2", a.Beta2, a.Beta2 >= 0 && a.Beta2 < 1},
		{"eps", a.Eps, a.Eps > 0 && finiteF32(a.Eps)},
		{"weight decay", a.WeightDecay, a.WeightDecay >= 0 && finiteF32(a.WeightDecay)},
	} {
		if !h.ok {
			return nil, fmt.Errorf("nn: adamw: %s %g out of range", h.name, h.v)
		}
	}
	if a.ClipScale != nil {
		if err := CheckShape("adamw clip scale", a.ClipScale, 1); err != nil {
			return nil, err
		}
	}
	owner := map[*gpu.Buffer]string{}
	for i := 0; i < n; i++ {
		p := a.Params[i]
		if p == nil {
			return nil, fmt.Errorf("nn: adamw: parameter %d is nil", i)
		}
		for _, x := range []struct {
			what string
			t    *Tensor
		}{{"gradient", a.Grads[i]}, {"m", a.M[i]}, {"v", a.V[i]}} {
			if x.t == nil {
				return nil, fmt.Errorf("nn: adamw: %s of parameter %d (%s) is nil", x.what, i, p.Name)
			}
			if err := CheckShape("adamw "+x.what+" of "+p.Name, x.t, p.Shape...); err != nil {
				return nil, err
			}
		}
		for _, t := range []*Tensor{p, a.Grads[i], a.M[i], a.V[i]} {
			if prev, ok := owner[t.Buf]; ok {
				return nil, fmt.Errorf("nn: adamw: %s shares its buffer with %s", t.Name, prev)
			}
			owner[t.Buf] = t.Name
		}
	}
	o := &AdamW{a: a}
	var err error
	fail := func(e error) (*AdamW, error) {
		o.Release()
		return nil, e
	}
	if o.hp, err = NewTensor(d, "adamw.step", 3); err != nil {
		return fail(err)
	}
	if err := o.hp.Upload([]float32{0, 1, 1}); err != nil { // lr 0 until SetStep
		return fail(err)
	}
	scale := a.ClipScale
	if scale == nil {
		if o.ones, err = NewTensor(d, "adamw.ones", 1); err != nil {
			return fail(err)
		}
		if err := o.ones.Upload([]float32{1}); err != nil {
			return fail(err)
		}
		scale = o.ones
	}
	for i, p := range a.Params {
		wd := 0.0
		if a.Decay[i] {
			wd = float64(a.WeightDecay)
		}
		c := gpu.Constants{"BETA1": float64(a.Beta1), "BETA2": float64(a.Beta2), "EPS": float64(a.Eps), "WD": wd}
		for _, s := range elemSpans(d, p.Len()) {
			k, per := shaders.AdamW, 1
			if s.n%4 == 0 {
				k, per = shaders.AdamW4, 4
			}
			pl, err := Pipeline(d, k, c)
			if err != nil {
				return fail(fmt.Errorf("nn: adamw: %w", err))
			}
			g, err := d.BindGroup(pl, spanBinding(p, s), spanBinding(a.Grads[i], s), spanBinding(a.M[i], s),
				spanBinding(a.V[i], s), gpu.Buf(o.hp.Buf), gpu.Buf(scale.Buf))
			if err != nil {
				return fail(fmt.Errorf("nn: adamw of %s %v: %w", p.Name, p.Shape, err))
			}
			x, y := Grid(d, CeilDiv(s.n/per, 256))
			o.ds = append(o.ds, elemDispatch{g, x, y})
		}
	}
	return o, nil
}

// SetStep writes the learning rate and the bias corrections of step (counted
// from 1) to the device; call it before submitting the step that records
// the update.
func (o *AdamW) SetStep(lr float32, step int) error {
	if step < 1 {
		return fmt.Errorf("nn: adamw: step %d (steps count from 1)", step)
	}
	if !finiteF32(lr) || lr < 0 {
		return fmt.Errorf("nn: adamw: learning rate %g is not a finite non-negative number", lr)
	}
	bc1 := 1 - math.Pow(float64(o.a.Beta1), float64(step))
	bc2 := 1 - math.Pow(float64(o.a.Beta2), float64(step))
	if bc1 <= 0 || bc2 <= 0 || float32(bc1) == 0 || float32(bc2) == 0 {
		return fmt.Errorf("nn: adamw: bias corrections 1-beta^t (%g, %g) vanish at step %d", bc1, bc2, step)
	}
	if err := o.hp.Upload([]float32{lr, float32(bc1), float32(bc2)}); err != nil {
		return fmt.Errorf("nn: adamw: %w", err)
	}
	return nil
}

// Record records the update of every parameter. Until the first SetStep the
// learning rate on the device is 0: the moments move, the parameters do not.
func (o *AdamW) Record(r *gpu.Recorder) {
	for _, x := range o.ds {
		r.Dispatch(x.g, x.x, x.y, 1)
	}
}

// Release frees the optimizer's own buffers.
func (o *AdamW) Release() {
	releaseDispatches(o.ds)
	o.ds = nil
	releaseTensors([]*Tensor{o.hp, o.ones})
	o.hp, o.ones = nil, nil
}
