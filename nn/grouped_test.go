package nn_test

import (
	"fmt"
	"math"
	"math/rand"
	"strings"
	"testing"

	"mom/gpu"
	"mom/nn"
	"mom/nn/internal/ktest"
	"mom/nn/ref"
)

type groupedCase struct {
	name         string
	groups, n, k int
	modality     func(rng *rand.Rand) []uint32
	bias, noDX   bool
	accY, accDX  bool
	split        string // nn.EnvGemmSplit for the op ("": as set)
}

// ids returns rows ids drawn from the given groups with the given weights
// (a group of weight 0 is absent).
func ids(rows int, weights ...float64) func(*rand.Rand) []uint32 {
	return func(rng *rand.Rand) []uint32 {
		total := 0.0
		for _, w := range weights {
			total += w
		}
		out := make([]uint32, rows)
		for t := range out {
			u := rng.Float64() * total
			g := 0
			for g < len(weights)-1 && (u >= weights[g] || weights[g] == 0) {
				u -= weights[g]
				g++
			}
			out[t] = uint32(g)
		}
		return out
	}
}

func fixed(m ...uint32) func(*rand.Rand) []uint32 {
	return func(*rand.Rand) []uint32 { return m }
}

// blocks is rows in runs: n0 rows of modality 0, then n1 of 1, and so on.
func blocks(ns ...int) func(*rand.Rand) []uint32 {
	return func(*rand.Rand) []uint32 {
		var out []uint32
		for g, n := range ns {
			for i := 0; i < n; i++ {
				out = append(out, uint32(g))
			}
		}
		return out
	}
}

func TestGroupedLinear(t *testing.T) {
	one2 := make([]uint32, 65)
	one2[40] = 2 // one row of modality 2, modality 1 absent
	cases := []groupedCase{
		{name: "G1 all zero", groups: 1, n: 17, k: 3, modality: ids(63, 1), bias: true},
		{name: "G1 one row", groups: 1, n: 5, k: 7, modality: fixed(0), bias: true, accY: true},
		{name: "G2 only 0", groups: 2, n: 64, k: 64, modality: ids(129, 1, 0), bias: true}, // vec4, group 1 absent
		{name: "G2 only 1 no bias", groups: 2, n: 63, k: 65, modality: ids(65, 0, 1), accDX: true},
		{name: "G2 mixed", groups: 2, n: 3, k: 17, modality: ids(300, 1, 1), bias: true}, // split dW (lavapipe)
		{name: "G3 one row of 2, 1 absent", groups: 3, n: 20, k: 12, modality: fixed(one2...), bias: true},
		{name: "G3 50/30/20", groups: 3, n: 64, k: 300, modality: ids(300, 5, 3, 2), accY: true, accDX: true},
		{name: "G3 blocks", groups: 3, n: 129, k: 63, modality: blocks(33, 1, 30), noDX: true, bias: true},
		// Split-K forward and dX (forced), a modality without rows.
		{name: "G3 split-K, 1 absent", groups: 3, n: 67, k: 150, modality: ids(200, 2, 0, 1), bias: true, accY: true, accDX: true, split: "3"},
		{name: "G2 split-K vec4, 0 absent", groups: 2, n: 68, k: 200, modality: blocks(0, 70), bias: true, split: "4"},
	}
	ktest.ForEachDevice(t, func(t *testing.T, d *gpu.Device) {
		rng := rand.New(rand.NewSource(2))
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) { testGrouped(t, d, rng, c) })
		}
	})
}

