package nn_test

import (
	"fmt"
	"math"
	"math/rand"
	"testing"

	"mom/gpu"
	"mom/nn"
	"mom/nn/internal/ktest"
	"mom/nn/ref"
)

// TestGradNormScaled: the scaled gradient norm's finish against its twin
// ref.GradNormScaled over a sequence of steps that reaches every branch:
// clean steps (the norm unscaled, the clip scale divided by the loss
// scale), growth after the interval, and overflow found by the casts' flag,
// by an infinity, by a NaN and by squares whose sum overflows float32
// (skip: norm and scale 0, the loss scale halved, the skip counted, the
// flag cleared); the scale's bounds. Norm and scale within 1e-5 relative
// (float32 sums), the state exactly.
func TestGradNormScaled(t *testing.T) {
	ktest.ForEachDevice(t, func(t *testing.T, d *gpu.Device) {
		rng := rand.New(rand.NewSource(21))
		sizes := []int{1, 63, 4096, 2049}
		type step struct {
			flag   bool    // raise the overflow flag before the step
			poison float32 // put this value into one gradient element (0: none)
		}
		inf, nan := float32(math.Inf(1)), float32(math.NaN())
		for _, c := range []struct {
			name    string
			init    float64
			growth  int
			maxNorm float32
			steps   []step
		}{
			{"grow skip grow", 16, 2, 1, []step{{}, {}, {}, {flag: true}, {}, {poison: inf}, {}, {}, {poison: nan}, {poison: 1e20}, {}}},
			{"no clip", 1024, 3, 0, []step{{}, {flag: true}, {}, {}, {}, {}}},
			{"at the bounds", nn.MaxLossScale / 2, 1, 1, []step{{}, {}, {}, {flag: true}}},
			{"at the floor", nn.MinLossScale * 2, 5, 1, []step{{flag: true}, {flag: true}, {flag: true}, {}}},
		} {
			t.Run(c.name, func(t *testing.T) {
				ls, err := nn.NewLossScale(d, nn.LossScaleArgs{Init: c.init, GrowthEvery: c.growth})
				if err != nil {
					t.Fatal(err)
				}
				defer ls.Release()
				var ts []*nn.Tensor
				for i, n := range sizes {
					ts = append(ts, ktest.Tensor(t, d, fmt.Sprintf("g%d", i), nil, n))
				}
				g, err := nn.NewGradNormScaled(d, ts, c.maxNorm, ls)
				if err != nil {
					t.Fatal(err)
				}
				defer g.Release()
				want := ref.LossScale{Scale: c.init, LastScale: c.init}
				for k, s := range c.steps {
					// Gradients that carry the scale, as a backward makes them.
					vals := make([][]float64, len(ts))
					for i, x := range ts {
						v := ktest.Rand(rng, x.Len(), 0.05*want.Scale)
						if s.poison != 0 && i == 2 {
							v[rng.Intn(len(v))] = s.poison
							if s.poison == 1e20 {
								for j := range v {
									v[j] = 1e20
								}
							}
						}
						if err := x.Upload(v); err != nil {
							t.Fatal(err)
						}
						vals[i] = ktest.F64(v)
					}
					if s.flag {
						if err := ls.Overflow().UploadU32([]uint32{1}); err != nil {
							t.Fatal(err)
						}
					}
					ktest.Poison(t, g.Norm())
					ktest.Poison(t, g.Scale())
					ktest.Run(t, d, g.Record)
					norm, scale := ref.GradNormScaled(vals, float64(c.maxNorm), &want, s.flag, c.growth, nn.MinLossScale, nn.MaxLossScale)
					ktest.Close(t, fmt.Sprintf("step %d norm", k), ktest.Download(t, g.Norm()), []float64{norm}, ktest.Tol{Rel: 1e-5})
					ktest.Close(t, fmt.Sprintf("step %d scale", k), ktest.Download(t, g.Scale()), []float64{scale}, ktest.Tol{Rel: 1e-5})
					got, err := ls.Get()
					if err != nil {
						t.Fatal(err)
					}
					w := nn.LossScaleState{Scale: want.Scale, Clean: want.Clean, Skipped: want.Skipped, LastSkipped: want.LastSkipped, LastScale: want.LastScale}
					if got != w {
						t.Fatalf("step %d: state %+v, want %+v", k, got, w)
					}
					if f, err := ls.Overflow().DownloadU32(); err != nil || f[0] != 0 {
						t.Fatalf("step %d: overflow flag %v (%v) after the finish, want 0", k, f, err)
					}
				}
			})
		}
		for _, a := range []nn.LossScaleArgs{{Init: 3}, {Init: -4}, {Init: 1 << 25}, {GrowthEvery: -1}} {
			if ls, err := nn.NewLossScale(d, a); err == nil {
				ls.Release()
				t.Errorf("%+v: no error", a)
			}
		}
	})
}

