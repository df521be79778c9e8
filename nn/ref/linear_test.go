package ref

import (
	"math"
	"math/rand"
	"testing"
)

// gemmFD checks grad against central differences of loss over every element
// of v (loss is linear or quadratic in v here, so h can be large).
func gemmFD(t *testing.T, name string, loss func() float64, v, grad []float64) {
	t.Helper()
	const h = 1e-3
	for i := range v {
		old := v[i]
		v[i] = old + h
		fp := loss()
		v[i] = old - h
		fm := loss()
		v[i] = old
		want := (fp - fm) / (2 * h)
		if d := math.Abs(grad[i] - want); d > 1e-8+1e-7*math.Abs(want) {
			t.Errorf("%s[%d]: analytic %.12g, finite difference %.12g", name, i, grad[i], want)
			return
		}
	}
}

func gemmRand(rng *rand.Rand, n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = 2*rng.Float64() - 1
	}
	return out
}

func gemmDot(a, b []float64) float64 {
	var s float64
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

func TestLinearBackwardFD(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for _, c := range []struct{ rows, n, k int }{{1, 1, 1}, {3, 2, 4}, {2, 5, 3}, {4, 3, 1}} {
		x := gemmRand(rng, c.rows*c.k)
		w := gemmRand(rng, c.n*c.k)
		b := gemmRand(rng, c.n)
		dy := gemmRand(rng, c.rows*c.n)
		y := make([]float64, c.rows*c.n)
		// loss = <Linear(x, w, b), dy>, so d loss / d y = dy.
		loss := func() float64 {
			Linear(y, x, w, b, c.rows, c.n, c.k, false)
			return gemmDot(y, dy)
		}
		dx := make([]float64, len(x))
		dw := make([]float64, len(w))
		db := make([]float64, len(b))
		LinearBackward(dx, dw, db, dy, x, w, c.rows, c.n, c.k, false)
		gemmFD(t, "dx", loss, x, dx)
		gemmFD(t, "dw", loss, w, dw)
		gemmFD(t, "db", loss, b, db)
		loss() // y at the unperturbed inputs

		// dw and db accumulate; dx accumulates only when asked.
		dx2 := append([]float64(nil), dx...)
		dw2 := append([]float64(nil), dw...)
		db2 := append([]float64(nil), db...)
		LinearBackward(dx2, dw2, db2, dy, x, w, c.rows, c.n, c.k, true)
		for _, p := range []struct {
			name      string
			got, once []float64
		}{{"dx", dx2, dx}, {"dw", dw2, dw}, {"db", db2, db}} {
			for i := range p.got {
				if math.Abs(p.got[i]-2*p.once[i]) > 1e-12 {
					t.Fatalf("second backward: %s[%d] = %g, want %g", p.name, i, p.got[i], 2*p.once[i])
				}
			}
		}
		dx3 := append([]float64(nil), dx...)
		LinearBackward(dx3, dw2, nil, dy, x, w, c.rows, c.n, c.k, false)
		for i := range dx3 {
			if dx3[i] != dx[i] {
				t.Fatalf("dx without accumulateDX: dx[%d] = %g, want %g", i, dx3[i], dx[i])
			}
		}
		// Forward with accumulate adds to y; without bias leaves out b.
		y2 := append([]float64(nil), y...)
		Linear(y2, x, w, nil, c.rows, c.n, c.k, true)
		for tt := 0; tt < c.rows; tt++ {
			for j := 0; j < c.n; j++ {
				i := tt*c.n + j
				if want := 2*y[i] - b[j]; math.Abs(y2[i]-want) > 1e-12 {
					t.Fatalf("accumulate without bias: y[%d] = %g, want %g", i, y2[i], want)
				}
			}
		}
	}
	// dx == nil: only weight gradients.
	dw := make([]float64, 2)
	LinearBackward(nil, dw, nil, []float64{1, 2}, []float64{3}, []float64{5, 6}, 1, 2, 1, false)
	if dw[0] != 3 || dw[1] != 6 {
		t.Errorf("dw = %v, want [3 6]", dw)
	}
}

func TestLinearForward(t *testing.T) {
	// x (2, 3), w (2, 3), b (2): y[t][j] = Σ_i x[t][i] w[j][i] + b[j].
	x := []float64{1, 2, 3, 4, 5, 6}
	w := []float64{1, 0, -1, 2, 1, 0}
	b := []float64{10, 20}
	y := make([]float64, 4)
	Linear(y, x, w, b, 2, 2, 3, false)
	want := []float64{1 - 3 + 10, 2 + 2 + 20, 4 - 6 + 10, 8 + 5 + 20}
	for i := range y {
		if y[i] != want[i] {
			t.Fatalf("y = %v, want %v", y, want)
		}
	}
}
