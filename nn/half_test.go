package nn_test

import (
	"fmt"
	"math"
	"math/rand"
	"strings"
	"testing"

	"mom/gpu"
	"mom/nn"
	"mom/nn/internal/ktest"
	"mom/nn/ref"
)

// TestHalf: every finite half survives the round trip through float32;
// values between halves round to the nearest (ties to even) as the
// reference twin does, including subnormals, overflow to infinity and NaN.
func TestHalf(t *testing.T) {
	for h := 0; h < 1<<16; h++ {
		v := nn.F16Value(uint16(h))
		if math.IsNaN(float64(v)) {
			if b := nn.F16Bits(v); b&0x7c00 != 0x7c00 || b&0x3ff == 0 {
				t.Fatalf("NaN %#04x came back as %#04x", h, b)
			}
			continue
		}
		if b := nn.F16Bits(v); b != uint16(h) {
			t.Fatalf("half %#04x = %g came back as %#04x", h, v, b)
		}
	}
	rng := rand.New(rand.NewSource(1))
	var xs []float32
	for i := 0; i < 20000; i++ {
		e := rng.Float64()*50 - 30 // 2^-30 .. 2^20: subnormals to overflow
		xs = append(xs, float32(math.Copysign(math.Pow(2, e), rng.Float64()-0.5)))
	}
	for h := uint16(0); h < 0x7bff; h += 97 { // exact midpoints between neighbours
		a, b := float64(nn.F16Value(h)), float64(nn.F16Value(h+1))
		xs = append(xs, float32((a+b)/2))
	}
	xs = append(xs, 65504, 65519, 65520, 1e9, float32(math.Inf(-1)), 0, float32(math.Copysign(0, -1)), 5.960464e-08, 2.9e-08)
	want := make([]float64, len(xs))
	ref.RoundHalf(want, ktest.F64(xs))
	for i, x := range xs {
		if got := float64(nn.RoundF16(x)); got != want[i] {
			t.Errorf("%g (%#08x) rounds to %g, reference %g", x, math.Float32bits(x), got, want[i])
		}
	}
}

// TestGemmF16: Linear and GroupedLinear with float16 inputs (X, W, dY) and
// float32 outputs match the float32 reference on the rounded inputs, at
// the float32 tolerance (a product of halves is exact in float32): the
// vec4, scalar and split-K paths, forward and backward.
func TestGemmF16(t *testing.T) {
	ktest.ForEachDevice(t, testGemmF16)
}

// TestGemmF16Tiles is TestGemmF16 with a double-buffered tile of 4 vec4
// per operand forced, whose prefetch loads read float16.
func TestGemmF16Tiles(t *testing.T) {
	forEachTileOf(t, []string{"64,64,16,db,band2"}, func(t *testing.T, d *gpu.Device, _ string) {
		testGemmF16(t, d)
	})
}

