package nn_test

import (
	"math/rand"
	"strings"
	"testing"

	"mom/gpu"
	"mom/nn"
	"mom/nn/internal/ktest"
	"mom/nn/ref"
)

// withBindingLimit lowers the device's storage binding limit as the ops see
// it (the real limit is higher), so that the path that binds a large tensor
// in ranges runs at small sizes.
func withBindingLimit(d *gpu.Device, bytes uint64, fn func()) {
	old := d.Limits.MaxStorageBufferBindingSize
	d.Limits.MaxStorageBufferBindingSize = bytes
	defer func() { d.Limits.MaxStorageBufferBindingSize = old }()
	fn()
}

func TestElementwise(t *testing.T) {
	ktest.ForEachDevice(t, func(t *testing.T, d *gpu.Device) {
		rng := rand.New(rand.NewSource(10))
		for _, c := range []struct {
			n     int
			limit uint64 // 0: the device's
		}{{1, 0}, {3, 0}, {4, 0}, {255, 0}, {256, 0}, {257, 0}, {1027, 0}, {4100, 0}, {1000, 1024}, {1027, 1024}} {
			run := func() {
				av, bv, yv := ktest.Rand(rng, c.n, 2), ktest.Rand(rng, c.n, 2), ktest.Rand(rng, c.n, 2)
				a := ktest.Tensor(t, d, "a", av, c.n)
				b := ktest.Tensor(t, d, "b", bv, c.n)
				y := ktest.Tensor(t, d, "y", nil, c.n)
				ktest.Poison(t, y)
				add, err := nn.NewAdd(d, y, a, b)
				if err != nil {
					t.Fatal(err)
				}
				ktest.Run(t, d, add.Record)
				want := make([]float64, c.n)
				ref.Add(want, ktest.F64(av), ktest.F64(bv))
				ktest.Close(t, "add", ktest.Download(t, y), want, ktest.Tol{Abs: 1e-6, Rel: 1e-6})

				if err := y.Upload(yv); err != nil {
					t.Fatal(err)
				}
				axpy, err := nn.NewAXPY(d, y, a, -0.75)
				if err != nil {
					t.Fatal(err)
				}
				sc, err := nn.NewScale(d, y, 1.5)
				if err != nil {
					t.Fatal(err)
				}
				ktest.Run(t, d, func(r *gpu.Recorder) { axpy.Record(r); sc.Record(r) })
				want = ktest.F64(yv)
				ref.AXPY(want, ktest.F64(av), -0.75)
				ref.Scale(want, 1.5)
				ktest.Close(t, "axpy+scale", ktest.Download(t, y), want, ktest.Tol{Abs: 1e-6, Rel: 1e-6})
			}
			if c.limit > 0 {
				withBindingLimit(d, c.limit, run)
			} else {
				run()
			}
			if t.Failed() {
				t.Fatalf("n=%d, binding limit %d", c.n, c.limit)
			}
		}
	})
}

func TestElementwiseErrors(t *testing.T) {
	ktest.ForEachDevice(t, func(t *testing.T, d *gpu.Device) {
		a := ktest.Tensor(t, d, "a", nil, 4, 3)
		b := ktest.Tensor(t, d, "b", nil, 3, 4)
		c := ktest.Tensor(t, d, "c", nil, 4, 3)
		for name, fn := range map[string]func() error{
			"add shapes":  func() error { _, err := nn.NewAdd(d, c, a, b); return err },
			"add alias":   func() error { _, err := nn.NewAdd(d, a, a, c); return err },
			"axpy shapes": func() error { _, err := nn.NewAXPY(d, b, a, 1); return err },
			"axpy alias":  func() error { _, err := nn.NewAXPY(d, a, a, 1); return err },
			"axpy nil":    func() error { _, err := nn.NewAXPY(d, a, nil, 1); return err },
		} {
			err := fn()
			if err == nil {
				t.Errorf("%s: no error", name)
			} else if !strings.Contains(err.Error(), "nn: ") {
				t.Errorf("%s: error %q does not name the op", name, err)
			}
		}
	})
}
