package trainer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"mom/gpu"
	"mom/mom"
	"mom/nn"
	"mom/trainer/atomicfile"
	"mom/trainer/data"
	"mom/trainer/dataset"
)

// Options configure a training run.
type Options struct {
	Config mom.Config
	Out    string // run folder: metrics.jsonl, config.json, checkpoints/

	Steps, Batch, SeqLen, Accum int
	LR, MinLR                   float64
	Warmup                      int
	WeightDecay, ClipNorm       float64
	Beta1, Beta2, AdamEps       float64
	Seed                        uint64

	EvalEvery, EvalBatches int // held-out evaluation every EvalEvery steps over EvalBatches batches
	LogEvery               int // metrics record every LogEvery steps
	CkptEvery, Keep        int // checkpoint every CkptEvery steps, keeping the newest Keep
	Resume                 bool
	// Data is "synthetic", a dataset folder (`mom data build`; its eval
	// split is the held-out data) or a token file (package trainer/data).
	Data     string
	EvalData string // held-out token file (with a token-file Data); "" turns evaluation off
	// StopAfter, if positive, ends the run (with a checkpoint) after that
	// step although the schedule runs to Steps: a planned interruption.
	StopAfter int

	Progress io.Writer // progress bar or log lines (nil: none)
	Terminal bool      // Progress is a terminal
	// OnRecord, if set, receives every metrics record (the live window);
	// it must not block.
	OnRecord func(Record)
}

// DefaultOptions are sensible settings for the tiny preset on lavapipe.
func DefaultOptions() Options {
	return Options{Steps: 300, Batch: 8, SeqLen: 128, Accum: 1, LR: 3e-3, MinLR: 3e-4, Warmup: 20,
		WeightDecay: 0.1, ClipNorm: 1, Beta1: 0.9, Beta2: 0.95, AdamEps: 1e-8, Seed: 1,
		EvalEvery: 50, EvalBatches: 2, LogEvery: 1, CkptEvery: 100, Keep: 2, Data: "synthetic"}
}

// Validate checks the options.
func (o Options) Validate() error {
	if err := o.Config.Validate(); err != nil {
		return err
	}
	switch {
	case o.Out == "":
		return errors.New("trainer: no output folder (--out)")
	case o.Steps <= 0:
		return fmt.Errorf("trainer: --steps %d must be positive", o.Steps)
	case o.Batch <= 0 || o.SeqLen <= 1:
		return fmt.Errorf("trainer: batch %d and sequence length %d must be positive (length at least 2)", o.Batch, o.SeqLen)
	case o.Accum <= 0:
		return fmt.Errorf("trainer: --accum %d must be at least 1", o.Accum)
	case !(o.LR > 0) || o.MinLR < 0 || o.MinLR > o.LR:
		return fmt.Errorf("trainer: learning rates lr=%g min=%g: want 0 <= min <= lr and lr > 0", o.LR, o.MinLR)
	case o.Warmup < 0 || o.Warmup > o.Steps:
		return fmt.Errorf("trainer: --warmup %d must be within [0, steps=%d]", o.Warmup, o.Steps)
	case o.WeightDecay < 0 || o.ClipNorm < 0:
		return fmt.Errorf("trainer: weight decay %g and clip norm %g must not be negative", o.WeightDecay, o.ClipNorm)
	case o.LogEvery <= 0:
		return fmt.Errorf("trainer: --log-every %d must be positive", o.LogEvery)
	}
	return nil
}

// runConfig is what config.json holds.
type runConfig struct {
	Name       string     `json:"name"`
	Dense      bool       `json:"dense"`
	Splits     []string   `json:"splits"`
	Modalities []string   `json:"modalities"`
	Model      mom.Config `json:"model"`
	Batch      int        `json:"batch"`
	SeqLen     int        `json:"seq_len"`
	Accum      int        `json:"accum"`
	Steps      int        `json:"steps"`
	LR         float64    `json:"lr"`
	MinLR      float64    `json:"min_lr"`
	Warmup     int        `json:"warmup"`
	Seed       uint64     `json:"seed"`
	Data       string     `json:"data"`
	Device     string     `json:"device"`
}

