package nnbench

import (
	"fmt"

	"mom/gpu"
	"mom/nn"
)

// alloc makes a case's tensors and frees them all in its cleanup.
type alloc struct {
	d   *gpu.Device
	all []*nn.Tensor
	err error
}

// zeros makes a tensor (WebGPU buffers start zeroed).
func (a *alloc) zeros(name string, shape ...int) *nn.Tensor {
	if a.err != nil {
		return nil
	}
	t, err := nn.NewTensor(a.d, name, shape...)
	if err != nil {
		a.err = err
		return nil
	}
	a.all = append(a.all, t)
	return t
}

// pattern makes a tensor of values in [-1, 1) (a fixed pattern: contents do
// not matter to speed, but they must be finite and not all zero).
func (a *alloc) pattern(name string, shape ...int) *nn.Tensor {
	return a.patternOf(nn.F32, name, shape...)
}

// patternOf is pattern with the element type dt.
func (a *alloc) patternOf(dt nn.DType, name string, shape ...int) *nn.Tensor {
	if a.err != nil {
		return nil
	}
	t, err := nn.NewTensorOf(a.d, gpu.MemScratch, dt, name, shape...)
	if err != nil {
		a.err = err
		return nil
	}
	a.all = append(a.all, t)
	v := make([]float32, t.Len())
	s := uint32(12345)
	for i := range v {
		s = s*1664525 + 1013904223
		v[i] = float32(s>>8)/float32(1<<23) - 1
	}
	if err := t.Upload(v); err != nil {
		a.err = err
	}
	return t
}

func (a *alloc) release() {
	for _, t := range a.all {
		t.Release()
	}
	a.all = nil
}

// prepare finishes a case's setup: on an error everything made is freed.
func (a *alloc) prepare(op interface{ Release() }, err error, record func(*gpu.Recorder), flops, bytes float64) (*Prepared, error) {
	if err == nil {
		err = a.err
	}
	if err != nil {
		// (a constructor that fails has freed what it made)
		a.release()
		return nil, err
	}
	return &Prepared{Record: record, FLOPs: flops, Bytes: bytes, Cleanup: func() {
		if op != nil {
			op.Release()
		}
		a.release()
	}}, nil
}

func f3(a, b, c int) float64 { return float64(a) * float64(b) * float64(c) }

// ---- GEMM ----

func gemmCases(size Size) []Case {
	return append(gemmCasesOf(size, nn.F32), gemmCasesOf(size, nn.F16)...)
}

