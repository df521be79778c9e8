package nn

import (
	"fmt"

	"mom/gpu"
	"mom/shaders"
)

// RoutedLinearArgs are the tensors of a RoutedLinear.
type RoutedLinearArgs struct {
	// X (S, LDX): row s's input is its columns [XCol, XCol+K).
	// W (G, N, K) with Group, or (N, K) (or (1, N, K)) without.
	// B (G, N) or (N), or nil.
	// Group (S) u32: the weight set of each row; nil uses W's only set
	// (the dense path: no routing).
	// Y (S, LDY): row s's output goes to its columns [YCol, YCol+N).
	X, W, B, Group, Y *Tensor
	XCol, YCol        int
	// Accumulate computes Y += X·Wᵀ (+B) instead of Y =.
	Accumulate bool
	// Lanes is the threads per output row (a power of two up to 32); 0
	// picks the device's layout (see gemvTiling). Tests use it to reach
	// both layouts on any device.
	Lanes int
}

// RoutedLinear is the linear layer of the recurrent step mode: a few rows
// (one per stream), row s computing Y[s] = X[s]·W[g]ᵀ + B[g] with its own
// weight set g = Group[s] (a per-modality projection, routed per stream
// by its current token), all weight sets in one dispatch; without Group it
// is a plain skinny GEMM. Each weight set that no row uses is never read.
// See shaders/gemv.wgsl.
type RoutedLinear struct {
	rows, n, k int
	g          *gpu.BindGroup
	x, y       int
	owned      []*Tensor
}

// gemvTiling picks gemv.wgsl's lanes per output row (TK) and output rows
// per workgroup (TR): on a CPU rasteriser (lavapipe) a thread per output
// row with no reduction (measured about 2x faster there than 8 or 32
// lanes, whose reductions need barriers); on a GPU 32 lanes per row, so that
// one stream's projection still spreads over many threads.
func gemvTiling(d *gpu.Device) (tk, tr int) {
	if d.Info.Type == "CPU" {
		return 1, 64
	}
	return 32, 8
}

// NewRoutedLinear validates the shapes and binds the kernel.
func NewRoutedLinear(d *gpu.Device, a RoutedLinearArgs) (*RoutedLinear, error) {
	const op = "RoutedLinear"
	if a.X == nil || a.W == nil || a.Y == nil {
		return nil, fmt.Errorf("nn: %s: X, W and Y are required", op)
	}
	if len(a.X.Shape) != 2 || len(a.Y.Shape) != 2 {
		return nil, fmt.Errorf("nn: %s: X %v and Y %v must be (S, columns)", op, a.X.Shape, a.Y.Shape)
	}
	var groups, n, k int
	switch {
	case len(a.W.Shape) == 3:
		groups, n, k = a.W.Shape[0], a.W.Shape[1], a.W.Shape[2]
	case len(a.W.Shape) == 2 && a.Group == nil:
		groups, n, k = 1, a.W.Shape[0], a.W.Shape[1]
	default:
		return nil, fmt.Errorf("nn: %s: W %s has shape %v, want (G, N, K) (or (N, K) without Group)", op, a.W.Name, a.W.Shape)
	}
	if a.Group == nil && groups != 1 {
		return nil, fmt.Errorf("nn: %s: W %s has %d weight sets but no Group routes the rows", op, a.W.Name, groups)
	}
	s, ldx, ldy := a.X.Shape[0], a.X.Shape[1], a.Y.Shape[1]
	if a.Y.Shape[0] != s {
		return nil, fmt.Errorf("nn: %s: X has %d rows, Y %d", op, s, a.Y.Shape[0])
	}
	if a.XCol < 0 || a.XCol+k > ldx {
		return nil, fmt.Errorf("nn: %s: input columns [%d, %d) do not fit X %s's %d", op, a.XCol, a.XCol+k, a.X.Name, ldx)
	}
	if a.YCol < 0 || a.YCol+n > ldy {
		return nil, fmt.Errorf("nn: %s: output columns [%d, %d) do not fit Y %s's %d", op, a.YCol, a.YCol+n, a.Y.Name, ldy)
	}
	if a.Group != nil {
		if err := CheckShape(op, a.Group, s); err != nil {
			return nil, err
		}
	}
	if a.B != nil && a.B.Len() != groups*n {
		return nil, fmt.Errorf("nn: %s: bias %s has shape %v, want (%d, %d)", op, a.B.Name, a.B.Shape, groups, n)
	}
	if err := scanCheckAliases(op, []*Tensor{a.X, a.W, a.B, a.Group}, []*Tensor{a.Y}); err != nil {
		return nil, err
	}
	if err := checkU32(s*max(ldx, ldy), groups*n*k); err != nil {
		return nil, fmt.Errorf("nn: %s: %w", op, err)
	}
	l := &RoutedLinear{rows: s, n: n, k: k}
	wrap := func(err error) error {
		l.Release()
		return fmt.Errorf("nn: %s (S=%d G=%d N=%d K=%d): %w", op, s, groups, n, k, err)
	}
	tk, tr := gemvTiling(d)
	if a.Lanes != 0 {
		if a.Lanes < 1 || a.Lanes > 32 || a.Lanes&(a.Lanes-1) != 0 {
			return nil, fmt.Errorf("nn: %s: Lanes %d is not a power of two up to 32", op, a.Lanes)
		}
		tk, tr = a.Lanes, max(256/a.Lanes, 8)
		if tk == 32 {
			tr = 8
		}
	}
	ntile := CeilDiv(n, tr)
	dims, err := uniformDims(d, "gemv.dims", shaders.GemvDimsWords, s, n, k, groups, ldx, a.XCol, ldy, a.YCol, ntile)
	if err != nil {
		return nil, wrap(err)
	}
	l.owned = append(l.owned, dims)
	bias, grp := a.B, a.Group
	if bias == nil {
		bias = a.W // bound, never read
	}
	if grp == nil {
		grp = a.W // bound, never read
	}
	c := gpu.Constants{"ROUTED": scanBool(a.Group != nil), "ACCUM": scanBool(a.Accumulate), "HAS_BIAS": scanBool(a.B != nil),
		"TK": float64(tk), "TR": float64(tr)}
	if l.g, err = Bind(d, shaders.Gemv, c, a.X, a.W, bias, grp, a.Y, dims); err != nil {
		return nil, wrap(err)
	}
	l.x, l.y = Grid(d, ntile*groups)
	return l, nil
}

// Record records the projection.
func (l *RoutedLinear) Record(r *gpu.Recorder) { r.Dispatch(l.g, l.x, l.y, 1) }

// FLOPs is 2·S·N·K: every row uses one weight set.
func (l *RoutedLinear) FLOPs() float64 { return 2 * float64(l.rows) * float64(l.n) * float64(l.k) }

// Release frees the op's own buffer and bind group.
func (l *RoutedLinear) Release() {
	l.g.Release()
	releaseTensors(l.owned)
	l.owned = nil
}
