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
	"strings"
	"time"

	"mom/gpu"
	"mom/mom"
	"mom/nn"
	"mom/trainer/data"
	"mom/trainer/dataset"
	"mom/trainer/mpi"
	"mom/trainer/runfolder"
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

	Progress io.Writer `json:"-"` // progress bar or log lines (nil: none)
	Terminal bool      `json:"-"` // Progress is a terminal
	// OnRecord, if set, receives every metrics record (the live window);
	// it must not block.
	OnRecord func(Record) `json:"-"`

	// Schedule is the learning rate's course after the warmup: cosine
	// ("" too), linear or constant (see Schedule).
	Schedule string
	// ResumeFrom names the checkpoint to resume from: a step folder of the
	// run (step_N, or its path); "" resumes from the newest intact one. It
	// implies Resume.
	ResumeFrom string

	// World is the data-parallel job this process is a rank of (package
	// trainer/mpi; nil, or a world of one: it trains alone). Each rank
	// trains on its share of every batch (Batch must divide by the ranks),
	// the gradients are summed over the ranks, every rank takes the same
	// optimizer step, and rank 0 alone writes the run folder; the same
	// command with any number of ranks trains the same model.
	World *mpi.World `json:"-"`
	// BucketBytes is the size of the gradient buckets summed over the
	// ranks while the backward runs (0: DefaultBucketBytes).
	BucketBytes int64
	// GradExchange is how the gradients and their sums cross between the
	// device and the host in data-parallel training: ExchangeF32 ("" too)
	// or ExchangeBF16 (half the bytes, each rank's gradients and the sums
	// rounded to bfloat16). One process alone exchanges nothing.
	GradExchange string
	// EmbeddingGather is how data-parallel training sums a tied
	// embedding's gradient: GatherOn sums the table's gradient (the head's
	// part) after the head's backward and gathers every rank's token rows
	// after the last stage, which every rank then scatters into it;
	// GatherOff sums the whole table after the backward; GatherAuto ("" too)
	// gathers when the rows are at most half the table's bytes.
	EmbeddingGather string
	// CheckEvery: the ranks compare their parameters' checksums every
	// CheckEvery steps, at the start and before every checkpoint (0:
	// DefaultCheckEvery).
	CheckEvery int
	// SampleEvery, if positive, takes samples every that many steps and at
	// the run's last (samples.go): SampleN per modality (1 to 1024),
	// continuing SamplePrompt ("" starts a document), into
	// RUN/samples/step_N. It needs a dataset folder as Data.
	SampleEvery, SampleN int
	SamplePrompt         string
	// Recompute is "on", "off" or "" (auto: on when it saves 2 GiB or
	// more): see mom.ModelOptions.Recompute. The numbers do not change.
	Recompute string
	// Precision is "f32" ("" too) or "f16": mixed precision, float16
	// copies of the weights and activations into the GEMMs and the conv,
	// with dynamic loss scaling (precision.go); the adapter must offer
	// shader-f16.
	Precision string
	// LossScale is the first loss scale of mixed precision, a power of two
	// (0: nn.DefaultLossScale, 2^16); LossScaleGrowth the clean steps after
	// which it doubles (0: nn.DefaultLossScaleGrowth, 2000).
	LossScale       float64
	LossScaleGrowth int
}

// recompute resolves Options.Recompute (auto counts a rank's share of the
// batch).
func (o Options) recompute() bool {
	switch o.Recompute {
	case "on":
		return true
	case "off":
		return false
	}
	b := o.Batch
	if o.World != nil && o.World.Size() > 1 {
		b /= o.World.Size()
	}
	return o.Config.RecomputeSaves(b, o.SeqLen) >= 2<<30
}

