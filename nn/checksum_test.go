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

// TestChecksum: the kernel's checksums equal the reference's, per
// binding-sized range, at edge sizes and over several workgroups; one
// flipped bit changes them.
func TestChecksum(t *testing.T) {
	ktest.ForEachDevice(t, func(t *testing.T, d *gpu.Device) {
		rng := rand.New(rand.NewSource(40))
		for _, c := range []struct {
			sizes []int
			limit uint64 // 0: the device's binding limit
		}{
			{[]int{1}, 0},
			{[]int{255, 256, 257, 2048*4 + 3}, 0},
			{[]int{3 << 20}, 0}, // the 1024-workgroup cap: many grid strides
			{[]int{3000, 64}, 4096},
		} {
			t.Run(fmt.Sprint(c.sizes, c.limit), func(t *testing.T) {
				run := func() {
					var ts []*nn.Tensor
					vals := map[*nn.Tensor][]float32{}
					for i, n := range c.sizes {
						v := ktest.Rand(rng, n, 3)
						x := ktest.Tensor(t, d, fmt.Sprintf("x%d", i), v, n)
						ts = append(ts, x)
						vals[x] = v
					}
					cs, err := nn.NewChecksum(d, ts)
					if err != nil {
						t.Fatal(err)
					}
					defer cs.Release()
					check := func(what string) []uint32 {
						ktest.Run(t, d, cs.Record)
						got, err := cs.Read()
						if err != nil {
							t.Fatal(err)
						}
						for k, s := range cs.Slots() {
							if want := ref.Checksum(vals[s.Tensor][s.Off : s.Off+s.N]); got[k] != want {
								t.Errorf("%s: slot %d (%s [%d, %d)): %08x, want %08x", what, k, s.Tensor.Name, s.Off, s.Off+s.N, got[k], want)
							}
						}
						return got
					}
					before := check("first")
					if c.limit > 0 && len(cs.Slots()) <= len(ts) {
						t.Errorf("%d slots for %d tensors under a %d-byte binding limit", len(cs.Slots()), len(ts), c.limit)
					}
					// Flip the lowest bit of the last element of the last tensor.
					last := ts[len(ts)-1]
					v := vals[last]
					v[len(v)-1] = math.Float32frombits(math.Float32bits(v[len(v)-1]) ^ 1)
					if err := last.Upload(v); err != nil {
						t.Fatal(err)
					}
					after := check("after a flipped bit")
					if before[len(before)-1] == after[len(after)-1] {
						t.Errorf("a flipped bit left the checksum %08x", after[len(after)-1])
					}
				}
				if c.limit > 0 {
					withBindingLimit(d, c.limit, run)
				} else {
					run()
				}
			})
		}
		if _, err := nn.NewChecksum(d, nil); err == nil {
			t.Errorf("a checksum of no tensors was accepted")
		}
	})
}

func TestRefChecksum(t *testing.T) {
	for _, c := range []struct {
		x    []float32
		want uint32
	}{
		{nil, 0},
		{[]float32{0, 0}, 0},
		{[]float32{1}, 0x3f800000},
		{[]float32{0, 1}, 3 * 0x3f800000},
		{[]float32{-2, 1}, (0xc0000000 + 3*0x3f800000) % (1 << 32)}, // wraps
	} {
		if got := ref.Checksum(c.x); got != c.want {
			t.Errorf("Checksum(%v) = %08x, want %08x", c.x, got, c.want)
		}
	}
}
