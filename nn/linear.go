package nn

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"mom/gpu"
	"mom/shaders"
)

// LinearArgs are the tensors of a Linear op.
type LinearArgs struct {
	X, W, B, Y     *Tensor // X: (..., K) any leading dims (flattened to rows); W: (N, K); B: (N) or nil; Y: (..., N)
	DY, DX, DW, DB *Tensor // backward tensors, same shapes; all nil for a forward-only op; DX may be nil (no input gradient); DB nil iff B nil
	AccumulateY    bool    // forward computes Y += X·Wᵀ(+B) instead of Y =
	AccumulateDX   bool    // backward computes DX += dY·W instead of DX =
	// Scratch holds the split-K partial sums (of the weight gradient, and of
	// the forward and input gradient when they split), shared with the other
	// GEMMs recorded in order with this one (a model's); nil gives the op a
	// scratch of its own.
	Scratch *Scratch
}

// Linear is Y = X·Wᵀ + B over rows (the leading dims of X flattened), with
// its backward dX = dY·W, dW += dYᵀ·X, dB += Σ_rows dY. It runs on the tiled
// GEMM of shaders/gemm.wgsl in three layouts (NT, NN, TN); the weight
// gradient is split over rows (split-K) when the output alone has too few
// tiles to fill the device, and so are the forward and the input gradient
// over their reductions on a GPU (splitK), each with a deterministic second
// pass summing the partials in order.
type Linear struct {
	gemmOp
}

// gemmOp is what Linear and GroupedLinear share: the prepared dispatches
// of the forward and backward and the sizes for FLOP counting.
type gemmOp struct {
	rows, n, k int
	fwd        *gemmCall
	dx, dw, db *gemmCall
	fwdReduce  *gemmCall   // split-K forward: partial sums into Y
	dxReduce   *gemmCall   // split-K input gradient: partial sums into DX
	reduce     []*gemmCall // split-K: partial sums into DW (and DB)
	plan       string
	own        *Scratch // the op's own split-K scratch (no shared one given)
	dummy      *Tensor  // a float32 stand-in bound where there is no bias (W is float16)
}

// noBias returns a float32 tensor to bind where a kernel has no bias to
// read: w itself, or (w being float16) a small tensor of the op's own.
func (l *gemmOp) noBias(d *gpu.Device, w *Tensor) (*Tensor, error) {
	if w.DType == F32 {
		return w, nil
	}
	if l.dummy == nil {
		t, err := NewTensor(d, "gemm.nobias", 4)
		if err != nil {
			return nil, err
		}
		l.dummy = t
	}
	return l.dummy, nil
}

// Release frees the op's bind groups and its own split-K scratch (not the
// tensors of its args, nor a shared Scratch). A released op must not be
// recorded again.
func (l *gemmOp) Release() {
	for _, c := range append([]*gemmCall{l.fwd, l.fwdReduce, l.dx, l.dxReduce, l.dw, l.db}, l.reduce...) {
		if c != nil {
			c.g.Release()
		}
	}
	l.fwd, l.fwdReduce, l.dx, l.dxReduce, l.dw, l.db, l.reduce = nil, nil, nil, nil, nil, nil, nil
	l.own.Release()
	l.own = nil
	if l.dummy != nil {
		l.dummy.Release()
		l.dummy = nil
	}
}

// scratch returns the split-K scratch to use: the shared one, else the
// op's own (made on first use).
func (l *gemmOp) scratch(d *gpu.Device, shared *Scratch, elems int) (*Tensor, error) {
	if shared == nil {
		if l.own == nil {
			l.own = NewScratch(d)
		}
		shared = l.own
	}
	return shared.tensor(elems)
}