// gemmCasesOf are the GEMM cases with inputs of type dt (float16: the
// mixed-precision GEMMs, float32 accumulation and output; named *_f16).
func gemmCasesOf(size Size, dt nn.DType) []Case {
	cube, rows, n, k := 1024, 1024, 768, 256
	if size == Large {
		cube, rows, n, k = 4096, 8192, 3072, 768
	}
	sfx, in := "", int64(4)
	if dt == nn.F16 {
		sfx, in = "_f16", 2
	}
	elems := func(a, b, c int) float64 { return float64(in) * f3(a, b, c) }
	return []Case{
		{
			// Y = X·Wᵀ, the forward of a projection.
			Name: fmt.Sprintf("gemm_nt%s/m=%d,n=%d,k=%d", sfx, cube, cube, cube),
			Setup: func(d *gpu.Device) (*Prepared, error) {
				a := &alloc{d: d}
				x, w, y := a.patternOf(dt, "x", cube, cube), a.patternOf(dt, "w", cube, cube), a.zeros("y", cube, cube)
				if a.err != nil {
					return a.prepare(nil, nil, nil, 0, 0)
				}
				l, err := nn.NewLinear(d, nn.LinearArgs{X: x, W: w, Y: y})
				return a.prepare(l, err, recordOf(l, err, (*nn.Linear).RecordForward), 2*f3(cube, cube, cube),
					elems(2*cube, cube, 1)+4*f3(cube, cube, 1))
			},
		},
		{
			// The plain forward GEMM of the grouped benchmarks' total size.
			Name: fmt.Sprintf("gemm_nt%s/m=%d,n=%d,k=%d", sfx, rows, n, k),
			Setup: func(d *gpu.Device) (*Prepared, error) {
				a := &alloc{d: d}
				x, w, y := a.patternOf(dt, "x", rows, k), a.patternOf(dt, "w", n, k), a.zeros("y", rows, n)
				if a.err != nil {
					return a.prepare(nil, nil, nil, 0, 0)
				}
				l, err := nn.NewLinear(d, nn.LinearArgs{X: x, W: w, Y: y})
				return a.prepare(l, err, recordOf(l, err, (*nn.Linear).RecordForward), 2*f3(rows, n, k),
					elems(rows, k, 1)+elems(n, k, 1)+4*f3(rows, n, 1))
			},
		},
		{
			// dX = dY·W at a model-like shape.
			Name: fmt.Sprintf("gemm_nn%s/rows=%d,n=%d,k=%d", sfx, rows, n, k),
			Setup: func(d *gpu.Device) (*Prepared, error) {
				a := &alloc{d: d}
				dy, w, dx := a.patternOf(dt, "dy", rows, n), a.patternOf(dt, "w", n, k), a.zeros("dx", rows, k)
				if a.err != nil {
					return a.prepare(nil, nil, nil, 0, 0)
				}
				g, err := nn.NewGemm(d, nn.GemmArgs{A: dy, B: w, C: dx, M: rows, N: k, K: n, BT: true})
				return a.prepare(g, err, recordOf(g, err, (*nn.Gemm).Record), 2*f3(rows, n, k),
					elems(rows, n, 1)+elems(n, k, 1)+4*f3(rows, k, 1))
			},
		},
		{
			// dW += dYᵀ·X (with its split-K reduce when chosen).
			Name: fmt.Sprintf("gemm_tn%s/rows=%d,n=%d,k=%d", sfx, rows, n, k),
			Setup: func(d *gpu.Device) (*Prepared, error) {
				a := &alloc{d: d}
				x, w, y := a.patternOf(dt, "x", rows, k), a.patternOf(dt, "w", n, k), a.zeros("y", rows, n)
				dy, dw := a.patternOf(dt, "dy", rows, n), a.zeros("dw", n, k)
				if a.err != nil {
					return a.prepare(nil, nil, nil, 0, 0)
				}
				l, err := nn.NewLinear(d, nn.LinearArgs{X: x, W: w, Y: y, DY: dy, DW: dw})
				return a.prepare(l, err, recordOf(l, err, (*nn.Linear).RecordBackward), 2*f3(rows, n, k),
					elems(rows, n, 1)+elems(rows, k, 1)+8*f3(n, k, 1))
			},
		},
	}
}

// recordOf returns op's record method, or nil when the op failed to build.
func recordOf[T any](op *T, err error, m func(*T, *gpu.Recorder)) func(*gpu.Recorder) {
	if err != nil || op == nil {
		return nil
	}
	return func(r *gpu.Recorder) { m(op, r) }
}

// groupedCases: 3 modalities 50/30/20, assigned per row at random (the
// worst case for the gather); compare with gemm_nt and gemm_tn at the same
// rows, n, k.
func groupedCases(size Size) []Case {
	return append(groupedCasesOf(size, nn.F32), groupedCasesOf(size, nn.F16)...)
}

