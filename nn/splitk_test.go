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

// TestSplitKPlan checks, on a dry-run H200 (both runtimes), which forward
// (NT) and input-gradient (NN) GEMMs split their reduction by themselves:
// the shapes of a 94m training step at 4096 tokens (d_model 640, ed 1280,
// dt rank 40, d_state 16, vocab 65536), plain and grouped, and that
// MOM_GEMM_SPLIT turns the split off or refuses a bad value.
func TestSplitKPlan(t *testing.T) {
	const T = 4096
	cases := []struct {
		name         string
		n, k, groups int    // W (N, K) (per group); groups 0: a plain Linear
		split        string // MOM_GEMM_SPLIT
		fwd, dx      string // in the forward's and dX's plans ("" : no split)
	}{
		{name: "lm head", n: 65536, k: 640, dx: "split-K in 4 chunks of 16384 (640 workgroups)"},
		{name: "x_proj dt", n: 40, k: 1280, fwd: "split-K in 10 chunks of 128 (320 workgroups)"},
		{name: "x_proj B", n: 16, k: 1280, fwd: "split-K in 10 chunks of 128 (320 workgroups)"},
		{name: "dt_proj", n: 1280, k: 40, dx: "split-K in 10 chunks of 128 (320 workgroups)"},
		{name: "in_proj", n: 1280, k: 640, fwd: "split-K in 2 chunks of 320 (640 workgroups)", dx: "split-K in 4 chunks of 320 (640 workgroups)"},
		{name: "out_proj", n: 640, k: 1280, fwd: "split-K in 4 chunks of 320 (640 workgroups)", dx: "split-K in 2 chunks of 320 (640 workgroups)"},
		// Grouped over 3 modalities: (32 + 2) row-tile slots per column tile.
		{name: "grouped x_proj dt", n: 40, k: 1280, groups: 3, fwd: "split-K in 10 chunks of 128 (340 workgroups)"},
		{name: "grouped in_proj", n: 1280, k: 640, groups: 3, fwd: "split-K in 2 chunks of 320 (680 workgroups)", dx: "split-K in 4 chunks of 320 (680 workgroups)"},
		{name: "in_proj off", n: 1280, k: 640, split: "off"},
		{name: "grouped in_proj off", n: 1280, k: 640, groups: 3, split: "off"},
	}
	for _, profile := range []string{"h200", "h200-wgpu"} {
		t.Run(profile, func(t *testing.T) {
			d, err := gpu.OpenDryRun(gpu.Profiles[profile])
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			ten := func(shape ...int) *nn.Tensor {
				x, err := nn.NewTensor(d, "t", shape...)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(x.Release)
				return x
			}
			rt, err := nn.NewRouting(d, T, 3)
			if err != nil {
				t.Fatal(err)
			}
			defer rt.Release()
			s := nn.NewScratch(d)
			defer s.Release()
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					t.Setenv(nn.EnvGemmSplit, c.split)
					x, y, dx, dy := ten(T, c.k), ten(T, c.n), ten(T, c.k), ten(T, c.n)
					var plan string
					if c.groups == 0 {
						w := ten(c.n, c.k)
						l, err := nn.NewLinear(d, nn.LinearArgs{X: x, W: w, Y: y, DY: dy, DX: dx, DW: w, Scratch: s})
						if err != nil {
							t.Fatal(err)
						}
						defer l.Release()
						plan = l.Plan()
					} else {
						w := ten(c.groups, c.n, c.k)
						l, err := nn.NewGroupedLinear(d, nn.GroupedLinearArgs{X: x, W: w, Y: y, DY: dy, DX: dx, DW: w, Routing: rt, Scratch: s})
						if err != nil {
							t.Fatal(err)
						}
						defer l.Release()
						plan = l.Plan()
					}
					parts := strings.Split(plan, "; ")
					for i, want := range []string{c.fwd, c.dx} {
						got := parts[i]
						if want == "" && strings.Contains(got, "split") || want != "" && !strings.Contains(got, want) {
							t.Errorf("%q: want %q", got, want)
						}
					}
					var need int
					if c.groups == 0 {
						need = nn.LinearScratch(d, T, c.n, c.k, false)
					} else {
						need = nn.GroupedLinearScratch(d, T, c.groups, c.n, c.k)
					}
					t.Logf("%s (scratch %.1f MiB)", plan, float64(4*need)/(1<<20))
				})
			}
			t.Run("bad value", func(t *testing.T) {
				t.Setenv(nn.EnvGemmSplit, "many")
				_, err := nn.NewLinear(d, nn.LinearArgs{X: ten(T, 64), W: ten(8, 64), Y: ten(T, 8)})
				if err == nil || !strings.Contains(err.Error(), nn.EnvGemmSplit) {
					t.Errorf("error %v, want one naming %s", err, nn.EnvGemmSplit)
				}
			})
		})
	}
}

// TestGemmSplitK: a Gemm split over its reduction (forced; NT with a bias,
// NN accumulating) matches its float64 twin, gives bitwise the same result
// run after run, and with MOM_GEMM_SPLIT=off gives the unsplit kernel's.
func TestGemmSplitK(t *testing.T) {
	const m, n, k = 37, 20, 301
	ktest.ForEachDevice(t, func(t *testing.T, d *gpu.Device) {
		rng := rand.New(rand.NewSource(11))
		a, w, b := ktest.Rand(rng, m*k, 1), ktest.Rand(rng, n*k, 1), ktest.Rand(rng, n, 1)
		c0 := ktest.Rand(rng, m*n, 1)
		for _, accum := range []bool{false, true} {
			run := func(split string) []float32 {
				t.Setenv(nn.EnvGemmSplit, split)
				cT := ktest.Tensor(t, d, "c", c0, m, n)
				args := nn.GemmArgs{A: ktest.Tensor(t, d, "a", a, m, k), B: ktest.Tensor(t, d, "w", w, n, k),
					C: cT, M: m, N: n, K: k, Accumulate: accum}
				if !accum {
					args.Bias = ktest.Tensor(t, d, "b", b, n)
					ktest.Poison(t, cT)
				}
				g, err := nn.NewGemm(d, args)
				if err != nil {
					t.Fatal(err)
				}
				defer g.Release()
				if split != "off" && !strings.Contains(g.Plan(), "split-K") {
					t.Errorf("%s=%s: plan %q, want a split", nn.EnvGemmSplit, split, g.Plan())
				}
				ktest.Run(t, d, g.Record)
				return ktest.Download(t, cT)
			}
			want := ktest.F64(c0)
			var bb []float64
			if !accum {
				bb = ktest.F64(b)
			}
			ref.Linear(want, ktest.F64(a), ktest.F64(w), bb, m, n, k, accum)
			first := run("5")
			ktest.Close(t, "c split in 5", first, want, gemmTol(k, 1))
			again := run("5")
			for i := range first {
				if math.Float32bits(first[i]) != math.Float32bits(again[i]) {
					t.Fatalf("accum %v: c[%d] is %g, then %g: a split-K GEMM must be deterministic", accum, i, first[i], again[i])
				}
			}
			ktest.Close(t, "c unsplit", run("off"), want, gemmTol(k, 1))
		}
	})
}
