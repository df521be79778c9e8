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

// Tests of the recurrent step mode's kernels against their twins in
// nn/ref, at edge sizes: one stream and odd stream counts, widths that are
// not multiples of a workgroup (256 threads; 8 output rows and 32 lanes in
// the routed GEMV; 8 streams per pass), modality groups of size 0 and 1.
// Each case runs several steps, so that the state carried from step to step
// on the GPU is compared too. Tolerances: float32 against float64, scaled
// by the tensor's RMS as in the scan test; the state and y of the SSM step
// sum N products, the GEMV K products.

var stepTols = map[string]struct{ abs, rel float64 }{
	"conv y":     {1e-6, 1e-5},
	"conv state": {0, 0}, // copies: exact
	"conv tail":  {0, 0},
	"ssm y":      {2e-6, 2e-5},
	"ssm state":  {2e-6, 2e-5},
	"gemv":       {2e-6, 2e-5},
	"embed":      {0, 0},
}

func stepClose(t *testing.T, name string, got []float32, want []float64) {
	t.Helper()
	tol, ok := stepTols[name]
	if !ok {
		t.Fatalf("no tolerance for %s", name)
	}
	if tol.abs == 0 && tol.rel == 0 {
		for i := range want {
			if float64(got[i]) != want[i] {
				t.Errorf("%s[%d] = %g, want exactly %g", name, i, got[i], want[i])
				return
			}
		}
		return
	}
	ktest.CloseRMS(t, name, got, want, tol.abs, tol.rel)
}

func TestConvStep(t *testing.T) {
	cases := []struct {
		s, c, k int
		silu    bool
	}{
		{1, 5, 4, true}, {3, 37, 4, true}, {5, 300, 4, true}, {2, 7, 2, false}, {3, 6, 1, true}, {1, 3, 8, true},
	}
	ktest.ForEachDevice(t, func(t *testing.T, d *gpu.Device) {
		rng := rand.New(rand.NewSource(21))
		for _, c := range cases {
			t.Run(fmt.Sprintf("s%d_c%d_k%d_silu%v", c.s, c.c, c.k, c.silu), func(t *testing.T) {
				w := ktest.Rand(rng, c.c*c.k, 1)
				bias := ktest.Rand(rng, c.c, 1)
				state := ktest.Rand(rng, c.s*c.c*(c.k-1), 1)
				a := nn.ConvStepArgs{SiLU: c.silu,
					X: ktest.Tensor(t, d, "x", nil, c.s, c.c), W: ktest.Tensor(t, d, "w", w, c.c, c.k),
					Bias: ktest.Tensor(t, d, "bias", bias, c.c), Y: ktest.Tensor(t, d, "y", nil, c.s, c.c)}
				if c.k > 1 {
					a.State = ktest.Tensor(t, d, "state", state, c.s, c.c, c.k-1)
				}
				op, err := nn.NewConvStep(d, a)
				if err != nil {
					t.Fatal(err)
				}
				defer op.Release()
				f := ktest.F64
				wantState := f(state)
				for step := 0; step < 3; step++ {
					x := ktest.Rand(rng, c.s*c.c, 1)
					if err := a.X.Upload(x); err != nil {
						t.Fatal(err)
					}
					ktest.Poison(t, a.Y)
					ktest.Run(t, d, op.Record)
					y := make([]float64, c.s*c.c)
					ref.ConvStep(y, wantState, f(x), f(w), f(bias), c.s, c.c, c.k, c.silu)
					stepClose(t, "conv y", ktest.Download(t, a.Y), y)
					if c.k > 1 {
						stepClose(t, "conv state", ktest.Download(t, a.State), wantState)
					}
				}
			})
		}
	})
}