func groupedCasesOf(size Size, dt nn.DType) []Case {
	sfx, in := "", 4.0
	if dt == nn.F16 {
		sfx, in = "_f16", 2
	}
	rows, n, k := 1024, 768, 256
	if size == Large {
		rows, n, k = 8192, 3072, 768
	}
	const groups = 3
	modality := func() []uint32 {
		m := make([]uint32, rows)
		s := uint32(7)
		for i := range m {
			s = s*1664525 + 1013904223
			switch u := s >> 24; {
			case u < 128:
				m[i] = 0
			case u < 205:
				m[i] = 1
			default:
				m[i] = 2
			}
		}
		return m
	}
	setup := func(d *gpu.Device, backward bool) (*Prepared, error) {
		a := &alloc{d: d}
		x, w, y := a.patternOf(dt, "x", rows, k), a.patternOf(dt, "w", groups, n, k), a.zeros("y", rows, n)
		dy, dw := a.patternOf(dt, "dy", rows, n), a.zeros("dw", groups, n, k)
		if a.err != nil {
			return a.prepare(nil, nil, nil, 0, 0)
		}
		rt, err := nn.NewRouting(d, rows, groups)
		if err != nil {
			return a.prepare(nil, err, nil, 0, 0)
		}
		if err := rt.Update(modality()); err != nil {
			rt.Release()
			return a.prepare(nil, err, nil, 0, 0)
		}
		args := nn.GroupedLinearArgs{X: x, W: w, Y: y, Routing: rt}
		if backward {
			args.DY, args.DW = dy, dw
		}
		gl, err := nn.NewGroupedLinear(d, args)
		if err != nil {
			rt.Release()
			return a.prepare(nil, err, nil, 0, 0)
		}
		p, err := a.prepare(gl, nil, gl.RecordForward, 2*f3(rows, n, k), in*(f3(rows, k, 1)+f3(groups*n, k, 1))+4*f3(rows, n, 1))
		if err != nil {
			return nil, err
		}
		if backward {
			p.Record = gl.RecordBackward
			p.Bytes = in*(f3(rows, k, 1)+f3(rows, n, 1)) + 8*f3(groups*n, k, 1)
		}
		cleanup := p.Cleanup
		p.Cleanup = func() { cleanup(); rt.Release() }
		return p, nil
	}
	return []Case{
		{Name: fmt.Sprintf("grouped_nt%s/rows=%d,n=%d,k=%d,g=3(50/30/20)", sfx, rows, n, k),
			Setup: func(d *gpu.Device) (*Prepared, error) { return setup(d, false) }},
		{Name: fmt.Sprintf("grouped_tn%s/rows=%d,n=%d,k=%d,g=3(50/30/20)", sfx, rows, n, k),
			Setup: func(d *gpu.Device) (*Prepared, error) { return setup(d, true) }},
	}
}

// ---- selective scan and conv ----

// Scan FLOPs, counted for the sequential algorithm (the chunked scan's
// per-thread composition and row scans are extra work, not counted), per
// step t and channel e:
//
//	forward:  8 per state (dt*A, exp, dt*B*u, a*h+x, C*h accumulated)
//	          + 12 (softplus 5, D*u and the add 2, the SiLU gate 5);
//	backward: 29 per state (recompute a, x, h: 6; C*h: 2; g*C, dh, s: 3;
//	          d dt: 6; du: 3; dA: 4; dB, dC with their sums over e: 5)
//	          + 25 (softplus, sigmoid, the gate and its derivative, du, dz,
//	          ddelta, dD).
//
// Compulsory bytes: every input read once and every output written once
// (dA_log, dD read and written); the chunk-start states and partial sums
// of the workspace are not counted.
func scanCase(b, l, ed, n int, backward bool) Case {
	kind := "fwd"
	if backward {
		kind = "bwd"
	}
	return Case{
		Name: fmt.Sprintf("scan_%s/b%d_l%d_ed%d_n%d", kind, b, l, ed, n),
		Setup: func(d *gpu.Device) (*Prepared, error) {
			a := &alloc{d: d}
			args := nn.ScanArgs{Batch: b, Len: l,
				U: a.zeros("u", b, l, ed), Delta: a.zeros("delta", b, l, ed), ALog: a.zeros("a_log", ed, n),
				Bm: a.zeros("B", b, l, n), Cm: a.zeros("C", b, l, n), D: a.zeros("D", ed), Z: a.zeros("z", b, l, ed),
				Y: a.zeros("y", b, l, ed)}
			if backward {
				args.DY, args.DU, args.DDelta, args.DZ = a.zeros("dy", b, l, ed), a.zeros("du", b, l, ed), a.zeros("ddelta", b, l, ed), a.zeros("dz", b, l, ed)
				args.DALog, args.DB, args.DC, args.DD = a.zeros("da_log", ed, n), a.zeros("dB", b, l, n), a.zeros("dC", b, l, n), a.zeros("dD", ed)
			}
			if a.err != nil {
				return a.prepare(nil, nil, nil, 0, 0)
			}
			s, err := nn.NewSelectiveScan(d, args)
			te, tn, en := float64(b*l*ed), float64(b*l*n), float64(ed*n)
			if backward {
				return a.prepare(s, err, recordOf(s, err, (*nn.SelectiveScan).RecordBackward), te*float64(29*n+25),
					4*(7*te+4*tn+3*en+3*float64(ed)))
			}
			return a.prepare(s, err, recordOf(s, err, (*nn.SelectiveScan).RecordForward), te*float64(8*n+12),
				4*(4*te+2*tn+en+float64(ed)))
		},
	}
}

