package nn_test

import (
	"fmt"
	"math/rand"
	"strings"
	"testing"

	"mom/gpu"
	"mom/nn"
	"mom/nn/internal/ktest"
	"mom/nn/ref"
)

// convTols: float32 against float64; dw and dbias sum over batch*length
// products, so their relative part is looser. The absolute part is scaled by
// the RMS of the tensor, as in scanClose.
var convTols = map[string]struct{ abs, rel float64 }{
	"y":     {1e-6, 1e-5},
	"dx":    {1e-6, 1e-5},
	"dw":    {1e-5, 1e-4},
	"dbias": {1e-5, 1e-4},
}

func convClose(t *testing.T, name string, got []float32, want []float64) {
	t.Helper()
	tol := convTols[name]
	ktest.CloseRMS(t, name, got, want, tol.abs, tol.rel)
}

type convCase struct {
	batch, l, c, k int
	silu           bool
}

func TestCausalConv1d(t *testing.T) {
	var cases []convCase
	// Kernel widths (each a pipeline of its own), odd channel counts, the
	// thread tile (8 steps) and the backward's blocks (32 channels, 8 tiles).
	for _, k := range []int{1, 2, 8} {
		cases = append(cases, convCase{3, 65, 5, k, k != 1}, convCase{1, 7, 33, k, k != 1})
	}
	for _, l := range []int{1, 63, 64, 65, 2047, 2049} {
		cases = append(cases, convCase{1, l, 5, 4, true})
	}
	cases = append(cases,
		convCase{3, 300, 37, 4, true},
		convCase{2, 130, 65, 4, false},
		convCase{3, 9, 3, 4, false},
	)
	ktest.ForEachDevice(t, func(t *testing.T, d *gpu.Device) {
		rng := rand.New(rand.NewSource(5))
		for _, c := range cases {
			t.Run(fmt.Sprintf("b%d_l%d_c%d_k%d_silu%v", c.batch, c.l, c.c, c.k, c.silu), func(t *testing.T) {
				convRun(t, d, rng, c)
			})
		}
	})
}

func convRun(t *testing.T, d *gpu.Device, rng *rand.Rand, c convCase) {
	n := c.batch * c.l * c.c
	x := ktest.Rand(rng, n, 1)
	w := ktest.Rand(rng, c.c*c.k, 1)
	bias := ktest.Rand(rng, c.c, 1)
	dy := ktest.Rand(rng, n, 1)
	dw0 := ktest.Rand(rng, c.c*c.k, 1)
	db0 := ktest.Rand(rng, c.c, 1)
	a := nn.ConvArgs{
		Batch: c.batch, Len: c.l, SiLU: c.silu,
		X: ktest.Tensor(t, d, "x", x, c.batch, c.l, c.c), W: ktest.Tensor(t, d, "w", w, c.c, c.k),
		Bias: ktest.Tensor(t, d, "bias", bias, c.c), Y: ktest.Tensor(t, d, "y", nil, c.batch, c.l, c.c),
		DY: ktest.Tensor(t, d, "dy", dy, c.batch, c.l, c.c), DX: ktest.Tensor(t, d, "dx", nil, c.batch, c.l, c.c),
		DW: ktest.Tensor(t, d, "dw", dw0, c.c, c.k), DBias: ktest.Tensor(t, d, "dbias", db0, c.c),
	}
	ktest.Poison(t, a.Y)
	ktest.Poison(t, a.DX)
	cv, err := nn.NewCausalConv1d(d, a)
	if err != nil {
		t.Fatal(err)
	}
	defer cv.Release()
	ktest.Run(t, d, func(r *gpu.Recorder) {
		cv.RecordForward(r)
		cv.RecordBackward(r)
	})
	f := ktest.F64
	y := make([]float64, n)
	ref.CausalConv1d(y, f(x), f(w), f(bias), c.batch, c.l, c.c, c.k, c.silu)
	convClose(t, "y", ktest.Download(t, a.Y), y)
	dx := make([]float64, n)
	dw, db := f(dw0), f(db0)
	ref.CausalConv1dBackward(dx, dw, db, f(dy), f(x), f(w), f(bias), c.batch, c.l, c.c, c.k, c.silu)
	convClose(t, "dx", ktest.Download(t, a.DX), dx)
	convClose(t, "dw", ktest.Download(t, a.DW), dw)
	convClose(t, "dbias", ktest.Download(t, a.DBias), db)
}

func TestCausalConv1dErrors(t *testing.T) {
	ktest.ForEachDevice(t, func(t *testing.T, d *gpu.Device) {
		const b, l, ch, k = 2, 5, 3, 4
		tn := func(name string, shape ...int) *nn.Tensor { return ktest.Tensor(t, d, name, nil, shape...) }
		good := func() nn.ConvArgs {
			return nn.ConvArgs{Batch: b, Len: l, X: tn("x", b, l, ch), W: tn("w", ch, k), Bias: tn("bias", ch), Y: tn("y", b, l, ch)}
		}
		withBwd := func(a nn.ConvArgs) nn.ConvArgs {
			a.DY, a.DX, a.DW, a.DBias = tn("dy", b, l, ch), tn("dx", b, l, ch), tn("dw", ch, k), tn("dbias", ch)
			return a
		}
		if cv, err := nn.NewCausalConv1d(d, withBwd(good())); err != nil {
			t.Fatalf("valid args: %v", err)
		} else {
			cv.Release()
		}
		cases := []struct {
			name string
			mod  func(a *nn.ConvArgs)
			want string
		}{
			{"X shape", func(a *nn.ConvArgs) { a.X = tn("x", b, l, ch+1) }, "x has shape"},
			{"W rank", func(a *nn.ConvArgs) { a.W = tn("w", ch*k) }, "W must be"},
			{"K too wide", func(a *nn.ConvArgs) { a.W = tn("w", ch, 9) }, "exceeds 8"},
			{"Bias shape", func(a *nn.ConvArgs) { a.Bias = tn("bias", k) }, "bias has shape"},
			{"Y missing", func(a *nn.ConvArgs) { a.Y = nil }, "missing"},
			{"length", func(a *nn.ConvArgs) { a.Len = 0 }, "positive"},
			{"partial backward", func(a *nn.ConvArgs) { a.DX = tn("dx", b, l, ch) }, "backward needs all"},
			{"DW shape", func(a *nn.ConvArgs) { *a = withBwd(*a); a.DW = tn("dw", ch, k+1) }, "dw has shape"},
			{"DY shape", func(a *nn.ConvArgs) { *a = withBwd(*a); a.DY = tn("dy", b, l+1, ch) }, "dy has shape"},
			{"Y aliases X", func(a *nn.ConvArgs) { a.Y = a.X }, "also the input"},
		}
		for _, c := range cases {
			a := good()
			c.mod(&a)
			cv, err := nn.NewCausalConv1d(d, a)
			if err == nil {
				cv.Release()
				t.Errorf("%s: no error", c.name)
				continue
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("%s: error %q does not mention %q", c.name, err, c.want)
			}
		}
	})
}