func TestConvTail(t *testing.T) {
	cases := []struct{ b, l, c, k int }{{1, 1, 5, 4}, {2, 3, 5, 4}, {3, 10, 33, 4}, {1, 7, 3, 8}, {2, 4, 300, 2}}
	ktest.ForEachDevice(t, func(t *testing.T, d *gpu.Device) {
		rng := rand.New(rand.NewSource(22))
		for _, c := range cases {
			t.Run(fmt.Sprintf("b%d_l%d_c%d_k%d", c.b, c.l, c.c, c.k), func(t *testing.T) {
				x := ktest.Rand(rng, c.b*c.l*c.c, 1)
				a := nn.ConvTailArgs{Batch: c.b, Len: c.l, X: ktest.Tensor(t, d, "x", x, c.b, c.l, c.c),
					Tail: ktest.Tensor(t, d, "tail", nil, c.b, c.c, c.k-1)}
				ktest.Poison(t, a.Tail)
				op, err := nn.NewConvTail(d, a)
				if err != nil {
					t.Fatal(err)
				}
				defer op.Release()
				ktest.Run(t, d, op.Record)
				want := make([]float64, c.b*c.c*(c.k-1))
				ref.ConvTail(want, ktest.F64(x), c.b, c.l, c.c, c.k)
				stepClose(t, "conv tail", ktest.Download(t, a.Tail), want)
			})
		}
	})
}

func TestSSMStep(t *testing.T) {
	// B and C sit in a wider matrix, as x_proj writes them (dt_low first).
	cases := []struct {
		s, ed, n, r int
		gate        bool
	}{
		{1, 5, 16, 1, true}, {3, 300, 16, 2, true}, {5, 7, 16, 3, false}, {2, 3, 5, 1, true}, {1, 257, 5, 4, false},
	}
	ktest.ForEachDevice(t, func(t *testing.T, d *gpu.Device) {
		rng := rand.New(rand.NewSource(23))
		for _, c := range cases {
			t.Run(fmt.Sprintf("s%d_ed%d_n%d_z%v", c.s, c.ed, c.n, c.gate), func(t *testing.T) {
				w := c.r + 2*c.n
				uni := func(n int, lo, hi float64) []float32 {
					out := make([]float32, n)
					for i := range out {
						out[i] = float32(lo + (hi-lo)*rng.Float64())
					}
					return out
				}
				aLog, dd := uni(c.ed*c.n, -1, 2), uni(c.ed, -1, 1)
				state := uni(c.s*c.ed*c.n, -1, 1)
				a := nn.SSMStepArgs{
					U: ktest.Tensor(t, d, "u", nil, c.s, c.ed), Delta: ktest.Tensor(t, d, "delta", nil, c.s, c.ed),
					ALog: ktest.Tensor(t, d, "a_log", aLog, c.ed, c.n), D: ktest.Tensor(t, d, "D", dd, c.ed),
					Y: ktest.Tensor(t, d, "y", nil, c.s, c.ed), State: ktest.Tensor(t, d, "state", state, c.s, c.ed, c.n),
					BC: ktest.Tensor(t, d, "dbc", nil, c.s, w), BCol: c.r, CCol: c.r + c.n,
				}
				if c.gate {
					a.Z = ktest.Tensor(t, d, "z", nil, c.s, c.ed)
				}
				op, err := nn.NewSSMStep(d, a)
				if err != nil {
					t.Fatal(err)
				}
				defer op.Release()
				f := ktest.F64
				wantState := f(state)
				for step := 0; step < 3; step++ {
					u, delta, bc := uni(c.s*c.ed, -1, 1), uni(c.s*c.ed, -4, 1), uni(c.s*w, -1, 1)
					var z []float32
					for _, up := range []struct {
						t *nn.Tensor
						v []float32
					}{{a.U, u}, {a.Delta, delta}, {a.BC, bc}} {
						if err := up.t.Upload(up.v); err != nil {
							t.Fatal(err)
						}
					}
					if c.gate {
						z = uni(c.s*c.ed, -2, 2)
						if err := a.Z.Upload(z); err != nil {
							t.Fatal(err)
						}
					}
					ktest.Poison(t, a.Y)
					ktest.Run(t, d, op.Record)
					y := make([]float64, c.s*c.ed)
					var zf []float64
					if c.gate {
						zf = f(z)
					}
					ref.SSMStep(y, wantState, f(u), f(delta), f(aLog), f(bc), f(dd), zf, c.s, c.ed, c.n, w, c.r, c.r+c.n)
					stepClose(t, "ssm y", ktest.Download(t, a.Y), y)
					stepClose(t, "ssm state", ktest.Download(t, a.State), wantState)
				}
			})
		}
	})
}

