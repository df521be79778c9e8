package mom

import (
	"encoding/binary"
	"errors"
	"fmt"

	"mom/gpu"
	"mom/nn"
)

// The recurrent step mode. A Mamba model is a recurrence: per layer and
// stream, a conv state (its last d_conv-1 conv inputs, (s, ed, k-1)) and an
// SSM state ((s, ed, n)) hold everything the past contributes, so the next
// token costs the same whatever the prompt's length. StepModel runs S
// streams one token per stream per step on the GPU, with the parameters of
// a Model; Prefill runs a prompt through the parallel forward (the chunked
// scan) and hands its final states to the step mode.
//
// Glossary as in doc.go; s is the number of streams.

// SampleParams choose how StepModel draws the next tokens (see
// nn.SampleParams): temperature (0: greedy), top-k, top-p and a seed.
type SampleParams = nn.SampleParams

// StepOptions size what a StepModel allocates once.
type StepOptions struct {
	// GenerateSteps is the most steps one Generate call records into one
	// submit (the size of its id history); default 16.
	GenerateSteps int
	// IDSets is the most id sets SetIDSets registers; default 8.
	IDSets int
}

// StepModel is the model run recurrently for a fixed number of streams. It
// shares the parameter tensors of the Model it was made from (release it
// before that Model); everything else it needs is allocated by
// NewStepModel, and a step records into one command buffer with no
// allocation, no pipeline creation and no readback but the chosen ids.
//
// A step reads each stream's current token id (set by SetInputs, or the id
// the previous step sampled), embeds it, routes each split projection by
// the token's modality, updates every layer's states, and writes the logits
// (and, with continuous images, the predicted noise) and the next id.
type StepModel struct {
	Cfg     Config
	Streams int
	d       *gpu.Device
	params  map[string]*nn.Tensor // the Model's parameter values, by name

	ids     *nn.Tensor // (s) u32: the current input ids; the sampler writes the next ones
	grp     *nn.Tensor // (s) u32: the modality of each stream's current token
	pos     *nn.Tensor // (s) u32: step counters (the sampler's random stream)
	allowed *nn.Tensor // (s, 2) u32: each stream's allowed ids [lo, hi)
	idSel   *nn.Tensor // (s) u32: each stream's id set (nn.MaskNone: none)
	idMask  *nn.Tensor // (IDSets, ceil(v/32)) u32: the id sets' bits
	h       *nn.Tensor // (s, d) residual stream
	xn, xf  *nn.Tensor // (s, d) normed input of a layer; final normed
	x1, x2  *nn.Tensor // (s, ed) conv input and output
	z, y    *nn.Tensor // (s, ed) gate; gated scan output
	delta   *nn.Tensor // (s, ed) dt_proj's output (with its bias)
	dbc     *nn.Tensor // (s, r+2n) x_proj's output: dt_low, B, C
	logits  *nn.Tensor // (s, v)
	patches *nn.Tensor // (s, p) continuous inputs (noisy patches), zeros at discrete positions
	pred    *nn.Tensor // (s, p) predicted noise
	history *nn.Tensor // (GenerateSteps, s) u32: the ids of a Generate call
	scratch *nn.Tensor // one stream's largest state: RecordCopyStream goes through it

	embed    *nn.StepEmbedding
	patchIn  *nn.RoutedLinear
	layers   []*stepLayer
	normF    *nn.RMSNorm
	head     func(r *gpu.Recorder) // the LM head: a GEMV, or a tiled GEMM for many streams
	patchOut *nn.RoutedLinear
	mask     *nn.MaskLogits
	sampler  *nn.Sampler

	genSteps int
	setCover [][2]int // the registered id sets' covering ranges
	idsHost  []uint32 // scratch for the ids read back
	tensors  []*nn.Tensor
	ops      []interface{ Release() }
}

// stepLayer is one Mamba block in step mode.
type stepLayer struct {
	conv, ssm                         *nn.Tensor // states: (s, ed, k-1) (nil when k = 1), (s, ed, n)
	norm                              *nn.RMSNorm
	inX, inZ, xpDt, xpB, xpC, dt, out *nn.RoutedLinear
	convStep                          *nn.ConvStep
	ssmStep                           *nn.SSMStep
}

// headGEMMStreams is the number of streams from which the LM head runs on
// the tiled GEMM instead of the GEMV.
const headGEMMStreams = 16

