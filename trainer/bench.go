package trainer

import (
	"cmp"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"mom/gpu"
	"mom/mom"
)

// StepBench is the speed of full training steps (forward, backward, gradient
// norm and AdamW; the batch uploaded each step) of one model.
type StepBench struct {
	Config       mom.Config
	Batch, Len   int
	Steps        int
	MsPerStep    float64
	TokensPerSec float64
	FLOPRate     float64 // training FLOP/s by the model's FLOP count
	// Memory is the device memory the model's training took: the device's
	// peak while it was benchmarked alone, or (interleaved) what it holds.
	Memory gpu.MemoryReport
	// Setup is the time from nothing to the first step submitted: the
	// model built, its parameters drawn and uploaded, pipelines compiled.
	Setup time.Duration
	// Precision is "f32" or "f16" (mixed precision).
	Precision string
	// Profile is the GPU time of each kernel (pipeline) in one step,
	// summed over its dispatches, largest first (BenchOptions.Profile).
	Profile []KernelTime
}

// KernelTime is one kernel's GPU time in a profiled step.
type KernelTime struct {
	Kernel     string // the pipeline: shader, entry point and constants
	Ns         float64
	Dispatches int
}

// BenchOptions shape a step benchmark.
type BenchOptions struct {
	Batch, Len    int
	Steps, Rounds int // timed steps per round, rounds
	// Interleave holds every model at once and alternates them round by
	// round, so that a change in machine load hits them alike; otherwise
	// (the default) one model at a time is built, warmed up, timed for
	// Steps*Rounds steps and released, which needs the memory of one.
	Interleave bool
	// Recompute as Options.Recompute.
	Recompute string
	// Precision as Options.Precision: "f32" ("" too) or "f16".
	Precision string
	// Progress, if set, receives a line as each model starts and ends.
	Progress func(format string, args ...any)
	// Profile times every dispatch of one more step with GPU timestamps
	// (each in a pass of its own, so the step runs slower than timed) and
	// fills StepBench.Profile. Needs timestamp-query; one model at a time.
	Profile bool
}

// stepBencher holds a model ready to time.
type stepBencher struct {
	t     *trainer
	setup time.Duration
}

func newStepBencher(d *gpu.Device, c mom.Config, o BenchOptions) (*stepBencher, error) {
	start := time.Now()
	to := DefaultOptions()
	to.Config, to.Batch, to.SeqLen, to.Out, to.Recompute, to.Precision = c, o.Batch, o.Len, "bench", o.Recompute, o.Precision
	if err := to.Validate(); err != nil {
		return nil, err
	}
	if err := mom.CheckPrecision(d, to.precision()); err != nil {
		return nil, err
	}
	t := &trainer{o: to, d: d, rng: rand.New(rand.NewPCG(1, 2))}
	if err := t.setup(); err != nil {
		t.close()
		return nil, err
	}
	if err := t.m.InitParams(1); err != nil {
		t.close()
		return nil, err
	}
	if err := t.train.Next(&t.batch); err != nil {
		t.close()
		return nil, err
	}
	if err := t.opt.SetStep(1e-4, 1); err != nil {
		t.close()
		return nil, err
	}
	s := &stepBencher{t: t}
	// The warm-up step: pipelines compiled, caches filled.
	if _, err := s.run(1); err != nil {
		t.close()
		return nil, err
	}
	s.setup = time.Since(start)
	return s, nil
}