// gemvCase is one RoutedLinear: S rows (their groups; nil unrouted), N
// outputs of K inputs, read and written at column offsets of wider
// matrices.
type gemvCase struct {
	name             string
	groups           int
	rowGroups        []uint32 // nil: unrouted
	s, n, k          int
	ldx, xcol        int
	ldy, ycol        int
	bias, accumulate bool
	lanes            int // threads per output row; 0: the device's choice
}

func gemvGroups(s int, f func(i int) uint32) []uint32 {
	out := make([]uint32, s)
	for i := range out {
		out[i] = f(i)
	}
	return out
}

func TestRoutedLinear(t *testing.T) {
	cases := []gemvCase{
		{name: "one stream", groups: 3, rowGroups: []uint32{2}, s: 1, n: 13, k: 70, ldx: 70, ldy: 13},
		{name: "group 1 empty, group 2 one row", groups: 3, rowGroups: []uint32{0, 0, 2, 0, 0}, s: 5, n: 9, k: 33, ldx: 33, ldy: 9, bias: true},
		{name: "37 rows over 2 groups", groups: 2, rowGroups: gemvGroups(37, func(i int) uint32 { return uint32(i*7%5) % 2 }),
			s: 37, n: 17, k: 64, ldx: 64, ldy: 17, bias: true, accumulate: true},
		{name: "300 rows (two windows)", groups: 3, rowGroups: gemvGroups(300, func(i int) uint32 { return uint32(i*i%7) % 3 }),
			s: 300, n: 9, k: 40, ldx: 40, ldy: 9},
		{name: "column windows", groups: 3, rowGroups: []uint32{1, 2, 1}, s: 3, n: 5, k: 20, ldx: 31, xcol: 7, ldy: 12, ycol: 4, accumulate: true},
		{name: "unrouted", s: 3, n: 300, k: 20, ldx: 20, ldy: 300, bias: true},
		{name: "unrouted 65 rows into a window", s: 65, n: 8, k: 33, ldx: 40, xcol: 2, ldy: 20, ycol: 11, accumulate: true},
	}
	ktest.ForEachDevice(t, func(t *testing.T, d *gpu.Device) {
		rng := rand.New(rand.NewSource(24))
		// Both layouts on any device: a thread per output row (CPU) and
		// 32 lanes per row with a reduction (GPU).
		for _, lanes := range []int{1, 32} {
			for _, c := range cases {
				c.lanes = lanes
				t.Run(fmt.Sprintf("%s/lanes%d", c.name, lanes), func(t *testing.T) { gemvRun(t, d, rng, c) })
			}
		}
	})
}