func splitNames(s mom.Splits) []string {
	out := []string{}
	if s.In {
		out = append(out, "in")
	}
	if s.X {
		out = append(out, "x")
	}
	if s.Dt {
		out = append(out, "dt")
	}
	if s.Out {
		out = append(out, "out")
	}
	return out
}

// Result summarises a finished run.
type Result struct {
	Steps        int
	Final        mom.Losses // last training losses
	Eval         mom.Losses // last held-out losses
	TokensPerSec float64
	Checkpoint   string
}

// Trainer holds a run's state.
type trainer struct {
	o        Options
	d        *gpu.Device
	m        *mom.Model
	norm     *nn.GradNorm
	opt      *nn.AdamW
	mstate   []*nn.Tensor // AdamW first moments, per parameter
	vstate   []*nn.Tensor
	train    data.Stream
	eval     data.Stream
	evalAt   json.RawMessage // the held-out stream's start: every evaluation sees the same batches
	rng      *rand.Rand
	pcg      *rand.PCG
	batch    data.Batch
	mb       mom.Batch
	lossBuf  *gpu.Buffer
	metrics  *MetricsWriter
	progress *Progress
	start    time.Time
	wallBase float64 // seconds of wall time before a resume
	flopsTok float64
}

const lossRing = 8

// testHookAfterStep, when set by a test, runs after each step is submitted.
var testHookAfterStep func(t *trainer, step int)

// inflight is a step whose losses are on their way to the host.
type inflight struct {
	step int
	rb   *gpu.Readback
	lr   float64
}

// Train runs the loop on device d.
func Train(ctx context.Context, d *gpu.Device, o Options) (*Result, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return nil, fmt.Errorf("trainer: %w", err)
	}
	t := &trainer{o: o, d: d, start: time.Now(), flopsTok: o.Config.StepFLOPs().TrainPerToken}
	defer t.close()
	if err := t.setup(); err != nil {
		return nil, err
	}
	return t.loop(ctx)
}

func (t *trainer) close() {
	if t.metrics != nil {
		t.metrics.Close()
	}
	if t.lossBuf != nil {
		t.lossBuf.Release()
	}
	for _, s := range []data.Stream{t.train, t.eval} {
		if c, ok := s.(io.Closer); ok {
			c.Close()
		}
	}
	for _, x := range append(t.mstate, t.vstate...) {
		x.Release()
	}
	if t.m != nil {
		t.m.Release()
	}
}

func (t *trainer) setup() error {
	o, c := t.o, t.o.Config
	var err error
	if t.m, err = mom.NewModel(t.d, c, o.Batch, o.SeqLen); err != nil {
		return err
	}
	var grads []*nn.Tensor
	args := nn.AdamWArgs{Beta1: float32(o.Beta1), Beta2: float32(o.Beta2), Eps: float32(o.AdamEps), WeightDecay: float32(o.WeightDecay)}
	for _, p := range t.m.Params {
		mt, err := nn.NewTensor(t.d, "adam.m."+p.Spec.Name, p.Spec.Shape...)
		if err != nil {
			return err
		}
		t.mstate = append(t.mstate, mt)
		vt, err := nn.NewTensor(t.d, "adam.v."+p.Spec.Name, p.Spec.Shape...)
		if err != nil {
			return err
		}
		t.vstate = append(t.vstate, vt)
		grads = append(grads, p.G)
		args.Params = append(args.Params, p.W)
		args.Grads = append(args.Grads, p.G)
		args.M = append(args.M, mt)
		args.V = append(args.V, vt)
		args.Decay = append(args.Decay, p.Spec.Decay)
	}
	if t.norm, err = nn.NewGradNorm(t.d, grads, float32(o.ClipNorm)); err != nil {
		return err
	}
	args.ClipScale = t.norm.Scale()
	if t.opt, err = nn.NewAdamW(t.d, args); err != nil {
		return err
	}
	slot := int64(4 * (t.m.Cfg.LossSlots() + 1))
	if t.lossBuf, err = t.d.NewBuffer("losses", slot*lossRing, gpu.UsageTensor); err != nil {
		return err
	}
	if t.train, t.eval, err = openStreams(o); err != nil {
		return err
	}
	if t.eval == nil {
		t.o.EvalEvery = 0 // a token file without --eval-data: no held-out loss
	} else if t.evalAt, err = t.eval.State(); err != nil {
		return err
	}
	b, err := data.NewBatch(o.Batch, o.SeqLen, c.PatchDim)
	if err != nil {
		return err
	}
	t.batch = *b
	return nil
}

