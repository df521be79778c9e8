package nn

import (
	"fmt"

	"mom/gpu"
	"mom/shaders"
)

// GroupedLinearArgs are the tensors of a GroupedLinear op.
type GroupedLinearArgs struct {
	X, W, B, Y     *Tensor // X (rows, K) (leading dims flattened); W (G, N, K); B (G, N) or nil; Y (rows, N)
	DY, DX, DW, DB *Tensor
	Routing        *Routing
	AccumulateY    bool
	AccumulateDX   bool
	Scratch        *Scratch // shared split-K scratch (see LinearArgs); nil: the op's own
}

// GroupedLinear is the per-modality linear layer of Mixture-of-Mamba: row t
// of modality g = m(t) computes Y[t] = X[t]·W[g]ᵀ + B[g]; the backward is
// dX[t] = dY[t]·W[g], dW[g] += Σ_{t: m(t)=g} dY[t]ᵀX[t], dB[g] += Σ_{t: m(t)=g}
// dY[t]. Each pass is one dispatch over all modalities (plus, when it is split
// (the weight gradient over rows, the forward and input gradient over their
// reductions, as Linear's), a deterministic reduce): the kernels gather
// the rows of a group through the Routing's permutation, multiply by that
// group's weights and scatter back. A modality without rows in the batch
// leaves its DW and DB untouched. The tensor shapes are fixed at
// construction; the Routing's tables change per batch.
type GroupedLinear struct {
	gemmOp
	groups int
}