func gemvRun(t *testing.T, d *gpu.Device, rng *rand.Rand, c gemvCase) {
	g := max(c.groups, 1)
	x := ktest.Rand(rng, c.s*c.ldx, 1)
	w := ktest.Rand(rng, g*c.n*c.k, 1)
	y0 := ktest.Rand(rng, c.s*c.ldy, 1)
	a := nn.RoutedLinearArgs{X: ktest.Tensor(t, d, "x", x, c.s, c.ldx), Y: ktest.Tensor(t, d, "y", y0, c.s, c.ldy),
		XCol: c.xcol, YCol: c.ycol, Accumulate: c.accumulate, Lanes: c.lanes}
	if c.rowGroups != nil {
		a.W = ktest.Tensor(t, d, "w", w, g, c.n, c.k)
		a.Group = ktest.Tensor(t, d, "group", nil, c.s)
		if err := a.Group.UploadU32(c.rowGroups); err != nil {
			t.Fatal(err)
		}
	} else {
		a.W = ktest.Tensor(t, d, "w", w, c.n, c.k)
	}
	var b []float32
	if c.bias {
		b = ktest.Rand(rng, g*c.n, 1)
		if c.rowGroups != nil {
			a.B = ktest.Tensor(t, d, "b", b, g, c.n)
		} else {
			a.B = ktest.Tensor(t, d, "b", b, c.n)
		}
	}
	op, err := nn.NewRoutedLinear(d, a)
	if err != nil {
		t.Fatal(err)
	}
	defer op.Release()
	ktest.Run(t, d, op.Record)
	f := ktest.F64
	want := f(y0)
	var bf []float64
	if b != nil {
		bf = f(b)
	}
	ref.RoutedLinear(want, f(x), f(w), bf, c.rowGroups, c.s, c.n, c.k, c.ldx, c.xcol, c.ldy, c.ycol, c.accumulate)
	// Outside the output window y keeps its values exactly.
	got := ktest.Download(t, a.Y)
	for r := 0; r < c.s; r++ {
		for j := 0; j < c.ldy; j++ {
			if i := r*c.ldy + j; (j < c.ycol || j >= c.ycol+c.n) && got[i] != y0[i] {
				t.Fatalf("y[%d, %d] outside the window changed: %g, was %g", r, j, got[i], y0[i])
			}
		}
	}
	stepClose(t, "gemv", got, want)
}

func TestStepEmbedding(t *testing.T) {
	ktest.ForEachDevice(t, func(t *testing.T, d *gpu.Device) {
		rng := rand.New(rand.NewSource(25))
		for _, c := range []struct {
			ids  []uint32
			ends []int
			dm   int
		}{
			{[]uint32{5}, []int{10}, 3},
			{[]uint32{0, 9, 10, 13, 14, 17, 40}, []int{10, 14, 18}, 33},
			{[]uint32{3, 2, 1}, []int{2, 4}, 256},
		} {
			s, v := len(c.ids), c.ends[len(c.ends)-1]
			t.Run(fmt.Sprintf("s%d_v%d_d%d", s, v, c.dm), func(t *testing.T) {
				e := ktest.Rand(rng, v*c.dm, 1)
				a := nn.StepEmbeddingArgs{E: ktest.Tensor(t, d, "e", e, v, c.dm), IDs: ktest.Tensor(t, d, "ids", nil, s),
					Out: ktest.Tensor(t, d, "out", nil, s, c.dm), Group: ktest.Tensor(t, d, "group", nil, s), Ends: c.ends}
				if err := a.IDs.UploadU32(c.ids); err != nil {
					t.Fatal(err)
				}
				ktest.Poison(t, a.Out)
				op, err := nn.NewStepEmbedding(d, a)
				if err != nil {
					t.Fatal(err)
				}
				defer op.Release()
				ktest.Run(t, d, op.Record)
				out := make([]float64, s*c.dm)
				group := make([]uint32, s)
				ref.StepEmbedding(out, group, ktest.F64(e), c.ids, c.ends, s, c.dm)
				stepClose(t, "embed", ktest.Download(t, a.Out), out)
				got, err := a.Group.DownloadU32()
				if err != nil {
					t.Fatal(err)
				}
				if fmt.Sprint(got) != fmt.Sprint(group) {
					t.Errorf("groups %v, want %v", got, group)
				}
			})
		}
	})
}

// samplerCase is one Sampler configuration over S streams of V logits.
type samplerCase struct {
	name    string
	s, v    int
	p       nn.SampleParams
	allowed func(s int) [2]uint32 // nil: the whole vocabulary
	ties    bool                  // logits rounded to a coarse grid, so ties are common
}

