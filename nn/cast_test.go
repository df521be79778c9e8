package nn_test

import (
	"math"
	"math/rand"
	"strings"
	"testing"

	"mom/gpu"
	"mom/nn"
	"mom/nn/internal/ktest"
	"mom/nn/ref"
)

// castInputs draws n float32 values that reach every branch of the
// rounding: magnitudes from float32 subnormals through half subnormals to
// past the largest half, exact midpoints between neighbouring halves, and
// (with special) zeros of both signs, infinities and NaN.
func castInputs(rng *rand.Rand, n int, special bool) []float32 {
	v := make([]float32, n)
	for i := range v {
		var x float64
		switch rng.Intn(8) {
		case 0: // a midpoint between two neighbouring halves (ties to even)
			h := uint16(rng.Intn(0x7bff))
			x = (float64(nn.F16Value(h)) + float64(nn.F16Value(h+1))) / 2
		case 1: // a float32 subnormal
			x = float64(math.Float32frombits(uint32(rng.Intn(1 << 23))))
		default:
			x = math.Pow(2, rng.Float64()*44-30) // 2^-30 .. 2^14
		}
		if rng.Intn(2) == 0 {
			x = -x
		}
		v[i] = float32(x)
	}
	if special && n > 0 {
		sp := []float32{0, float32(math.Copysign(0, -1)), 65504, 65519.99, 65520, -70000, 5.960464e-08, 2.9e-08,
			float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN())}
		for _, s := range sp {
			v[rng.Intn(n)] = s
		}
	}
	return v
}

// TestCast: the float16 cast equals its twin ref.CastHalf on every element
// (tolerance zero: the same value, the sign of a zero aside; NaN where the
// twin has NaN) and raises the overflow flag exactly when the twin reports
// a result that is not finite: plain, scaled by a loss scale read from the
// device, with and without the flag, at sizes around the scalar and vec4
// paths (1, odd, even, a multiple of 4, around 64 and 256 pairs).
func TestCast(t *testing.T) {
	ktest.ForEachDevice(t, func(t *testing.T, d *gpu.Device) {
		rng := rand.New(rand.NewSource(12))
		cases := []struct {
			name     string
			n        int
			scale    float32 // 0: no Scale tensor
			flag     bool
			special  bool
			overflow bool   // force an overflow in the last element only
			limit    uint64 // the binding limit (0: the device's): ranges of 256 elements at 1024
		}{
			{"n1 plain", 1, 0, false, false, false, 0},
			{"n2 flag clean", 2, 0, true, false, false, 0},
			{"n3 flag tail overflow", 3, 0, true, false, true, 0},
			{"n4 scaled", 4, 1024, true, false, false, 0},
			{"n5 scaled tail overflow", 5, 8, true, false, true, 0},
			{"n63 special", 63, 0, true, true, false, 0},
			{"n64 scaled special", 64, 2, true, true, false, 0},
			{"n65 scaled", 65, 0.5, true, false, false, 0},
			{"n511 scaled 2^16", 511, 65536, true, false, false, 0},
			{"n512 plain", 512, 0, false, true, false, 0},
			{"n1027 scaled 2^-8", 1027, 1.0 / 256, true, false, false, 0},
			{"n4096 vec4 overflow last", 4096, 1, true, false, true, 0},
			{"n1027 in ranges", 1027, 4, true, true, false, 1024},
			{"n1001 in ranges overflow last", 1001, 0, true, false, true, 1024},
		}
		for _, c := range cases {
			t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
				if c.limit > 0 {
					old := d.Limits.MaxStorageBufferBindingSize
					d.Limits.MaxStorageBufferBindingSize = c.limit
					defer func() { d.Limits.MaxStorageBufferBindingSize = old }()
				}
				x := castInputs(rng, c.n, c.special)
				if c.overflow {
					for i := range x { // keep the rest clean at this scale
						if s := float64(max(c.scale, 1)); math.Abs(float64(x[i]))*s >= 65504 || math.IsNaN(float64(x[i])) {
							x[i] = 1
						}
					}
					x[c.n-1] = 1e6
				}
				src := ktest.Tensor(t, d, "x", x, c.n)
				dst, err := nn.NewTensorOf(d, gpu.MemScratch, nn.F16, "y", c.n)
				if err != nil {
					t.Fatal(err)
				}
				defer dst.Release()
				ktest.Poison(t, dst)
				a := nn.CastArgs{Src: []*nn.Tensor{src}, Dst: []*nn.Tensor{dst}}
				scale := float64(1)
				if c.scale != 0 {
					scale = float64(c.scale)
					a.Scale = ktest.Tensor(t, d, "loss scale", []float32{c.scale, 7, 7}, 3)
				}
				if c.flag {
					a.Overflow = ktest.Tensor(t, d, "flag", []float32{0}, 1)
				}
				op, err := nn.NewCast(d, a)
				if err != nil {
					t.Fatal(err)
				}
				defer op.Release()
				ktest.Run(t, d, op.Record)
				got := ktest.Download(t, dst)
				want := make([]float64, c.n)
				over := ref.CastHalf(want, ktest.F64(x), scale)
				for i := range got {
					g, w := float64(got[i]), want[i]
					if g != w && !(math.IsNaN(g) && math.IsNaN(w)) {
						t.Fatalf("element %d: half(%g * %g) = %g, want %g", i, x[i], scale, g, w)
					}
				}
				if c.overflow && !over {
					t.Fatal("the forced overflow did not overflow the reference")
				}
				if c.flag {
					f, err := a.Overflow.DownloadU32()
					if err != nil {
						t.Fatal(err)
					}
					if (f[0] != 0) != over {
						t.Errorf("overflow flag %d, reference overflow %v", f[0], over)
					}
				}
			})
		}
	})
}

// TestCastErrors: the cast refuses what it cannot do, naming the tensors.
func TestCastErrors(t *testing.T) {
	ktest.ForEachDevice(t, func(t *testing.T, d *gpu.Device) {
		f32 := ktest.Tensor(t, d, "a32", nil, 6)
		h, err := nn.NewTensorOf(d, gpu.MemScratch, nn.F16, "a16", 5)
		if err != nil {
			t.Fatal(err)
		}
		defer h.Release()
		h6, err := nn.NewTensorOf(d, gpu.MemScratch, nn.F16, "b16", 6)
		if err != nil {
			t.Fatal(err)
		}
		defer h6.Release()
		for _, c := range []struct {
			a    nn.CastArgs
			want string
		}{
			{nn.CastArgs{}, "0 sources"},
			{nn.CastArgs{Src: []*nn.Tensor{f32}, Dst: []*nn.Tensor{h}}, "6 elements into 5"},
			{nn.CastArgs{Src: []*nn.Tensor{h6}, Dst: []*nn.Tensor{f32}}, "want a float32 source"},
			{nn.CastArgs{Src: []*nn.Tensor{f32, f32}, Dst: []*nn.Tensor{h6, h6}}, "shares its buffer"},
			{nn.CastArgs{Src: []*nn.Tensor{f32}, Dst: []*nn.Tensor{h6}, Overflow: f32}, "one 32-bit word"},
		} {
			op, err := nn.NewCast(d, c.a)
			if err == nil {
				op.Release()
				t.Errorf("%+v: no error, want %q", c.a, c.want)
			} else if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q, want it to say %q", err, c.want)
			}
		}
	})
}