// NewStepModel builds the step mode of m for streams streams, sharing m's
// parameters. Every stream starts with empty states at step 0, allowed the
// whole vocabulary, with temperature 1 and seed 0.
func NewStepModel(m *Model, streams int, o StepOptions) (_ *StepModel, err error) {
	if m == nil {
		return nil, errors.New("mom: step model: no model")
	}
	c := m.Cfg
	if streams <= 0 {
		return nil, fmt.Errorf("mom: step model: %d streams, want at least 1", streams)
	}
	if o.GenerateSteps == 0 {
		o.GenerateSteps = 16
	}
	if o.IDSets == 0 {
		o.IDSets = 8
	}
	if o.GenerateSteps < 0 || o.IDSets < 0 {
		return nil, fmt.Errorf("mom: step model: GenerateSteps %d and IDSets %d must be positive", o.GenerateSteps, o.IDSets)
	}
	d := m.d
	s := &StepModel{Cfg: c, Streams: streams, d: d, genSteps: o.GenerateSteps, idsHost: make([]uint32, streams),
		params: map[string]*nn.Tensor{}}
	for _, p := range m.Params {
		s.params[p.Spec.Name] = p.W
	}
	defer func() {
		if err != nil {
			s.Release()
		}
	}()
	S, D, E, N, R, V, K := streams, c.DModel, c.ED(), c.DState, c.DtRank, c.Vocab, c.DConv
	ten := func(name string, shape ...int) *nn.Tensor {
		if err != nil {
			return nil
		}
		var t *nn.Tensor
		t, err = nn.NewTensor(d, "step."+name, shape...)
		if err == nil {
			s.tensors = append(s.tensors, t)
		}
		return t
	}
	s.ids, s.grp, s.pos, s.allowed = ten("ids", S), ten("modality", S), ten("pos", S), ten("allowed", S, 2)
	s.idSel, s.idMask = ten("id_set", S), ten("id_mask", o.IDSets, nn.CeilDiv(V, 32))
	s.h, s.xn, s.xf = ten("h", S, D), ten("xn", S, D), ten("xf", S, D)
	s.x1, s.x2, s.z, s.y, s.delta = ten("x1", S, E), ten("x2", S, E), ten("z", S, E), ten("y", S, E), ten("delta", S, E)
	s.dbc, s.logits = ten("dbc", S, R+2*N), ten("logits", S, V)
	s.history = ten("history", o.GenerateSteps, S)
	s.scratch = ten("copy_scratch", E*max(N, K-1))
	if c.Continuous() {
		s.patches, s.pred = ten("patches", S, c.PatchDim), ten("pred", S, c.PatchDim)
	}
	for i := 0; i < c.Layers && err == nil; i++ {
		ly := &stepLayer{ssm: ten(fmt.Sprintf("l%d.ssm_state", i), S, E, N)}
		if K > 1 {
			ly.conv = ten(fmt.Sprintf("l%d.conv_state", i), S, E, K-1)
		}
		s.layers = append(s.layers, ly)
	}
	if err != nil {
		return nil, fmt.Errorf("mom: step model: %w", err)
	}
	if err := s.build(); err != nil {
		return nil, err
	}
	// Fresh buffers are zero: empty states, step 0, ids 0. Allow the whole
	// vocabulary.
	if err := s.SetAllowed(nil); err != nil {
		return nil, err
	}
	return s, nil
}

// track records a new op for Release, unless making it failed, and
// passes the error on.
func (s *StepModel) track(op interface{ Release() }, err error) error {
	if err == nil {
		s.ops = append(s.ops, op)
	}
	return err
}

