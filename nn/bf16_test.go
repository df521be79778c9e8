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

// bf16Inputs draws n float32 values that reach every branch of the
// rounding: wide magnitudes, exact midpoints between neighbouring bfloat16
// (ties to even, both parities), float32 subnormals, values that round up
// past the largest bfloat16, and (with special) zeros, infinities and NaNs
// of both signs.
func bf16Inputs(rng *rand.Rand, n int, special bool) []float32 {
	v := make([]float32, n)
	for i := range v {
		var b uint32
		switch rng.Intn(6) {
		case 0: // a midpoint: the dropped half is exactly 0x8000
			b = uint32(rng.Intn(0x7f80))<<16 | 0x8000
		case 1: // a float32 subnormal
			b = uint32(rng.Intn(1 << 23))
		case 2: // just below and above midpoints
			b = uint32(rng.Intn(0x7f80))<<16 | 0x8000 + uint32(rng.Intn(3)) - 1
		default:
			b = math.Float32bits(float32(math.Pow(2, rng.Float64()*200-100)))
		}
		if rng.Intn(2) == 0 {
			b |= 0x80000000
		}
		v[i] = math.Float32frombits(b)
	}
	if special && n > 0 {
		for _, b := range []uint32{0, 0x80000000, 0x7f7fffff, 0xff7fffff, 0x7f7f8000, 0x7f7f7fff, 0x7f800000, 0xff800000,
			0x7fc00000, 0xffc00001, 0x7f800001, 0x00000001, 0x00008000, 0x00018000} {
			v[rng.Intn(n)] = math.Float32frombits(b)
		}
	}
	return v
}

