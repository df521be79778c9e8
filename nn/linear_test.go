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

// gemmTol is the tolerance of a float32 GEMM output reducing over red terms
// each of magnitude at most scale: float32 rounding grows like sqrt(red), so
// |diff| <= 1e-5·sqrt(red)·scale (the sum itself is about sqrt(red)·scale/3
// for uniform inputs). An indexing bug moves an element by about its own
// size, orders of magnitude above this.
func gemmTol(red int, scale float64) ktest.Tol {
	return ktest.Tol{Abs: 1e-5 * math.Sqrt(float64(red)) * scale, Rel: 1e-6}
}

type linearCase struct {
	rows, n, k  int
	bias, noDX  bool
	accY, accDX bool
	leading     []int  // leading dims of X (product rows); nil: (rows)
	wantSplit   bool   // expect the weight gradient split over rows (lavapipe)
	split       string // nn.EnvGemmSplit for the op: a forced split-K of the forward and dX ("": as set)
}

func (c linearCase) String() string {
	s := fmt.Sprintf("rows=%d,n=%d,k=%d", c.rows, c.n, c.k)
	if c.bias {
		s += ",bias"
	}
	if c.noDX {
		s += ",noDX"
	}
	if c.accY {
		s += ",accY"
	}
	if c.accDX {
		s += ",accDX"
	}
	if c.split != "" {
		s += ",split=" + c.split
	}
	return s
}

func TestLinear(t *testing.T) {
	// Each case compiles its own pipelines (the sizes are override
	// constants), about 0.3 s each on lavapipe when cold: keep the table
	// short. TestLinearTiles adds the GPU tiles.
	cases := []linearCase{
		{rows: 1, n: 1, k: 1, bias: true},
		{rows: 3, n: 17, k: 1, bias: true, accY: true},
		{rows: 17, n: 63, k: 65, bias: true, accDX: true},
		{rows: 63, n: 64, k: 64, bias: true},               // vec4 path
		{rows: 65, n: 64, k: 300, accY: true, accDX: true}, // vec4 path, accumulating
		{rows: 129, n: 65, k: 63, noDX: true},
		{rows: 300, n: 3, k: 17, bias: true},                          // weight gradient split over rows (lavapipe)
		{rows: 64, n: 300, k: 129, bias: true},                        // many column tiles
		{rows: 60, n: 20, k: 12, bias: true, leading: []int{3, 4, 5}}, // leading dims flattened, vec4
		// Split-K forward and dX (forced: lavapipe never splits them by
		// itself): scalar, every size off the tile, a short last chunk,
		// bias in partial 0 only, accumulating outputs.
		{rows: 70, n: 67, k: 150, bias: true, accY: true, accDX: true, split: "3"},
		{rows: 65, n: 68, k: 200, bias: true, split: "4"}, // vec4, last chunk of 8
	}
	ktest.ForEachDevice(t, func(t *testing.T, d *gpu.Device) {
		rng := rand.New(rand.NewSource(1))
		for _, c := range cases {
			t.Run(c.String(), func(t *testing.T) { testLinear(t, d, rng, c) })
		}
	})
}