// DefaultOptions are sensible settings for the tiny preset on lavapipe.
func DefaultOptions() Options {
	return Options{Steps: 300, Batch: 8, SeqLen: 128, Accum: 1, LR: 3e-3, MinLR: 3e-4, Warmup: 20,
		WeightDecay: 0.1, ClipNorm: 1, Beta1: 0.9, Beta2: 0.95, AdamEps: 1e-8, Seed: 1,
		EvalEvery: 50, EvalBatches: 2, LogEvery: 1, CkptEvery: 100, Keep: 2, Data: "synthetic", SampleN: DefaultSampleN}
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
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"--lr", o.LR}, {"--min-lr", o.MinLR}, {"--wd", o.WeightDecay}, {"--clip", o.ClipNorm},
		{"AdamW beta1", o.Beta1}, {"AdamW beta2", o.Beta2}, {"AdamW epsilon", o.AdamEps}} {
		if math.IsNaN(f.v) || math.IsInf(f.v, 0) {
			return fmt.Errorf("trainer: %s %v must be a finite number", f.name, f.v)
		}
	}
	switch {
	case !(o.LR > 0) || o.MinLR < 0 || o.MinLR > o.LR:
		return fmt.Errorf("trainer: learning rates --lr %g --min-lr %g: want 0 <= min-lr <= lr and lr > 0", o.LR, o.MinLR)
	case o.Warmup < 0:
		return fmt.Errorf("trainer: --warmup %d must not be negative", o.Warmup)
	case o.Warmup > o.Steps:
		return fmt.Errorf("trainer: --warmup %d is longer than the run (--steps %d): lower --warmup", o.Warmup, o.Steps)
	case o.WeightDecay < 0 || o.ClipNorm < 0:
		return fmt.Errorf("trainer: --wd %g and --clip %g must not be negative", o.WeightDecay, o.ClipNorm)
	case !(o.Beta1 >= 0 && o.Beta1 < 1 && o.Beta2 >= 0 && o.Beta2 < 1 && o.AdamEps > 0):
		return fmt.Errorf("trainer: AdamW betas %g, %g must lie in [0, 1) and epsilon %g be positive", o.Beta1, o.Beta2, o.AdamEps)
	case o.LogEvery <= 0:
		return fmt.Errorf("trainer: --log-every %d must be positive", o.LogEvery)
	case o.EvalEvery < 0:
		return fmt.Errorf("trainer: --eval-every %d must not be negative (0 turns evaluation off)", o.EvalEvery)
	case o.EvalEvery > 0 && o.EvalBatches <= 0:
		return fmt.Errorf("trainer: --eval-batches %d must be at least 1 (or turn evaluation off with --eval-every 0)", o.EvalBatches)
	case o.CkptEvery < 0:
		return fmt.Errorf("trainer: --ckpt-every %d must not be negative (0: a checkpoint only at the end)", o.CkptEvery)
	case o.Keep < 0:
		return fmt.Errorf("trainer: --keep %d must not be negative (0 keeps every checkpoint)", o.Keep)
	case o.StopAfter < 0:
		return fmt.Errorf("trainer: --stop-after %d must not be negative", o.StopAfter)
	case !validSchedule(o.Schedule):
		return fmt.Errorf("trainer: --lr-schedule %q: want one of %s", o.Schedule, strings.Join(ScheduleKinds, ", "))
	case o.Recompute != "" && o.Recompute != "auto" && o.Recompute != "on" && o.Recompute != "off":
		return fmt.Errorf("trainer: --recompute %q: want auto, on or off", o.Recompute)
	case o.EvalData != "" && (o.Data == "" || o.Data == "synthetic"):
		return fmt.Errorf("trainer: --eval-data %s needs token-file --data; the synthetic stream has its own held-out split", o.EvalData)
	case o.BucketBytes < 0 || o.CheckEvery < 0:
		return fmt.Errorf("trainer: --bucket-mb %g and --check-every %d must not be negative", float64(o.BucketBytes)/(1<<20), o.CheckEvery)
	case o.World != nil && o.Batch%o.World.Size() != 0:
		return fmt.Errorf("trainer: --batch %d does not divide among the %d ranks: each rank takes an equal share of every batch (give a multiple of %d)",
			o.Batch, o.World.Size(), o.World.Size())
	}
	if err := o.ValidateExchange(); err != nil {
		return err
	}
	if err := o.validatePrecision(); err != nil {
		return err
	}
	return o.checkSampling()
}

