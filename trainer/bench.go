package trainer

import (
	"fmt"
	"math/rand/v2"
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
}

// stepBencher holds a model ready to time.
type stepBencher struct {
	t *trainer
}

func newStepBencher(d *gpu.Device, c mom.Config, batch, seqLen int) (*stepBencher, error) {
	o := DefaultOptions()
	o.Config, o.Batch, o.SeqLen, o.Out = c, batch, seqLen, "bench"
	if err := o.Validate(); err != nil {
		return nil, err
	}
	t := &trainer{o: o, d: d, rng: rand.New(rand.NewPCG(1, 2))}
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
	return &stepBencher{t: t}, nil
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
// step each), interleaving the configs round by round so that a change in
// machine load hits them alike. Its tokens/s is the mean over the steps
// after the warm-up, as Train's Result.TokensPerSec.
func BenchSteps(d *gpu.Device, cfgs []mom.Config, batch, seqLen, steps, rounds int) ([]StepBench, error) {
	if steps <= 0 || rounds <= 0 {
		return nil, fmt.Errorf("bench: steps %d and rounds %d must be positive", steps, rounds)
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
		var err error
		if bs[i], err = newStepBencher(d, c, batch, seqLen); err != nil {
			return nil, fmt.Errorf("bench %s: %w", c.Name, err)
		}
		if _, err := bs[i].run(1); err != nil {
			return nil, fmt.Errorf("bench %s: %w", c.Name, err)
		}
	}
	total := make([]time.Duration, len(cfgs))
	for r := 0; r < rounds; r++ {
		for i, b := range bs {
			el, err := b.run(steps)
			if err != nil {
				return nil, fmt.Errorf("bench %s: %w", cfgs[i].Name, err)
			}
			total[i] += el
		}
	}
	out := make([]StepBench, len(cfgs))
	for i, c := range cfgs {
		n := steps * rounds
		sec := total[i].Seconds() / float64(n)
		tok := float64(batch * seqLen)
		out[i] = StepBench{Config: c, Batch: batch, Len: seqLen, Steps: n, MsPerStep: sec * 1e3,
			TokensPerSec: tok / sec, FLOPRate: tok / sec * c.StepFLOPs().TrainPerToken}
	}
	return out, nil
}