// NewLinear validates the shapes, compiles the pipelines and binds the
// tensors of a. The backward tensors are optional (a forward-only op).
func NewLinear(d *gpu.Device, a LinearArgs) (*Linear, error) {
	const op = "Linear"
	if a.X == nil || a.W == nil || a.Y == nil {
		return nil, fmt.Errorf("nn: %s: X, W and Y are required", op)
	}
	if len(a.W.Shape) != 2 {
		return nil, fmt.Errorf("nn: %s: W %s has shape %v, want (N, K)", op, a.W.Name, a.W.Shape)
	}
	n, k := a.W.Shape[0], a.W.Shape[1]
	rows, err := leadingRows(op, a.X, k)
	if err != nil {
		return nil, err
	}
	yShape := append(append([]int(nil), a.X.Shape[:len(a.X.Shape)-1]...), n)
	if err := CheckShape(op, a.Y, yShape...); err != nil {
		return nil, err
	}
	if a.B != nil {
		if err := CheckShape(op, a.B, n); err != nil {
			return nil, err
		}
	}
	backward := a.DY != nil || a.DX != nil || a.DW != nil || a.DB != nil
	if backward {
		if a.DY == nil || a.DW == nil {
			return nil, fmt.Errorf("nn: %s: a backward needs DY and DW (got DY %v, DW %v)", op, a.DY != nil, a.DW != nil)
		}
		if (a.DB == nil) != (a.B == nil) {
			return nil, fmt.Errorf("nn: %s: DB must be given exactly when B is (B %v, DB %v)", op, a.B != nil, a.DB != nil)
		}
		if err := CheckShape(op, a.DY, yShape...); err != nil {
			return nil, err
		}
		if a.DX != nil {
			if err := CheckShape(op, a.DX, a.X.Shape...); err != nil {
				return nil, err
			}
		}
		if err := CheckShape(op, a.DW, n, k); err != nil {
			return nil, err
		}
		if a.DB != nil {
			if err := CheckShape(op, a.DB, n); err != nil {
				return nil, err
			}
		}
	}
	l := &Linear{gemmOp{rows: rows, n: n, k: k}}
	wrap := func(err error) error {
		l.Release()
		return fmt.Errorf("nn: %s (rows %d, N %d, K %d): %w", op, rows, n, k, err)
	}
	// Forward, NT: Y (rows, N) = X (rows, K) · W (N, K)ᵀ + B.
	bias := a.B
	if bias == nil {
		if bias, err = l.noBias(d, a.W); err != nil { // bound, never read
			return nil, wrap(err)
		}
	}
	l.fwd, l.fwdReduce, err = l.newGemmK(d, a.Scratch, gemmSpec{M: rows, N: n, KD: k, Bias: a.B != nil, Accum: a.AccumulateY}, a.X, a.W, bias, a.Y)
	if err != nil {
		return nil, wrap(err)
	}
	l.plan = "fwd " + l.fwd.plan
	if !backward {
		return l, nil
	}
	// dX, NN: dX (rows, K) = dY (rows, N) · W (N, K).
	if a.DX != nil {
		nb, err := l.noBias(d, a.W)
		if err != nil {
			return nil, wrap(err)
		}
		l.dx, l.dxReduce, err = l.newGemmK(d, a.Scratch, gemmSpec{M: rows, N: k, KD: n, BT: true, Accum: a.AccumulateDX}, a.DY, a.W, nb, a.DX)
		if err != nil {
			return nil, wrap(err)
		}
		l.plan += "; dx " + l.dx.plan
	}
	// dW, TN: dW (N, K) += dY (rows, N)ᵀ · X (rows, K), reduced over rows,
	// split into chunks of rows when N·K has too few tiles.
	tile, err := gemmTileFor(d, n, k)
	if err != nil {
		return nil, wrap(err)
	}
	nb, err := l.noBias(d, a.W)
	if err != nil {
		return nil, wrap(err)
	}
	chunk, splits := splitRows(d, tile, rows, CeilDiv(n, tile.bm)*CeilDiv(k, tile.bn), n*k+n)
	if splits == 1 {
		l.dw, err = newGemmTile(d, tile, gemmSpec{M: n, N: k, KD: rows, AT: true, BT: true, Accum: true}, a.DY, a.X, nb, a.DW)
		if err != nil {
			return nil, wrap(err)
		}
		if a.DB != nil {
			l.db, err = newColSum(d, a.DY, a.DB, rows, n, rows, 1, 0, true)
			if err != nil {
				return nil, wrap(err)
			}
		}
		l.plan += "; dw " + l.dw.plan
		return l, nil
	}
	scratch, err := l.scratch(d, a.Scratch, splits*(n*k+n))
	if err != nil {
		return nil, wrap(err)
	}
	l.dw, err = newGemmTile(d, tile, gemmSpec{M: n, N: k, KD: rows, AT: true, BT: true, Chunk: chunk, Splits: splits}, a.DY, a.X, nb, scratch)
	if err != nil {
		return nil, wrap(err)
	}
	red, err := newReduce(d, scratch, a.DW, 0, n*k, splits, false)
	if err != nil {
		return nil, wrap(err)
	}
	l.reduce = append(l.reduce, red)
	if a.DB != nil {
		off := splits * n * k
		l.db, err = newColSum(d, a.DY, scratch, rows, n, chunk, splits, off, false)
		if err != nil {
			return nil, wrap(err)
		}
		red, err := newReduce(d, scratch, a.DB, off, n, splits, false)
		if err != nil {
			return nil, wrap(err)
		}
		l.reduce = append(l.reduce, red)
	}
	l.plan += fmt.Sprintf("; dw %s, split over rows in %d chunks of %d", l.dw.plan, splits, chunk)
	return l, nil
}

// RecordForward records Y = X·Wᵀ + B (or Y += with AccumulateY); for a
// GroupedLinear each row uses its modality's W and B through the routing
// tables of the last Update.
func (l *gemmOp) RecordForward(r *gpu.Recorder) {
	l.fwd.record(r)
	l.fwdReduce.record(r)
}