func scanCases(size Size) []Case {
	b, l, ed, n := 2, 512, 256, 16
	if size == Large {
		b, l, ed, n = 8, 2048, 1536, 16
	}
	return []Case{scanCase(b, l, ed, n, false), scanCase(b, l, ed, n, true)}
}

func convCase(b, l, ch, k int, backward bool, dt nn.DType) Case {
	kind := "fwd"
	if backward {
		kind = "bwd"
	}
	sfx, in := "", 4.0
	if dt == nn.F16 {
		sfx, in = "_f16", 2 // x and w in float16 (mixed precision)
	}
	return Case{
		Name: fmt.Sprintf("conv1d_%s%s/b%d_l%d_c%d_k%d", kind, sfx, b, l, ch, k),
		Setup: func(d *gpu.Device) (*Prepared, error) {
			a := &alloc{d: d}
			args := nn.ConvArgs{Batch: b, Len: l, SiLU: true,
				X: a.patternOf(dt, "x", b, l, ch), W: a.patternOf(dt, "w", ch, k), Bias: a.zeros("bias", ch), Y: a.zeros("y", b, l, ch)}
			if backward {
				args.DY, args.DX, args.DW, args.DBias = a.zeros("dy", b, l, ch), a.zeros("dx", b, l, ch), a.zeros("dw", ch, k), a.zeros("dbias", ch)
			}
			if a.err != nil {
				return a.prepare(nil, nil, nil, 0, 0)
			}
			cv, err := nn.NewCausalConv1d(d, args)
			n, w := float64(b*l*ch), float64(ch*(k+1))
			if backward {
				return a.prepare(cv, err, recordOf(cv, err, (*nn.CausalConv1d).RecordBackward), n*float64(6*k+7), (in+8)*n+(in+8)*w)
			}
			return a.prepare(cv, err, recordOf(cv, err, (*nn.CausalConv1d).RecordForward), n*float64(2*k+5), (in+4)*n+in*w)
		},
	}
}

func convCases(size Size) []Case {
	b, l, ch := 2, 512, 256
	if size == Large {
		b, l, ch = 8, 2048, 1536
	}
	return []Case{convCase(b, l, ch, 4, false, nn.F32), convCase(b, l, ch, 4, true, nn.F32),
		convCase(b, l, ch, 4, false, nn.F16), convCase(b, l, ch, 4, true, nn.F16)}
}

// ---- norms, losses, embedding ----

func rmsnormCases(size Size) []Case {
	t, dm := 2048, 1024
	if size == Large {
		t, dm = 16384, 2048
	}
	setup := func(d *gpu.Device, back bool) (*Prepared, error) {
		a := &alloc{d: d}
		args := nn.RMSNormArgs{X: a.zeros("x", t, dm), W: a.zeros("w", dm), Y: a.zeros("y", t, dm), Eps: 1e-5}
		if back {
			args.DY, args.DX, args.DW = a.zeros("dy", t, dm), a.zeros("dx", t, dm), a.zeros("dw", dm)
		}
		if a.err != nil {
			return a.prepare(nil, nil, nil, 0, 0)
		}
		n, err := nn.NewRMSNorm(d, args)
		if back {
			// read x, dy, rstd, w; write dx; dw read and written
			return a.prepare(n, err, recordOf(n, err, (*nn.RMSNorm).RecordBackward), float64(9*t*dm), float64(12*t*dm+4*t+12*dm))
		}
		return a.prepare(n, err, recordOf(n, err, (*nn.RMSNorm).RecordForward), float64(4*t*dm), float64(8*t*dm+4*dm+4*t))
	}
	return []Case{
		{Name: fmt.Sprintf("rmsnorm_fwd/t=%d/d=%d", t, dm), Setup: func(d *gpu.Device) (*Prepared, error) { return setup(d, false) }},
		{Name: fmt.Sprintf("rmsnorm_bwd/t=%d/d=%d", t, dm), Setup: func(d *gpu.Device) (*Prepared, error) { return setup(d, true) }},
	}
}