func testGrouped(t *testing.T, d *gpu.Device, rng *rand.Rand, c groupedCase) {
	m := c.modality(rng)
	rows, G, n, k := len(m), c.groups, c.n, c.k
	x := ktest.Rand(rng, rows*k, 1)
	w := ktest.Rand(rng, G*n*k, 1)
	dy := ktest.Rand(rng, rows*n, 1)
	y0 := ktest.Rand(rng, rows*n, 1)
	dx0 := ktest.Rand(rng, rows*k, 1)
	// Gradients start at zero, as after the trainer's zeroing, so that an
	// absent modality's must stay exactly zero; a second backward then checks
	// that they accumulate.
	dw0 := make([]float32, G*n*k)
	rt, err := nn.NewRouting(d, rows, G)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rt.Release)
	if err := rt.Update(m); err != nil {
		t.Fatal(err)
	}
	a := nn.GroupedLinearArgs{
		X:       ktest.Tensor(t, d, "x", x, rows, k),
		W:       ktest.Tensor(t, d, "w", w, G, n, k),
		Y:       ktest.Tensor(t, d, "y", nil, rows, n),
		DY:      ktest.Tensor(t, d, "dy", dy, rows, n),
		DW:      ktest.Tensor(t, d, "dw", dw0, G, n, k),
		Routing: rt, AccumulateY: c.accY, AccumulateDX: c.accDX,
	}
	var b []float32
	if c.bias {
		b = ktest.Rand(rng, G*n, 1)
		a.B = ktest.Tensor(t, d, "b", b, G, n)
		a.DB = ktest.Tensor(t, d, "db", make([]float32, G*n), G, n)
	}
	if !c.noDX {
		a.DX = ktest.Tensor(t, d, "dx", nil, rows, k)
	}
	ktest.Start(t, a.Y, y0, c.accY)
	if a.DX != nil {
		ktest.Start(t, a.DX, dx0, c.accDX)
	}
	if c.split != "" {
		t.Setenv(nn.EnvGemmSplit, c.split)
	}
	gl, err := nn.NewGroupedLinear(d, a)
	if err != nil {
		t.Fatal(err)
	}
	t.Log(gl.Plan())
	if c.split != "" && !strings.Contains(strings.Split(gl.Plan(), ";")[0], "split-K") {
		t.Errorf("%s=%s: the forward should split, plan %q", nn.EnvGemmSplit, c.split, gl.Plan())
	}
	counts := rt.Counts()
	ktest.Run(t, d, func(r *gpu.Recorder) {
		gl.RecordForward(r)
		gl.RecordBackward(r)
	})

	y := ktest.F64(y0)
	var bb []float64
	if b != nil {
		bb = ktest.F64(b)
	}
	ref.GroupedLinear(y, ktest.F64(x), ktest.F64(w), bb, m, rows, G, n, k, c.accY)
	var dx, db []float64
	if !c.noDX {
		dx = ktest.F64(dx0)
	}
	if c.bias {
		db = make([]float64, G*n)
	}
	dw := make([]float64, G*n*k)
	ref.GroupedLinearBackward(dx, dw, db, ktest.F64(dy), ktest.F64(x), ktest.F64(w), m, rows, G, n, k, c.accDX)
	maxCount := 0
	for _, c := range counts {
		maxCount = max(maxCount, c)
	}
	ktest.Close(t, "y", ktest.Download(t, a.Y), y, gemmTol(k, 1))
	if dx != nil {
		ktest.Close(t, "dx", ktest.Download(t, a.DX), dx, gemmTol(n, 1))
	}
	gotDW := ktest.Download(t, a.DW)
	ktest.Close(t, "dw", gotDW, dw, gemmTol(maxCount, 1))
	var gotDB []float32
	if db != nil {
		gotDB = ktest.Download(t, a.DB)
		ktest.Close(t, "db", gotDB, db, gemmTol(maxCount, 1))
	}
	// An absent modality's gradients are exactly (bitwise) zero.
	for g, cnt := range counts {
		if cnt != 0 {
			continue
		}
		for i, v := range gotDW[g*n*k : (g+1)*n*k] {
			if math.Float32bits(v) != 0 {
				t.Fatalf("dw of absent modality %d: element %d is %g, want exactly 0", g, i, v)
			}
		}
		if gotDB != nil {
			for i, v := range gotDB[g*n : (g+1)*n] {
				if math.Float32bits(v) != 0 {
					t.Fatalf("db of absent modality %d: element %d is %g, want exactly 0", g, i, v)
				}
			}
		}
	}
	// A second backward accumulates into DW and DB.
	ktest.Run(t, d, gl.RecordBackward)
	ref.GroupedLinearBackward(nil, dw, db, ktest.F64(dy), ktest.F64(x), ktest.F64(w), m, rows, G, n, k, false)
	ktest.Close(t, "dw after two backwards", ktest.Download(t, a.DW), dw, gemmTol(2*maxCount, 2))
	if db != nil {
		ktest.Close(t, "db after two backwards", ktest.Download(t, a.DB), db, gemmTol(2*maxCount, 2))
	}
}

// TestRouting checks the device tables against ref.BuildRouting and the
// errors of Update.
func TestRouting(t *testing.T) {
	ktest.ForEachDevice(t, func(t *testing.T, d *gpu.Device) {
		rt, err := nn.NewRouting(d, 7, 3)
		if err != nil {
			t.Fatal(err)
		}
		defer rt.Release()
		m := []uint32{2, 0, 2, 2, 0, 0, 2}
		if err := rt.Update(m); err != nil {
			t.Fatal(err)
		}
		perm, off := make([]uint32, 7), make([]uint32, 4)
		if err := ref.BuildRouting(perm, off, m, 3); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(perm) != "[1 4 5 0 2 3 6]" || fmt.Sprint(off) != "[0 3 3 7]" {
			t.Fatalf("ref.BuildRouting: perm %v offsets %v", perm, off)
		}
		gotPerm, gotOff, err := rt.Tables()
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(gotPerm, gotOff) != fmt.Sprint(perm, off) {
			t.Errorf("device tables %v %v, want %v %v", gotPerm, gotOff, perm, off)
		}
		if got := fmt.Sprint(rt.Counts()); got != "[3 0 4]" {
			t.Errorf("Counts() = %s, want [3 0 4]", got)
		}
		err = rt.Update([]uint32{0, 1, 2, 3, 0, 0, 0})
		if err == nil || !strings.Contains(err.Error(), "row 3") || !strings.Contains(err.Error(), "id 3") {
			t.Errorf("Update with id 3 >= 3 groups: error %v, want one naming row 3 and id 3", err)
		}
		if got := fmt.Sprint(rt.Counts()); got != "[3 0 4]" {
			t.Errorf("a failed Update changed Counts() to %s", got)
		}
		if err := rt.Update(m[:5]); err == nil {
			t.Error("Update with 5 ids for 7 rows: no error")
		}
		if _, err := nn.NewRouting(d, 0, 3); err == nil {
			t.Error("NewRouting with 0 rows: no error")
		}
	})
}