// RecordBackward records DX = dY·W (if DX is set; += with AccumulateDX),
// DW += dYᵀ·X and DB += Σ_rows dY (per modality for a GroupedLinear). It
// records nothing for a forward-only op.
func (l *gemmOp) RecordBackward(r *gpu.Recorder) {
	l.dx.record(r)
	l.dxReduce.record(r) // before dW's partials reuse the scratch
	l.dw.record(r)
	l.db.record(r)
	for _, c := range l.reduce {
		c.record(r)
	}
}

// FLOPs counts 2·rows·N·K per GEMM (a grouped row uses exactly one weight
// set, so it costs what a dense row does): one forward, two backward (one
// without DX); bias additions are not counted.
func (l *gemmOp) FLOPs() (forward, backward float64) {
	f := 2 * float64(l.rows) * float64(l.n) * float64(l.k)
	if l.dw == nil {
		return f, 0
	}
	if l.dx != nil {
		return f, 2 * f
	}
	return f, f
}

// Plan describes the kernels chosen (tile sizes, vec4 or scalar loads,
// split-K), for logs and tests.
func (l *gemmOp) Plan() string { return l.plan }

// leadingRows checks that x is (..., k) and returns the product of its
// leading dims.
func leadingRows(op string, x *Tensor, k int) (int, error) {
	if len(x.Shape) == 0 || x.Shape[len(x.Shape)-1] != k {
		return 0, fmt.Errorf("nn: %s: %s has shape %v, want (..., %d)", op, x.Name, x.Shape, k)
	}
	return x.Len() / k, nil
}

// GemmArgs are the tensors and layout of a plain GEMM: C (M, N) (=|+=)
// A·B (+ Bias), with A stored (M, K), or (K, M) when AT, and B stored
// (N, K) (a Linear weight), or (K, N) when BT. Bias (N) may be nil.
type GemmArgs struct {
	A, B, Bias, C *Tensor
	M, N, K       int
	AT, BT        bool
	Accumulate    bool     // C += instead of C =
	Scratch       *Scratch // split-K partial sums when the reduction splits (see LinearArgs); nil: the op's own
}

// Gemm is one GEMM of shaders/gemm.wgsl (the kernel of Linear's forward,
// input gradient and weight gradient, in whichever layout).
type Gemm struct {
	call, reduce *gemmCall
	flops        float64
	op           gemmOp // its no-bias stand-in and own scratch
}

// NewGemm checks the sizes, picks the tile for the device and binds a.
func NewGemm(d *gpu.Device, a GemmArgs) (*Gemm, error) {
	if a.A == nil || a.B == nil || a.C == nil || a.M <= 0 || a.N <= 0 || a.K <= 0 {
		return nil, fmt.Errorf("nn: Gemm: A, B, C and positive M, N, K are required (M %d, N %d, K %d)", a.M, a.N, a.K)
	}
	for _, c := range []struct {
		t    *Tensor
		n    int
		what string
	}{{a.A, a.M * a.K, "A"}, {a.B, a.N * a.K, "B"}, {a.C, a.M * a.N, "C"}} {
		if c.t.Len() != c.n {
			return nil, fmt.Errorf("nn: Gemm (M %d, N %d, K %d): %s %s has %d elements, want %d", a.M, a.N, a.K, c.what, c.t.Name, c.t.Len(), c.n)
		}
	}
	g := &Gemm{flops: 2 * float64(a.M) * float64(a.N) * float64(a.K)}
	bias := a.Bias
	var err error
	if bias == nil {
		bias, err = g.op.noBias(d, a.B) // bound, never read
	} else if bias.Len() != a.N {
		err = fmt.Errorf("bias %s has %d elements, want %d", bias.Name, bias.Len(), a.N)
	}
	if err == nil {
		g.call, g.reduce, err = g.op.newGemmK(d, a.Scratch, gemmSpec{M: a.M, N: a.N, KD: a.K, AT: a.AT, BT: a.BT, Bias: a.Bias != nil, Accum: a.Accumulate}, a.A, a.B, bias, a.C)
	}
	if err != nil {
		g.op.Release()
		return nil, fmt.Errorf("nn: Gemm (M %d, N %d, K %d): %w", a.M, a.N, a.K, err)
	}
	return g, nil
}

// Record records the GEMM (and the sum of its partials when it splits).
func (g *Gemm) Record(r *gpu.Recorder) {
	g.call.record(r)
	g.reduce.record(r)
}

// FLOPs is 2·M·N·K.
func (g *Gemm) FLOPs() float64 { return g.flops }

// Plan names the kernel and tile chosen.
func (g *Gemm) Plan() string { return g.call.plan }

// Release frees the bind groups and the op's own scratch.
func (g *Gemm) Release() {
	if g == nil {
		return
	}
	for _, c := range []*gemmCall{g.call, g.reduce} {
		if c != nil {
			c.g.Release()
		}
	}
	g.call, g.reduce = nil, nil
	g.op.Release()
}