func xentCases(size Size) []Case {
	t, v := 256, 8192
	if size == Large {
		t, v = 4096, 65536
	}
	return []Case{{
		Name: fmt.Sprintf("xent/t=%d/v=%d", t, v),
		Setup: func(d *gpu.Device) (*Prepared, error) {
			a := &alloc{d: d}
			logits, dlogits := a.zeros("logits", t, v), a.zeros("dlogits", t, v)
			if a.err != nil {
				return a.prepare(nil, nil, nil, 0, 0)
			}
			c, err := nn.NewCrossEntropy(d, nn.CrossEntropyArgs{Logits: logits, DLogits: dlogits, Groups: 3})
			if err == nil {
				tg, m := make([]uint32, t), make([]uint32, t)
				for i := range tg {
					tg[i], m[i] = uint32(i*7919%v), uint32(i%3)
				}
				err = c.Update(tg, m, []float32{1, 1, 1})
			}
			// read the logits twice (the second time is often a cache hit), write the gradient
			return a.prepare(c, err, recordOf(c, err, (*nn.CrossEntropy).Record), float64(6*t*v), float64(8*t*v))
		},
	}}
}

func mseCases(size Size) []Case {
	t, p := 4096, 48
	if size == Large {
		t, p = 16384, 768
	}
	return []Case{{
		Name: fmt.Sprintf("mse/t=%d/p=%d", t, p),
		Setup: func(d *gpu.Device) (*Prepared, error) {
			a := &alloc{d: d}
			pred, target, dpred := a.zeros("pred", t, p), a.zeros("target", t, p), a.zeros("dpred", t, p)
			if a.err != nil {
				return a.prepare(nil, nil, nil, 0, 0)
			}
			m, err := nn.NewMSE(d, nn.MSEArgs{Pred: pred, Target: target, DPred: dpred, Groups: 2})
			if err == nil {
				mod := make([]uint32, t)
				for i := range mod {
					mod[i] = uint32(i % 2)
				}
				err = m.Update(mod, []float32{0, 1})
			}
			return a.prepare(m, err, recordOf(m, err, (*nn.MSE).Record), float64(5*t*p), float64(12*t*p))
		},
	}}
}

func embeddingCases(size Size) []Case {
	t, v, dm := 4096, 8192, 512
	if size == Large {
		t, v, dm = 16384, 65536, 2048
	}
	// Zipf-like ids: a few very frequent tokens, a long tail.
	ids := make([]uint32, t)
	x := uint64(1)
	used := map[uint32]bool{}
	for i := range ids {
		x = x*6364136223846793005 + 1442695040888963407
		u := float64(x>>11) / (1 << 53)
		ids[i] = uint32(float64(v) * u * u * u)
		used[ids[i]] = true
	}
	setup := func(d *gpu.Device, back bool) (*Prepared, error) {
		a := &alloc{d: d}
		args := nn.EmbeddingArgs{E: a.zeros("E", v, dm), Out: a.zeros("out", t, dm), DOut: a.zeros("dout", t, dm), DE: a.zeros("dE", v, dm)}
		if a.err != nil {
			return a.prepare(nil, nil, nil, 0, 0)
		}
		e, err := nn.NewEmbedding(d, args)
		if err == nil {
			err = e.Update(ids)
		}
		if back {
			// read every dout row, read and write each used dE row
			return a.prepare(e, err, recordOf(e, err, (*nn.Embedding).RecordBackward), float64(t*dm), float64(4*t*dm+8*len(used)*dm+4*(3*t+2)))
		}
		return a.prepare(e, err, recordOf(e, err, (*nn.Embedding).RecordForward), 0, float64(8*t*dm+4*t))
	}
	return []Case{
		{Name: fmt.Sprintf("embedding_fwd/t=%d/v=%d/d=%d", t, v, dm), Setup: func(d *gpu.Device) (*Prepared, error) { return setup(d, false) }},
		{Name: fmt.Sprintf("embedding_bwd/t=%d/v=%d/d=%d", t, v, dm), Setup: func(d *gpu.Device) (*Prepared, error) { return setup(d, true) }},
	}
}

// ---- optimizer and elementwise ----