func TestGroupedLinearErrors(t *testing.T) {
	ktest.ForEachDevice(t, func(t *testing.T, d *gpu.Device) {
		rt, err := nn.NewRouting(d, 4, 2)
		if err != nil {
			t.Fatal(err)
		}
		defer rt.Release()
		x := ktest.Tensor(t, d, "x", nil, 4, 3)
		x5 := ktest.Tensor(t, d, "x5", nil, 5, 3)
		w := ktest.Tensor(t, d, "w", nil, 2, 5, 3)
		w3 := ktest.Tensor(t, d, "w3", nil, 3, 5, 3)
		w2d := ktest.Tensor(t, d, "w2d", nil, 5, 3)
		b := ktest.Tensor(t, d, "b", nil, 2, 5)
		b1 := ktest.Tensor(t, d, "b1", nil, 5)
		y := ktest.Tensor(t, d, "y", nil, 4, 5)
		y5 := ktest.Tensor(t, d, "y5", nil, 5, 5)
		for _, c := range []struct {
			name string
			a    nn.GroupedLinearArgs
			want string
		}{
			{"no routing", nn.GroupedLinearArgs{X: x, W: w, Y: y}, "Routing"},
			{"W 2-D", nn.GroupedLinearArgs{X: x, W: w2d, Y: y, Routing: rt}, "w2d"},
			{"W groups", nn.GroupedLinearArgs{X: x, W: w3, Y: y, Routing: rt}, "w3"},
			{"X rows", nn.GroupedLinearArgs{X: x5, W: w, Y: y5, Routing: rt}, "x5"},
			{"Y shape", nn.GroupedLinearArgs{X: x, W: w, Y: y5, Routing: rt}, "y5"},
			{"B per group", nn.GroupedLinearArgs{X: x, W: w, B: b1, Y: y, Routing: rt}, "b1"},
			{"DW shape", nn.GroupedLinearArgs{X: x, W: w, Y: y, DY: y, DW: w3, Routing: rt}, "w3"},
			{"DB without B", nn.GroupedLinearArgs{X: x, W: w, Y: y, DY: y, DW: w, DB: b, Routing: rt}, "DB"},
		} {
			_, err := nn.NewGroupedLinear(d, c.a)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "GroupedLinear") {
				t.Errorf("%s: error %v, want one naming GroupedLinear and %q", c.name, err, c.want)
			}
		}
		if _, err := nn.NewGroupedLinear(d, nn.GroupedLinearArgs{X: x, W: w, B: b, Y: y, DY: y, DW: w, DB: b, Routing: rt}); err != nil {
			t.Errorf("valid args: %v", err)
		}
	})
}

// TestGroupedLinearTiles runs the GPU tiles and their kernel variants
// (gemmTileCases) of the grouped kernels on whatever device the tests
// have, by forcing the tile: partial tiles with a modality absent, a
// reduction shorter than one step with a weight gradient split over rows.
func TestGroupedLinearTiles(t *testing.T) {
	cases := []groupedCase{
		{name: "G3 1 absent", groups: 3, n: 136, k: 72, modality: ids(300, 3, 0, 1), bias: true, accY: true},
		{name: "G2 short K", groups: 2, n: 8, k: 4, modality: ids(150, 1, 2), bias: true, accDX: true},
	}
	splitK := cases[0]
	splitK.name += " split-K"
	splitK.split = "3" // split-K forward and dX (chunks of 24 and 48) on the tile's kernels
	forEachTile(t, true, func(t *testing.T, d *gpu.Device, tc tileCase) {
		rng := rand.New(rand.NewSource(4))
		cs := []groupedCase{cases[0]}
		if tc.split {
			cs = append(cs, splitK)
		}
		if tc.more {
			cs = append(cs, cases[1])
		}
		for _, c := range cs {
			t.Run(c.name, func(t *testing.T) { testGrouped(t, d, rng, c) })
		}
	})
}
