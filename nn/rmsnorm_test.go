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

func TestRMSNorm(t *testing.T) {
	ktest.ForEachDevice(t, func(t *testing.T, d *gpu.Device) {
		rng := rand.New(rand.NewSource(40))
		for _, c := range []struct {
			shape []int // (..., D)
			acc   bool
		}{
			{[]int{1, 1}, false},
			{[]int{63, 7}, true},
			{[]int{64, 64}, false},
			{[]int{65, 130}, true},
			{[]int{2049, 33}, false},
			{[]int{2, 3, 257}, true}, // leading dims flattened
			{[]int{3, 2048}, false},  // 8 columns per thread
			{[]int{2, 4097}, true},   // 1024 threads per row
			{[]int{1030, 16}, false}, // several rows per backward workgroup
		} {
			t.Run(fmt.Sprint(c.shape, c.acc), func(t *testing.T) {
				dim := c.shape[len(c.shape)-1]
				n := 1
				for _, s := range c.shape {
					n *= s
				}
				rows := n / dim
				const eps = 1e-5
				xv, wv, dyv := ktest.Rand(rng, n, 2), ktest.Rand(rng, dim, 1.5), ktest.Rand(rng, n, 1)
				dx0, dw0 := ktest.Rand(rng, n, 1), ktest.Rand(rng, dim, 1)
				x := ktest.Tensor(t, d, "x", xv, c.shape...)
				w := ktest.Tensor(t, d, "w", wv, dim)
				y := ktest.Tensor(t, d, "y", nil, c.shape...)
				dy := ktest.Tensor(t, d, "dy", dyv, c.shape...)
				dx := ktest.Tensor(t, d, "dx", dx0, c.shape...)
				dw := ktest.Tensor(t, d, "dw", dw0, dim)
				ktest.Poison(t, y)
				if !c.acc {
					ktest.Poison(t, dx)
				}
				op, err := nn.NewRMSNorm(d, nn.RMSNormArgs{X: x, W: w, Y: y, DY: dy, DX: dx, DW: dw, Eps: eps, AccumulateDX: c.acc})
				if err != nil {
					t.Fatal(err)
				}
				defer op.Release()
				ktest.Poison(t, op.Rstd())
				ktest.Run(t, d, func(r *gpu.Recorder) { op.RecordForward(r); op.RecordBackward(r) })

				wantY := make([]float64, n)
				wantR := make([]float64, rows)
				ref.RMSNorm(wantY, wantR, ktest.F64(xv), ktest.F64(wv), rows, dim, eps)
				wantDX := ktest.F64(dx0)
				wantDW := ktest.F64(dw0)
				ref.RMSNormBackward(wantDX, wantDW, ktest.F64(dyv), ktest.F64(xv), ktest.F64(wv), rows, dim, eps, c.acc)
				ktest.Close(t, "y", ktest.Download(t, y), wantY, ktest.Tol{Abs: 1e-5, Rel: 1e-5})
				ktest.Close(t, "rstd", ktest.Download(t, op.Rstd()), wantR, ktest.Tol{Rel: 1e-5})
				ktest.Close(t, "dx", ktest.Download(t, dx), wantDX, ktest.Tol{Abs: 2e-5, Rel: 1e-4})
				ktest.Close(t, "dw", ktest.Download(t, dw), wantDW, ktest.Tol{Abs: 1e-4, Rel: 1e-4})
			})
		}
	})
}

func TestRMSNormForwardOnlyAndErrors(t *testing.T) {
	ktest.ForEachDevice(t, func(t *testing.T, d *gpu.Device) {
		xv := []float32{3, 4, 0, 1}
		x := ktest.Tensor(t, d, "x", xv, 2, 2)
		w := ktest.Tensor(t, d, "w", []float32{1, 2}, 2)
		y := ktest.Tensor(t, d, "y", nil, 2, 2)
		op, err := nn.NewRMSNorm(d, nn.RMSNormArgs{X: x, W: w, Y: y})
		if err != nil {
			t.Fatal(err)
		}
		defer op.Release()
		ktest.Run(t, d, func(r *gpu.Recorder) { op.RecordForward(r); op.RecordBackward(r) })
		want := make([]float64, 4)
		ref.RMSNorm(want, nil, ktest.F64(xv), []float64{1, 2}, 2, 2, 0)
		ktest.Close(t, "y", ktest.Download(t, y), want, ktest.Tol{Rel: 1e-6})

		bad := ktest.Tensor(t, d, "bad", nil, 3)
		y3 := ktest.Tensor(t, d, "y3", nil, 4)
		for name, a := range map[string]nn.RMSNormArgs{
			"w shape":       {X: x, W: bad, Y: y},
			"y shape":       {X: x, W: w, Y: y3},
			"partial bwd":   {X: x, W: w, Y: y, DY: y3},
			"dw shape":      {X: x, W: w, Y: y, DY: y, DX: ktest.Tensor(t, d, "dx", nil, 2, 2), DW: bad},
			"missing x":     {W: w, Y: y},
			"negative eps":  {X: x, W: w, Y: y, Eps: -1},
			"in place":      {X: x, W: w, Y: x},
			"dx aliases dy": {X: x, W: w, Y: y, DY: y, DX: y, DW: w},
		} {
			if _, err := nn.NewRMSNorm(d, a); err == nil {
				t.Errorf("%s: no error", name)
			}
		}
	})
}