// TestAdamWSkip: a clip scale of exactly 0 (the loss scaler's overflow)
// leaves parameters and both moments as they were, bit for bit, on the
// device and in the twin; the next step with a real scale moves them as
// the twin does.
func TestAdamWSkip(t *testing.T) {
	ktest.ForEachDevice(t, func(t *testing.T, d *gpu.Device) {
		rng := rand.New(rand.NewSource(22))
		for _, n := range []int{1, 7, 256, 1028} {
			pv, mv, vv, gv := ktest.Rand(rng, n, 1), ktest.Rand(rng, n, 0.1), ktest.Rand(rng, n, 0.01), ktest.Rand(rng, n, 1)
			for i := range vv {
				vv[i] = float32(math.Abs(float64(vv[i])))
			}
			p, m, v, g := ktest.Tensor(t, d, "p", pv, n), ktest.Tensor(t, d, "m", mv, n), ktest.Tensor(t, d, "v", vv, n), ktest.Tensor(t, d, "g", gv, n)
			sc := ktest.Tensor(t, d, "scale", []float32{0}, 1)
			o, err := nn.NewAdamW(d, nn.AdamWArgs{Params: []*nn.Tensor{p}, Grads: []*nn.Tensor{g}, M: []*nn.Tensor{m}, V: []*nn.Tensor{v},
				Decay: []bool{true}, ClipScale: sc, Beta1: 0.9, Beta2: 0.95, Eps: 1e-8, WeightDecay: 0.1})
			if err != nil {
				t.Fatal(err)
			}
			if err := o.SetStep(1e-2, 3); err != nil {
				t.Fatal(err)
			}
			ktest.Run(t, d, o.Record)
			rp, rm, rv := ktest.F64(pv), ktest.F64(mv), ktest.F64(vv)
			ref.AdamW(rp, rm, rv, ktest.F64(gv), 0, 1e-2, 0.9, 0.95, 1e-8, 0.1, 3)
			for _, x := range []struct {
				name string
				t    *nn.Tensor
				was  []float32
				ref  []float64
			}{{"p", p, pv, rp}, {"m", m, mv, rm}, {"v", v, vv, rv}} {
				got := ktest.Download(t, x.t)
				for i := range got {
					if math.Float32bits(got[i]) != math.Float32bits(x.was[i]) || x.ref[i] != float64(x.was[i]) {
						t.Fatalf("n=%d: a skipped step changed %s[%d]: %g -> device %g, twin %g", n, x.name, i, x.was[i], got[i], x.ref[i])
					}
				}
			}
			// A real step after the skip moves them.
			if err := sc.Upload([]float32{0.5}); err != nil {
				t.Fatal(err)
			}
			ktest.Run(t, d, o.Record)
			ref.AdamW(rp, rm, rv, ktest.F64(gv), 0.5, 1e-2, 0.9, 0.95, 1e-8, 0.1, 3)
			ktest.Close(t, "p", ktest.Download(t, p), rp, ktest.Tol{Abs: 1e-6, Rel: 1e-5})
			ktest.Close(t, "m", ktest.Download(t, m), rm, ktest.Tol{Abs: 1e-7, Rel: 1e-5})
			ktest.Close(t, "v", ktest.Download(t, v), rv, ktest.Tol{Abs: 1e-8, Rel: 1e-5})
			o.Release()
		}
	})
}