func testGemmF16(t *testing.T, d *gpu.Device) {
	rng := rand.New(rand.NewSource(9))
	half := func(name string, v []float32, shape ...int) (*nn.Tensor, []float64) {
		x, err := nn.NewTensorOf(d, gpu.MemScratch, nn.F16, name, shape...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(x.Release)
		if err := x.Upload(v); err != nil {
			t.Fatal(err)
		}
		r := make([]float64, len(v))
		ref.RoundHalf(r, ktest.F64(v))
		return x, r
	}
	// vec4 loads; scalar loads with the weight gradient split over rows
	// (on lavapipe); a float32 bias, its gradient summed from the float16
	// dY, split and not; a split-K forward and dX (forced).
	for _, c := range []struct {
		rows, n, k int
		bias       bool
		split      string
	}{{63, 64, 64, false, ""}, {300, 3, 17, true, ""}, {40, 12, 8, true, ""}, {65, 44, 72, true, "3"}} {
		t.Setenv(nn.EnvGemmSplit, c.split)
		x, xr := half("x", ktest.Rand(rng, c.rows*c.k, 1), c.rows, c.k)
		w, wr := half("w", ktest.Rand(rng, c.n*c.k, 1), c.n, c.k)
		dy, dyr := half("dy", ktest.Rand(rng, c.rows*c.n, 1), c.rows, c.n)
		a := nn.LinearArgs{X: x, W: w, DY: dy,
			Y: ktest.Tensor(t, d, "y", nil, c.rows, c.n), DX: ktest.Tensor(t, d, "dx", nil, c.rows, c.k),
			DW: ktest.Tensor(t, d, "dw", make([]float32, c.n*c.k), c.n, c.k)}
		var bv, db []float64
		if c.bias {
			b := ktest.Rand(rng, c.n, 1)
			bv, db = ktest.F64(b), make([]float64, c.n)
			a.B, a.DB = ktest.Tensor(t, d, "b", b, c.n), ktest.Tensor(t, d, "db", make([]float32, c.n), c.n)
		}
		ktest.Poison(t, a.Y)
		ktest.Poison(t, a.DX)
		l, err := nn.NewLinear(d, a)
		if err != nil {
			t.Fatal(err)
		}
		t.Log(l.Plan())
		ktest.Run(t, d, func(r *gpu.Recorder) {
			l.RecordForward(r)
			l.RecordBackward(r)
		})
		y, dx, dw := make([]float64, c.rows*c.n), make([]float64, c.rows*c.k), make([]float64, c.n*c.k)
		ref.Linear(y, xr, wr, bv, c.rows, c.n, c.k, false)
		ref.LinearBackward(dx, dw, db, dyr, xr, wr, c.rows, c.n, c.k, false)
		ktest.Close(t, "y", ktest.Download(t, a.Y), y, gemmTol(c.k, 1))
		ktest.Close(t, "dx", ktest.Download(t, a.DX), dx, gemmTol(c.n, 1))
		ktest.Close(t, "dw", ktest.Download(t, a.DW), dw, gemmTol(c.rows, 1))
		if c.bias {
			ktest.Close(t, "db", ktest.Download(t, a.DB), db, gemmTol(c.rows, 1))
		}
		l.Release()
	}
	// Grouped: three modalities, one absent from part of the batch;
	// forward and dX split-K (forced).
	t.Setenv(nn.EnvGemmSplit, "3")
	const rows, G, n, k = 130, 3, 64, 36
	m := make([]uint32, rows)
	for i := range m {
		m[i] = uint32(rng.Intn(2)) * 2 // modalities 0 and 2: 1 is absent
	}
	rt, err := nn.NewRouting(d, rows, G)
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Release()
	if err := rt.Update(m); err != nil {
		t.Fatal(err)
	}
	x, xr := half("x", ktest.Rand(rng, rows*k, 1), rows, k)
	w, wr := half("w", ktest.Rand(rng, G*n*k, 1), G, n, k)
	dy, dyr := half("dy", ktest.Rand(rng, rows*n, 1), rows, n)
	bias := ktest.Rand(rng, G*n, 1)
	a := nn.GroupedLinearArgs{X: x, W: w, DY: dy, Routing: rt,
		Y: ktest.Tensor(t, d, "y", nil, rows, n), DX: ktest.Tensor(t, d, "dx", nil, rows, k),
		DW: ktest.Tensor(t, d, "dw", make([]float32, G*n*k), G, n, k),
		B:  ktest.Tensor(t, d, "b", bias, G, n), DB: ktest.Tensor(t, d, "db", make([]float32, G*n), G, n)}
	ktest.Poison(t, a.Y)
	ktest.Poison(t, a.DX)
	gl, err := nn.NewGroupedLinear(d, a)
	if err != nil {
		t.Fatal(err)
	}
	defer gl.Release()
	ktest.Run(t, d, func(r *gpu.Recorder) {
		gl.RecordForward(r)
		gl.RecordBackward(r)
	})
	y, dx, dw, db := make([]float64, rows*n), make([]float64, rows*k), make([]float64, G*n*k), make([]float64, G*n)
	ref.GroupedLinear(y, xr, wr, ktest.F64(bias), m, rows, G, n, k, false)
	ref.GroupedLinearBackward(dx, dw, db, dyr, xr, wr, m, rows, G, n, k, false)
	ktest.Close(t, "grouped y", ktest.Download(t, a.Y), y, gemmTol(k, 1))
	ktest.Close(t, "grouped dx", ktest.Download(t, a.DX), dx, gemmTol(n, 1))
	ktest.Close(t, "grouped db", ktest.Download(t, a.DB), db, gemmTol(rows, 1))
	got := ktest.Download(t, a.DW)
	ktest.Close(t, "grouped dw", got, dw, gemmTol(rows, 1))
	for i := n * k; i < 2*n*k; i++ {
		if got[i] != 0 {
			t.Fatalf("the absent modality's dw[%d] = %g, want exactly 0", i, got[i])
		}
	}
}

// TestGemmF16Errors: float16 and float32 inputs do not mix, a binding that
// takes float32 (the output, the bias) refuses float16, and a device without
// shader-f16 (Dawn on the H200) says which feature is missing.
func TestGemmF16Errors(t *testing.T) {
	check := func(t *testing.T, d *gpu.Device, want string, build func(x16, w16, w32, y, b *nn.Tensor) error) {
		t.Helper()
		mk := func(dt nn.DType, name string, shape ...int) *nn.Tensor {
			x, err := nn.NewTensorOf(d, gpu.MemScratch, dt, name, shape...)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(x.Release)
			return x
		}
		err := build(mk(nn.F16, "x16", 8, 8), mk(nn.F16, "w16", 8, 8), mk(nn.F32, "w32", 8, 8), mk(nn.F32, "y", 8, 8), mk(nn.F32, "b", 8))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v, want an error with %q", err, want)
		}
	}
	ktest.ForEachDevice(t, func(t *testing.T, d *gpu.Device) {
		check(t, d, "all float16 or all float32", func(x16, _, w32, y, _ *nn.Tensor) error {
			_, err := nn.NewLinear(d, nn.LinearArgs{X: x16, W: w32, Y: y})
			return err
		})
		check(t, d, "takes float32", func(x16, w16, _, _, _ *nn.Tensor) error {
			_, err := nn.NewLinear(d, nn.LinearArgs{X: x16, W: w16, Y: w16})
			return err
		})
	})
	d, err := gpu.OpenDryRun(gpu.Profiles["h200"])
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	check(t, d, "needs the shader-f16 feature", func(x16, w16, _, y, _ *nn.Tensor) error {
		_, err := nn.NewGemm(d, nn.GemmArgs{A: x16, B: w16, C: y, M: 8, N: 8, K: 8})
		return err
	})
}

