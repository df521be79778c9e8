package ref

import (
	"fmt"
	"math"
	"math/rand"
	"testing"
)

func TestCausalConv1dBackwardFD(t *testing.T) {
	rng := rand.New(rand.NewSource(11))
	for _, c := range []struct {
		batch, length, channels, k int
		silu                       bool
	}{{1, 1, 1, 1, false}, {1, 1, 1, 4, true}, {2, 5, 3, 4, true}, {2, 6, 3, 2, false}, {1, 3, 2, 8, true}, {2, 9, 1, 3, true}} {
		t.Run(fmt.Sprintf("b%d_l%d_c%d_k%d_silu%v", c.batch, c.length, c.channels, c.k, c.silu), func(t *testing.T) {
			n := c.batch * c.length * c.channels
			x := scanRand(rng, n, -1, 1)
			w := scanRand(rng, c.channels*c.k, -1, 1)
			bias := scanRand(rng, c.channels, -1, 1)
			dy := scanRand(rng, n, -1, 1)
			y := make([]float64, n)
			loss := func() float64 {
				CausalConv1d(y, x, w, bias, c.batch, c.length, c.channels, c.k, c.silu)
				return scanDot(y, dy)
			}
			dx := make([]float64, n)
			dw := make([]float64, len(w))
			db := make([]float64, len(bias))
			CausalConv1dBackward(dx, dw, db, dy, x, w, bias, c.batch, c.length, c.channels, c.k, c.silu)
			scanCheckFD(t, "dx", loss, x, dx)
			scanCheckFD(t, "dw", loss, w, dw)
			scanCheckFD(t, "dbias", loss, bias, db)
			// dw and dbias accumulate.
			dw1, db1 := append([]float64(nil), dw...), append([]float64(nil), db...)
			CausalConv1dBackward(dx, dw, db, dy, x, w, bias, c.batch, c.length, c.channels, c.k, c.silu)
			for i := range dw {
				if math.Abs(dw[i]-2*dw1[i]) > 1e-12*(1+math.Abs(dw1[i])) {
					t.Fatalf("dw does not accumulate")
				}
			}
			for i := range db {
				if math.Abs(db[i]-2*db1[i]) > 1e-12*(1+math.Abs(db1[i])) {
					t.Fatalf("dbias does not accumulate")
				}
			}
		})
	}
}

// TestCausalConv1dByHand checks causality and the filter orientation: the
// last tap (j = k-1) multiplies the current step.
func TestCausalConv1dByHand(t *testing.T) {
	x := []float64{1, 2, 3, 4}
	w := []float64{10, 100, 1000} // k = 3
	y := make([]float64, 4)
	CausalConv1d(y, x, w, []float64{0.5}, 1, 4, 1, 3, false)
	want := []float64{0.5 + 1000, 0.5 + 100 + 2000, 0.5 + 10 + 200 + 3000, 0.5 + 20 + 300 + 4000}
	for i := range want {
		if y[i] != want[i] {
			t.Errorf("y[%d] = %g, want %g", i, y[i], want[i])
		}
	}
}
