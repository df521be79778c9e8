package ref

import (
	"math"
	"math/rand"
	"testing"
)

// fdGradient is the central finite difference of f with respect to x[i].
func fdGradient(f func() float64, x []float64, i int) float64 {
	const h = 1e-6
	old := x[i]
	x[i] = old + h
	fp := f()
	x[i] = old - h
	fm := f()
	x[i] = old
	return (fp - fm) / (2 * h)
}

// fdCompare checks an analytic gradient against central differences of f
// over every element of x.
func fdCompare(t *testing.T, name string, f func() float64, x, grad []float64) {
	t.Helper()
	for i := range x {
		want := fdGradient(f, x, i)
		if d := math.Abs(grad[i] - want); d > 1e-6+1e-5*math.Abs(want) {
			t.Errorf("%s[%d]: analytic %.10g, finite difference %.10g", name, i, grad[i], want)
			return
		}
	}
}

func randSlice(rng *rand.Rand, n int, scale float64) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = (2*rng.Float64() - 1) * scale
	}
	return out
}

func dot(a, b []float64) float64 {
	var s float64
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

func TestRMSNormBackwardFD(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for _, c := range []struct{ rows, d int }{{1, 1}, {1, 5}, {3, 4}, {2, 7}} {
		x := randSlice(rng, c.rows*c.d, 1)
		w := randSlice(rng, c.d, 1)
		dy := randSlice(rng, c.rows*c.d, 1)
		const eps = 1e-5
		y := make([]float64, len(x))
		loss := func() float64 {
			RMSNorm(y, nil, x, w, c.rows, c.d, eps)
			return dot(y, dy)
		}
		dx := make([]float64, len(x))
		dw := make([]float64, c.d)
		RMSNormBackward(dx, dw, dy, x, w, c.rows, c.d, eps, false)
		fdCompare(t, "dx", loss, x, dx)
		fdCompare(t, "dw", loss, w, dw)

		// accumulate: dx gets added to, dw accumulates again.
		dx2 := append([]float64(nil), dx...)
		RMSNormBackward(dx2, dw, dy, x, w, c.rows, c.d, eps, true)
		for i := range dx {
			if math.Abs(dx2[i]-2*dx[i]) > 1e-12 {
				t.Fatalf("accumulateDX: dx[%d] = %g, want %g", i, dx2[i], 2*dx[i])
			}
		}
	}
}

func TestRMSNormForward(t *testing.T) {
	// x = (3, 4): mean square 12.5.
	y := make([]float64, 2)
	rstd := make([]float64, 1)
	RMSNorm(y, rstd, []float64{3, 4}, []float64{1, 2}, 1, 2, 0)
	r := 1 / math.Sqrt(12.5)
	if math.Abs(rstd[0]-r) > 1e-15 || math.Abs(y[0]-3*r) > 1e-15 || math.Abs(y[1]-8*r) > 1e-15 {
		t.Fatalf("RMSNorm((3,4), (1,2)) = %v, rstd %v", y, rstd)
	}
}
