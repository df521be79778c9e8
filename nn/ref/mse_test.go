package ref

import (
	"math/rand"
	"testing"
)

func TestMSEBackwardFD(t *testing.T) {
	rng := rand.New(rand.NewSource(4))
	const n, p, groups = 4, 5, 2
	modality := []uint32{0, 1, 1, 0}
	weights := []float64{0, 0.75} // group 0 (text) contributes nothing
	pred := randSlice(rng, n*p, 1)
	target := randSlice(rng, n*p, 1)
	loss := make([]float64, n)
	sums := make([]float64, groups)
	counts := make([]float64, groups)
	total := func() float64 {
		MSE(make([]float64, n*p), loss, sums, counts, pred, target, modality, weights, n, p, groups)
		var s float64
		for r := range loss {
			s += weights[modality[r]] * loss[r]
		}
		return s
	}
	dpred := make([]float64, n*p)
	MSE(dpred, loss, sums, counts, pred, target, modality, weights, n, p, groups)
	fdCompare(t, "dpred", total, pred, dpred)
	if counts[0] != 0 || sums[0] != 0 || counts[1] != 2 || sums[1] != loss[1]+loss[2] {
		t.Errorf("sums %v counts %v from losses %v", sums, counts, loss)
	}
}