// TestSampler compares the GPU's choices with ref.Sample over several steps.
// The thresholds of top-k are exact (integer counts of keys); the draw and
// the top-p threshold compare float32 sums on the GPU with float64 ones, so
// a choice may differ from the reference's when u·Z lies within rounding of
// a boundary of the cumulative sum, or the top-p mass within rounding of
// p·Z. Such a choice is accepted when the reference makes it with u or p
// moved by 1e-5 (relative) — float32 sums of up to 5000 terms are good to a
// few 1e-7 — and every other choice must equal the reference's exactly.
func TestSampler(t *testing.T) {
	mod := func(ranges ...[2]uint32) func(int) [2]uint32 {
		return func(s int) [2]uint32 { return ranges[s%len(ranges)] }
	}
	cases := []samplerCase{
		{name: "greedy", s: 3, v: 1000, p: nn.SampleParams{}},
		{name: "greedy ties, ranges", s: 5, v: 300, p: nn.SampleParams{}, ties: true,
			allowed: mod([2]uint32{0, 100}, [2]uint32{100, 250}, [2]uint32{250, 300}, [2]uint32{7, 8}, [2]uint32{0, 0})},
		{name: "temperature", s: 1, v: 7, p: nn.SampleParams{Temperature: 1, Seed: 1}},
		{name: "temperature 0.5, 37 streams", s: 37, v: 513, p: nn.SampleParams{Temperature: 0.5, Seed: 1<<40 + 3}},
		{name: "top-k", s: 4, v: 1000, p: nn.SampleParams{Temperature: 1.3, TopK: 5, Seed: 2}},
		{name: "top-k with ties", s: 6, v: 257, p: nn.SampleParams{Temperature: 1, TopK: 10, Seed: 3}, ties: true},
		{name: "top-k 1", s: 3, v: 100, p: nn.SampleParams{Temperature: 1, TopK: 1, Seed: 4}},
		{name: "top-p", s: 5, v: 5000, p: nn.SampleParams{Temperature: 1, TopP: 0.9, Seed: 5}},
		{name: "top-k and top-p in ranges", s: 7, v: 700, p: nn.SampleParams{Temperature: 0.8, TopK: 50, TopP: 0.5, Seed: 6},
			allowed: mod([2]uint32{0, 400}, [2]uint32{400, 650}, [2]uint32{650, 700})},
	}
	ktest.ForEachDevice(t, func(t *testing.T, d *gpu.Device) {
		rng := rand.New(rand.NewSource(26))
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) { samplerRun(t, d, rng, c) })
		}
	})
}

func samplerRun(t *testing.T, d *gpu.Device, rng *rand.Rand, c samplerCase) {
	allowed := make([]uint32, 2*c.s)
	pos := make([]uint32, c.s)
	for s := 0; s < c.s; s++ {
		if c.allowed != nil {
			r := c.allowed(s)
			allowed[2*s], allowed[2*s+1] = r[0], r[1]
		}
		pos[s] = uint32(rng.Intn(1000))
	}
	a := nn.SamplerArgs{Logits: ktest.Tensor(t, d, "logits", nil, c.s, c.v), IDs: ktest.Tensor(t, d, "ids", nil, c.s),
		Allowed: ktest.Tensor(t, d, "allowed", nil, c.s, 2), Pos: ktest.Tensor(t, d, "pos", nil, c.s)}
	if err := a.Allowed.UploadU32(allowed); err != nil {
		t.Fatal(err)
	}
	if err := a.Pos.UploadU32(pos); err != nil {
		t.Fatal(err)
	}
	sm, err := nn.NewSampler(d, a)
	if err != nil {
		t.Fatal(err)
	}
	defer sm.Release()
	if err := sm.SetParams(c.p); err != nil {
		t.Fatal(err)
	}
	exact := 0
	for step := 0; step < 4; step++ {
		logits := make([]float32, c.s*c.v)
		for i := range logits {
			x := rng.NormFloat64() * 3
			if c.ties {
				x = math.Round(x * 2)
			}
			logits[i] = float32(x)
		}
		if err := a.Logits.Upload(logits); err != nil {
			t.Fatal(err)
		}
		ktest.Run(t, d, sm.Record)
		got, err := a.IDs.DownloadU32()
		if err != nil {
			t.Fatal(err)
		}
		want := make([]uint32, c.s)
		p0 := append([]uint32(nil), pos...)
		ref.Sample(want, pos, logits, allowed, c.s, c.v, c.p.Temperature, c.p.TopK, c.p.TopP, c.p.Seed)
		gotPos, err := a.Pos.DownloadU32()
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(gotPos) != fmt.Sprint(pos) {
			t.Fatalf("step %d: step counters %v, want %v", step, gotPos, pos)
		}
		for s := 0; s < c.s; s++ {
			if got[s] == want[s] {
				exact++
				continue
			}
			row := logits[s*c.v : (s+1)*c.v]
			lo, hi := int(allowed[2*s]), min(int(allowed[2*s+1]), c.v)
			u := ref.SampleUniform(c.p.Seed, uint32(s), p0[s])
			ok := false
			for _, du := range []float64{-1e-5, 0, 1e-5} {
				for _, dp := range []float64{-1e-5, 0, 1e-5} {
					topP := c.p.TopP
					if topP > 0 && topP < 1 {
						topP *= 1 + dp
					}
					if ref.SampleRow(row, lo, hi, c.p.Temperature, c.p.TopK, topP, math.Min(math.Max(u+du, 0), 1-1e-9)) == int(got[s]) {
						ok = true
					}
				}
			}
			if !ok {
				t.Errorf("step %d stream %d: chose %d, the reference %d (u %.8f, logits %g and %g)", step, s, got[s], want[s], u, row[got[s]], row[want[s]])
			}
		}
	}
	// The near-boundary allowance must stay rare.
	total := 4 * c.s
	if exact < total {
		t.Logf("%d of %d choices equal the reference's exactly, the others within the rounding allowance", exact, total)
	}
	if exact < total-max(1, total/20) {
		t.Errorf("only %d of %d choices equal the reference's exactly", exact, total)
	}
}