// openStreams opens the training and held-out data: the synthetic stream's
// two splits, a dataset's two splits, or token files; the vocabulary must
// be the model's.
func openStreams(o Options) (train, eval data.Stream, err error) {
	c := o.Config
	vocab := data.VocabOf(c)
	if o.Data != "" && o.Data != "synthetic" && dataset.IsDataset(o.Data) {
		if o.EvalData != "" {
			return nil, nil, fmt.Errorf("trainer: --eval-data %s: the dataset %s brings its own held-out split", o.EvalData, o.Data)
		}
		ds, err := dataset.Open(o.Data)
		if err != nil {
			return nil, nil, err
		}
		for _, split := range []string{"train", "eval"} {
			f, err := ds.OpenSplit(split)
			if err == nil {
				err = checkTokFile(f, ds.Path(ds.Manifest.Splits[split].File), c)
			}
			if err != nil {
				if train != nil {
					train.(io.Closer).Close()
				}
				return nil, nil, err
			}
			if split == "train" {
				train = f
			} else {
				eval = f
			}
		}
		return train, eval, nil
	}
	if o.Data != "" && o.Data != "synthetic" {
		open := func(path string) (data.Stream, error) {
			f, err := data.OpenTokFile(path)
			if err != nil {
				return nil, err
			}
			if err := checkTokFile(f, path, c); err != nil {
				f.Close()
				return nil, err
			}
			return f, nil
		}
		if train, err = open(o.Data); err != nil {
			return nil, nil, err
		}
		if o.EvalData != "" {
			if eval, err = open(o.EvalData); err != nil {
				return nil, nil, err
			}
		}
		return train, eval, nil
	}
	gens := make([]string, len(c.Modalities))
	for i, m := range c.Modalities {
		gens[i] = m.Synthetic
	}
	mk := func(split string) (data.Stream, error) {
		return data.NewSynthetic(data.SynthConfig{Generators: gens, Vocab: vocab, Seed: o.Seed, Split: split, P: c.PatchDim})
	}
	if train, err = mk("train"); err != nil {
		return nil, nil, err
	}
	if eval, err = mk("eval"); err != nil {
		return nil, nil, err
	}
	return train, eval, nil
}

// checkTokFile checks that a token file fits the model: the same
// modalities and vocabulary ranges, continuous where the model is, and
// patches of the model's size.
func checkTokFile(f *data.TokFile, path string, c mom.Config) error {
	want, got := data.VocabOf(c), f.Vocab()
	if !got.Equal(want) {
		return fmt.Errorf("trainer: %s: its vocabulary (%v) does not match the model's (%v)", path, got, want)
	}
	for m, mod := range c.Modalities {
		if f.Continuous()[m] != mod.Continuous {
			return fmt.Errorf("trainer: %s: the file's %s positions are %s, the model's %s", path, mod.Name,
				map[bool]string{true: "continuous", false: "discrete"}[f.Continuous()[m]], map[bool]string{true: "continuous", false: "discrete"}[mod.Continuous])
		}
	}
	if f.Patch().Dim != c.PatchDim {
		return fmt.Errorf("trainer: %s: the file's patches have %d values, the model's %d", path, f.Patch().Dim, c.PatchDim)
	}
	return nil
}

