package ref

import (
	"math"
	"testing"
)

func TestAdamWFirstStep(t *testing.T) {
	// At step 1 the bias-corrected update is g/(|g|+eps): a step of lr*sign(g)
	// plus the decay term.
	p := []float64{1, -2, 0.5}
	g := []float64{0.3, -4, 0}
	m := make([]float64, 3)
	v := make([]float64, 3)
	const lr, wd, eps = 0.1, 0.01, 1e-8
	AdamW(p, m, v, g, 0.5, lr, 0.9, 0.999, eps, wd, 1)
	want := []float64{1 - lr*(0.15/(0.15+eps)+wd*1), -2 - lr*(-2/(2+eps)+wd*-2), 0.5 - lr*wd*0.5}
	for i := range p {
		if math.Abs(p[i]-want[i]) > 1e-12 {
			t.Fatalf("p[%d] = %.15g, want %.15g", i, p[i], want[i])
		}
	}
}

func TestGradNormScale(t *testing.T) {
	n, s := GradNorm([][]float64{{3}, {0, 4}}, 1)
	if math.Abs(n-5) > 1e-15 || math.Abs(s-1/(5+1e-6)) > 1e-15 {
		t.Fatalf("GradNorm = %g, %g", n, s)
	}
	if _, s := GradNorm([][]float64{{3}}, 0); s != 1 {
		t.Fatalf("maxNorm 0: scale %g, want 1", s)
	}
	if _, s := GradNorm([][]float64{{0.1}}, 1); s != 1 {
		t.Fatalf("small norm: scale %g, want 1", s)
	}
}