func testLinear(t *testing.T, d *gpu.Device, rng *rand.Rand, c linearCase) {
	lead := c.leading
	if lead == nil {
		lead = []int{c.rows}
	}
	xs := append(append([]int(nil), lead...), c.k)
	ys := append(append([]int(nil), lead...), c.n)
	x := ktest.Rand(rng, c.rows*c.k, 1)
	w := ktest.Rand(rng, c.n*c.k, 1)
	dy := ktest.Rand(rng, c.rows*c.n, 1)
	dw0 := ktest.Rand(rng, c.n*c.k, 1)
	y0 := ktest.Rand(rng, c.rows*c.n, 1)
	dx0 := ktest.Rand(rng, c.rows*c.k, 1)
	var b, db0 []float32
	a := nn.LinearArgs{
		X:           ktest.Tensor(t, d, "x", x, xs...),
		W:           ktest.Tensor(t, d, "w", w, c.n, c.k),
		Y:           ktest.Tensor(t, d, "y", nil, ys...),
		DY:          ktest.Tensor(t, d, "dy", dy, ys...),
		DW:          ktest.Tensor(t, d, "dw", dw0, c.n, c.k),
		AccumulateY: c.accY, AccumulateDX: c.accDX,
	}
	if c.bias {
		b = ktest.Rand(rng, c.n, 1)
		db0 = ktest.Rand(rng, c.n, 1)
		a.B = ktest.Tensor(t, d, "b", b, c.n)
		a.DB = ktest.Tensor(t, d, "db", db0, c.n)
	}
	if !c.noDX {
		a.DX = ktest.Tensor(t, d, "dx", nil, xs...)
	}
	// Outputs written with = are poisoned; accumulated ones start random.
	ktest.Start(t, a.Y, y0, c.accY)
	if a.DX != nil {
		ktest.Start(t, a.DX, dx0, c.accDX)
	}
	if c.split != "" {
		t.Setenv(nn.EnvGemmSplit, c.split)
	}
	l, err := nn.NewLinear(d, a)
	if err != nil {
		t.Fatal(err)
	}
	t.Log(l.Plan())
	if c.split != "" && !strings.Contains(strings.Split(l.Plan(), ";")[0], "split-K") {
		t.Errorf("%s=%s: the forward should split, plan %q", nn.EnvGemmSplit, c.split, l.Plan())
	}
	if c.rows == 300 && c.n*c.k < 5000 && d.Info.Type == "CPU" && !strings.Contains(l.Plan(), "split") {
		t.Errorf("expected the weight gradient split over rows on lavapipe, plan %q", l.Plan())
	}
	ktest.Run(t, d, func(r *gpu.Recorder) {
		l.RecordForward(r)
		l.RecordBackward(r)
	})

	// Reference in float64 on the same float32 inputs.
	y := ktest.F64(y0)
	var bb []float64
	if b != nil {
		bb = ktest.F64(b)
	}
	ref.Linear(y, ktest.F64(x), ktest.F64(w), bb, c.rows, c.n, c.k, c.accY)
	var dx, db []float64
	if !c.noDX {
		dx = ktest.F64(dx0)
	}
	if c.bias {
		db = ktest.F64(db0)
	}
	dw := ktest.F64(dw0)
	ref.LinearBackward(dx, dw, db, ktest.F64(dy), ktest.F64(x), ktest.F64(w), c.rows, c.n, c.k, c.accDX)

	ktest.Close(t, "y", ktest.Download(t, a.Y), y, gemmTol(c.k, 1))
	if dx != nil {
		ktest.Close(t, "dx", ktest.Download(t, a.DX), dx, gemmTol(c.n, 1))
	}
	ktest.Close(t, "dw", ktest.Download(t, a.DW), dw, gemmTol(c.rows, 1))
	if db != nil {
		ktest.Close(t, "db", ktest.Download(t, a.DB), db, gemmTol(c.rows, 1))
	}
}

func TestLinearErrors(t *testing.T) {
	ktest.ForEachDevice(t, func(t *testing.T, d *gpu.Device) {
		x := ktest.Tensor(t, d, "x", nil, 4, 3)
		w := ktest.Tensor(t, d, "w", nil, 5, 3)
		b := ktest.Tensor(t, d, "b", nil, 5)
		y := ktest.Tensor(t, d, "y", nil, 4, 5)
		bad := ktest.Tensor(t, d, "bad", nil, 4, 4)
		w1 := ktest.Tensor(t, d, "w1", nil, 15)
		for _, c := range []struct {
			name string
			a    nn.LinearArgs
			want string // in the error
		}{
			{"no W", nn.LinearArgs{X: x, Y: y}, "required"},
			{"W not 2-D", nn.LinearArgs{X: x, W: w1, Y: y}, "w1"},
			{"X last dim", nn.LinearArgs{X: bad, W: w, Y: y}, "bad"},
			{"Y shape", nn.LinearArgs{X: x, W: w, Y: bad}, "bad"},
			{"B shape", nn.LinearArgs{X: x, W: w, B: bad, Y: y}, "bad"},
			{"DW shape", nn.LinearArgs{X: x, W: w, Y: y, DY: y, DW: bad}, "bad"},
			{"DX shape", nn.LinearArgs{X: x, W: w, Y: y, DY: y, DW: w, DX: bad}, "bad"},
			{"DY shape", nn.LinearArgs{X: x, W: w, Y: y, DY: bad, DW: w}, "bad"},
			{"DY missing", nn.LinearArgs{X: x, W: w, Y: y, DW: w}, "DY"},
			{"DB without B", nn.LinearArgs{X: x, W: w, Y: y, DY: y, DW: w, DB: b}, "DB"},
			{"B without DB", nn.LinearArgs{X: x, W: w, B: b, Y: y, DY: y, DW: w}, "DB"},
		} {
			_, err := nn.NewLinear(d, c.a)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "Linear") {
				t.Errorf("%s: error %v, want one naming Linear and %q", c.name, err, c.want)
			}
		}
		if _, err := nn.NewLinear(d, nn.LinearArgs{X: x, W: w, B: b, Y: y, DY: y, DW: w, DB: b}); err != nil {
			t.Errorf("valid args: %v", err)
		}
	})
}