// toModelBatch converts a data batch: target modalities from the
// vocabulary, and the noising of continuous patches.
func (t *trainer) toModelBatch(b *data.Batch) error {
	c := t.o.Config
	T := b.B * b.L
	mb := &t.mb
	if len(mb.Inputs) != T {
		mb.Inputs, mb.Targets, mb.TargetModality = make([]uint32, T), make([]uint32, T), make([]uint32, T)
		if c.Continuous() {
			mb.NoisyPatches, mb.Noise = make([]float32, T*c.PatchDim), make([]float32, T*c.PatchDim)
		}
	}
	mb.Modality = b.Modality
	copy(mb.Inputs, b.Inputs)
	copy(mb.Targets, b.Targets)
	for i, tg := range b.Targets {
		mb.TargetModality[i] = 0
		if tg == nn.IgnoreIndex {
			continue
		}
		mod, ok := c.ModalityOf(tg)
		if !ok {
			return fmt.Errorf("trainer: target id %d at position %d is outside the vocabulary (%d)", tg, i, c.Vocab)
		}
		mb.TargetModality[i] = uint32(mod)
		if c.Modalities[mod].Continuous {
			mb.Targets[i] = nn.IgnoreIndex // continuous positions are trained by the diffusion loss
		}
	}
	if c.Continuous() {
		if err := t.noise(b); err != nil {
			return err
		}
	}
	return nil
}

// noise draws one noise level per span (a contiguous run of positions of a
// continuous modality) and forms x_t = sqrt(abar)·x0 + sqrt(1-abar)·eps
// with the cosine schedule abar(s) = cos²(π/2 · s); the positions' input id
// is the noise level's token, from the modality's range.
func (t *trainer) noise(b *data.Batch) error {
	c := t.o.Config
	P := c.PatchDim
	if b.P != P || len(b.Patches) != b.B*b.L*P {
		return fmt.Errorf("trainer: data gave patches of size %d (%d values), the model wants %d", b.P, len(b.Patches), P)
	}
	mb := &t.mb
	for s := 0; s < b.B; s++ {
		var abar float64
		var bucket uint32
		prev := -1 // modality of the previous continuous position in this span
		for l := 0; l < b.L; l++ {
			i := s*b.L + l
			row := mb.NoisyPatches[i*P : (i+1)*P]
			nrow := mb.Noise[i*P : (i+1)*P]
			mod := int(b.Modality[i])
			if !c.Modalities[mod].Continuous {
				clear(row)
				clear(nrow)
				prev = -1
				continue
			}
			if mod != prev {
				bucket = uint32(t.rng.IntN(mom.TimestepBuckets))
				u := (float64(bucket) + 0.5) / mom.TimestepBuckets
				abar = math.Pow(math.Cos(math.Pi/2*u), 2)
			}
			prev = mod
			mb.Inputs[i] = uint32(c.VocabRanges[mod][0]) + bucket
			x0 := b.Patches[i*P : (i+1)*P]
			sa, sn := math.Sqrt(abar), math.Sqrt(1-abar)
			for k := range row {
				e := t.rng.NormFloat64()
				nrow[k] = float32(e)
				row[k] = float32(sa*float64(x0[k]) + sn*e)
			}
		}
	}
	return nil
}

// decode waits for a step's losses and returns them (and the grad norm).
func (t *trainer) decode(p inflight) (mom.Losses, float64, error) {
	raw, err := p.rb.Wait()
	if err != nil {
		return mom.Losses{}, 0, err
	}
	v := gpu.Float32s(raw)
	n := t.m.Cfg.LossSlots()
	l, err := t.m.Cfg.DecodeLosses(v[:n])
	if err != nil {
		return l, 0, fmt.Errorf("step %d: %w", p.step, err)
	}
	return l, float64(v[n]), nil
}