func (s *StepModel) build() error {
	c, d := s.Cfg, s.d
	R, N := c.DtRank, c.DState
	W := func(name string) *nn.Tensor { return s.params[name] }
	var err error
	// proj makes a step projection: routed by the streams' modalities when
	// split, the plain path otherwise.
	proj := func(split bool, x *nn.Tensor, xcol int, w, b, y *nn.Tensor, ycol int, acc bool) (*nn.RoutedLinear, error) {
		a := nn.RoutedLinearArgs{X: x, W: w, B: b, Y: y, XCol: xcol, YCol: ycol, Accumulate: acc}
		if split {
			a.Group = s.grp
		}
		l, err := nn.NewRoutedLinear(d, a)
		return l, s.track(l, err)
	}
	ends := make([]int, len(c.VocabRanges))
	for g, r := range c.VocabRanges {
		ends[g] = r[1]
	}
	s.embed, err = nn.NewStepEmbedding(d, nn.StepEmbeddingArgs{E: W(NameEmbed), IDs: s.ids, Out: s.h, Group: s.grp, Ends: ends})
	if s.track(s.embed, err) != nil {
		return fmt.Errorf("mom: step model: embedding: %w", err)
	}
	if c.Continuous() {
		if s.patchIn, err = proj(false, s.patches, 0, W(NamePatchIn), nil, s.h, 0, true); err != nil {
			return fmt.Errorf("mom: step model: patch_in: %w", err)
		}
	}
	for i, ly := range s.layers {
		lw := func(name string) *nn.Tensor { return W(LayerParam(i, name)) }
		wrap := func(what string, e error) error { return fmt.Errorf("mom: step model: layer %d %s: %w", i, what, e) }
		ly.norm, err = nn.NewRMSNorm(d, nn.RMSNormArgs{X: s.h, W: lw("norm.weight"), Y: s.xn, Eps: float32(c.Eps)})
		if s.track(ly.norm, err) != nil {
			return wrap("norm", err)
		}
		if ly.inX, err = proj(c.Splits.In, s.xn, 0, lw("mixer.in_proj_x.weight"), nil, s.x1, 0, false); err != nil {
			return wrap("in_proj x", err)
		}
		if ly.inZ, err = proj(c.Splits.In, s.xn, 0, lw("mixer.in_proj_z.weight"), nil, s.z, 0, false); err != nil {
			return wrap("in_proj z", err)
		}
		ly.convStep, err = nn.NewConvStep(d, nn.ConvStepArgs{X: s.x1, W: lw("mixer.conv1d.weight"), Bias: lw("mixer.conv1d.bias"),
			State: ly.conv, Y: s.x2, SiLU: true})
		if s.track(ly.convStep, err) != nil {
			return wrap("conv1d", err)
		}
		if ly.xpDt, err = proj(c.Splits.X, s.x2, 0, lw("mixer.x_proj_dt.weight"), nil, s.dbc, 0, false); err != nil {
			return wrap("x_proj dt", err)
		}
		if ly.xpB, err = proj(c.Splits.X, s.x2, 0, lw("mixer.x_proj_B.weight"), nil, s.dbc, R, false); err != nil {
			return wrap("x_proj B", err)
		}
		if ly.xpC, err = proj(c.Splits.X, s.x2, 0, lw("mixer.x_proj_C.weight"), nil, s.dbc, R+N, false); err != nil {
			return wrap("x_proj C", err)
		}
		if ly.dt, err = proj(c.Splits.Dt, s.dbc, 0, lw("mixer.dt_proj.weight"), lw("mixer.dt_proj.bias"), s.delta, 0, false); err != nil {
			return wrap("dt_proj", err)
		}
		ly.ssmStep, err = nn.NewSSMStep(d, nn.SSMStepArgs{U: s.x2, Delta: s.delta, Z: s.z, ALog: lw("mixer.A_log"), D: lw("mixer.D"),
			Y: s.y, State: ly.ssm, BC: s.dbc, BCol: R, CCol: R + N})
		if s.track(ly.ssmStep, err) != nil {
			return wrap("selective state update", err)
		}
		if ly.out, err = proj(c.Splits.Out, s.y, 0, lw("mixer.out_proj.weight"), nil, s.h, 0, true); err != nil {
			return wrap("out_proj", err)
		}
	}
	s.normF, err = nn.NewRMSNorm(d, nn.RMSNormArgs{X: s.h, W: W(NameNormF), Y: s.xf, Eps: float32(c.Eps)})
	if s.track(s.normF, err) != nil {
		return fmt.Errorf("mom: step model: final norm: %w", err)
	}
	head := NameEmbed
	if !c.TieEmbeddings {
		head = NameHead
	}
	// The head is the largest matrix (v x d) and never routed: from
	// headGEMMStreams streams on, the tiled GEMM of the parallel model
	// (measured about 5x faster on lavapipe at 64 streams); below, the GEMV,
	// whose rows spread over many threads for one stream.
	if s.Streams >= headGEMMStreams {
		l, err := nn.NewLinear(d, nn.LinearArgs{X: s.xf, W: W(head), Y: s.logits})
		if s.track(l, err) != nil {
			return fmt.Errorf("mom: step model: head: %w", err)
		}
		s.head = l.RecordForward
	} else {
		l, err := proj(false, s.xf, 0, W(head), nil, s.logits, 0, false)
		if err != nil {
			return fmt.Errorf("mom: step model: head: %w", err)
		}
		s.head = l.Record
	}
	if c.Continuous() {
		if s.patchOut, err = proj(false, s.xf, 0, W(NamePatchOut), nil, s.pred, 0, false); err != nil {
			return fmt.Errorf("mom: step model: patch_out: %w", err)
		}
	}
	s.mask, err = nn.NewMaskLogits(d, nn.MaskLogitsArgs{Logits: s.logits, Mask: s.idMask, Sel: s.idSel, Allowed: s.allowed})
	if s.track(s.mask, err) != nil {
		return fmt.Errorf("mom: step model: id sets: %w", err)
	}
	s.sampler, err = nn.NewSampler(d, nn.SamplerArgs{Logits: s.logits, IDs: s.ids, Allowed: s.allowed, Pos: s.pos})
	if s.track(s.sampler, err) != nil {
		return fmt.Errorf("mom: step model: sampler: %w", err)
	}
	return nil
}