// NewGroupedLinear validates the shapes, compiles the pipelines and binds the
// tensors and the routing tables of a.
func NewGroupedLinear(d *gpu.Device, a GroupedLinearArgs) (*GroupedLinear, error) {
	const op = "GroupedLinear"
	if a.X == nil || a.W == nil || a.Y == nil || a.Routing == nil {
		return nil, fmt.Errorf("nn: %s: X, W, Y and Routing are required", op)
	}
	rt := a.Routing
	if len(a.W.Shape) != 3 {
		return nil, fmt.Errorf("nn: %s: W %s has shape %v, want (G, N, K)", op, a.W.Name, a.W.Shape)
	}
	groups, n, k := a.W.Shape[0], a.W.Shape[1], a.W.Shape[2]
	if groups != rt.groups {
		return nil, fmt.Errorf("nn: %s: W %s has shape %v for %d groups, but the routing has %d", op, a.W.Name, a.W.Shape, groups, rt.groups)
	}
	rows, err := leadingRows(op, a.X, k)
	if err != nil {
		return nil, err
	}
	if rows != rt.rows {
		return nil, fmt.Errorf("nn: %s: X %s has shape %v, %d rows, but the routing has %d", op, a.X.Name, a.X.Shape, rows, rt.rows)
	}
	yShape := append(append([]int(nil), a.X.Shape[:len(a.X.Shape)-1]...), n)
	if err := CheckShape(op, a.Y, yShape...); err != nil {
		return nil, err
	}
	if a.B != nil {
		if err := CheckShape(op, a.B, groups, n); err != nil {
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
		if err := CheckShape(op, a.DW, groups, n, k); err != nil {
			return nil, err
		}
		if a.DB != nil {
			if err := CheckShape(op, a.DB, groups, n); err != nil {
				return nil, err
			}
		}
	}
	if err := checkU32(rows*max(n, k), groups*n*k); err != nil {
		return nil, fmt.Errorf("nn: %s: %w", op, err)
	}
	gl := &GroupedLinear{gemmOp: gemmOp{rows: rows, n: n, k: k}, groups: groups}
	wrap := func(err error) error {
		gl.Release()
		return fmt.Errorf("nn: %s (rows %d, G %d, N %d, K %d): %w", op, rows, groups, n, k, err)
	}
	v4 := n%4 == 0 && k%4 == 0
	base := func(cs gpu.Constants) gpu.Constants {
		cs["ROWS"], cs["G"] = float64(rows), float64(groups)
		return cs
	}

	// Forward, NT per group: Y[t] = X[t]·W[g]ᵀ + B[g].
	bias := a.B
	if bias == nil {
		if bias, err = gl.noBias(d, a.W); err != nil { // bound, never read
			return nil, wrap(err)
		}
	}
	gl.fwd, gl.fwdReduce, err = gl.newGroupedGemm(d, a.Scratch, base, v4, rows, groups, n, k, false, a.B != nil, a.AccumulateY,
		rt, a.X, a.W, bias, a.Y)
	if err != nil {
		return nil, wrap(err)
	}
	gl.plan = "fwd " + gl.fwd.plan
	if !backward {
		return gl, nil
	}
	// dX, NN per group: dX[t] = dY[t]·W[g].
	if a.DX != nil {
		nb, err := gl.noBias(d, a.W)
		if err != nil {
			return nil, wrap(err)
		}
		gl.dx, gl.dxReduce, err = gl.newGroupedGemm(d, a.Scratch, base, v4, rows, groups, k, n, true, false, a.AccumulateDX,
			rt, a.DY, a.W, nb, a.DX)
		if err != nil {
			return nil, wrap(err)
		}
		gl.plan += "; dx " + gl.dx.plan
	}
	// dW, TN per group over the group's rows, cut into slots of chunk rows.
	tile, err := gemmTileFor(d, n, k)
	if err != nil {
		return nil, wrap(err)
	}
	tiles := CeilDiv(n, tile.bm) * CeilDiv(k, tile.bn)
	chunk, splits := splitRows(d, tile, rows, tiles, n*k+n)
	slots := CeilDiv(rows, chunk) + groups - 1
	direct := splits == 1
	if direct {
		chunk = rows
	}
	kern, cs := tile.pick(groupedTNKernels, v4)
	cs = base(cs)
	cs["M"], cs["N"], cs["ACCUM"], cs["CHUNK"] = float64(n), float64(k), b2f(direct), float64(chunk)
	dwOut := a.DW
	var scratch *Tensor
	if !direct {
		if scratch, err = gl.scratch(d, a.Scratch, slots*(n*k+n)); err != nil {
			return nil, wrap(err)
		}
		dwOut = scratch
	}
	if err := checkU32(slots * (n*k + n)); err != nil {
		return nil, wrap(err)
	}
	g, err := Bind(d, kern, cs, rt.offsets, rt.perm, a.DY, a.X, dwOut)
	if err != nil {
		return nil, wrap(err)
	}
	x, y := Grid(d, tiles)
	gl.dw = &gemmCall{g: g, x: x, y: y, z: slots, plan: kern.Entry + " " + tile.String()}
	gl.plan += "; dw " + gl.dw.plan
	if !direct {
		gl.plan += fmt.Sprintf(", split over rows in slots of %d (at most %d)", chunk, slots)
	}
	if a.DB != nil {
		dbOut := a.DB
		if !direct {
			dbOut = scratch
		}
		cs := gpu.Constants{"ROWS": float64(rows), "G": float64(groups), "N": float64(n),
			"ACCUM": b2f(direct), "CHUNK": float64(chunk), "C_OFF": float64(slots * n * k)}
		g, err := Bind(d, shaders.GroupedColSum, cs, rt.offsets, rt.perm, a.DY, dbOut)
		if err != nil {
			return nil, wrap(err)
		}
		gl.db = &gemmCall{g: g, x: CeilDiv(n, 256), y: 1, z: slots}
	}
	if !direct {
		red := func(dst *Tensor, off, n int) error {
			g, err := Bind(d, shaders.GroupedReduce, gpu.Constants{"G": float64(groups), "LEN": float64(n),
				"CHUNK": float64(chunk), "C_OFF": float64(off)}, rt.offsets, scratch, dst)
			if err != nil {
				return err
			}
			x, y := Grid(d, CeilDiv(groups*n, 256))
			gl.reduce = append(gl.reduce, &gemmCall{g: g, x: x, y: y, z: 1})
			return nil
		}
		if err := red(a.DW, 0, n*k); err != nil {
			return nil, wrap(err)
		}
		if a.DB != nil {
			if err := red(a.DB, slots*n*k, n); err != nil {
				return nil, wrap(err)
			}
		}
	}
	return gl, nil
}

// GroupedLinearScratch is the split-K scratch (in floats) a GroupedLinear
// of rows rows over groups modalities, N outputs and K inputs asks for: the
// largest of its forward's, input gradient's and weight gradient's, 0
// without a split.
func GroupedLinearScratch(d *gpu.Device, rows, groups, n, k int) int {
	need := max(groupedKScratch(d, rows, groups, n, k), groupedKScratch(d, rows, groups, k, n))
	tile, err := gemmTileFor(d, n, k)
	if err != nil {
		return need
	}
	chunk, splits := splitRows(d, tile, rows, CeilDiv(n, tile.bm)*CeilDiv(k, tile.bn), n*k+n)
	if splits == 1 {
		return need
	}
	return max(need, (CeilDiv(rows, chunk)+groups-1)*(n*k+n))
}

// groupedPlan is the tile and split-K of a grouped GEMM with a (rows,
// nOut) output reducing over kd.
func groupedPlan(d *gpu.Device, rows, groups, nOut, kd int) (t gemmTile, chunk, splits int, err error) {
	if t, err = gemmTileFor(d, rows/groups, nOut); err != nil {
		return t, 0, 0, err
	}
	chunk, splits, err = splitK(d, t, kd, CeilDiv(rows, t.bm)*CeilDiv(nOut, t.bn), rows*nOut)
	return t, chunk, splits, err
}

// groupedKScratch is the scratch (in floats) of a grouped GEMM's split-K:
// 0 without a split.
func groupedKScratch(d *gpu.Device, rows, groups, nOut, kd int) int {
	_, _, splits, err := groupedPlan(d, rows, groups, nOut, kd)
	if err != nil || splits == 1 {
		return 0
	}
	return splits * rows * nOut
}

// newGroupedGemm prepares the gathered GEMM C[t] (=|+=) A[t]·B[g] (+ bias[g])
// with C (rows, nOut), reducing over kd: NT (B (G, nOut, kd)) or, with bt,
// NN (B (G, kd, nOut)). Split over kd when splitK says so: the chunks write
// their partials (rows, nOut) into the scratch (shared, else the op's own),
// the first with the bias, and red sums them in order into C (every row
// belongs to one group, so the sum is plain gemm_reduce's).
func (l *gemmOp) newGroupedGemm(d *gpu.Device, shared *Scratch, base func(gpu.Constants) gpu.Constants, v4 bool, rows, groups, nOut, kd int,
	bt, hasBias, accum bool, rt *Routing, a, b, bias, c *Tensor) (call, red *gemmCall, err error) {
	t, chunk, splits, err := groupedPlan(d, rows, groups, nOut, kd)
	if err != nil {
		return nil, nil, err
	}
	out := c
	if splits > 1 {
		if err := checkU32(splits * rows * nOut); err != nil {
			return nil, nil, err
		}
		if out, err = l.scratch(d, shared, splits*rows*nOut); err != nil {
			return nil, nil, err
		}
	} else {
		chunk = max(kd, 1)
	}
	k, cs := t.pick(groupedGemmKernels, v4)
	cs = base(cs)
	cs["N"], cs["KD"], cs["CHUNK"] = float64(nOut), float64(kd), float64(chunk)
	cs["B_T"], cs["HAS_BIAS"], cs["ACCUM"] = b2f(bt), b2f(hasBias), b2f(accum && splits == 1)
	g, err := Bind(d, k, cs, rt.offsets, rt.perm, a, b, bias, out)
	if err != nil {
		return nil, nil, err
	}
	slots := CeilDiv(rows, t.bm) + groups - 1
	x, y := Grid(d, slots*CeilDiv(nOut, t.bn))
	call = &gemmCall{g: g, x: x, y: y, z: splits, plan: k.Entry + " " + t.String()}
	if splits == 1 {
		return call, nil, nil
	}
	if red, err = newReduce(d, out, c, 0, rows*nOut, splits, !accum); err != nil {
		g.Release()
		return nil, nil, err
	}
	call.plan += fmt.Sprintf(", split-K in %d chunks of %d (%d workgroups)", splits, chunk, call.x*call.y*call.z)
	return call, red, nil
}