func (t *trainer) loop(ctx context.Context) (*Result, error) {
	o := t.o
	step := 0
	if o.Resume {
		var err error
		if step, err = t.restore(); err != nil {
			return nil, err
		}
	} else {
		if err := t.m.InitParams(o.Seed); err != nil {
			return nil, err
		}
		r := t.d.NewRecorder()
		for i := range t.mstate {
			r.Clear(t.mstate[i].Buf, 0, t.mstate[i].Bytes())
			r.Clear(t.vstate[i].Buf, 0, t.vstate[i].Bytes())
		}
		if err := r.Submit(); err != nil {
			return nil, err
		}
		t.pcg = rand.NewPCG(o.Seed, 0x7472)
		t.rng = rand.New(t.pcg)
	}
	var err error
	if t.metrics, err = OpenMetrics(filepath.Join(o.Out, "metrics.jsonl"), map[bool]int{true: step, false: -1}[o.Resume]); err != nil {
		return nil, err
	}
	if err := t.writeConfig(); err != nil {
		return nil, err
	}
	if o.Progress != nil {
		t.progress = NewProgress(o.Progress, o.Steps, o.Terminal)
		t.progress.Modalities = t.m.Cfg.ModalityNames()
		defer t.progress.Done()
	}
	res := &Result{}
	var queue []inflight
	slotBytes := int64(4 * (t.m.Cfg.LossSlots() + 1))
	tokensPerStep := float64(o.Batch * o.SeqLen * o.Accum)
	lastDone, lastStep := time.Now(), step
	flush := func(keep int) error {
		for len(queue) > keep {
			p := queue[0]
			queue = queue[1:]
			l, gnorm, err := t.decode(p)
			if err != nil {
				return fmt.Errorf("trainer: stopping: %w (the last good checkpoint in %s is untouched)", err, filepath.Join(o.Out, "checkpoints"))
			}
			now := time.Now()
			dt := now.Sub(lastDone).Seconds() / float64(max(1, p.step-lastStep))
			lastDone, lastStep = now, p.step
			res.Final = l
			res.TokensPerSec = tokensPerStep / dt
			if p.step%o.LogEvery == 0 || p.step == o.Steps {
				rec := t.record(p.step, "train", l)
				rec["lr"] = p.lr
				rec["grad_norm"] = gnorm
				rec["step_ms"] = dt * 1e3
				rec["tokens_per_s"] = tokensPerStep / dt
				if err := t.emit(rec); err != nil {
					return err
				}
			}
			if t.progress != nil {
				t.progress.Update(p.step, l.PerModality, tokensPerStep/dt)
			}
		}
		return nil
	}
	last := o.Steps
	if o.StopAfter > 0 && o.StopAfter < last {
		last = o.StopAfter
	}
	for step < last {
		if err := ctx.Err(); err != nil {
			if ferr := flush(0); ferr != nil {
				return res, ferr
			}
			return res, err
		}
		step++
		lr := LR(step, o.Warmup, o.Steps, o.LR, o.MinLR)
		if err := t.opt.SetStep(float32(lr), step); err != nil {
			return res, err
		}
		slot := int64(step%lossRing) * slotBytes
		for micro := 0; micro < o.Accum; micro++ {
			if err := t.train.Next(&t.batch); err != nil {
				return res, fmt.Errorf("trainer: step %d: data: %w", step, err)
			}
			if err := t.toModelBatch(&t.batch); err != nil {
				return res, err
			}
			if err := t.m.SetBatch(&t.mb, o.Accum); err != nil {
				return res, fmt.Errorf("trainer: step %d: %w", step, err)
			}
			r := t.d.NewRecorder()
			if micro == 0 {
				t.m.RecordZeroGrads(r)
			}
			t.m.RecordForward(r)
			t.m.RecordBackward(r)
			if micro == o.Accum-1 {
				t.m.RecordLosses(r, t.lossBuf, slot)
				t.norm.Record(r)
				r.Copy(t.norm.Norm().Buf, 0, t.lossBuf, slot+slotBytes-4, 4)
				t.opt.Record(r)
			}
			if err := r.Submit(); err != nil {
				return res, fmt.Errorf("trainer: step %d: %w", step, err)
			}
		}
		rb, err := t.lossBuf.ReadAsync(slot, slotBytes)
		if err != nil {
			return res, err
		}
		queue = append(queue, inflight{step: step, rb: rb, lr: lr})
		// Read losses two steps late so the GPU is never idle waiting.
		if err := flush(2); err != nil {
			return res, err
		}
		if o.EvalEvery > 0 && (step%o.EvalEvery == 0 || step == last) {
			if err := flush(0); err != nil {
				return res, err
			}
			l, err := t.evaluate()
			if err != nil {
				return res, fmt.Errorf("trainer: eval at step %d: %w", step, err)
			}
			res.Eval = l
			if err := t.emit(t.record(step, "eval", l)); err != nil {
				return res, err
			}
		}
		if testHookAfterStep != nil {
			testHookAfterStep(t, step)
		}
		if o.CkptEvery > 0 && (step%o.CkptEvery == 0 || step == last) {
			if err := flush(0); err != nil {
				return res, err
			}
			path, err := t.checkpoint(step)
			if err != nil {
				return res, err
			}
			res.Checkpoint = path
		}
	}
	if err := flush(0); err != nil {
		return res, err
	}
	res.Steps = step
	return res, nil
}