// RecordStep records one step of every stream: from the current ids (and
// patches) to the logits, the predicted noise and the next ids, which
// become the current ids of the next step.
func (s *StepModel) RecordStep(r *gpu.Recorder) {
	s.recordBody(r)
	s.head(r)
	if s.patchOut != nil {
		s.patchOut.Record(r)
	}
	s.mask.Record(r)
	s.sampler.Record(r)
}

// recordBody records a step up to the final norm: the states' update.
func (s *StepModel) recordBody(r *gpu.Recorder) {
	s.embed.Record(r)
	if s.patchIn != nil {
		s.patchIn.Record(r)
	}
	for _, ly := range s.layers {
		ly.norm.RecordForward(r)
		ly.inX.Record(r)
		ly.inZ.Record(r)
		ly.convStep.Record(r)
		ly.xpDt.Record(r)
		ly.xpB.Record(r)
		ly.xpC.Record(r)
		ly.dt.Record(r)
		ly.ssmStep.Record(r)
		ly.out.Record(r)
	}
	s.normF.RecordForward(r)
}

// Step runs one step and returns every stream's sampled id (the next
// step's input). The slice is the model's own, valid until the next call.
func (s *StepModel) Step() ([]uint32, error) {
	r := s.d.NewRecorder()
	s.RecordStep(r)
	if err := r.Submit(); err != nil {
		return nil, fmt.Errorf("mom: step of %d streams: %w", s.Streams, err)
	}
	raw, err := s.ids.Buf.Read(0, int64(4*s.Streams))
	if err != nil {
		return nil, fmt.Errorf("mom: reading the sampled ids: %w", err)
	}
	for i := range s.idsHost {
		s.idsHost[i] = binary.LittleEndian.Uint32(raw[4*i:])
	}
	return s.idsHost, nil
}

// Generate runs n steps in one submit, each step feeding the ids it
// sampled to the next, and returns the ids, (n, streams): row i holds the
// ids sampled by step i. n is at most StepOptions.GenerateSteps.
func (s *StepModel) Generate(n int) ([]uint32, error) {
	if n <= 0 || n > s.genSteps {
		return nil, fmt.Errorf("mom: generate %d steps: want 1 to %d (StepOptions.GenerateSteps)", n, s.genSteps)
	}
	r := s.d.NewRecorder()
	row := int64(4 * s.Streams)
	for i := 0; i < n; i++ {
		s.RecordStep(r)
		r.Copy(s.ids.Buf, 0, s.history.Buf, int64(i)*row, row)
	}
	if err := r.Submit(); err != nil {
		return nil, fmt.Errorf("mom: %d steps of %d streams: %w", n, s.Streams, err)
	}
	out, err := s.history.Buf.ReadUint32(0, n*s.Streams)
	if err != nil {
		return nil, fmt.Errorf("mom: reading the sampled ids: %w", err)
	}
	return out, nil
}

// SetInputs sets every stream's current token id (the input of the next
// step), replacing the ids the last step sampled: a prompt's tokens, or a
// forced token.
func (s *StepModel) SetInputs(ids []uint32) error {
	if len(ids) != s.Streams {
		return fmt.Errorf("mom: step inputs: %d ids for %d streams", len(ids), s.Streams)
	}
	for i, id := range ids {
		if int64(id) >= int64(s.Cfg.Vocab) {
			return fmt.Errorf("mom: step inputs: stream %d has id %d outside the vocabulary of %d", i, id, s.Cfg.Vocab)
		}
	}
	return s.ids.UploadU32(ids)
}

// SetPatches sets every stream's continuous input (s, patch_dim) for the
// next steps: a noisy patch at an image position, zeros elsewhere.
func (s *StepModel) SetPatches(p []float32) error {
	if s.patches == nil {
		return fmt.Errorf("mom: step patches: the %s setting has no continuous inputs", s.Cfg.Setting)
	}
	return s.patches.Upload(p)
}

