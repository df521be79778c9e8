package mom

import (
	"fmt"

	"mom/gpu"
	"mom/nn"
)

// Prefill runs prompts through the parallel forward (the chunked scan) and
// hands the states they leave to a StepModel's streams: per layer the
// scan's final state and the conv state (the last d_conv-1 conv inputs).
// It computes no logits: the step that reads a prompt's last token does.
// It is sized for rows prompts of length tokens, shares the step model's
// (that is, the Model's) parameters, and keeps one set of activations for
// all layers (forward only).
type Prefill struct {
	s         *StepModel
	Rows, Len int
	routing   *nn.Routing
	scratch   *nn.Scratch // the projections' split-K partial sums (they run in order)
	embed     *nn.Embedding
	patchIn   *nn.Linear
	layers    []*prefillLayer
	h, xn     *nn.Tensor // (rows, len, d)
	x1, x2, z *nn.Tensor // (rows, len, ed)
	delta, y  *nn.Tensor // (rows, len, ed)
	dtLow     *nn.Tensor // (rows, len, r)
	bm, cm    *nn.Tensor // (rows, len, n)
	patches   *nn.Tensor // (rows, len, p)
	modality  []uint32   // host scratch, (rows*len)
	posHost   []uint32   // host scratch, (rows)
	tensors   []*nn.Tensor
	ops       []interface{ Release() }
}

// prefillLayer is one Mamba block of the prefill and where its states go.
type prefillLayer struct {
	norm                              *nn.RMSNorm
	inX, inZ, xpDt, xpB, xpC, dt, out projection
	conv                              *nn.CausalConv1d
	scan                              *nn.SelectiveScan
	tail                              *nn.ConvTail
	final, tailT                      *nn.Tensor // (rows, ed, n), (rows, ed, k-1)
	ssmState, convState               *nn.Tensor // the step model's
}

// NewPrefill builds a prefill of rows prompts of length tokens into the
// step model's streams.
func (s *StepModel) NewPrefill(rows, length int) (_ *Prefill, err error) {
	if rows <= 0 || rows > s.Streams || length <= 0 {
		return nil, fmt.Errorf("mom: prefill of %d prompts of %d tokens: want 1 to %d prompts (the streams) of at least 1 token", rows, length, s.Streams)
	}
	c, d := s.Cfg, s.d
	p := &Prefill{s: s, Rows: rows, Len: length, modality: make([]uint32, rows*length), posHost: make([]uint32, rows)}
	defer func() {
		if err != nil {
			p.Release()
		}
	}()
	T, D, E, N, R, K := rows*length, c.DModel, c.ED(), c.DState, c.DtRank, c.DConv
	ten := func(name string, shape ...int) *nn.Tensor {
		if err != nil {
			return nil
		}
		var t *nn.Tensor
		t, err = nn.NewTensor(d, "prefill."+name, shape...)
		if err == nil {
			p.tensors = append(p.tensors, t)
		}
		return t
	}
	p.h, p.xn = ten("h", rows, length, D), ten("xn", rows, length, D)
	p.x1, p.x2, p.z = ten("x1", rows, length, E), ten("x2", rows, length, E), ten("z", rows, length, E)
	p.delta, p.y = ten("delta", rows, length, E), ten("y", rows, length, E)
	p.dtLow, p.bm, p.cm = ten("dt_low", rows, length, R), ten("B", rows, length, N), ten("C", rows, length, N)
	if c.Continuous() {
		p.patches = ten("patches", rows, length, c.PatchDim)
	}
	for i, sl := range s.layers {
		ly := &prefillLayer{final: ten(fmt.Sprintf("l%d.final", i), rows, E, N), ssmState: sl.ssm, convState: sl.conv}
		if K > 1 {
			ly.tailT = ten(fmt.Sprintf("l%d.conv_tail", i), rows, E, K-1)
		}
		p.layers = append(p.layers, ly)
	}
	if err != nil {
		return nil, fmt.Errorf("mom: prefill: %w", err)
	}
	if !c.Splits.Dense() {
		if p.routing, err = nn.NewRouting(d, T, c.Groups()); err != nil {
			return nil, fmt.Errorf("mom: prefill: %w", err)
		}
	}
	p.scratch = nn.NewScratch(d)
	if err := p.build(); err != nil {
		return nil, err
	}
	return p, nil
}

// track records a new op for Release, unless making it failed, and
// passes the error on.
func (p *Prefill) track(op interface{ Release() }, err error) error {
	if err == nil {
		p.ops = append(p.ops, op)
	}
	return err
}