// ---- the GEMM kernels of shaders/gemm.wgsl, shared with GroupedLinear ----

// gemmTile is one tile configuration: a workgroup computes bm x bn outputs
// in reduction steps of bk, each invocation 8 x 8 of them; kind picks how a
// step's tiles reach workgroup memory (vec4 shapes only: other shapes take
// the scalar kernel), band the order of the workgroups over the tiles.
type gemmTile struct {
	bm, bn, bk int
	kind       tileKind
	band       int // tile rows per band of the workgroup order; <= 1: row by row
}

// tileKind is a GEMM tile's kernel variant for vec4 shapes (the entry
// points of shaders/gemm.wgsl and gemm_grouped.wgsl).
type tileKind string

const (
	// tileAuto is the rule measured first: register prefetch (*_v4p) when
	// each invocation holds at most 2 vec4 per operand (8*bk <= bm, bn),
	// plain vec4 loads (*_v4) otherwise.
	tileAuto tileKind = ""
	// tileV4: vec4 loads straight into workgroup memory, no prefetch.
	tileV4 tileKind = "v4"
	// tilePrefetch: register prefetch (*_v4p), up to 4 vec4 per operand
	// per invocation (4*bk <= bm, bn).
	tilePrefetch tileKind = "p"
	// tileDouble: register prefetch into double-buffered workgroup tiles
	// (*_v4db): one barrier per step, twice the workgroup memory.
	tileDouble tileKind = "db"
)

var tileKinds = []tileKind{tileV4, tilePrefetch, tileDouble}

func (t gemmTile) invocations() int { return shaders.GemmWorkgroup(t.bm, t.bn)[0] }

// buffers is the number of halves of each workgroup tile.
func (t gemmTile) buffers() int {
	if t.kind == tileDouble {
		return 2
	}
	return 1
}

// storage is the workgroup memory of the padded tiles, in bytes.
func (t gemmTile) storage() int { return 16 * t.bk * (t.bm/4 + 1 + t.bn/4 + 1) * t.buffers() }

func (t gemmTile) fits(d *gpu.Device) bool { return t.misfit(d) == "" }

// misfit says which of the device's limits the tile exceeds ("" if none).
func (t gemmTile) misfit(d *gpu.Device) string {
	l := d.Limits
	switch {
	case t.invocations() > int(l.MaxComputeInvocationsPerWorkgroup) || t.invocations() > int(l.MaxComputeWorkgroupSizeX):
		return fmt.Sprintf("%d invocations per workgroup, the device allows %d", t.invocations(),
			min(l.MaxComputeInvocationsPerWorkgroup, l.MaxComputeWorkgroupSizeX))
	case t.storage() > int(l.MaxComputeWorkgroupStorageSize):
		return fmt.Sprintf("%d bytes of workgroup memory, the device allows %d", t.storage(), l.MaxComputeWorkgroupStorageSize)
	}
	return ""
}

// prefetch reports whether tileAuto takes the register-prefetch kernels (at
// most 2 vec4 per invocation per operand). They measured faster on the H200
// with both runtimes and slower on lavapipe, whose tiles never qualify.
func (t gemmTile) prefetch() bool { return 8*t.bk <= t.bn && 8*t.bk <= t.bm }

// gemmKernels are one GEMM's entry points, one per tile kind.
type gemmKernels struct{ scalar, v4, v4p, v4db shaders.Kernel }

var (
	plainGemmKernels   = gemmKernels{shaders.Gemm, shaders.GemmV4, shaders.GemmV4Prefetch, shaders.GemmV4DoubleBuffer}
	groupedGemmKernels = gemmKernels{shaders.GroupedGemm, shaders.GroupedGemmV4,
		shaders.GroupedGemmV4Prefetch, shaders.GroupedGemmV4DoubleBuffer}
	groupedTNKernels = gemmKernels{shaders.GroupedTN, shaders.GroupedTNV4,
		shaders.GroupedTNV4Prefetch, shaders.GroupedTNV4DoubleBuffer}
)

// pick returns the entry point of ks the tile runs (vec4: the shape allows
// vec4 loads) and the tile's override constants for it.
func (t gemmTile) pick(ks gemmKernels, vec4 bool) (shaders.Kernel, gpu.Constants) {
	cs := gpu.Constants{"BM": float64(t.bm), "BN": float64(t.bn), "BK": float64(t.bk)}
	if t.band > 1 {
		cs["BAND"] = float64(t.band)
	}
	if !vec4 {
		return ks.scalar, cs
	}
	switch t.kind {
	case tileV4:
		return ks.v4, cs
	case tilePrefetch:
		return ks.v4p, cs
	case tileDouble:
		cs["NBUF"] = 2
		return ks.v4db, cs
	}
	if t.prefetch() {
		return ks.v4p, cs
	}
	return ks.v4, cs
}