// SetAllowed restricts each stream's sampling to an id range [lo, hi) (a
// modality's vocabulary range inside its span); nil, or a stream's [0, 0),
// allows the whole vocabulary. It ends any stream's id set (UseIDSets).
func (s *StepModel) SetAllowed(ranges [][2]int) error {
	v := make([]uint32, 2*s.Streams)
	if ranges != nil && len(ranges) != s.Streams {
		return fmt.Errorf("mom: allowed ids: %d ranges for %d streams", len(ranges), s.Streams)
	}
	for i, r := range ranges {
		if r == [2]int{} {
			continue
		}
		if r[0] < 0 || r[1] <= r[0] || r[1] > s.Cfg.Vocab {
			return fmt.Errorf("mom: allowed ids: stream %d has [%d, %d), want a non-empty range within [0, %d)", i, r[0], r[1], s.Cfg.Vocab)
		}
		v[2*i], v[2*i+1] = uint32(r[0]), uint32(r[1])
	}
	if err := s.allowed.UploadU32(v); err != nil {
		return err
	}
	return s.noIDSets()
}

// SetSampling sets how the next tokens are drawn, for the steps of later
// submits.
func (s *StepModel) SetSampling(p SampleParams) error { return s.sampler.SetParams(p) }

// SetPositions sets every stream's step counter (it selects the stream's
// random numbers; Prefill sets it to the prompt's length).
func (s *StepModel) SetPositions(pos []uint32) error {
	if len(pos) != s.Streams {
		return fmt.Errorf("mom: step positions: %d for %d streams", len(pos), s.Streams)
	}
	return s.pos.UploadU32(pos)
}

// RecordReset records emptying every stream's states and step counter.
func (s *StepModel) RecordReset(r *gpu.Recorder) {
	for _, ly := range s.layers {
		if ly.conv != nil {
			r.Clear(ly.conv.Buf, 0, ly.conv.Bytes())
		}
		r.Clear(ly.ssm.Buf, 0, ly.ssm.Bytes())
	}
	r.Clear(s.pos.Buf, 0, s.pos.Bytes())
}

// Reset empties every stream's states and step counter.
func (s *StepModel) Reset() error {
	r := s.d.NewRecorder()
	s.RecordReset(r)
	return r.Submit()
}

// RecordCopyStream records copying stream src's states, step counter and
// current id to stream dst (to continue one prefilled prompt in several
// streams). Streams outside the model make the recorder's Submit fail.
func (s *StepModel) RecordCopyStream(r *gpu.Recorder, dst, src int) {
	if dst == src {
		return
	}
	cp := func(t *nn.Tensor) {
		// A copy within one buffer is not allowed: through the scratch.
		n := t.Bytes() / int64(s.Streams)
		r.Copy(t.Buf, int64(src)*n, s.scratch.Buf, 0, n)
		r.Copy(s.scratch.Buf, 0, t.Buf, int64(dst)*n, n)
	}
	for _, ly := range s.layers {
		if ly.conv != nil {
			cp(ly.conv)
		}
		cp(ly.ssm)
	}
	cp(s.pos)
	cp(s.ids)
}

// Logits reads the last step's logits back, (s, v).
func (s *StepModel) Logits() ([]float32, error) { return s.logits.Download() }

// Pred reads the last step's predicted noise back, (s, patch_dim), in a
// setting with continuous inputs.
func (s *StepModel) Pred() ([]float32, error) {
	if s.pred == nil {
		return nil, fmt.Errorf("mom: predicted noise: the %s setting has no continuous inputs", s.Cfg.Setting)
	}
	return s.pred.Download()
}

// FLOPsPerToken counts a step's multiply-adds per stream: the projections
// (one weight set each), the LM head and the state update.
func (s *StepModel) FLOPsPerToken() float64 {
	c := s.Cfg
	D, E, N, R, V := float64(c.DModel), float64(c.ED()), float64(c.DState), float64(c.DtRank), float64(c.Vocab)
	perLayer := 2*(2*E*D+E*(R+2*N)+E*R+D*E) + E*(2*float64(c.DConv)) + E*N*8
	f := float64(c.Layers)*perLayer + 2*D*V
	if c.Continuous() {
		f += 4 * D * float64(c.PatchDim)
	}
	return f
}

// Release frees everything the step model allocated (not the Model's
// parameters).
func (s *StepModel) Release() {
	for i := len(s.ops) - 1; i >= 0; i-- {
		s.ops[i].Release()
	}
	for _, t := range s.tensors {
		t.Release()
	}
	s.ops, s.tensors = nil, nil
}