// ValidateExchange checks the data-parallel exchange choices,
// GradExchange and EmbeddingGather (Validate checks them too; mom train
// checks them before an MPI job starts).
func (o Options) ValidateExchange() error {
	switch {
	case o.GradExchange != "" && o.GradExchange != ExchangeF32 && o.GradExchange != ExchangeBF16:
		return fmt.Errorf("trainer: --grad-exchange %q: want %s or %s", o.GradExchange, ExchangeF32, ExchangeBF16)
	case o.EmbeddingGather != "" && o.EmbeddingGather != GatherAuto && o.EmbeddingGather != GatherOn && o.EmbeddingGather != GatherOff:
		return fmt.Errorf("trainer: --embedding-gather %q: want %s, %s or %s", o.EmbeddingGather, GatherAuto, GatherOn, GatherOff)
	}
	return nil
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

// Result says how far a run got, finished or not.
type Result struct {
	// Steps is the last step completed (its losses read back and found
	// finite), counted from the run's start: a resumed run continues the
	// count. Start is the step this process started from (0, or the
	// checkpoint it resumed) and Total the run's planned steps.
	Steps, Start, Total int
	Final               mom.Losses // last training losses
	Eval                mom.Losses // last held-out losses
	// TokensPerSec is the mean training throughput of this process's steps
	// after its first (the warm-up): tokens over the time the steps took,
	// evaluations and checkpoints left out; the definition of `mom bench
	// step`. Zero when the process ran fewer than two steps.
	TokensPerSec float64
	// Checkpoint is the newest checkpoint on disk: written by this process,
	// or the one it resumed from; "" when the run has none.
	Checkpoint string
	// SampleSeconds is the time this process paused training to take
	// samples (Options.SampleEvery).
	SampleSeconds float64
	// Skipped counts the steps of this process that mixed precision's loss
	// scaling skipped (an overflow; their losses are in Final as any
	// other's).
	Skipped int
}

// Trainer holds a run's state.
type trainer struct {
	o        Options
	d        *gpu.Device
	m        *mom.Model
	norm     *nn.GradNorm
	opt      *nn.AdamW
	ls       *nn.LossScale // mixed precision's loss scale (nil in float32)
	mstate   []*nn.Tensor  // AdamW first moments, per parameter
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
	dp       *dataParallel // nil when training alone
	start    time.Time
	firstAt  time.Time // when the first step of this process began to be recorded
	wallBase float64   // seconds of wall time before a resume
	flopsTok float64

	sched    Schedule
	res      *Result
	wrote    bool // metrics or a checkpoint were written: a failed start leaves the folder
	ckptStep int  // the step of the newest checkpoint on disk (-1: none)
	// Throughput: the stopwatch runs while steps run (not during
	// evaluations and checkpoints); lastRec is its reading when the losses
	// of lastStep came back, timedFrom when those of timedAt (this
	// process's first step, the warm-up) did.
	watch              stopwatch
	timedAt, lastStep  int
	timedFrom, lastRec float64

	samples *sampling // samples while training (nil: none)

	skipsInARow int // mixed precision: the latest steps skipped in a row
}

const lossRing = 8

// testHookAfterStep, when set by a test, runs after each step is submitted.
var testHookAfterStep func(t *trainer, step int)

// inflight is a step whose losses are on their way to the host.
type inflight struct {
	step int
	rb   *gpu.Readback
	lr   float64
	comm commStats // data-parallel: the step's communication
	at   float64   // data-parallel: the stopwatch when the step ended on the host
	// doneAt, when positive, is the stopwatch's reading when the losses
	// arrived, if something waited for them before they were decoded
	// (sampling does).
	doneAt float64
}

// Train runs the loop on device d, in the run folder o.Out, which it holds
// locked (runfolder.Acquire) until it returns: a second training into the
// same folder is refused.
//
// Cancelling ctx stops the run cleanly: the steps submitted are finished,
// a checkpoint of the last one is written (unless one exists), and the
// error wraps context.Cause(ctx). Any other early stop returns the error
// that caused it. The Result, returned whenever the run started, says how
// far it got and which checkpoint exists. A run that fails before its first
// metrics record leaves no folder behind if it made it.
func Train(ctx context.Context, d *gpu.Device, o Options) (res *Result, err error) {
	if o.ResumeFrom != "" {
		o.Resume = true
	}
	if err := o.Validate(); err != nil {
		return nil, err
	}
	_, statErr := os.Stat(o.Out)
	existed := statErr == nil
	if o.Resume && !existed {
		return nil, fmt.Errorf("trainer: --resume: %s does not exist: there is no run to resume (start it without --resume)", o.Out)
	}
	if err := mom.CheckPrecision(d, o.precision()); err != nil {
		return nil, err // before anything is written
	}
	t := &trainer{o: o, d: d, start: time.Now(), flopsTok: o.Config.StepFLOPs().TrainPerToken}
	// The data first: a missing or unfitting file is refused before the
	// run folder is made.
	if t.train, t.eval, err = openStreams(o); err != nil {
		return nil, err
	}
	if !t.leader() {
		// Another rank of a data-parallel run: rank 0 owns the folder (and
		// takes the samples).
		defer t.close()
		if err := t.setup(); err != nil {
			return nil, err
		}
		return t.loop(ctx)
	}
	if t.samples, err = prepareSampling(o); err != nil {
		t.close()
		return nil, err
	}
	if err := os.MkdirAll(o.Out, 0o777); err != nil {
		t.close()
		return nil, fmt.Errorf("trainer: %w", err)
	}
	lock, err := runfolder.Acquire(o.Out)
	if err != nil {
		t.close()
		if !existed {
			os.RemoveAll(o.Out)
		}
		return nil, fmt.Errorf("trainer: %w", err)
	}
	defer func() {
		t.close()
		if err != nil && !existed && !t.wrote {
			os.RemoveAll(o.Out) // a failed start leaves nothing behind
		}
		lock.Release()
	}()
	if err := t.setup(); err != nil {
		return nil, err
	}
	t.slowPhase("built the model, its optimizer state and the data streams", t.start)
	return t.loop(ctx)
}

// slowPhaseS is the time above which a set-up phase says how long it took.
const slowPhaseS = 2.0

// slowPhase logs how long a set-up phase begun at from took, when it took
// slowPhaseS or more: a big model's start shows where its time goes.
func (t *trainer) slowPhase(what string, from time.Time) {
	if s := time.Since(from).Seconds(); s >= slowPhaseS {
		t.logf("%s in %.1f s (%.1f s since the start; mom holds %s of device memory)", what, s, time.Since(t.start).Seconds(), gpu.GiB(t.d.Memory().Live))
	}
}

// leader reports whether this process writes the run folder: it trains
// alone, or it is rank 0.
func (t *trainer) leader() bool { return t.o.World == nil || t.o.World.Rank() == 0 }

// ranks is the number of processes training the run.
func (t *trainer) ranks() int {
	if t.o.World == nil {
		return 1
	}
	return t.o.World.Size()
}

func (t *trainer) close() {
	if t.dp != nil {
		t.dp.release()
		t.dp = nil
	}
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
	t.stopSamples()
	if t.opt != nil {
		t.opt.Release()
	}
	if t.norm != nil {
		t.norm.Release()
	}
	for _, x := range append(t.mstate, t.vstate...) {
		x.Release()
	}
	if t.m != nil {
		t.m.Release()
	}
	t.ls.Release()
	t.opt, t.norm, t.mstate, t.vstate, t.m, t.lossBuf, t.train, t.eval, t.ls = nil, nil, nil, nil, nil, nil, nil, nil, nil
}

func (t *trainer) setup() error {
	o, c := t.o, t.o.Config
	var err error
	if err = t.newLossScale(); err != nil {
		return err
	}
	mo := mom.ModelOptions{Recompute: o.recompute(), Precision: o.precision(), LossScale: t.ls}
	if t.m, err = mom.NewModelWith(t.d, c, o.Batch/t.ranks(), o.SeqLen, mo); err != nil {
		return err
	}
	var grads []*nn.Tensor
	args := nn.AdamWArgs{Beta1: float32(o.Beta1), Beta2: float32(o.Beta2), Eps: float32(o.AdamEps), WeightDecay: float32(o.WeightDecay)}
	for _, p := range t.m.Params {
		mt, err := nn.NewTensorIn(t.d, gpu.MemOptimizer, "adam.m."+p.Spec.Name, p.Spec.Shape...)
		if err != nil {
			return err
		}
		t.mstate = append(t.mstate, mt)
		vt, err := nn.NewTensorIn(t.d, gpu.MemOptimizer, "adam.v."+p.Spec.Name, p.Spec.Shape...)
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
	if t.ls != nil {
		t.norm, err = nn.NewGradNormScaled(t.d, grads, float32(o.ClipNorm), t.ls)
	} else {
		t.norm, err = nn.NewGradNorm(t.d, grads, float32(o.ClipNorm))
	}
	if err != nil {
		return err
	}
	args.ClipScale = t.norm.Scale()
	if t.opt, err = nn.NewAdamW(t.d, args); err != nil {
		return err
	}
	if t.lossBuf, err = t.d.NewBuffer("losses", t.slotBytes()*lossRing, gpu.UsageTensor); err != nil {
		return err
	}
	if t.train == nil {
		if t.train, t.eval, err = openStreams(o); err != nil {
			return err
		}
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
	if t.ranks() > 1 {
		if t.dp, err = newDataParallel(t); err != nil {
			return err
		}
	}
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

// decode waits for a step's losses and returns them (and the grad norm,
// and in mixed precision the loss scale and whether the step was skipped).
func (t *trainer) decode(p inflight) (mom.Losses, stepStats, error) {
	raw, err := p.rb.Wait()
	if err != nil {
		return mom.Losses{}, stepStats{}, err
	}
	v := gpu.Float32s(raw)
	n := t.m.Cfg.LossSlots()
	l, err := t.m.Cfg.DecodeLosses(v[:n])
	if err != nil {
		return l, stepStats{}, fmt.Errorf("step %d: %w", p.step, err)
	}
	return l, decodeTail(v[n:]), nil
}

func (t *trainer) loop(ctx context.Context) (*Result, error) {
	o := t.o
	t.res, t.ckptStep = &Result{Total: o.Steps}, -1
	var step int
	var err error
	if t.dp != nil {
		step, err = t.dp.begin(t)
	} else {
		step, err = t.begin()
	}
	if err != nil {
		return nil, err
	}
	res := t.res
	res.Start, res.Steps = step, step
	if o.Progress != nil {
		t.progress = NewProgress(o.Progress, o.Steps, o.Terminal)
		t.progress.Modalities = t.m.Cfg.ModalityNames()
		defer t.progress.Done()
	}
	if err := t.startSamples(step); err != nil {
		return res, err
	}
	var queue []inflight
	slotBytes := t.slotBytes()
	tokensPerStep := float64(o.Batch * o.SeqLen * o.Accum)
	t.lastStep, t.timedAt = step, -1
	flush := func(keep int) error {
		for len(queue) > keep {
			p := queue[0]
			queue = queue[1:]
			l, st, err := t.decode(p)
			if err != nil {
				return fmt.Errorf("trainer: stopping: %w; %s", err, t.ckptNote())
			}
			if err := t.countSkip(p.step, st); err != nil {
				return err
			}
			now := t.watch.elapsed()
			if p.at > 0 {
				// Data-parallel: the step ended on the host (its losses
				// were summed there), not when its readback is read.
				now = p.at
			} else if p.doneAt > 0 {
				now = p.doneAt
			}
			dt := (now - t.lastRec) / float64(max(1, p.step-t.lastStep))
			t.lastRec, t.lastStep = now, p.step
			if t.timedAt < 0 {
				// The first step of this process (pipelines compiled, caches
				// cold) is the warm-up: the mean throughput starts after it.
				t.timedAt, t.timedFrom = p.step, now
				t.slowPhase("the first step (its pipelines compiled) done", t.firstAt)
			}
			res.Final, res.Steps = l, p.step
			if p.step%o.LogEvery == 0 || p.step == o.Steps {
				rec := t.record(p.step, "train", l)
				rec["lr"] = p.lr
				t.annotatePrecision(rec, st)
				rec["step_ms"] = dt * 1e3
				rec["tokens_per_s"] = tokensPerStep / dt // the whole job's: every rank's tokens
				if t.dp != nil {
					rec["ranks"] = t.dp.size
					rec["comm_ms"] = p.comm.comm.Seconds() * 1e3
					rec["comm_overlap_ms"] = p.comm.overlap.Seconds() * 1e3
					rec["comm_exposed_ms"] = p.comm.exposed.Seconds() * 1e3
					rec["upload_ms"] = p.comm.upload.Seconds() * 1e3
				}
				t.annotateSamples(rec, p.step)
				if err := t.emit(rec); err != nil {
					return err
				}
			}
			if t.progress != nil {
				tps := t.meanTokensPerSec()
				if tps == 0 {
					tps = tokensPerStep / dt
				}
				t.progress.Update(p.step, l.PerModality, tps)
			}
		}
		return nil
	}
	// paused runs fn with the throughput's stopwatch stopped, after every
	// step submitted so far has finished: evaluations and checkpoints are
	// not training time.
	paused := func(fn func() error) error {
		if err := flush(0); err != nil {
			return err
		}
		t.watch.stop()
		defer t.watch.start()
		return fn()
	}
	last := o.Steps
	if o.StopAfter > 0 && o.StopAfter < last {
		last = o.StopAfter
	}
	if t.dp != nil {
		t.logf("%s", t.dp.describe(t))
	}
	t.firstAt = time.Now()
	t.watch.start()
	for step < last {
		if (t.dp == nil && ctx.Err() != nil) || (t.dp != nil && t.dp.stop) {
			return t.stopEarly(ctx, flush)
		}
		step++
		lr := t.sched.At(step)
		if err := t.opt.SetStep(float32(lr), step); err != nil {
			return res, err
		}
		slot := int64(step%lossRing) * slotBytes
		var comm commStats
		if t.dp != nil {
			if comm, err = t.dp.step(ctx, t, step, slot, slotBytes); err != nil {
				return res, err
			}
		}
		for micro := 0; t.dp == nil && micro < o.Accum; micro++ {
			if err := t.nextTrainBatch(step); err != nil {
				return res, err
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
				t.recordStepTail(r, slot)
				t.opt.Record(r)
			}
			if err := r.Submit(); err != nil {
				return res, fmt.Errorf("trainer: step %d: %w; %s", step, err, t.ckptNote())
			}
		}
		rb, err := t.lossBuf.ReadAsync(slot, slotBytes)
		if err != nil {
			return res, err
		}
		at := 0.0
		if t.dp != nil {
			at = t.watch.elapsed()
		}
		queue = append(queue, inflight{step: step, rb: rb, lr: lr, comm: comm, at: at})
		// Read losses two steps late so the GPU is never idle waiting.
		if err := flush(2); err != nil {
			return res, err
		}
		if err := t.sampleAt(step, last, queue); err != nil {
			return res, err
		}
		if o.EvalEvery > 0 && (step%o.EvalEvery == 0 || step == last) {
			err := paused(func() error {
				l, err := t.evaluate()
				if err != nil {
					return fmt.Errorf("trainer: eval at step %d: %w; %s", step, err, t.ckptNote())
				}
				res.Eval = l
				return t.emit(t.record(step, "eval", l))
			})
			if err != nil {
				return res, err
			}
		}
		if testHookAfterStep != nil {
			testHookAfterStep(t, step)
		}
		if t.dp != nil && step%t.dp.every == 0 && step != last {
			if err := t.dp.checkParams(t, step); err != nil {
				return res, err
			}
		}
		if (o.CkptEvery > 0 && step%o.CkptEvery == 0) || step == last {
			if err := paused(func() error { _, err := t.checkpoint(step); return err }); err != nil {
				return res, err
			}
		}
	}
	if err := flush(0); err != nil {
		return res, err
	}
	t.watch.stop()
	res.TokensPerSec = t.meanTokensPerSec()
	t.collectSamples()
	return res, nil
}

// meanTokensPerSec is the training throughput of this process's steps
// after its first: 0 before two steps are done.
func (t *trainer) meanTokensPerSec() float64 {
	steps := t.lastStep - t.timedAt
	el := t.lastRec - t.timedFrom
	if t.timedAt < 0 || steps <= 0 || el <= 0 {
		return 0
	}
	return float64(steps) * float64(t.o.Batch*t.o.SeqLen*t.o.Accum) / el
}

// stopEarly ends a cancelled run: the steps submitted finish, the last one
// is checkpointed (unless it is already), and the error wraps the cause.
func (t *trainer) stopEarly(ctx context.Context, flush func(int) error) (*Result, error) {
	res := t.res
	if err := flush(0); err != nil {
		return res, err
	}
	t.watch.stop()
	res.TokensPerSec = t.meanTokensPerSec()
	cause := context.Cause(ctx)
	if cause == nil {
		cause = ErrStoppedWithOthers // data-parallel: another rank was signalled
	}
	if res.Steps > t.ckptStep {
		if _, err := t.checkpoint(res.Steps); err != nil {
			return res, fmt.Errorf("trainer: stopped after step %d (%v), and the checkpoint of that step failed: %w; %s",
				res.Steps, cause, err, t.ckptNote())
		}
	}
	return res, fmt.Errorf("trainer: stopped after step %d of %d: %w", res.Steps, t.o.Steps, cause)
}

// ckptNote says which checkpoint a stopped run can resume from.
func (t *trainer) ckptNote() string {
	if t.res != nil && t.res.Checkpoint != "" {
		return fmt.Sprintf("the last checkpoint, %s, is intact (--resume continues from it)", t.res.Checkpoint)
	}
	return "no checkpoint has been written (--resume restarts the run from step 0)"
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
	if !t.leader() {
		return nil
	}
	if err := t.metrics.Write(rec); err != nil {
		return fmt.Errorf("trainer: writing metrics: %w; %s", err, t.ckptNote())
	}
	t.wrote = true
	if t.o.OnRecord != nil {
		t.o.OnRecord(rec)
	}
	return nil
}

// stopwatch adds up the time it runs.
type stopwatch struct {
	acc     time.Duration
	since   time.Time
	running bool
}

func (w *stopwatch) start() {
	if !w.running {
		w.since, w.running = time.Now(), true
	}
}

func (w *stopwatch) stop() {
	if w.running {
		w.acc += time.Since(w.since)
		w.running = false
	}
}

// elapsed is the time run so far, in seconds.
func (w *stopwatch) elapsed() float64 {
	d := w.acc
	if w.running {
		d += time.Since(w.since)
	}
	return d.Seconds()
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
			return mom.Losses{}, fmt.Errorf("held-out data of %s: %w", t.o.Data, err)
		}
		if err := t.toModelBatch(&t.batch); err != nil {
			return mom.Losses{}, err
		}
		if err := t.upload(1); err != nil {
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
	if t.dp != nil {
		var err error
		if acc, err = t.dp.sumEval(acc); err != nil {
			return mom.Losses{}, err
		}
	}
	return t.m.Cfg.DecodeLosses(acc)
}

// nextTrainBatch reads the next training (micro-)batch, prepares it and
// uploads this process's share of it.
func (t *trainer) nextTrainBatch(step int) error {
	o := t.o
	if err := t.train.Next(&t.batch); err != nil {
		return fmt.Errorf("trainer: step %d: data %s: %w; %s", step, o.Data, err, t.ckptNote())
	}
	if err := t.toModelBatch(&t.batch); err != nil {
		return fmt.Errorf("trainer: step %d: data %s: %w; %s", step, o.Data, err, t.ckptNote())
	}
	if err := t.upload(o.Accum); err != nil {
		return fmt.Errorf("trainer: step %d: data %s: %w; %s", step, o.Data, err, t.ckptNote())
	}
	return nil
}

// upload sends the prepared batch to the device: all of it, or this
// rank's rows of it in a data-parallel run (with the whole batch's loss
// weights).
func (t *trainer) upload(accum int) error {
	if t.dp == nil {
		return t.m.SetBatch(&t.mb, accum)
	}
	return t.m.SetBatchShare(&t.mb, accum, t.dp.rank*t.dp.rows)
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