func (t gemmTile) String() string {
	s := fmt.Sprintf("%dx%dx%d", t.bm, t.bn, t.bk)
	if t.kind != tileAuto {
		s += " " + string(t.kind)
	}
	if t.band > 1 {
		s += fmt.Sprintf(" band %d", t.band)
	}
	return s
}

// EnvGemmTile names the environment variable that forces the GEMM tile of
// the ops (Linear, Gemm, GroupedLinear) built while it is set, for tuning
// and for tests of the GPU tiles on a CPU. Its forms are GemmTileForms.
const EnvGemmTile = "MOM_GEMM_TILE"

// GemmTileForms describes the accepted values of EnvGemmTile.
const GemmTileForms = "BM,BN,BK[,VARIANT][,bandR]: BM and BN multiples of 8, BK a multiple of 4; " +
	"VARIANT v4 (vec4 loads, no prefetch), p (register prefetch, 4*BK <= BM and BN) or " +
	"db (register prefetch into double-buffered workgroup tiles, one barrier per step, 4*BK <= BM and BN), " +
	"without VARIANT today's rule (p when 8*BK <= BM and BN, else v4); " +
	"bandR: the workgroups walk the tiles in bands of R tile rows, column by column within a band " +
	"(e.g. 128,128,8 or 128,128,16,db or 128,128,16,db,band8)"

// parseGemmTile reads a tile in the forms of GemmTileForms.
func parseGemmTile(s string) (gemmTile, error) {
	var t gemmTile
	f := strings.Split(s, ",")
	if len(f) < 3 {
		return t, fmt.Errorf("want at least BM,BN,BK")
	}
	for i, p := range []*int{&t.bm, &t.bn, &t.bk} {
		v, err := strconv.Atoi(strings.TrimSpace(f[i]))
		if err != nil || v <= 0 {
			return t, fmt.Errorf("%q is not a positive number", f[i])
		}
		*p = v
	}
	if t.bm%8 != 0 || t.bn%8 != 0 || t.bk%4 != 0 {
		return t, fmt.Errorf("BM %d and BN %d must be multiples of 8, BK %d of 4", t.bm, t.bn, t.bk)
	}
	kind := false
	for _, o := range f[3:] {
		o = strings.TrimSpace(o)
		if r, ok := strings.CutPrefix(o, "band"); ok {
			n, err := strconv.Atoi(r)
			if err != nil || n < 1 || t.band != 0 {
				return t, fmt.Errorf("%q: want one bandR with R a positive number", o)
			}
			t.band = n
			continue
		}
		if !slices.Contains(tileKinds, tileKind(o)) {
			return t, fmt.Errorf("unknown variant %q", o)
		}
		if kind {
			return t, fmt.Errorf("two variants (%q and %q)", t.kind, o)
		}
		t.kind, kind = tileKind(o), true
	}
	if (t.kind == tilePrefetch || t.kind == tileDouble) && (4*t.bk > t.bm || 4*t.bk > t.bn) {
		return t, fmt.Errorf("variant %s needs 4*BK <= BM and BN (at most 4 vec4 per operand and invocation)", t.kind)
	}
	return t, nil
}

// envGemmTile returns the tile EnvGemmTile forces on d (ok false when it is
// unset), or an error naming the variable and its forms.
func envGemmTile(d *gpu.Device) (t gemmTile, ok bool, err error) {
	e := os.Getenv(EnvGemmTile)
	if e == "" {
		return t, false, nil
	}
	t, err = parseGemmTile(e)
	if err == nil {
		if why := t.misfit(d); why != "" {
			err = fmt.Errorf("tile %s does not fit the device: %s", t, why)
		}
	}
	if err != nil {
		return t, true, fmt.Errorf("%s=%q: %v; want %s", EnvGemmTile, e, err, GemmTileForms)
	}
	return t, true, nil
}

// CheckGemmTile reports whether tile, a value of EnvGemmTile, is well
// formed and fits d (nil) or why not.
func CheckGemmTile(d *gpu.Device, tile string) error {
	t, err := parseGemmTile(tile)
	if err != nil {
		return fmt.Errorf("%s=%q: %v; want %s", EnvGemmTile, tile, err, GemmTileForms)
	}
	if why := t.misfit(d); why != "" {
		return fmt.Errorf("%s=%q: tile %s does not fit %s: %s", EnvGemmTile, tile, t, d, why)
	}
	return nil
}

