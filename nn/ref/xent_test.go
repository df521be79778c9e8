package ref

import (
	"math"
	"math/rand"
	"testing"
)

func TestCrossEntropyBackwardFD(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	const n, v, groups = 5, 6, 3
	targets := []uint32{2, IgnoreIndex, 5, 0, 3}
	modality := []uint32{0, 1, 2, 0, 2} // group 1 has only an ignored row
	weights := []float64{0.5, 2, 1.5}
	logits := randSlice(rng, n*v, 3)
	dl := make([]float64, n*v)
	loss := make([]float64, n)
	sums := make([]float64, groups)
	counts := make([]float64, groups)
	total := func() float64 {
		scratch := make([]float64, n*v)
		CrossEntropy(scratch, loss, sums, counts, logits, targets, modality, weights, n, v, groups)
		var s float64
		for r := range loss {
			s += weights[modality[r]] * loss[r]
		}
		return s
	}
	CrossEntropy(dl, loss, sums, counts, logits, targets, modality, weights, n, v, groups)
	fdCompare(t, "dlogits", total, logits, dl)

	CrossEntropy(dl, loss, sums, counts, logits, targets, modality, weights, n, v, groups)
	if counts[0] != 2 || counts[1] != 0 || counts[2] != 2 {
		t.Errorf("counts %v, want [2 0 2]", counts)
	}
	if sums[1] != 0 || math.Abs(sums[0]-(loss[0]+loss[3])) > 1e-12 || math.Abs(sums[2]-(loss[2]+loss[4])) > 1e-12 {
		t.Errorf("sums %v from losses %v", sums, loss)
	}
	// Uniform logits: loss is log v.
	u := make([]float64, v)
	CrossEntropy(make([]float64, v), loss[:1], sums, counts, u, []uint32{1}, []uint32{0}, weights, 1, v, groups)
	if math.Abs(loss[0]-math.Log(v)) > 1e-12 {
		t.Errorf("uniform logits: loss %g, want log %d", loss[0], v)
	}
}