// gemmTileCases are the tiles (values of nn.EnvGemmTile) that the tile
// tests force, with what each covers; tiles that do not fit the device
// (lavapipe: 32 KiB of workgroup memory) are skipped. Every case compiles
// its own pipelines (seconds each on a cold lavapipe): more adds minutes.
// more: also the short and scalar Linear cases and the short grouped
// case; grouped: also in TestGroupedLinearTiles; split: also a split-K
// forward and dX.
var gemmTileCases = []struct {
	tile, what           string
	more, grouped, split bool
}{
	{"128,128,8", "the single-buffered rule: prefetch, 1 vec4 per operand", false, true, false},
	{"128,128,8,db", "the GPU default: double-buffered, 1 vec4 per operand", false, true, true},
	{"64,64,16,db,band2", "double-buffered, 4 vec4 per operand, bands of 2 tile rows (a short last band)", true, true, true},
	{"64,128,16,p", "wide prefetch, 2 vec4 of A and 4 of B", true, true, false},
	{"64,64,32,v4", "BK 32 without prefetch", false, false, false},
	{"128,128,16,db", "double-buffered, BK 16 (too big for lavapipe)", false, true, false},
	{"128,128,32,p", "wide prefetch, BK 32 (too big for lavapipe)", false, true, false},
}

// tileCase is what forEachTile tells its function about the tile.
type tileCase struct{ more, split bool }

// forEachTile runs fn on every device for each tile of gemmTileCases (the
// grouped ones only if grouped) that fits it, with nn.EnvGemmTile set.
func forEachTile(t *testing.T, grouped bool, fn func(t *testing.T, d *gpu.Device, c tileCase)) {
	for _, c := range gemmTileCases {
		if grouped && !c.grouped {
			continue
		}
		forEachTileOf(t, []string{c.tile}, func(t *testing.T, d *gpu.Device, _ string) { fn(t, d, tileCase{c.more, c.split}) })
	}
}

// forEachTileOf is forEachTile over the given tiles.
func forEachTileOf(t *testing.T, tiles []string, fn func(t *testing.T, d *gpu.Device, tile string)) {
	for _, tile := range tiles {
		t.Run(tile, func(t *testing.T) {
			t.Setenv(nn.EnvGemmTile, tile)
			ktest.ForEachDevice(t, func(t *testing.T, d *gpu.Device) {
				if err := nn.CheckGemmTile(d, tile); err != nil {
					t.Skip(err)
				}
				fn(t, d, tile)
			})
		})
	}
}

