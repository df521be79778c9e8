package ref

import (
	"fmt"
	"math"
	"math/rand"
	"testing"
)

func stepClose(t *testing.T, name string, got, want []float64) {
	t.Helper()
	for i := range want {
		if d := math.Abs(got[i] - want[i]); d > 1e-12+1e-10*math.Abs(want[i]) || math.IsNaN(got[i]) {
			t.Fatalf("%s[%d] = %.15g, want %.15g", name, i, got[i], want[i])
		}
	}
}

// TestConvStepMatchesCausalConv1d: stepping a sequence through ConvStep from
// a zero state, or from the ConvTail of a prefix, gives CausalConv1d's
// outputs at every position.
func TestConvStepMatchesCausalConv1d(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for _, c := range []struct{ b, l, ch, k, pre int }{{2, 9, 3, 4, 5}, {1, 3, 2, 4, 1}, {3, 6, 4, 1, 2}, {1, 7, 2, 8, 3}} {
		t.Run(fmt.Sprintf("b%d_l%d_c%d_k%d", c.b, c.l, c.ch, c.k), func(t *testing.T) {
			x := scanRand(rng, c.b*c.l*c.ch, -1, 1)
			w := scanRand(rng, c.ch*c.k, -1, 1)
			bias := scanRand(rng, c.ch, -1, 1)
			want := make([]float64, len(x))
			CausalConv1d(want, x, w, bias, c.b, c.l, c.ch, c.k, true)
			// at returns step t's inputs of every row, (b, ch).
			at := func(t int) []float64 {
				out := make([]float64, c.b*c.ch)
				for bi := 0; bi < c.b; bi++ {
					copy(out[bi*c.ch:(bi+1)*c.ch], x[(bi*c.l+t)*c.ch:(bi*c.l+t+1)*c.ch])
				}
				return out
			}
			check := func(state []float64, from int) {
				y := make([]float64, c.b*c.ch)
				for tt := from; tt < c.l; tt++ {
					ConvStep(y, state, at(tt), w, bias, c.b, c.ch, c.k, true)
					for bi := 0; bi < c.b; bi++ {
						stepClose(t, fmt.Sprintf("y(t=%d, row %d)", tt, bi), y[bi*c.ch:(bi+1)*c.ch], want[(bi*c.l+tt)*c.ch:(bi*c.l+tt+1)*c.ch])
					}
				}
			}
			check(make([]float64, c.b*c.ch*max(c.k-1, 0)), 0)
			prefix := make([]float64, c.b*c.pre*c.ch)
			for bi := 0; bi < c.b; bi++ {
				copy(prefix[bi*c.pre*c.ch:(bi+1)*c.pre*c.ch], x[bi*c.l*c.ch:(bi*c.l+c.pre)*c.ch])
			}
			tail := make([]float64, c.b*c.ch*max(c.k-1, 0))
			ConvTail(tail, prefix, c.b, c.pre, c.ch, c.k)
			check(tail, c.pre)
		})
	}
}

// TestSSMStepMatchesSelectiveScan: stepping a sequence through SSMStep from
// a zero state, or from the SelectiveScanFinal of a prefix, gives
// SelectiveScan's outputs at every position, and the state after the last
// step is SelectiveScanFinal's.
func TestSSMStepMatchesSelectiveScan(t *testing.T) {
	rng := rand.New(rand.NewSource(2))
	for _, c := range []struct {
		b, l, ed, n, pre int
		gate             bool
	}{{2, 7, 3, 4, 3, true}, {1, 5, 2, 1, 1, false}, {3, 4, 2, 3, 2, true}} {
		t.Run(fmt.Sprintf("b%d_l%d_ed%d_n%d", c.b, c.l, c.ed, c.n), func(t *testing.T) {
			in := newScanInputs(rng, c.b, c.l, c.ed, c.n, c.gate)
			want := make([]float64, c.b*c.l*c.ed)
			SelectiveScan(want, in.u, in.delta, in.aLog, in.b, in.c, in.d, in.z, c.b, c.l, c.ed, c.n)
			wantHF := make([]float64, c.b*c.ed*c.n)
			SelectiveScanFinal(wantHF, in.u, in.delta, in.aLog, in.b, c.b, c.l, c.ed, c.n)
			// rows takes step t of a (b, l, width) tensor as (b, width).
			rows := func(v []float64, tt, width int) []float64 {
				if v == nil {
					return nil
				}
				out := make([]float64, c.b*width)
				for bi := 0; bi < c.b; bi++ {
					copy(out[bi*width:(bi+1)*width], v[(bi*c.l+tt)*width:(bi*c.l+tt+1)*width])
				}
				return out
			}
			// B and C side by side behind a column of padding: bc (b, 1+2n).
			w := 1 + 2*c.n
			run := func(state []float64, from int) {
				y := make([]float64, c.b*c.ed)
				for tt := from; tt < c.l; tt++ {
					bm, cm := rows(in.b, tt, c.n), rows(in.c, tt, c.n)
					bc := make([]float64, c.b*w)
					for bi := 0; bi < c.b; bi++ {
						copy(bc[bi*w+1:], bm[bi*c.n:(bi+1)*c.n])
						copy(bc[bi*w+1+c.n:], cm[bi*c.n:(bi+1)*c.n])
					}
					SSMStep(y, state, rows(in.u, tt, c.ed), rows(in.delta, tt, c.ed), in.aLog, bc, in.d, rows(in.z, tt, c.ed),
						c.b, c.ed, c.n, w, 1, 1+c.n)
					stepClose(t, fmt.Sprintf("y(t=%d)", tt), y, rows(want, tt, c.ed))
				}
				stepClose(t, "final state", state, wantHF)
			}
			run(make([]float64, c.b*c.ed*c.n), 0)
			state := make([]float64, c.b*c.ed*c.n)
			pre := func(v []float64, width int) []float64 {
				out := make([]float64, c.b*c.pre*width)
				for bi := 0; bi < c.b; bi++ {
					copy(out[bi*c.pre*width:(bi+1)*c.pre*width], v[bi*c.l*width:(bi*c.l+c.pre)*width])
				}
				return out
			}
			SelectiveScanFinal(state, pre(in.u, c.ed), pre(in.delta, c.ed), in.aLog, pre(in.b, c.n), c.b, c.pre, c.ed, c.n)
			run(state, c.pre)
		})
	}
}