// gemmTileFor picks the tile for an m x n output from the device, as
// measured: on a GPU 128x128 tiles (256 invocations; 64 wide along a
// dimension of 64 or less), double-buffered with register prefetch, in
// steps of 8 (on the H200 the fastest of 9 variants swept through Dawn,
// cmd/mom/testdata/gemm_sweep.sh: 4096³ in 3.92 ms against 4.15 for the
// single-buffered tile; through wgpu-native 4.54 against 4.99); on a CPU
// rasteriser (lavapipe) 64x64 tiles of 64 invocations in steps of 16, no
// prefetch. Each candidate is checked against the device's limits; the last
// resort is 32x32. EnvGemmTile overrides it.
func gemmTileFor(d *gpu.Device, m, n int) (gemmTile, error) {
	if t, ok, err := envGemmTile(d); ok {
		return t, err
	}
	var cands []gemmTile
	if d.Info.Type == "CPU" {
		cands = []gemmTile{{bm: 64, bn: 64, bk: 16}}
	} else {
		bm, bn := 128, 128
		if m <= 64 {
			bm = 64
		}
		if n <= 64 {
			bn = 64
		}
		cands = []gemmTile{{bm: bm, bn: bn, bk: 8, kind: tileDouble}, {bm: 64, bn: 64, bk: 8}}
	}
	for _, t := range cands {
		if t.fits(d) {
			return t, nil
		}
	}
	return gemmTile{bm: 32, bn: 32, bk: 16}, nil
}

// splitRows chooses how to cut a reduction over rows (the weight gradient)
// whose output has tiles tiles: chunks of chunk rows (a multiple of the
// tile's bk), splits of them, so that tiles*splits reaches a target number of
// workgroups for the device without chunks shorter than a minimum or a
// partial-sum scratch (splits x perSplit floats) above 256 MiB or the
// device's binding limit. splits == 1 means no split. The GPU target,
// splitRowsTarget, was measured on an H200.
func splitRows(d *gpu.Device, t gemmTile, rows, tiles, perSplit int) (chunk, splits int) {
	target, minChunk := splitRowsTarget, 256
	if d.Info.Type == "CPU" {
		target, minChunk = 4*runtime.NumCPU(), 64
	}
	return splitReduction(d, t, rows, CeilDiv(target, tiles), minChunk, perSplit)
}

// splitReduction cuts a reduction of length red into at most want chunks
// of at least minChunk (a multiple of the tile's bk), with the partial-sum
// scratch (splits x perSplit floats) at most 256 MiB and within the
// device's binding limit. splits == 1 means no split.
func splitReduction(d *gpu.Device, t gemmTile, red, want, minChunk, perSplit int) (chunk, splits int) {
	s := min(want, CeilDiv(red, max(minChunk, 1)))
	maxBytes := min(uint64(256<<20), d.Limits.MaxStorageBufferBindingSize)
	s = min(s, int(maxBytes/uint64(4*max(perSplit, 1))))
	if s <= 1 {
		return red, 1
	}
	chunk = CeilDiv(CeilDiv(red, s), t.bk) * t.bk
	if splits = CeilDiv(red, chunk); splits <= 1 {
		return red, 1
	}
	return chunk, splits
}

// splitRowsTarget is the number of workgroups splitRows aims at on a GPU.
// Measured on an H200 through Dawn (one run, bench kernels --size large),
// the weight gradient of 8192 rows into 3072 x 768 (144 tiles) and its
// grouped twin took, by target: 512 (4 splits) 1.265 / 1.326 ms, 720 1.196 /
// 1.272, 1008 (7 splits) 1.145 / 1.201, 1296 1.119 / 1.248, 1584 1.106 /
// 1.230, 2048 1.156 / 1.229: the tail wave of a few workgroups costs as
// much as a full one (an H200 runs 132 to 264 of these workgroups at once),
// and 1008 was the best for both together.
const splitRowsTarget = 1008

// EnvGemmSplit names the environment variable that sets the split-K of the
// forward (NT) and input-gradient (NN) GEMMs (and of Gemm) built while it
// is set: "off" (never split), "auto" (the default: splitK's choice) or a
// number of chunks N (at least BK deep each; within the scratch cap), for
// tuning and for tests of the split path on a CPU. The weight gradient's
// split over rows (splitRows) does not depend on it.
const EnvGemmSplit = "MOM_GEMM_SPLIT"

// Split-K targets of the NT and NN GEMMs on a GPU: enough workgroups for
// about two waves of a large GPU (an H200 has 132 SMs, about 2 resident
// 256-invocation workgroups each), chunks of at least 128 (16 steps of BK 8).
const (
	splitKTarget   = 512
	splitKMinChunk = 128
)