// TestCausalConv1dF16: the conv with float16 x and w (its f16 variant:
// widened to float32 as they load; bias, dy and every output float32)
// matches the float32 twin on the rounded inputs at the float32
// tolerances (convTols), forward and backward, at edge lengths and channel
// counts.
func TestCausalConv1dF16(t *testing.T) {
	ktest.ForEachDevice(t, func(t *testing.T, d *gpu.Device) {
		rng := rand.New(rand.NewSource(23))
		for _, c := range []convCase{{1, 1, 5, 4, true}, {3, 65, 33, 4, true}, {1, 2049, 5, 4, true}, {2, 63, 64, 2, false}} {
			t.Run(fmt.Sprintf("b%d_l%d_c%d_k%d_silu%v", c.batch, c.l, c.c, c.k, c.silu), func(t *testing.T) {
				n := c.batch * c.l * c.c
				half := func(name string, v []float32, shape ...int) (*nn.Tensor, []float64) {
					x, err := nn.NewTensorOf(d, gpu.MemScratch, nn.F16, name, shape...)
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(x.Release)
					if err := x.Upload(v); err != nil {
						t.Fatal(err)
					}
					r := make([]float64, len(v))
					ref.RoundHalf(r, ktest.F64(v))
					return x, r
				}
				x, xr := half("x", ktest.Rand(rng, n, 1), c.batch, c.l, c.c)
				w, wr := half("w", ktest.Rand(rng, c.c*c.k, 1), c.c, c.k)
				bias, dy := ktest.Rand(rng, c.c, 1), ktest.Rand(rng, n, 1)
				dw0, db0 := ktest.Rand(rng, c.c*c.k, 1), ktest.Rand(rng, c.c, 1)
				a := nn.ConvArgs{Batch: c.batch, Len: c.l, SiLU: c.silu, X: x, W: w,
					Bias: ktest.Tensor(t, d, "bias", bias, c.c), Y: ktest.Tensor(t, d, "y", nil, c.batch, c.l, c.c),
					DY: ktest.Tensor(t, d, "dy", dy, c.batch, c.l, c.c), DX: ktest.Tensor(t, d, "dx", nil, c.batch, c.l, c.c),
					DW: ktest.Tensor(t, d, "dw", dw0, c.c, c.k), DBias: ktest.Tensor(t, d, "dbias", db0, c.c)}
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
				y, dx := make([]float64, n), make([]float64, n)
				ref.CausalConv1d(y, xr, wr, f(bias), c.batch, c.l, c.c, c.k, c.silu)
				dwr, dbr := f(dw0), f(db0)
				ref.CausalConv1dBackward(dx, dwr, dbr, f(dy), xr, wr, f(bias), c.batch, c.l, c.c, c.k, c.silu)
				convClose(t, "y", ktest.Download(t, a.Y), y)
				convClose(t, "dx", ktest.Download(t, a.DX), dx)
				convClose(t, "dw", ktest.Download(t, a.DW), dwr)
				convClose(t, "dbias", ktest.Download(t, a.DBias), dbr)
			})
		}
	})
}