// TestStepOpErrors: bad shapes are errors that name the op and the tensor.
func TestStepOpErrors(t *testing.T) {
	ktest.ForEachDevice(t, func(t *testing.T, d *gpu.Device) {
		tn := func(name string, shape ...int) *nn.Tensor { return ktest.Tensor(t, d, name, nil, shape...) }
		type build func() (interface{ Release() }, error)
		cases := []struct {
			name string
			f    build
			want string
		}{
			{"conv step state", func() (interface{ Release() }, error) {
				return nn.NewConvStep(d, nn.ConvStepArgs{X: tn("x", 2, 3), W: tn("w", 3, 4), Bias: tn("b", 3), Y: tn("y", 2, 3), State: tn("st", 2, 3, 4)})
			}, "st has shape"},
			{"conv step aliasing", func() (interface{ Release() }, error) {
				x := tn("x", 2, 3)
				return nn.NewConvStep(d, nn.ConvStepArgs{X: x, W: tn("w", 3, 4), Bias: tn("b", 3), Y: x, State: tn("st", 2, 3, 3)})
			}, "also the input"},
			{"conv tail width", func() (interface{ Release() }, error) {
				return nn.NewConvTail(d, nn.ConvTailArgs{Batch: 2, Len: 5, X: tn("x", 2, 5, 3), Tail: tn("tail", 2, 4, 3)})
			}, "tail has shape"},
			{"ssm columns", func() (interface{ Release() }, error) {
				return nn.NewSSMStep(d, nn.SSMStepArgs{U: tn("u", 2, 3), Delta: tn("dl", 2, 3), ALog: tn("al", 3, 4), D: tn("D", 3),
					Y: tn("y", 2, 3), State: tn("st", 2, 3, 4), BC: tn("bc", 2, 9), BCol: 1, CCol: 6})
			}, "do not fit"},
			{"ssm state", func() (interface{ Release() }, error) {
				return nn.NewSSMStep(d, nn.SSMStepArgs{U: tn("u", 2, 3), Delta: tn("dl", 2, 3), ALog: tn("al", 3, 4), D: tn("D", 3),
					Y: tn("y", 2, 3), State: tn("st", 2, 4, 3), BC: tn("bc", 2, 8), CCol: 4})
			}, "st has shape"},
			{"gemv groups without routing", func() (interface{ Release() }, error) {
				return nn.NewRoutedLinear(d, nn.RoutedLinearArgs{X: tn("x", 2, 3), W: tn("w", 2, 4, 3), Y: tn("y", 2, 4)})
			}, "no Group"},
			{"gemv window", func() (interface{ Release() }, error) {
				return nn.NewRoutedLinear(d, nn.RoutedLinearArgs{X: tn("x", 2, 3), W: tn("w", 4, 3), Y: tn("y", 2, 4), YCol: 1})
			}, "do not fit"},
			{"gemv bias", func() (interface{ Release() }, error) {
				return nn.NewRoutedLinear(d, nn.RoutedLinearArgs{X: tn("x", 2, 3), W: tn("w", 2, 4, 3), B: tn("b", 4), Group: tn("g", 2), Y: tn("y", 2, 4)})
			}, "bias"},
			{"embedding ends", func() (interface{ Release() }, error) {
				return nn.NewStepEmbedding(d, nn.StepEmbeddingArgs{E: tn("e", 10, 3), IDs: tn("ids", 2), Out: tn("o", 2, 3), Group: tn("g", 2), Ends: []int{4, 9}})
			}, "must end at the vocabulary size"},
			{"sampler allowed", func() (interface{ Release() }, error) {
				return nn.NewSampler(d, nn.SamplerArgs{Logits: tn("l", 2, 10), IDs: tn("ids", 2), Allowed: tn("allowed", 2), Pos: tn("pos", 2)})
			}, "allowed has shape"},
		}
		for _, c := range cases {
			op, err := c.f()
			if err == nil {
				op.Release()
				t.Errorf("%s: no error", c.name)
				continue
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("%s: error %q does not mention %q", c.name, err, c.want)
			}
		}
		for _, p := range []nn.SampleParams{{Temperature: -1}, {Temperature: math.NaN()}, {TopK: -1}, {TopP: 1.5}} {
			if err := p.Validate(); err == nil {
				t.Errorf("%+v: no error", p)
			}
		}
	})
}