func (p *Prefill) build() error {
	s := p.s
	c, d := s.Cfg, s.d
	T := p.Rows * p.Len
	W := func(name string) *nn.Tensor { return p.sParam(name) }
	var err error
	flat := func(t *nn.Tensor) *nn.Tensor { // (rows, len, x) as (t, x)
		if err != nil {
			return nil
		}
		var v *nn.Tensor
		v, err = t.Reshape(T, t.Shape[2])
		return v
	}
	proj := func(split bool, x, w, b, y *nn.Tensor, acc bool) (projection, error) {
		if split {
			op, err := nn.NewGroupedLinear(d, nn.GroupedLinearArgs{X: x, W: w, B: b, Y: y, Routing: p.routing, AccumulateY: acc, Scratch: p.scratch})
			if err != nil {
				return nil, err
			}
			p.ops = append(p.ops, op)
			return op, nil
		}
		op, err := nn.NewLinear(d, nn.LinearArgs{X: x, W: w, B: b, Y: y, AccumulateY: acc, Scratch: p.scratch})
		if err != nil {
			return nil, err
		}
		p.ops = append(p.ops, op)
		return op, nil
	}
	h0 := flat(p.h)
	if err != nil {
		return err
	}
	p.embed, err = nn.NewEmbedding(d, nn.EmbeddingArgs{E: W(NameEmbed), Out: h0})
	if p.track(p.embed, err) != nil {
		return fmt.Errorf("mom: prefill: embedding: %w", err)
	}
	if c.Continuous() {
		p.patchIn, err = nn.NewLinear(d, nn.LinearArgs{X: p.patches, W: W(NamePatchIn), Y: p.h, AccumulateY: true, Scratch: p.scratch})
		if p.track(p.patchIn, err) != nil {
			return fmt.Errorf("mom: prefill: patch_in: %w", err)
		}
	}
	for i, ly := range p.layers {
		lw := func(name string) *nn.Tensor { return W(LayerParam(i, name)) }
		wrap := func(what string, e error) error { return fmt.Errorf("mom: prefill: layer %d %s: %w", i, what, e) }
		ly.norm, err = nn.NewRMSNorm(d, nn.RMSNormArgs{X: p.h, W: lw("norm.weight"), Y: p.xn, Eps: float32(c.Eps)})
		if p.track(ly.norm, err) != nil {
			return wrap("norm", err)
		}
		if ly.inX, err = proj(c.Splits.In, p.xn, lw("mixer.in_proj_x.weight"), nil, p.x1, false); err != nil {
			return wrap("in_proj x", err)
		}
		if ly.inZ, err = proj(c.Splits.In, p.xn, lw("mixer.in_proj_z.weight"), nil, p.z, false); err != nil {
			return wrap("in_proj z", err)
		}
		ly.conv, err = nn.NewCausalConv1d(d, nn.ConvArgs{Batch: p.Rows, Len: p.Len, X: p.x1, W: lw("mixer.conv1d.weight"),
			Bias: lw("mixer.conv1d.bias"), Y: p.x2, SiLU: true})
		if p.track(ly.conv, err) != nil {
			return wrap("conv1d", err)
		}
		if ly.tailT != nil {
			ly.tail, err = nn.NewConvTail(d, nn.ConvTailArgs{Batch: p.Rows, Len: p.Len, X: p.x1, Tail: ly.tailT})
			if p.track(ly.tail, err) != nil {
				return wrap("conv state", err)
			}
		}
		if ly.xpDt, err = proj(c.Splits.X, p.x2, lw("mixer.x_proj_dt.weight"), nil, p.dtLow, false); err != nil {
			return wrap("x_proj dt", err)
		}
		if ly.xpB, err = proj(c.Splits.X, p.x2, lw("mixer.x_proj_B.weight"), nil, p.bm, false); err != nil {
			return wrap("x_proj B", err)
		}
		if ly.xpC, err = proj(c.Splits.X, p.x2, lw("mixer.x_proj_C.weight"), nil, p.cm, false); err != nil {
			return wrap("x_proj C", err)
		}
		if ly.dt, err = proj(c.Splits.Dt, p.dtLow, lw("mixer.dt_proj.weight"), lw("mixer.dt_proj.bias"), p.delta, false); err != nil {
			return wrap("dt_proj", err)
		}
		ly.scan, err = nn.NewSelectiveScan(d, nn.ScanArgs{Batch: p.Rows, Len: p.Len, U: p.x2, Delta: p.delta,
			ALog: lw("mixer.A_log"), Bm: p.bm, Cm: p.cm, D: lw("mixer.D"), Z: p.z, Y: p.y, Final: ly.final})
		if p.track(ly.scan, err) != nil {
			return wrap("selective scan", err)
		}
		if ly.out, err = proj(c.Splits.Out, p.y, lw("mixer.out_proj.weight"), nil, p.h, true); err != nil {
			return wrap("out_proj", err)
		}
	}
	return nil
}

