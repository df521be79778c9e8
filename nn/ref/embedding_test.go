package ref

import (
	"math/rand"
	"testing"
)

func TestEmbeddingBackwardFD(t *testing.T) {
	rng := rand.New(rand.NewSource(2))
	const v, d, n = 5, 3, 7
	ids := []uint32{4, 0, 4, 2, 4, 0, 1} // repeats and an unused id (3)
	e := randSlice(rng, v*d, 1)
	dout := randSlice(rng, n*d, 1)
	out := make([]float64, n*d)
	loss := func() float64 {
		Embedding(out, e, ids, n, d)
		return dot(out, dout)
	}
	de := make([]float64, v*d)
	EmbeddingBackward(de, dout, ids, n, d)
	fdCompare(t, "dE", loss, e, de)
	for j := 0; j < d; j++ {
		if de[3*d+j] != 0 {
			t.Fatalf("unused id 3 has gradient %v", de[3*d:4*d])
		}
	}
}
