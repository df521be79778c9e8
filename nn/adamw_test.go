package nn_test

import (
	"fmt"
	"math/rand"
	"testing"

	"mom/gpu"
	"mom/nn"
	"mom/nn/internal/ktest"
	"mom/nn/ref"
)

func TestAdamW(t *testing.T) {
	ktest.ForEachDevice(t, func(t *testing.T, d *gpu.Device) {
		rng := rand.New(rand.NewSource(30))
		for _, c := range []struct {
			sizes []int
			decay []bool
			clip  float32 // 0: no clip tensor
			limit uint64
		}{
			{[]int{1, 3, 4, 257, 1024}, []bool{true, false, true, false, true}, 0, 0},
			{[]int{64, 63, 65, 2049}, []bool{false, true, true, false}, 0.37, 0}, // clip scale < 1
			{[]int{1000, 1001}, []bool{true, false}, 0.5, 1024},                  // bound in ranges
		} {
			t.Run(fmt.Sprint(c.sizes, c.clip, c.limit), func(t *testing.T) {
				run := func() {
					const b1, b2, eps, wd = 0.9, 0.95, 1e-8, 0.1
					a := nn.AdamWArgs{Decay: c.decay, Beta1: b1, Beta2: b2, Eps: eps, WeightDecay: wd}
					var p, m, v [][]float64
					var gs [][]float32
					for i, n := range c.sizes {
						pv := ktest.Rand(rng, n, 1)
						a.Params = append(a.Params, ktest.Tensor(t, d, fmt.Sprintf("p%d", i), pv, n))
						gt := ktest.Tensor(t, d, "g", nil, n)
						a.Grads = append(a.Grads, gt)
						a.M = append(a.M, ktest.Tensor(t, d, "m", make([]float32, n), n))
						a.V = append(a.V, ktest.Tensor(t, d, "v", make([]float32, n), n))
						p = append(p, ktest.F64(pv))
						m = append(m, make([]float64, n))
						v = append(v, make([]float64, n))
						gs = append(gs, nil)
					}
					scale := 1.0
					if c.clip > 0 {
						a.ClipScale = ktest.Tensor(t, d, "clip", []float32{c.clip}, 1)
						scale = float64(c.clip)
					}
					o, err := nn.NewAdamW(d, a)
					if err != nil {
						t.Fatal(err)
					}
					defer o.Release()
					lrs := []float32{1e-2, 3e-3, 5e-2, 1e-3}
					for step := 1; step <= len(lrs); step++ {
						for i, n := range c.sizes {
							gs[i] = ktest.Rand(rng, n, 2)
							if err := a.Grads[i].Upload(gs[i]); err != nil {
								t.Fatal(err)
							}
						}
						if err := o.SetStep(lrs[step-1], step); err != nil {
							t.Fatal(err)
						}
						ktest.Run(t, d, o.Record)
						for i := range c.sizes {
							w := 0.0
							if c.decay[i] {
								w = wd
							}
							ref.AdamW(p[i], m[i], v[i], ktest.F64(gs[i]), scale, float64(lrs[step-1]), b1, b2, eps, w, step)
						}
						for i := range c.sizes {
							tol := ktest.Tol{Abs: 1e-6, Rel: 1e-5}
							ktest.Close(t, fmt.Sprintf("step %d p%d", step, i), ktest.Download(t, a.Params[i]), p[i], tol)
							ktest.Close(t, fmt.Sprintf("step %d m%d", step, i), ktest.Download(t, a.M[i]), m[i], tol)
							ktest.Close(t, fmt.Sprintf("step %d v%d", step, i), ktest.Download(t, a.V[i]), v[i], tol)
						}
						if t.Failed() {
							return
						}
					}
				}
				if c.limit > 0 {
					withBindingLimit(d, c.limit, run)
				} else {
					run()
				}
			})
		}
	})
}

func TestAdamWErrors(t *testing.T) {
	ktest.ForEachDevice(t, func(t *testing.T, d *gpu.Device) {
		p := ktest.Tensor(t, d, "p", nil, 4, 2)
		g := ktest.Tensor(t, d, "g", nil, 4, 2)
		gBad := ktest.Tensor(t, d, "gbad", nil, 8)
		m := ktest.Tensor(t, d, "m", nil, 4, 2)
		v := ktest.Tensor(t, d, "v", nil, 4, 2)
		ok := nn.AdamWArgs{Params: []*nn.Tensor{p}, Grads: []*nn.Tensor{g}, M: []*nn.Tensor{m}, V: []*nn.Tensor{v},
			Decay: []bool{true}, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.1}
		for name, mod := range map[string]func(a *nn.AdamWArgs){
			"grad shape": func(a *nn.AdamWArgs) { a.Grads = []*nn.Tensor{gBad} },
			"lengths":    func(a *nn.AdamWArgs) { a.Decay = nil },
			"m is v":     func(a *nn.AdamWArgs) { a.V = []*nn.Tensor{m} },
			"beta1":      func(a *nn.AdamWArgs) { a.Beta1 = 1 },
			"eps":        func(a *nn.AdamWArgs) { a.Eps = 0 },
			"clip shape": func(a *nn.AdamWArgs) { a.ClipScale = gBad },
		} {
			a := ok
			mod(&a)
			if _, err := nn.NewAdamW(d, a); err == nil {
				t.Errorf("%s: no error", name)
			}
		}
		o, err := nn.NewAdamW(d, ok)
		if err != nil {
			t.Fatal(err)
		}
		defer o.Release()
		if err := o.SetStep(1e-3, 0); err == nil {
			t.Error("step 0: no error")
		}
	})
}
