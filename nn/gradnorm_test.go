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

func TestGradNorm(t *testing.T) {
	ktest.ForEachDevice(t, func(t *testing.T, d *gpu.Device) {
		rng := rand.New(rand.NewSource(20))
		for _, c := range []struct {
			sizes   []int
			scale   float64
			maxNorm float32
			limit   uint64 // 0: the device's binding limit
		}{
			{[]int{1}, 1, 1, 0},
			{[]int{7, 64, 1000, 4096, 3, 256*8*4 + 5}, 0.1, 1, 0}, // norm > 1: clipped
			{[]int{5, 12, 2049}, 0.001, 1, 0},                     // norm < 1: scale 1
			{[]int{300000, 17}, 1, 0, 0},                          // no clipping; several workgroups
			{[]int{2 * 1024 * 1024, 1}, 0.01, 2, 0},               // the 1024-workgroup cap
			{[]int{3000, 2999}, 1, 3, 4096},                       // tensors bound in ranges
			// More tensors than one dispatch takes (6 ranges): a full group, a
			// group filled up with the zero tensor, sizes across the
			// workgroup steps (2048 elements each).
			{[]int{1, 2047, 2048, 2049, 5, 4096, 6, 640, 1 << 16, 3}, 0.05, 1, 0},
			{[]int{1, 2, 3, 4, 5, 6}, 1, 0, 0},       // exactly one group
			{[]int{4000, 1, 9000, 7, 3}, 1, 5, 4096}, // ranges of one tensor in two groups
		} {
			t.Run(fmt.Sprint(c.sizes, c.limit), func(t *testing.T) {
				run := func() {
					var ts []*nn.Tensor
					var vals [][]float64
					for i, n := range c.sizes {
						v := ktest.Rand(rng, n, c.scale)
						ts = append(ts, ktest.Tensor(t, d, fmt.Sprintf("g%d", i), v, n))
						vals = append(vals, ktest.F64(v))
					}
					g, err := nn.NewGradNorm(d, ts, c.maxNorm)
					if err != nil {
						t.Fatal(err)
					}
					defer g.Release()
					ktest.Poison(t, g.Norm())
					ktest.Poison(t, g.Scale())
					ktest.Run(t, d, g.Record)
					norm, scale := ref.GradNorm(vals, float64(c.maxNorm))
					ktest.Close(t, "norm", ktest.Download(t, g.Norm()), []float64{norm}, ktest.Tol{Rel: 1e-5})
					ktest.Close(t, "scale", ktest.Download(t, g.Scale()), []float64{scale}, ktest.Tol{Rel: 1e-5})
					// Deterministic: a second run gives the same bits.
					n1 := ktest.Download(t, g.Norm())[0]
					ktest.Run(t, d, g.Record)
					if n2 := ktest.Download(t, g.Norm())[0]; math.Float32bits(n1) != math.Float32bits(n2) {
						t.Errorf("norm not deterministic: %g then %g", n1, n2)
					}
				}
				if c.limit > 0 {
					withBindingLimit(d, c.limit, run)
				} else {
					run()
				}
			})
		}
		a := ktest.Tensor(t, d, "a", nil, 4)
		for name, fn := range map[string]func() error{
			"empty":   func() error { _, err := nn.NewGradNorm(d, nil, 1); return err },
			"nil":     func() error { _, err := nn.NewGradNorm(d, []*nn.Tensor{a, nil}, 1); return err },
			"twice":   func() error { _, err := nn.NewGradNorm(d, []*nn.Tensor{a, a}, 1); return err },
			"nan max": func() error { _, err := nn.NewGradNorm(d, []*nn.Tensor{a}, float32(math.NaN())); return err },
		} {
			if err := fn(); err == nil {
				t.Errorf("%s: no error", name)
			}
		}
	})
}
