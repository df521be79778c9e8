package ref

import (
	"math"
	"math/rand"
	"strings"
	"testing"
)

func TestGroupedLinearBackwardFD(t *testing.T) {
	rng := rand.New(rand.NewSource(2))
	for _, c := range []struct {
		groups, n, k int
		modality     []uint32
	}{
		{1, 2, 3, []uint32{0, 0}},
		{2, 3, 2, []uint32{1, 0, 1, 1}},
		{3, 2, 2, []uint32{2, 0, 0}}, // modality 1 absent
		{3, 1, 4, []uint32{2}},       // one row
	} {
		rows := len(c.modality)
		x := gemmRand(rng, rows*c.k)
		w := gemmRand(rng, c.groups*c.n*c.k)
		b := gemmRand(rng, c.groups*c.n)
		dy := gemmRand(rng, rows*c.n)
		y := make([]float64, rows*c.n)
		loss := func() float64 {
			GroupedLinear(y, x, w, b, c.modality, rows, c.groups, c.n, c.k, false)
			return gemmDot(y, dy)
		}
		dx := make([]float64, len(x))
		dw := make([]float64, len(w))
		db := make([]float64, len(b))
		GroupedLinearBackward(dx, dw, db, dy, x, w, c.modality, rows, c.groups, c.n, c.k, false)
		gemmFD(t, "dx", loss, x, dx)
		gemmFD(t, "dw", loss, w, dw)
		gemmFD(t, "db", loss, b, db)
		loss() // y at the unperturbed inputs

		// Each row matches a dense Linear with its modality's weights.
		for tt, g := range c.modality {
			yt := make([]float64, c.n)
			Linear(yt, x[tt*c.k:(tt+1)*c.k], w[int(g)*c.n*c.k:(int(g)+1)*c.n*c.k], b[int(g)*c.n:(int(g)+1)*c.n], 1, c.n, c.k, false)
			for j := range yt {
				if math.Abs(yt[j]-y[tt*c.n+j]) > 1e-12 {
					t.Fatalf("row %d: y %v, want the dense %v", tt, y[tt*c.n:(tt+1)*c.n], yt)
				}
			}
		}
		// An absent modality's gradients stay bitwise what they were.
		present := make([]bool, c.groups)
		for _, g := range c.modality {
			present[g] = true
		}
		dw2 := append([]float64(nil), dw...)
		db2 := append([]float64(nil), db...)
		for g := range present {
			if !present[g] {
				for i := g * c.n * c.k; i < (g+1)*c.n*c.k; i++ {
					dw2[i] = math.Copysign(0, -1) // -0 would turn into +0 if anything were added
				}
				for i := g * c.n; i < (g+1)*c.n; i++ {
					db2[i] = math.Copysign(0, -1)
				}
			}
		}
		GroupedLinearBackward(nil, dw2, db2, dy, x, w, c.modality, rows, c.groups, c.n, c.k, false)
		for g := range present {
			if present[g] {
				continue
			}
			for i := g * c.n * c.k; i < (g+1)*c.n*c.k; i++ {
				if math.Float64bits(dw2[i]) != math.Float64bits(math.Copysign(0, -1)) {
					t.Fatalf("absent modality %d: dw[%d] changed to %g", g, i, dw2[i])
				}
			}
			for i := g * c.n; i < (g+1)*c.n; i++ {
				if math.Float64bits(db2[i]) != math.Float64bits(math.Copysign(0, -1)) {
					t.Fatalf("absent modality %d: db[%d] changed to %g", g, i, db2[i])
				}
			}
		}
	}
}

func TestBuildRouting(t *testing.T) {
	m := []uint32{1, 0, 1, 2, 0, 1}
	perm, off := make([]uint32, 6), make([]uint32, 5)
	if err := BuildRouting(perm, off, m, 4); err != nil {
		t.Fatal(err)
	}
	wantPerm := []uint32{1, 4, 0, 2, 5, 3}
	wantOff := []uint32{0, 2, 5, 6, 6}
	for i := range wantPerm {
		if perm[i] != wantPerm[i] {
			t.Fatalf("perm = %v, want %v (stable by modality)", perm, wantPerm)
		}
	}
	for i := range wantOff {
		if off[i] != wantOff[i] {
			t.Fatalf("offsets = %v, want %v", off, wantOff)
		}
	}
	err := BuildRouting(perm, off, []uint32{0, 0, 0, 4, 0, 0}, 4)
	if err == nil || !strings.Contains(err.Error(), "row 3") || !strings.Contains(err.Error(), "modality 4") {
		t.Errorf("id 4 of 4 groups: error %v, want one naming row 3 and modality 4", err)
	}
}