// TestRoutedLinearMatchesGroupedLinear: on full-width rows RoutedLinear is
// GroupedLinear (and, without groups, Linear).
func TestRoutedLinearMatchesGroupedLinear(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	const rows, groups, n, k = 5, 3, 4, 6
	x := scanRand(rng, rows*k, -1, 1)
	w := scanRand(rng, groups*n*k, -1, 1)
	b := scanRand(rng, groups*n, -1, 1)
	mod := []uint32{2, 0, 2, 1, 0}
	want, got := make([]float64, rows*n), make([]float64, rows*n)
	GroupedLinear(want, x, w, b, mod, rows, groups, n, k, false)
	RoutedLinear(got, x, w, b, mod, rows, n, k, k, 0, n, 0, false)
	stepClose(t, "routed", got, want)
	Linear(want, x, w[:n*k], b[:n], rows, n, k, false)
	RoutedLinear(got, x, w[:n*k], b[:n], nil, rows, n, k, k, 0, n, 0, false)
	stepClose(t, "plain", got, want)
}

// TestSampleUniformSpread checks that the random numbers spread over [0, 1)
// (the GPU sampler's test checks that the kernel draws the same).
func TestSampleUniformSpread(t *testing.T) {
	seen := map[float64]bool{}
	var sum float64
	const n = 20000
	for i := 0; i < n; i++ {
		u := SampleUniform(uint64(i/100)<<33|7, uint32(i%10), uint32(i/10))
		if u < 0 || u >= 1 {
			t.Fatalf("u = %g outside [0, 1)", u)
		}
		seen[u] = true
		sum += u
	}
	if len(seen) < n-50 {
		t.Errorf("only %d distinct values in %d draws", len(seen), n)
	}
	if m := sum / n; math.Abs(m-0.5) > 0.01 {
		t.Errorf("mean %g, want 0.5", m)
	}
}

// TestSampleRowDistribution: draws with uniform u follow the softmax at
// the temperature, restricted to the kept ids, renormalised.
func TestSampleRowDistribution(t *testing.T) {
	logits := []float64{0.5, 2, -1, 2, 1, 0, 3, -2}
	cases := []struct {
		name        string
		temp, topP  float64
		topK, lo    int
		hi          int
		wantKept    []int
		zeroOutside bool
	}{
		{"all", 0.7, 0, 0, 0, 0, []int{0, 1, 2, 3, 4, 5, 6, 7}, false},
		{"top-k 3 (a tie at the 3rd)", 1, 0, 3, 0, 0, []int{1, 3, 6}, true},
		{"top-k 2 keeps the tie", 1, 0, 2, 0, 0, []int{1, 3, 6}, true},
		{"top-p", 1, 0.6, 0, 0, 0, []int{1, 3, 6}, true},
		{"range", 2, 0, 0, 2, 6, []int{2, 3, 4, 5}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			lo, hi := c.lo, c.hi
			if lo >= hi {
				lo, hi = 0, len(logits)
			}
			mx := math.Inf(-1)
			for _, i := range c.wantKept {
				mx = math.Max(mx, logits[i])
			}
			want := make([]float64, len(logits))
			var z float64
			for _, i := range c.wantKept {
				want[i] = math.Exp((logits[i] - mx) / c.temp)
				z += want[i]
			}
			const n = 40000
			counts := make([]float64, len(logits))
			for i := 0; i < n; i++ {
				u := (float64(i) + 0.5) / n // a uniform grid: the counts are the kept CDF's steps
				counts[SampleRow(logits, c.lo, c.hi, c.temp, c.topK, c.topP, u)]++
			}
			for i := range logits {
				p := want[i] / z
				if i < lo || i >= hi {
					p = 0
				}
				if got := counts[i] / n; math.Abs(got-p) > 1e-3 {
					t.Errorf("id %d drawn with frequency %.4f, want %.4f", i, got, p)
				}
			}
		})
	}
	if got := SampleRow(logits, 0, 0, 0, 0, 0, 0.3); got != 6 {
		t.Errorf("greedy: %d, want 6", got)
	}
	if got := SampleRow([]float64{1, 3, 3, 2}, 0, 0, 0, 0, 0, 0.9); got != 1 {
		t.Errorf("greedy with a tie: %d, want the lower id 1", got)
	}
	if got := SampleRow([]float64{1, 3, 3, 2}, 2, 4, 0, 0, 0, 0.9); got != 2 {
		t.Errorf("greedy in [2, 4): %d, want 2", got)
	}
}