func adamwCases(size Size) []Case {
	// 4M (small) or 100M (large) parameters in a model-like list.
	sizes := []int{1 << 21, 1 << 20, 1 << 19, 1 << 19, 1024, 1023}
	if size == Large {
		sizes = []int{50 << 20, 25 << 20, 20 << 20, 4857600, 2048, 2047}
	}
	total := 0
	for _, s := range sizes {
		total += s
	}
	return []Case{{
		Name: fmt.Sprintf("adamw/tensors=%d/n=%d", len(sizes), total),
		Setup: func(d *gpu.Device) (*Prepared, error) {
			a := &alloc{d: d}
			args := nn.AdamWArgs{Beta1: 0.9, Beta2: 0.95, Eps: 1e-8, WeightDecay: 0.1}
			for i, s := range sizes {
				args.Params = append(args.Params, a.zeros(fmt.Sprintf("p%d", i), s))
				args.Grads = append(args.Grads, a.zeros("g", s))
				args.M = append(args.M, a.zeros("m", s))
				args.V = append(args.V, a.zeros("v", s))
				args.Decay = append(args.Decay, i%2 == 0)
			}
			if a.err != nil {
				return a.prepare(nil, nil, nil, 0, 0)
			}
			o, err := nn.NewAdamW(d, args)
			if err == nil {
				err = o.SetStep(1e-3, 10)
			}
			// read p, g, m, v; write p, m, v
			return a.prepare(o, err, recordOf(o, err, (*nn.AdamW).Record), float64(16*total), float64(28*total))
		},
	}}
}

func gradnormCases(size Size) []Case {
	// A model's gradient list: a few big matrices and many small vectors.
	sizes := []int{1 << 20, 3 << 19, 1 << 18, 4097, 1024, 1024, 256, 255}
	if size == Large {
		sizes = []int{1 << 25, 3 << 24, 1 << 23, 1 << 23, 4097 * 16, 2048, 2048, 1023}
	}
	total := 0
	for _, s := range sizes {
		total += s
	}
	return []Case{{
		Name: fmt.Sprintf("gradnorm/tensors=%d/n=%d", len(sizes), total),
		Setup: func(d *gpu.Device) (*Prepared, error) {
			a := &alloc{d: d}
			var ts []*nn.Tensor
			for i, s := range sizes {
				ts = append(ts, a.zeros(fmt.Sprintf("g%d", i), s))
			}
			if a.err != nil {
				return a.prepare(nil, nil, nil, 0, 0)
			}
			op, err := nn.NewGradNorm(d, ts, 1)
			return a.prepare(op, err, recordOf(op, err, (*nn.GradNorm).Record), float64(2*total), float64(4*total))
		},
	}}
}

func elementwiseCases(size Size) []Case {
	n := 1 << 22
	if size == Large {
		n = 1 << 28
	}
	return []Case{{
		Name: fmt.Sprintf("add/n=%d", n),
		Setup: func(d *gpu.Device) (*Prepared, error) {
			a := &alloc{d: d}
			x, y, out := a.zeros("a", n), a.zeros("b", n), a.zeros("y", n)
			if a.err != nil {
				return a.prepare(nil, nil, nil, 0, 0)
			}
			op, err := nn.NewAdd(d, out, x, y)
			return a.prepare(op, err, recordOf(op, err, (*nn.Elementwise).Record), float64(n), float64(12*n))
		},
	}, {
		// The float16 copy of mixed precision, times the loss scale, with
		// the overflow flag (needs no shader-f16).
		Name: fmt.Sprintf("to_half/n=%d", n),
		Setup: func(d *gpu.Device) (*Prepared, error) {
			a := &alloc{d: d}
			x, ls := a.pattern("x", n), a.pattern("loss scale", 8)
			if a.err != nil {
				return a.prepare(nil, nil, nil, 0, 0)
			}
			y, err := nn.NewTensorOf(d, gpu.MemScratch, nn.F16, "y", n)
			if err != nil {
				return a.prepare(nil, err, nil, 0, 0)
			}
			a.all = append(a.all, y)
			flag := a.zeros("flag", 1)
			op, err := nn.NewCast(d, nn.CastArgs{Src: []*nn.Tensor{x}, Dst: []*nn.Tensor{y}, Scale: ls, Overflow: flag})
			return a.prepare(op, err, recordOf(op, err, (*nn.Cast).Record), float64(n), float64(6*n))
		},
	}, {
		Name: fmt.Sprintf("axpy/n=%d", n),
		Setup: func(d *gpu.Device) (*Prepared, error) {
			a := &alloc{d: d}
			x, y := a.zeros("x", n), a.zeros("y", n)
			if a.err != nil {
				return a.prepare(nil, nil, nil, 0, 0)
			}
			op, err := nn.NewAXPY(d, y, x, 0.5)
			return a.prepare(op, err, recordOf(op, err, (*nn.Elementwise).Record), float64(2*n), float64(12*n))
		},
	}}
}