// sParam is the shared parameter tensor called name.
func (p *Prefill) sParam(name string) *nn.Tensor { return p.s.params[name] }

// Run prefills streams [stream0, stream0+Rows) with the prompts ids (rows,
// len) and, with continuous inputs, their patches (rows, len, patch_dim;
// nil for none): it runs them through the parallel forward, replaces those
// streams' states by the ones the prompts leave and sets their step
// counters to len. The next step of such a stream reads the token at
// position len (set it with SetInputs). It submits its own work, once.
func (p *Prefill) Run(stream0 int, ids []uint32, patches []float32) error {
	s := p.s
	c := s.Cfg
	if stream0 < 0 || stream0+p.Rows > s.Streams {
		return fmt.Errorf("mom: prefill: streams [%d, %d) outside the step model's %d", stream0, stream0+p.Rows, s.Streams)
	}
	if len(ids) != p.Rows*p.Len {
		return fmt.Errorf("mom: prefill: %d ids for %d prompts of %d tokens", len(ids), p.Rows, p.Len)
	}
	for i, id := range ids {
		g, ok := c.ModalityOf(id)
		if !ok {
			return fmt.Errorf("mom: prefill: prompt %d position %d has id %d outside the vocabulary of %d", i/p.Len, i%p.Len, id, c.Vocab)
		}
		p.modality[i] = uint32(g)
	}
	if p.patches != nil {
		if patches == nil {
			patches = make([]float32, p.patches.Len())
		}
		if err := p.patches.Upload(patches); err != nil {
			return fmt.Errorf("mom: prefill: %w", err)
		}
	} else if patches != nil {
		return fmt.Errorf("mom: prefill: the %s setting has no continuous inputs", c.Setting)
	}
	if err := p.embed.Update(ids); err != nil {
		return fmt.Errorf("mom: prefill: %w", err)
	}
	if p.routing != nil {
		if err := p.routing.Update(p.modality); err != nil {
			return fmt.Errorf("mom: prefill: %w", err)
		}
	}
	for i := range p.posHost {
		p.posHost[i] = uint32(p.Len)
	}
	if err := s.pos.Buf.WriteUint32(stream0, p.posHost); err != nil {
		return fmt.Errorf("mom: prefill: %w", err)
	}
	r := s.d.NewRecorder()
	p.record(r, stream0)
	if err := r.Submit(); err != nil {
		return fmt.Errorf("mom: prefill of %d prompts of %d tokens: %w", p.Rows, p.Len, err)
	}
	return nil
}

// record records the forward and the hand-over to streams from stream0.
func (p *Prefill) record(r *gpu.Recorder, stream0 int) {
	p.embed.RecordForward(r)
	if p.patchIn != nil {
		p.patchIn.RecordForward(r)
	}
	for _, ly := range p.layers {
		ly.norm.RecordForward(r)
		ly.inX.RecordForward(r)
		ly.inZ.RecordForward(r)
		ly.conv.RecordForward(r)
		if ly.tail != nil {
			ly.tail.Record(r)
			r.Copy(ly.tailT.Buf, 0, ly.convState.Buf, int64(stream0)*(ly.convState.Bytes()/int64(p.s.Streams)), ly.tailT.Bytes())
		}
		ly.xpDt.RecordForward(r)
		ly.xpB.RecordForward(r)
		ly.xpC.RecordForward(r)
		ly.dt.RecordForward(r)
		ly.scan.RecordForward(r)
		r.Copy(ly.final.Buf, 0, ly.ssmState.Buf, int64(stream0)*(ly.ssmState.Bytes()/int64(p.s.Streams)), ly.final.Bytes())
		ly.out.RecordForward(r)
	}
}

// Release frees what the prefill allocated.
func (p *Prefill) Release() {
	for i := len(p.ops) - 1; i >= 0; i-- {
		p.ops[i].Release()
	}
	if p.routing != nil {
		p.routing.Release()
		p.routing = nil
	}
	p.scratch.Release() // after the ops that bind it
	p.scratch = nil
	for _, t := range p.tensors {
		t.Release()
	}
	p.ops, p.tensors = nil, nil
}