// TestBF16: packing equals ref.PackBF16 bit for bit in every tensor's place
// and leaves the words between the places alone; unpacking equals
// ref.UnpackBF16 bit for bit: several tensors of lengths around the pair and
// workgroup sizes (1, odd, 63..65, 513), at places with gaps, and in
// binding-sized ranges (a 1 KiB limit cuts the larger tensors).
func TestBF16(t *testing.T) {
	ktest.ForEachDevice(t, func(t *testing.T, d *gpu.Device) {
		rng := rand.New(rand.NewSource(16))
		cases := []struct {
			name  string
			lens  []int
			gap   int    // extra values of gap after each tensor, rounded up to a place
			limit uint64 // the binding limit (0: the device's)
			from  []int  // convert values from[i].. of each tensor (BF16Args.From; nil: all)
		}{
			{"one value", []int{1}, 0, 0, nil},
			{"pairs and odd", []int{2, 3, 5}, 0, 0, nil},
			{"around 64", []int{63, 64, 65}, 200, 0, nil},
			{"workgroups", []int{513, 1}, 0, 0, nil},
			{"in ranges", []int{1027, 300, 2049}, 128, 1024, nil},
			{"pieces in ranges", []int{300, 1001, 257}, 0, 1024, []int{128, 256, 0}},
		}
		for _, c := range cases {
			t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
				if c.limit > 0 {
					old := d.Limits.MaxStorageBufferBindingSize
					d.Limits.MaxStorageBufferBindingSize = c.limit
					defer func() { d.Limits.MaxStorageBufferBindingSize = old }()
				}
				var ts []*nn.Tensor
				var xs [][]float32 // the converted values of each tensor
				var offs, from, count []int
				end := 0
				for i, n := range c.lens {
					x := bf16Inputs(rng, n, true)
					ts = append(ts, ktest.Tensor(t, d, "x"+string(rune('0'+i)), x, n))
					f := 0
					if c.from != nil {
						f = c.from[i]
					}
					xs = append(xs, x[f:])
					from, count = append(from, f), append(count, n-f)
					offs = append(offs, end)
					end = nn.CeilDiv(end+n-f+c.gap, nn.BF16Align) * nn.BF16Align
				}
				words := nn.CeilDiv(end, 2) + 64
				packed := ktest.Tensor(t, d, "packed", nil, words)
				poison := make([]uint32, words)
				for i := range poison {
					poison[i] = 0xdeadbeef
				}
				if err := packed.UploadU32(poison); err != nil {
					t.Fatal(err)
				}
				a := nn.BF16Args{F32: ts, Packed: packed, Offs: offs}
				if c.from != nil {
					a.From, a.Count = from, count
				}
				pk, err := nn.NewBF16Pack(d, a)
				if err != nil {
					t.Fatal(err)
				}
				defer pk.Release()
				ktest.Run(t, d, pk.Record)
				got, err := packed.DownloadU32()
				if err != nil {
					t.Fatal(err)
				}
				want := append([]uint32(nil), poison...)
				for i, x := range xs {
					ref.PackBF16(want[offs[i]/2:offs[i]/2+nn.CeilDiv(len(x), 2)], x)
				}
				for w := range got {
					if got[w] != want[w] {
						t.Fatalf("word %d: %#08x, want %#08x", w, got[w], want[w])
					}
				}
				// Unpack into poisoned tensors: the converted values change,
				// the others (before From) stay.
				var before [][]uint32
				for _, x := range ts {
					ktest.Poison(t, x)
					p, err := x.DownloadU32()
					if err != nil {
						t.Fatal(err)
					}
					before = append(before, p)
				}
				up, err := nn.NewBF16Unpack(d, a)
				if err != nil {
					t.Fatal(err)
				}
				defer up.Release()
				ktest.Run(t, d, up.Record)
				for i, x := range ts {
					g, err := x.DownloadU32()
					if err != nil {
						t.Fatal(err)
					}
					w := make([]float32, len(xs[i]))
					ref.UnpackBF16(w, want[offs[i]/2:])
					for j := range g {
						exp := before[i][j]
						if j >= from[i] {
							exp = math.Float32bits(w[j-from[i]])
						}
						if g[j] != exp {
							t.Fatalf("tensor %d value %d: %#08x, want %#08x", i, j, g[j], exp)
						}
					}
				}
			})
		}
		// Bad places.
		x := ktest.Tensor(t, d, "x", nil, 10)
		y := ktest.Tensor(t, d, "y", nil, 10)
		p := ktest.Tensor(t, d, "p", nil, 128)
		for _, c := range []struct {
			name string
			a    nn.BF16Args
			want string
		}{
			{"unaligned", nn.BF16Args{F32: []*nn.Tensor{x}, Packed: p, Offs: []int{64}}, "multiples"},
			{"overlapping", nn.BF16Args{F32: []*nn.Tensor{x, y}, Packed: p, Offs: []int{128, 128}}, "overlapping"},
			{"too small", nn.BF16Args{F32: []*nn.Tensor{x, y}, Packed: p, Offs: []int{0, 256}}, "does not fit"},
			{"lists differ", nn.BF16Args{F32: []*nn.Tensor{x, y}, Packed: p, Offs: []int{0}}, "places"},
			{"twice", nn.BF16Args{F32: []*nn.Tensor{x, x}, Packed: p, Offs: []int{0, 128}}, "shares"},
			{"start off a place", nn.BF16Args{F32: []*nn.Tensor{x}, Packed: p, Offs: []int{0}, From: []int{64}, Count: []int{5}}, "multiple of"},
			{"past the end", nn.BF16Args{F32: []*nn.Tensor{x}, Packed: p, Offs: []int{0}, From: []int{0}, Count: []int{11}}, "within"},
			{"counts without starts", nn.BF16Args{F32: []*nn.Tensor{x}, Packed: p, Offs: []int{0}, Count: []int{5}}, "starts and counts"},
		} {
			if op, err := nn.NewBF16Pack(d, c.a); err == nil || !strings.Contains(err.Error(), c.want) {
				op.Release()
				t.Errorf("%s: error %v, want one with %q", c.name, err, c.want)
			}
		}
	})
}

// TestBF16Ref checks the twin itself on values whose rounding is known.
func TestBF16Ref(t *testing.T) {
	for _, c := range []struct {
		in   uint32
		want uint16
	}{
		{0x3f800000, 0x3f80}, // 1
		{0x3f808000, 0x3f80}, // a tie, kept part even: down
		{0x3f818000, 0x3f82}, // a tie, kept part odd: up
		{0x3f808001, 0x3f81}, // just past the tie: up
		{0x7f7fffff, 0x7f80}, // past the largest bfloat16: infinity
		{0xff7f8000, 0xff80}, // a tie at the top, odd: minus infinity
		{0x7f800000, 0x7f80}, // infinity
		{0x7f800001, 0x7fc0}, // a signalling NaN: quiet
		{0xffc12345, 0xffc0}, // a negative NaN keeps its sign
		{0x00008000, 0x0000}, // the smallest subnormals: a tie to zero
		{0x00018000, 0x0002}, // a subnormal tie, odd: up
		{0x80000000, 0x8000}, // minus zero
	} {
		if got := ref.BF16Bits(math.Float32frombits(c.in)); got != c.want {
			t.Errorf("BF16Bits(%#08x) = %#04x, want %#04x", c.in, got, c.want)
		}
	}
	if got := ref.FromBF16(0x3f81); got != 1.0078125 {
		t.Errorf("FromBF16(0x3f81) = %g, want 1.0078125", got)
	}
}