func fillCases(size Size) []Case {
	n := 1 << 22
	if size == Large {
		n = 1 << 28
	}
	return []Case{{
		Name: fmt.Sprintf("fill/n=%d", n),
		Setup: func(d *gpu.Device) (*Prepared, error) {
			a := &alloc{d: d}
			x := a.zeros("x", n)
			if a.err != nil {
				return a.prepare(nil, nil, nil, 0, 0)
			}
			f, err := nn.NewFill(d, x, 1)
			return a.prepare(f, err, recordOf(f, err, (*nn.Fill).Record), 0, float64(4*n))
		},
	}}
}

// ---- the step mode's kernels ----

// stepCases: the routed GEMV (3 weight sets, the streams spread over them)
// and the selective state update at 1 and 64 streams. Compulsory traffic:
// the weight sets in use read once, x read, y written; the state read and
// written once. SSM step FLOPs per (stream, channel): 8 per state (as the
// scan's forward) plus 12 (softplus, D skip, gate).
func stepCases(size Size) []Case {
	n, k, ed, ns := 512, 256, 256, 16
	if size == Large {
		n, k, ed, ns = 2560, 1280, 2560, 16
	}
	var cases []Case
	for _, s := range []int{1, 64} {
		cases = append(cases, gemvCase(s, 3, n, k), ssmStepCase(s, ed, ns))
	}
	return cases
}

func gemvCase(s, groups, n, k int) Case {
	return Case{
		Name: fmt.Sprintf("gemv_routed/s%d_g%d_n%d_k%d", s, groups, n, k),
		Setup: func(d *gpu.Device) (*Prepared, error) {
			a := &alloc{d: d}
			x, w, y, grp := a.pattern("x", s, k), a.pattern("w", groups, n, k), a.zeros("y", s, n), a.zeros("grp", s)
			if a.err != nil {
				return a.prepare(nil, nil, nil, 0, 0)
			}
			g := make([]uint32, s)
			for i := range g {
				g[i] = uint32(i % groups)
			}
			if err := grp.UploadU32(g); err != nil {
				return a.prepare(nil, err, nil, 0, 0)
			}
			l, err := nn.NewRoutedLinear(d, nn.RoutedLinearArgs{X: x, W: w, Group: grp, Y: y})
			used := min(s, groups)
			flops := 0.0
			if err == nil {
				flops = l.FLOPs()
			}
			return a.prepare(l, err, recordOf(l, err, (*nn.RoutedLinear).Record), flops, 4*float64(used*n*k+s*k+s*n))
		},
	}
}

func ssmStepCase(s, ed, n int) Case {
	return Case{
		Name: fmt.Sprintf("ssm_step/s%d_ed%d_n%d", s, ed, n),
		Setup: func(d *gpu.Device) (*Prepared, error) {
			a := &alloc{d: d}
			args := nn.SSMStepArgs{U: a.pattern("u", s, ed), Delta: a.pattern("delta", s, ed), Z: a.pattern("z", s, ed),
				ALog: a.pattern("a_log", ed, n), BC: a.pattern("bc", s, 2*n), CCol: n, D: a.pattern("D", ed),
				Y: a.zeros("y", s, ed), State: a.pattern("state", s, ed, n)}
			if a.err != nil {
				return a.prepare(nil, nil, nil, 0, 0)
			}
			st, err := nn.NewSSMStep(d, args)
			se := float64(s * ed)
			return a.prepare(st, err, recordOf(st, err, (*nn.SSMStep).Record), se*float64(8*n+12),
				4*(se*float64(2*n+4)+float64(ed*n+ed+s*2*n)))
		},
	}
}
