package nn_test

import (
	"testing"

	"mom/gpu"
	"mom/nn"
	"mom/nn/internal/ktest"
	"mom/nn/ref"
)

func TestFill(t *testing.T) {
	ktest.ForEachDevice(t, func(t *testing.T, d *gpu.Device) {
		for _, n := range []int{1, 255, 256, 257, 70000 * 256} { // the last needs a 2-D grid
			x := ktest.Tensor(t, d, "x", nil, n)
			ktest.Poison(t, x)
			f, err := nn.NewFill(d, x, 1.25)
			if err != nil {
				t.Fatal(err)
			}
			ktest.Run(t, d, f.Record)
			want := make([]float64, n)
			ref.Fill(want, 1.25)
			ktest.Close(t, "fill", ktest.Download(t, x), want, ktest.Tol{})
		}
	})
}