func (t *trainer) record(step int, split string, l mom.Losses) Record {
	tokens := int64(step) * int64(t.o.Batch*t.o.SeqLen*t.o.Accum)
	rec := Record{"step": step, "split": split, "tokens": tokens, "flops": float64(tokens) * t.flopsTok,
		"wall_s": t.wallBase + time.Since(t.start).Seconds(), "loss": l.Total}
	for k, v := range l.PerModality {
		rec["loss_"+k] = v
	}
	return rec
}

func (t *trainer) emit(rec Record) error {
	if err := t.metrics.Write(rec); err != nil {
		return fmt.Errorf("trainer: writing metrics: %w", err)
	}
	if t.o.OnRecord != nil {
		t.o.OnRecord(rec)
	}
	return nil
}

// evaluate runs the held-out batches (forward only) and averages the sums.
func (t *trainer) evaluate() (mom.Losses, error) {
	if err := t.eval.Restore(t.evalAt); err != nil {
		return mom.Losses{}, err
	}
	// Evaluation noise has its own generator so that evaluating does not
	// change the training run.
	trainRNG := t.rng
	t.rng = rand.New(rand.NewPCG(t.o.Seed, 0x6576616c))
	defer func() { t.rng = trainRNG }()
	n := t.m.Cfg.LossSlots()
	acc := make([]float32, n)
	for i := 0; i < t.o.EvalBatches; i++ {
		if err := t.eval.Next(&t.batch); err != nil {
			return mom.Losses{}, err
		}
		if err := t.toModelBatch(&t.batch); err != nil {
			return mom.Losses{}, err
		}
		if err := t.m.SetBatch(&t.mb, 1); err != nil {
			return mom.Losses{}, err
		}
		r := t.d.NewRecorder()
		t.m.RecordForward(r)
		t.m.RecordLosses(r, t.lossBuf, 0)
		if err := r.Submit(); err != nil {
			return mom.Losses{}, err
		}
		v, err := t.lossBuf.ReadFloat32(0, n)
		if err != nil {
			return mom.Losses{}, err
		}
		for k := range acc {
			acc[k] += v[k]
		}
	}
	return t.m.Cfg.DecodeLosses(acc)
}

func (t *trainer) writeConfig() error {
	c := t.o.Config
	rc := runConfig{Name: filepath.Base(t.o.Out), Dense: c.Splits.Dense(), Splits: splitNames(c.Splits),
		Modalities: c.ModalityNames(), Model: c, Batch: t.o.Batch, SeqLen: t.o.SeqLen, Accum: t.o.Accum, Steps: t.o.Steps,
		LR: t.o.LR, MinLR: t.o.MinLR, Warmup: t.o.Warmup, Seed: t.o.Seed, Data: t.o.Data, Device: t.d.String()}
	b, err := json.MarshalIndent(rc, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(t.o.Out, "config.json"), append(b, '\n'), 0o644)
}

// DatasetConfig fits a model config to the data option: for a dataset
// folder, the dataset's vocabulary and patch size (the setting must be the
// dataset's); otherwise c unchanged.
func DatasetConfig(c mom.Config, dataOpt string) (mom.Config, error) {
	if dataOpt == "" || dataOpt == "synthetic" || !dataset.IsDataset(dataOpt) {
		return c, nil
	}
	ds, err := dataset.Open(dataOpt)
	if err != nil {
		return c, err
	}
	return ds.ModelConfig(c)
}
