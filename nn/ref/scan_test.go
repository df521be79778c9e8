package ref

import (
	"fmt"
	"math"
	"math/rand"
	"testing"
)

// scanRand is n values uniform in [lo, hi).
func scanRand(rng *rand.Rand, n int, lo, hi float64) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = lo + (hi-lo)*rng.Float64()
	}
	return out
}

// scanCheckFD compares grad with central differences of f over every
// element of x (float64, step 1e-6).
func scanCheckFD(t *testing.T, name string, f func() float64, x, grad []float64) {
	t.Helper()
	const h = 1e-6
	for i := range x {
		old := x[i]
		x[i] = old + h
		fp := f()
		x[i] = old - h
		fm := f()
		x[i] = old
		want := (fp - fm) / (2 * h)
		if d := math.Abs(grad[i] - want); d > 1e-6+1e-5*math.Abs(want) || math.IsNaN(grad[i]) {
			t.Errorf("%s[%d]: analytic %.10g, finite difference %.10g", name, i, grad[i], want)
			return
		}
	}
}

func scanDot(a, b []float64) float64 {
	s := 0.0
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

// scanInputs are random inputs of a selective scan in the ranges the model
// sees: delta around the dt bias (softplus(delta) in ~[0.01, 1]), A_log
// around log(1..n).
type scanInputs struct {
	batch, length, ed, n       int
	u, delta, aLog, b, c, d, z []float64
	dy                         []float64
}

func newScanInputs(rng *rand.Rand, batch, length, ed, n int, gate bool) *scanInputs {
	in := &scanInputs{batch: batch, length: length, ed: ed, n: n}
	bl := batch * length
	in.u = scanRand(rng, bl*ed, -1, 1)
	in.delta = scanRand(rng, bl*ed, -4, 1)
	in.aLog = scanRand(rng, ed*n, -1, 2)
	in.b = scanRand(rng, bl*n, -1, 1)
	in.c = scanRand(rng, bl*n, -1, 1)
	in.d = scanRand(rng, ed, -1, 1)
	if gate {
		in.z = scanRand(rng, bl*ed, -2, 2)
	}
	in.dy = scanRand(rng, bl*ed, -1, 1)
	return in
}

func TestSelectiveScanBackwardFD(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	for _, c := range []struct {
		batch, length, ed, n int
		gate                 bool
	}{{1, 1, 1, 1, false}, {1, 1, 1, 1, true}, {2, 5, 3, 2, true}, {1, 6, 2, 3, false}, {2, 4, 2, 4, true}} {
		t.Run(fmt.Sprintf("b%d_l%d_ed%d_n%d_z%v", c.batch, c.length, c.ed, c.n, c.gate), func(t *testing.T) {
			in := newScanInputs(rng, c.batch, c.length, c.ed, c.n, c.gate)
			y := make([]float64, len(in.u))
			loss := func() float64 {
				SelectiveScan(y, in.u, in.delta, in.aLog, in.b, in.c, in.d, in.z, c.batch, c.length, c.ed, c.n)
				return scanDot(y, in.dy)
			}
			du := make([]float64, len(in.u))
			ddelta := make([]float64, len(in.u))
			daLog := make([]float64, len(in.aLog))
			db := make([]float64, len(in.b))
			dc := make([]float64, len(in.c))
			dd := make([]float64, len(in.d))
			var dz []float64
			if c.gate {
				dz = make([]float64, len(in.z))
			}
			SelectiveScanBackward(du, ddelta, daLog, db, dc, dd, dz, in.dy, in.u, in.delta, in.aLog, in.b, in.c, in.d, in.z, c.batch, c.length, c.ed, c.n)
			scanCheckFD(t, "du", loss, in.u, du)
			scanCheckFD(t, "ddelta", loss, in.delta, ddelta)
			scanCheckFD(t, "daLog", loss, in.aLog, daLog)
			scanCheckFD(t, "db", loss, in.b, db)
			scanCheckFD(t, "dc", loss, in.c, dc)
			scanCheckFD(t, "dd", loss, in.d, dd)
			if c.gate {
				scanCheckFD(t, "dz", loss, in.z, dz)
			}
			// daLog and dd accumulate; the rest are overwritten.
			da1, dd1 := append([]float64(nil), daLog...), append([]float64(nil), dd...)
			du1 := append([]float64(nil), du...)
			SelectiveScanBackward(du, ddelta, daLog, db, dc, dd, dz, in.dy, in.u, in.delta, in.aLog, in.b, in.c, in.d, in.z, c.batch, c.length, c.ed, c.n)
			for i := range da1 {
				if math.Abs(daLog[i]-2*da1[i]) > 1e-12*(1+math.Abs(da1[i])) {
					t.Fatalf("daLog does not accumulate: %g after two calls, %g after one", daLog[i], da1[i])
				}
			}
			for i := range dd1 {
				if math.Abs(dd[i]-2*dd1[i]) > 1e-12*(1+math.Abs(dd1[i])) {
					t.Fatalf("dd does not accumulate")
				}
			}
			for i := range du1 {
				if du[i] != du1[i] {
					t.Fatalf("du is not overwritten")
				}
			}
		})
	}
}

// TestSelectiveScanForwardByHand checks the recurrence on one channel with
// one state against values worked out by hand.
func TestSelectiveScanForwardByHand(t *testing.T) {
	// delta = softplus^-1(dt) so that dt = 0.5 and 1; A = -exp(0) = -1.
	inv := func(x float64) float64 { return math.Log(math.Expm1(x)) }
	u := []float64{2, 3}
	delta := []float64{inv(0.5), inv(1)}
	b := []float64{1, 2}
	c := []float64{3, -1}
	y := make([]float64, 2)
	SelectiveScan(y, u, delta, []float64{0}, b, c, []float64{0.5}, nil, 1, 2, 1, 1)
	h0 := 0.5 * 1 * 2             // exp(-0.5)*0 + 0.5*1*2
	h1 := math.Exp(-1)*h0 + 1*2*3 // exp(-1)*h0 + 1*2*3
	want := []float64{3*h0 + 0.5*2, -1*h1 + 0.5*3}
	for i := range want {
		if math.Abs(y[i]-want[i]) > 1e-12 {
			t.Errorf("y[%d] = %.15g, want %.15g", i, y[i], want[i])
		}
	}
}

// The chunked associative scan (the GPU's algorithm) against the plain
// sequential loop, forward and backward, at lengths around the chunk size.
func TestChunkedScanMatchesSequential(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	for _, c := range []struct {
		batch, length, ed, n, threads, items int
		gate                                 bool
	}{
		{1, 1, 1, 1, 4, 2, false},
		{2, 7, 2, 3, 4, 2, true},
		{1, 8, 3, 2, 4, 2, true},
		{1, 9, 3, 2, 4, 2, false},
		{2, 33, 2, 4, 4, 4, true},
		{1, 50, 2, 5, 8, 1, true},
		{1, 40, 1, 2, 1, 8, true},
		{1, 37, 2, 2, 16, 2, true},
	} {
		t.Run(fmt.Sprintf("b%d_l%d_ed%d_n%d_p%d_k%d", c.batch, c.length, c.ed, c.n, c.threads, c.items), func(t *testing.T) {
			in := newScanInputs(rng, c.batch, c.length, c.ed, c.n, c.gate)
			want := make([]float64, len(in.u))
			SelectiveScan(want, in.u, in.delta, in.aLog, in.b, in.c, in.d, in.z, c.batch, c.length, c.ed, c.n)
			chunk := c.threads * c.items
			nChunks := (c.length + chunk - 1) / chunk
			hs := make([]float64, c.batch*c.ed*nChunks*c.n)
			got := make([]float64, len(in.u))
			ChunkedScan(got, hs, in.u, in.delta, in.aLog, in.b, in.c, in.d, in.z, c.batch, c.length, c.ed, c.n, c.threads, c.items)
			scanSame(t, "y", got, want)

			type grads struct{ du, ddelta, daLog, db, dc, dd, dz []float64 }
			mk := func() grads {
				g := grads{make([]float64, len(in.u)), make([]float64, len(in.u)), make([]float64, len(in.aLog)),
					make([]float64, len(in.b)), make([]float64, len(in.c)), make([]float64, len(in.d)), nil}
				if c.gate {
					g.dz = make([]float64, len(in.z))
				}
				return g
			}
			s, k := mk(), mk()
			SelectiveScanBackward(s.du, s.ddelta, s.daLog, s.db, s.dc, s.dd, s.dz, in.dy, in.u, in.delta, in.aLog, in.b, in.c, in.d, in.z, c.batch, c.length, c.ed, c.n)
			ChunkedScanBackward(k.du, k.ddelta, k.daLog, k.db, k.dc, k.dd, k.dz, in.dy, hs, in.u, in.delta, in.aLog, in.b, in.c, in.d, in.z, c.batch, c.length, c.ed, c.n, c.threads, c.items)
			scanSame(t, "du", k.du, s.du)
			scanSame(t, "ddelta", k.ddelta, s.ddelta)
			scanSame(t, "daLog", k.daLog, s.daLog)
			scanSame(t, "db", k.db, s.db)
			scanSame(t, "dc", k.dc, s.dc)
			scanSame(t, "dd", k.dd, s.dd)
			if c.gate {
				scanSame(t, "dz", k.dz, s.dz)
			}
		})
	}
}

// scanSame fails unless got equals want up to float64 rounding.
func scanSame(t *testing.T, name string, got, want []float64) {
	t.Helper()
	for i := range want {
		if d := math.Abs(got[i] - want[i]); d > 1e-12*(1+math.Abs(want[i])) || math.IsNaN(got[i]) {
			t.Errorf("%s[%d] = %.15g, want %.15g", name, i, got[i], want[i])
			return
		}
	}
}