// TestStepOpsRelease: building and releasing the step-mode ops many times
// leaves the device's live object counts where they were.
func TestStepOpsRelease(t *testing.T) {
	ktest.ForEachDevice(t, func(t *testing.T, d *gpu.Device) {
		tn := func(name string, shape ...int) *nn.Tensor { return ktest.Tensor(t, d, name, nil, shape...) }
		x, w, b, y, st := tn("x", 2, 3), tn("w", 3, 4), tn("b", 3), tn("y", 2, 3), tn("st", 2, 3, 3)
		gw, grp, gy := tn("gw", 2, 4, 3), tn("grp", 2), tn("gy", 2, 4)
		logits, ids, allowed, pos, o := tn("logits", 2, 10), tn("ids", 2), tn("allowed", 2, 2), tn("pos", 2), tn("o", 2, 10)
		cycle := func() {
			var ops []interface{ Release() }
			add := func(op interface{ Release() }, err error) {
				if err != nil {
					t.Fatal(err)
				}
				ops = append(ops, op)
			}
			add(nn.NewConvStep(d, nn.ConvStepArgs{X: x, W: w, Bias: b, State: st, Y: y}))
			add(nn.NewRoutedLinear(d, nn.RoutedLinearArgs{X: x, W: gw, Group: grp, Y: gy}))
			add(nn.NewSampler(d, nn.SamplerArgs{Logits: logits, IDs: ids, Allowed: allowed, Pos: pos}))
			add(nn.NewStepEmbedding(d, nn.StepEmbeddingArgs{E: logits, IDs: ids, Out: o, Group: grp, Ends: []int{2}}))
			for _, op := range ops {
				op.Release()
			}
		}
		cycle() // pipelines are cached on the device: compile them first
		before := d.LiveObjects()
		for i := 0; i < 20; i++ {
			cycle()
		}
		if after := d.LiveObjects(); fmt.Sprint(before) != fmt.Sprint(after) {
			t.Errorf("live objects changed over 20 create/release cycles: %v -> %v", before, after)
		}
	})
}