// run records and submits n training steps on the same batch and waits.
func (s *stepBencher) run(n int) (time.Duration, error) {
	t := s.t
	start := time.Now()
	for i := 0; i < n; i++ {
		if err := t.toModelBatch(&t.batch); err != nil {
			return 0, err
		}
		if err := t.m.SetBatch(&t.mb, 1); err != nil {
			return 0, err
		}
		r := t.d.NewRecorder()
		t.m.RecordZeroGrads(r)
		t.m.RecordForward(r)
		t.m.RecordBackward(r)
		t.norm.Record(r)
		t.opt.Record(r)
		if err := r.Submit(); err != nil {
			return 0, err
		}
	}
	if err := t.d.Sync(); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// BenchSteps times steps training steps of each config (after a warm-up
// step each), rounds times, one model at a time (BenchStepsWith).
func BenchSteps(d *gpu.Device, cfgs []mom.Config, batch, seqLen, steps, rounds int) ([]StepBench, error) {
	return BenchStepsWith(d, cfgs, BenchOptions{Batch: batch, Len: seqLen, Steps: steps, Rounds: rounds})
}

// BenchStepsWith times o.Steps*o.Rounds training steps of each config after
// a warm-up step. Its tokens/s is the mean over the steps after the
// warm-up, as Train's Result.TokensPerSec.
func BenchStepsWith(d *gpu.Device, cfgs []mom.Config, o BenchOptions) ([]StepBench, error) {
	if o.Steps <= 0 || o.Rounds <= 0 {
		return nil, fmt.Errorf("bench: steps %d and rounds %d must be positive", o.Steps, o.Rounds)
	}
	if o.Profile && o.Interleave {
		return nil, errors.New("bench: a profile times one model at a time (no interleave)")
	}
	say := o.Progress
	if say == nil {
		say = func(string, ...any) {}
	}
	out := make([]StepBench, len(cfgs))
	total := make([]time.Duration, len(cfgs))
	finish := func(i int, b *stepBencher) {
		n := o.Steps * o.Rounds
		sec := total[i].Seconds() / float64(n)
		tok := float64(o.Batch * o.Len)
		out[i] = StepBench{Config: cfgs[i], Batch: o.Batch, Len: o.Len, Steps: n, MsPerStep: sec * 1e3,
			TokensPerSec: tok / sec, FLOPRate: tok / sec * cfgs[i].StepFLOPs().TrainPerToken, Setup: b.setup,
			Memory: out[i].Memory, Precision: precisionName(o.Precision)}
	}
	if !o.Interleave {
		for i, c := range cfgs {
			say("bench: %s (%s): building, drawing the parameters, the warm-up step", c.Name, c.Splits)
			d.ResetPeak()
			b, err := newStepBencher(d, c, o)
			if err != nil {
				return nil, fmt.Errorf("bench %s: %w", c.Name, err)
			}
			for r := 0; r < o.Rounds && err == nil; r++ {
				var el time.Duration
				el, err = b.run(o.Steps)
				total[i] += el
			}
			out[i].Memory = d.Memory()
			finish(i, b)
			if err == nil && o.Profile {
				out[i].Profile, err = b.profile()
			}
			b.t.close()
			// Dawn frees the model's memory only now: the next model
			// must not be built beside it.
			if cerr := d.Collect(); err == nil && cerr != nil {
				err = fmt.Errorf("freeing the model's memory: %w", cerr)
			}
			if err != nil {
				return nil, fmt.Errorf("bench %s: %w", c.Name, err)
			}
			say("bench: %s (%s): %.2f ms/step; %s", c.Name, c.Splits, out[i].MsPerStep, out[i].Memory.Summary())
		}
		return out, nil
	}
	bs := make([]*stepBencher, len(cfgs))
	defer func() {
		for _, b := range bs {
			if b != nil {
				b.t.close()
			}
		}
	}()
	for i, c := range cfgs {
		say("bench: %s (%s): building, drawing the parameters, the warm-up step", c.Name, c.Splits)
		before := d.Memory()
		var err error
		if bs[i], err = newStepBencher(d, c, o); err != nil {
			return nil, fmt.Errorf("bench %s: %w", c.Name, err)
		}
		out[i].Memory = d.Memory().Minus(before)
	}
	for r := 0; r < o.Rounds; r++ {
		for i, b := range bs {
			el, err := b.run(o.Steps)
			if err != nil {
				return nil, fmt.Errorf("bench %s: %w", cfgs[i].Name, err)
			}
			total[i] += el
		}
	}
	for i, b := range bs {
		finish(i, b)
	}
	return out, nil
}

// BenchFootprints is what BenchStepsWith would hold of each config on d, a
// dry-run device: each model's training footprint (Footprint).
func BenchFootprints(d *gpu.Device, cfgs []mom.Config, o BenchOptions) ([]gpu.MemoryReport, error) {
	var out []gpu.MemoryReport
	for _, c := range cfgs {
		to := DefaultOptions()
		to.Config, to.Batch, to.SeqLen, to.Recompute, to.Precision = c, o.Batch, o.Len, o.Recompute, o.Precision
		r, err := Footprint(d, to)
		if err != nil {
			return nil, fmt.Errorf("bench %s: %w", c.Name, err)
		}
		out = append(out, r)
	}
	return out, nil
}

// profile runs one more training step with every dispatch timed by GPU
// timestamps and sums the times by kernel. The step is recorded in parts
// (forward, each backward stage, the optimizer), each in a profiled
// recorder of its own, as one profiled recorder holds at most 2048
// dispatches.
func (s *stepBencher) profile() ([]KernelTime, error) {
	t := s.t
	if err := t.toModelBatch(&t.batch); err != nil {
		return nil, err
	}
	if err := t.m.SetBatch(&t.mb, 1); err != nil {
		return nil, err
	}
	parts := []func(r *gpu.Recorder){func(r *gpu.Recorder) { t.m.RecordZeroGrads(r); t.m.RecordForward(r) }}
	for st := 0; st < t.m.BackwardStages(); st++ {
		parts = append(parts, func(r *gpu.Recorder) { t.m.RecordBackwardStage(r, st) })
	}
	parts = append(parts, func(r *gpu.Recorder) { t.norm.Record(r); t.opt.Record(r) })
	sum := map[string]*KernelTime{}
	for i, rec := range parts {
		c := t.d.NewRecorder()
		rec(c)
		n := c.Len()
		c.Release()
		if n == 0 {
			continue
		}
		r, err := t.d.NewProfiledRecorder(n)
		if err != nil {
			return nil, fmt.Errorf("bench: profiling part %d of the step: %w", i, err)
		}
		rec(r)
		err = r.Submit()
		var ts []gpu.Timing
		if err == nil {
			ts, err = r.Timings()
		}
		r.Release()
		if err != nil {
			return nil, fmt.Errorf("bench: profiling part %d of the step: %w", i, err)
		}
		for _, x := range ts {
			k := sum[x.Label]
			if k == nil {
				k = &KernelTime{Kernel: x.Label}
				sum[x.Label] = k
			}
			k.Ns += x.Ns
			k.Dispatches++
		}
	}
	out := make([]KernelTime, 0, len(sum))
	for _, k := range sum {
		out = append(out, *k)
	}
	slices.SortFunc(out, func(a, b KernelTime) int { return cmp.Compare(b.Ns, a.Ns) })
	return out, nil
}