// splitK chooses how to cut the reduction (length kd) of an NT or NN GEMM
// whose output has tiles tiles of the tile t and perSplit floats: with
// EnvGemmSplit unset or "auto", on a GPU into enough chunks that
// tiles*splits reaches splitKTarget, none shorter than splitKMinChunk (so
// an output of 512 tiles or more, or a reduction shorter than 256, never
// splits), with the scratch capped as splitRows'; never on a CPU
// (lavapipe), whose few threads the tiles already fill. splits == 1 means
// no split.
func splitK(d *gpu.Device, t gemmTile, kd, tiles, perSplit int) (chunk, splits int, err error) {
	want, minChunk := 1, t.bk
	switch e := os.Getenv(EnvGemmSplit); e {
	case "off":
	case "", "auto":
		if d.Info.Type != "CPU" {
			want, minChunk = CeilDiv(splitKTarget, tiles), splitKMinChunk
		}
	default:
		if want, err = strconv.Atoi(e); err != nil || want < 1 {
			return 0, 0, fmt.Errorf("%s=%q: want off, auto or a number of chunks", EnvGemmSplit, e)
		}
	}
	chunk, splits = splitReduction(d, t, kd, want, minChunk, perSplit)
	return chunk, splits, nil
}

// gemmSpec is one GEMM: C[z] (M, N) (=|+=) A·B (+ bias) over reduction chunk
// z, in the layouts of shaders/gemm.wgsl.
type gemmSpec struct {
	M, N, KD int
	AT, BT   bool // A stored (KD, M); B stored (KD, N)
	Bias     bool
	Accum    bool
	Chunk    int // reduction chunk of a split-K GEMM (0: none)
	Splits   int // number of chunks (0 or 1: none)
	COff     int // element offset of C
}

// vec4 reports whether every leading dimension allows vec4 loads and stores.
func (s gemmSpec) vec4() bool {
	if s.N%4 != 0 || s.COff%4 != 0 {
		return false
	}
	if s.AT && s.M%4 != 0 {
		return false
	}
	if (!s.AT || !s.BT) && s.KD%4 != 0 {
		return false
	}
	return true
}

// gemmCall is one prepared dispatch.
type gemmCall struct {
	g       *gpu.BindGroup
	x, y, z int
	plan    string
}

func (c *gemmCall) record(r *gpu.Recorder) {
	if c != nil {
		r.Dispatch(c.g, c.x, c.y, c.z)
	}
}

// newGemmK prepares C (=|+=) A·B (+ bias) (the forward, the input gradient
// or a Gemm), split over the reduction when splitK says so: the GEMM then
// writes its partials (the first with the bias) into the scratch (shared,
// else the op's own) and a second dispatch sums them in order into C (= or
// += with s.Accum). red is nil without a split.
func (l *gemmOp) newGemmK(d *gpu.Device, shared *Scratch, s gemmSpec, a, b, bias, c *Tensor) (call, red *gemmCall, err error) {
	t, err := gemmTileFor(d, s.M, s.N)
	if err != nil {
		return nil, nil, err
	}
	chunk, splits, err := splitK(d, t, s.KD, CeilDiv(s.M, t.bm)*CeilDiv(s.N, t.bn), s.M*s.N)
	if err != nil {
		return nil, nil, err
	}
	if splits == 1 {
		call, err = newGemmTile(d, t, s, a, b, bias, c)
		return call, nil, err
	}
	scratch, err := l.scratch(d, shared, splits*s.M*s.N)
	if err != nil {
		return nil, nil, err
	}
	accum := s.Accum
	s.Chunk, s.Splits, s.Accum = chunk, splits, false
	if call, err = newGemmTile(d, t, s, a, b, bias, scratch); err != nil {
		return nil, nil, err
	}
	if red, err = newReduce(d, scratch, c, 0, s.M*s.N, splits, !accum); err != nil {
		call.g.Release()
		return nil, nil, err
	}
	call.plan += fmt.Sprintf(", split-K in %d chunks of %d (%d workgroups)", splits, chunk, call.x*call.y*call.z)
	return call, red, nil
}

func newGemmTile(d *gpu.Device, t gemmTile, s gemmSpec, a, b, bias, c *Tensor) (*gemmCall, error) {
	if err := checkU32(s.M, s.N, s.KD, s.COff+max(s.Splits, 1)*s.M*s.N, s.M*s.KD, s.N*s.KD); err != nil {
		return nil, err
	}
	k, cs := t.pick(plainGemmKernels, s.vec4())
	chunk, splits := s.Chunk, s.Splits
	if splits <= 1 {
		chunk, splits = max(s.KD, 1), 1
	}
	cs["M"], cs["N"], cs["KD"] = float64(s.M), float64(s.N), float64(s.KD)
	cs["A_T"], cs["B_T"], cs["HAS_BIAS"], cs["ACCUM"] = b2f(s.AT), b2f(s.BT), b2f(s.Bias), b2f(s.Accum)
	cs["CHUNK"], cs["C_OFF"] = float64(chunk), float64(s.COff)
	g, err := Bind(d, k, cs, a, b, bias, c)
	if err != nil {
		return nil, err
	}
	x, y := Grid(d, CeilDiv(s.M, t.bm)*CeilDiv(s.N, t.bn))
	plan := fmt.Sprintf("%s %s", k.Entry, t)
	return &gemmCall{g: g, x: x, y: y, z: splits, plan: plan}, nil
}