// TestLinearTiles runs the GPU tiles and their kernel variants (register
// prefetch, wide prefetch, double buffering, banded workgroup order) on
// whatever device the tests have, lavapipe included, by forcing the tile,
// forward and backward against the reference: partial tiles, a reduction
// shorter than one step, split-K weight gradients, accumulation and bias,
// and the scalar kernel for shapes without vec4 loads.
func TestLinearTiles(t *testing.T) {
	cases := []linearCase{
		{rows: 129, n: 136, k: 72, bias: true, accY: true, accDX: true}, // partial tiles, split dW
		{rows: 65, n: 8, k: 4, bias: true, accY: true},                  // K and N below one step, split dW
	}
	scalar := linearCase{rows: 300, n: 17, k: 33, bias: true} // split dW
	splitK := cases[0]
	splitK.split = "3" // split-K forward and dX (chunks of 24 and 48) on the tile's kernels
	forEachTile(t, false, func(t *testing.T, d *gpu.Device, tc tileCase) {
		rng := rand.New(rand.NewSource(3))
		cs := []linearCase{cases[0]}
		if tc.split {
			cs = append(cs, splitK)
		}
		if tc.more {
			cs = append(cs, cases[1], scalar)
		}
		for _, lc := range cs {
			t.Run(lc.String(), func(t *testing.T) { testLinear(t, d, rng, lc) })
		}
	})
	t.Run("bad tile", func(t *testing.T) {
		for _, c := range []struct{ tile, want string }{
			{"100,128,8", "multiples of 8"},
			{"128,128", "BM,BN,BK"},
			{"128,128,8,xx", `unknown variant "xx"`},
			{"128,128,8,db,p", "two variants"},
			{"64,64,32,db", "4*BK"},
			{"128,128,8,band0", "band"},
			{"1024,1024,64", "does not fit"},
		} {
			t.Run(c.tile, func(t *testing.T) {
				t.Setenv(nn.EnvGemmTile, c.tile)
				ktest.ForEachDevice(t, func(t *testing.T, d *gpu.Device) {
					x := ktest.Tensor(t, d, "x", nil, 4, 3)
					w := ktest.Tensor(t, d, "w", nil, 5, 3)
					y := ktest.Tensor(t, d, "y", nil, 4, 5)
					_, err := nn.NewLinear(d, nn.LinearArgs{X: x, W: w, Y: y})
					if err == nil || !strings.Contains(err.Error(), nn.EnvGemmTile) || !strings.Contains(err.Error(), c.want) ||
						!strings.Contains(err.Error(), "db (") {
						t.Errorf("tile %s: error %v, want one naming %s, %q and the accepted forms", c.tile, err, nn.EnvGemmTile, c.want)
					}
				})
			})
		}
	})
}

// TestOpsRelease: a Linear and a GroupedLinear whose weight gradient is
// split over rows and whose forward is split-K (with a scratch of their own,
// and with a shared one) free their bind groups and scratch on Release: 20
// create/release cycles leave the live object counts unchanged.
func TestOpsRelease(t *testing.T) {
	t.Setenv(nn.EnvGemmSplit, "2")
	ktest.ForEachDevice(t, func(t *testing.T, d *gpu.Device) {
		ten := func(shape ...int) *nn.Tensor {
			x, err := nn.NewTensor(d, "t", shape...)
			if err != nil {
				t.Fatal(err)
			}
			return x
		}
		const rows, n, k, g = 512, 16, 40, 3
		x, w, y, dy, dx, dw := ten(rows, k), ten(n, k), ten(rows, n), ten(rows, n), ten(rows, k), ten(n, k)
		gw, gdw := ten(g, n, k), ten(g, n, k)
		rt, err := nn.NewRouting(d, rows, g)
		if err != nil {
			t.Fatal(err)
		}
		defer func() {
			rt.Release()
			for _, z := range []*nn.Tensor{x, w, y, dy, dx, dw, gw, gdw} {
				z.Release()
			}
		}()
		if nn.LinearScratch(d, rows, n, k, false) == 0 {
			t.Logf("no split-K for %dx%dx%d on this device", rows, n, k)
		}
		cycle := func(shared bool) {
			var s *nn.Scratch
			if shared {
				s = nn.NewScratch(d)
				s.Reserve(nn.LinearScratch(d, rows, n, k, false))
			}
			l, err := nn.NewLinear(d, nn.LinearArgs{X: x, W: w, Y: y, DY: dy, DX: dx, DW: dw, Scratch: s})
			if err != nil {
				t.Fatal(err)
			}
			gl, err := nn.NewGroupedLinear(d, nn.GroupedLinearArgs{X: x, W: gw, Y: y, DY: dy, DX: dx, DW: gdw, Routing: rt, Scratch: s})
			if err != nil {
				t.Fatal(err)
			}
			l.Release()
			gl.Release()
			s.Release()
		}
		for _, shared := range []bool{false, true} {
			cycle(shared)
			before := d.LiveObjects()
			for i := 0; i < 20; i++ {
				cycle(shared)
			}
			after := d.LiveObjects()
			for _, kind := range []string{"buffer", "bind group"} {
				if after[kind] != before[kind] {
					t.Errorf("shared scratch %v: %d live %s objects after 20 cycles, %d before", shared, after[kind], kind, before[kind])
				}
			}
		}
	})
}
