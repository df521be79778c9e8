package nn_test

import (
	"math"
	"math/rand"
	"testing"

	"mom/gpu"
	"mom/nn"
	"mom/nn/internal/ktest"
	"mom/nn/ref"
)

// TestMaskLogits: the kernel equals its twin bit for bit (a copy or a NaN
// per logit) at stream counts and vocabularies off the workgroup and word
// sizes, with streams on no set, empty and clamped windows, and sets of
// several ranges; and the sampler, fed masked logits, draws only ids of the
// stream's set.
func TestMaskLogits(t *testing.T) {
	cases := []struct {
		name string
		s, v int
		sets [][][2]int
	}{
		{"one stream", 1, 7, [][][2]int{{{2, 3}, {5, 7}}}},
		{"word edge", 3, 33, [][][2]int{{{0, 1}, {32, 33}}, {{1, 32}}}},
		{"markers and a range", 5, 300, [][][2]int{{{3, 4}, {200, 300}}, {{0, 2}, {6, 200}}, {{299, 300}}}},
		{"many streams", 37, 1000, [][][2]int{{{1, 2}, {500, 1000}}, {{0, 500}}, {{10, 20}, {30, 40}, {990, 1000}}, {{257, 258}}}},
	}
	ktest.ForEachDevice(t, func(t *testing.T, d *gpu.Device) {
		rng := rand.New(rand.NewSource(41))
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				mask, err := nn.MaskWords(c.sets, c.v)
				if err != nil {
					t.Fatal(err)
				}
				sel, allowed := make([]uint32, c.s), make([]uint32, 2*c.s)
				for s := range sel {
					switch k := rng.Intn(len(c.sets) + 1); {
					case k == len(c.sets):
						sel[s] = nn.MaskNone
					default:
						sel[s] = uint32(k)
					}
					switch rng.Intn(3) {
					case 0: // empty window: the whole vocabulary
					case 1: // a window past the vocabulary, clamped
						allowed[2*s], allowed[2*s+1] = uint32(rng.Intn(c.v)), uint32(c.v+5)
					default:
						lo := rng.Intn(c.v)
						allowed[2*s], allowed[2*s+1] = uint32(lo), uint32(lo+1+rng.Intn(c.v-lo))
					}
				}
				logits := ktest.Rand(rng, c.s*c.v, 3)
				a := nn.MaskLogitsArgs{Logits: ktest.Tensor(t, d, "logits", logits, c.s, c.v),
					Mask: ktest.Tensor(t, d, "mask", nil, len(c.sets), (c.v+31)/32), Sel: ktest.Tensor(t, d, "sel", nil, c.s),
					Allowed: ktest.Tensor(t, d, "allowed", nil, c.s, 2)}
				for _, u := range []struct {
					t *nn.Tensor
					v []uint32
				}{{a.Mask, mask}, {a.Sel, sel}, {a.Allowed, allowed}} {
					if err := u.t.UploadU32(u.v); err != nil {
						t.Fatal(err)
					}
				}
				op, err := nn.NewMaskLogits(d, a)
				if err != nil {
					t.Fatal(err)
				}
				defer op.Release()
				ktest.Run(t, d, op.Record)
				got := ktest.Download(t, a.Logits)
				want := append([]float32(nil), logits...)
				ref.MaskLogits(want, mask, sel, allowed, c.s, c.v)
				masked := 0
				for i := range want {
					gn, wn := math.IsNaN(float64(got[i])), math.IsNaN(float64(want[i]))
					if gn != wn || (!wn && got[i] != want[i]) {
						t.Fatalf("stream %d id %d: %v, the reference %v", i/c.v, i%c.v, got[i], want[i])
					}
					if wn {
						masked++
					}
				}
				if masked == 0 {
					t.Fatal("nothing was masked: the case tests nothing")
				}
				// The sampler on the masked logits draws inside each set.
				pos := ktest.Tensor(t, d, "pos", nil, c.s)
				ids := ktest.Tensor(t, d, "ids", nil, c.s)
				sm, err := nn.NewSampler(d, nn.SamplerArgs{Logits: a.Logits, IDs: ids, Allowed: a.Allowed, Pos: pos})
				if err != nil {
					t.Fatal(err)
				}
				defer sm.Release()
				for _, p := range []nn.SampleParams{{}, {Temperature: 2, Seed: 9}, {Temperature: 1, TopK: 3, Seed: 10}} {
					if err := sm.SetParams(p); err != nil {
						t.Fatal(err)
					}
					ktest.Run(t, d, sm.Record)
					drawn, err := ids.DownloadU32()
					if err != nil {
						t.Fatal(err)
					}
					for s, id := range drawn {
						lo, hi := int(allowed[2*s]), min(int(allowed[2*s+1]), c.v)
						if lo >= hi {
							lo, hi = 0, c.v
						}
						inSet := sel[s] == nn.MaskNone || mask[int(sel[s])*((c.v+31)/32)+int(id)/32]>>(id%32)&1 == 1
						if int(id) < lo || int(id) >= hi {
							t.Errorf("%+v: stream %d drew %d outside its window [%d, %d)", p, s, id, lo, hi)
						}
						// A window with no id of the set leaves only NaNs:
						// the sampler then falls back to lo.
						if !inSet && !setMeets(c.sets[sel[s]], lo, hi) && int(id) == lo {
							continue
						}
						if !inSet {
							t.Errorf("%+v: stream %d drew %d outside its set %v", p, s, id, c.sets[sel[s]])
						}
					}
				}
			})
		}
		if _, err := nn.MaskWords([][][2]int{{{5, 5}}}, 10); err == nil {
			t.Error("an empty range: no error")
		}
		if _, err := nn.MaskWords([][][2]int{{{5, 11}}}, 10); err == nil {
			t.Error("a range past the vocabulary: no error")
		}
	})
}

// setMeets reports whether a set has an id in [lo, hi).
func setMeets(set [][2]int, lo, hi int) bool {
	for _, r := range set {
		if r[0] < hi && r[1] > lo {
			return true
		}
	}
	return false
}