// newReduce prepares dst[i] += Σ_s part[off + s*n + i] for i < n, s < splits
// (dst[i] = with assign).
func newReduce(d *gpu.Device, part, dst *Tensor, off, n, splits int, assign bool) (*gemmCall, error) {
	if err := checkU32(off + splits*n); err != nil {
		return nil, err
	}
	g, err := Bind(d, shaders.GemmReduce, gpu.Constants{"LEN": float64(n), "SPLITS": float64(splits), "P_OFF": float64(off),
		"ASSIGN": b2f(assign)}, part, dst)
	if err != nil {
		return nil, err
	}
	x, y := Grid(d, CeilDiv(n, 256))
	return &gemmCall{g: g, x: x, y: y, z: 1}, nil
}

// newColSum prepares the bias gradient db (+)= column sums of dy (rows, cols)
// per chunk of rows.
func newColSum(d *gpu.Device, dy, db *Tensor, rows, cols, chunk, splits, off int, accum bool) (*gemmCall, error) {
	g, err := Bind(d, shaders.GemmColSum, gpu.Constants{"ROWS": float64(rows), "COLS": float64(cols),
		"CHUNK": float64(chunk), "ACCUM": b2f(accum), "C_OFF": float64(off)}, dy, db)
	if err != nil {
		return nil, err
	}
	return &gemmCall{g: g, x: CeilDiv(cols, 256), y: 1, z: splits}, nil
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// checkU32 fails when an index the kernels compute in u32 could overflow.
func checkU32(vs ...int) error {
	for _, v := range vs {
		if v < 0 || v >= 1<<32 {
			return fmt.Errorf("size %d overflows the kernels' 32-bit indices", v)
		}
	}
	return nil
}

// Scratch is device memory for split-K partial sums, shared by GEMMs that
// run one after another (their dispatches are recorded in order, so no two
// use it at once): a model's projections share one. Reserve sizes it before
// the ops are built; an op needing more makes it grow, and the smaller
// tensor it replaces stays alive (ops built before still bind it) until
// Release frees them all. Release it after the ops that use it.
type Scratch struct {
	d    *gpu.Device
	cur  *Tensor
	old  []*Tensor
	want int
}

// NewScratch makes an empty scratch on d (no memory until an op needs it).
func NewScratch(d *gpu.Device) *Scratch { return &Scratch{d: d} }

// Reserve makes the first tensor hold at least elems floats.
func (s *Scratch) Reserve(elems int) { s.want = max(s.want, elems) }

// tensor returns a tensor of at least elems floats.
func (s *Scratch) tensor(elems int) (*Tensor, error) {
	if s.cur != nil && s.cur.Len() >= elems {
		return s.cur, nil
	}
	n := max(elems, s.want)
	if s.cur != nil {
		n = max(n, s.cur.Len()+s.cur.Len()/2)
	}
	n = CeilDiv(n, 64) * 64
	if lim := int(s.d.Limits.MaxStorageBufferBindingSize / 4); n > lim {
		n = max(lim, elems)
	}
	t, err := NewTensor(s.d, "gemm.splitk.scratch", n)
	if err != nil {
		return nil, err
	}
	if s.cur != nil {
		s.old = append(s.old, s.cur)
	}
	s.cur = t
	return t, nil
}

// Release frees the scratch's tensors. A nil Scratch is fine.
func (s *Scratch) Release() {
	if s == nil {
		return
	}
	releaseTensors(append(s.old, s.cur))
	s.cur, s.old = nil, nil
}

// LinearScratch is the split-K scratch (in floats) a Linear with rows rows,
// N outputs and K inputs (and a bias or not) asks for: the largest of its
// forward's, input gradient's and weight gradient's (they run one after
// another), 0 without a split.
func LinearScratch(d *gpu.Device, rows, n, k int, bias bool) int {
	need := max(gemmKScratch(d, rows, n, k), gemmKScratch(d, rows, k, n))
	tile, err := gemmTileFor(d, n, k)
	if err != nil {
		return need
	}
	_, splits := splitRows(d, tile, rows, CeilDiv(n, tile.bm)*CeilDiv(k, tile.bn), n*k+n)
	if splits == 1 {
		return need
	}
	return max(need, splits*(n*k+n))
}

// gemmKScratch is the scratch (in floats) of newGemmK's (m, n) output
// reducing over kd: 0 without a split.
func gemmKScratch(d *gpu.Device, m, n, kd int) int {
	t, err := gemmTileFor(d, m, n)
	if err != nil {
		return 0
	}
	_, splits, err := splitK(d, t, kd, CeilDiv(m, t.bm)*CeilDiv(n, t.bn), m*n)
	if err != nil || splits == 1 {
		return 0
	}
	return splits * m * n
}
