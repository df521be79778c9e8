package mom

import (
	"fmt"
	"math/rand/v2"
	"time"

	"mom/gpu"
)

// SampleBench is the speed of the step mode for one number of streams after
// prompts of one length.
type SampleBench struct {
	Streams, Prompt int
	// PrefillMs is the time of one prompt's prefill (prompt-1 tokens through
	// the parallel forward), which is then copied to every stream.
	PrefillMs float64
	// StepMs is the latency of one step: record, submit, wait for the
	// sampled ids to be read back.
	StepMs float64
	// TokensPerSec counts the tokens of all streams per second when steps
	// run GenerateSteps to a submit (the ids read back once per submit).
	TokensPerSec  float64
	GenerateSteps int
	// FLOPRate is TokensPerSec times the step's FLOPs per token.
	FLOPRate float64
}

// SampleBenchOptions are the sizes a sampling benchmark sweeps.
type SampleBenchOptions struct {
	Streams []int // concurrent streams, e.g. 1 and 64
	Prompts []int // prompt lengths, e.g. 16, 256 and 4096
	Steps   int   // steps timed per measurement (default 32)
	Seed    uint64
}

// BenchSample times the step mode of the model c with random parameters:
// for each stream count and prompt length, it prefills one random text
// prompt, copies its states to every stream, then times single steps
// (latency) and Generate calls (throughput), sampling at temperature 1.
// A step's cost must not depend on the prompt's length: the recurrent
// state has the same size after any prompt.
func BenchSample(d *gpu.Device, c Config, o SampleBenchOptions) ([]SampleBench, error) {
	if o.Steps == 0 {
		o.Steps = 32
	}
	if o.Steps < 1 || len(o.Streams) == 0 || len(o.Prompts) == 0 {
		return nil, fmt.Errorf("bench sample: want steps >= 1 and at least one stream count and prompt length")
	}
	for _, v := range append(append([]int(nil), o.Streams...), o.Prompts...) {
		if v < 1 {
			return nil, fmt.Errorf("bench sample: stream counts and prompt lengths must be positive, got %d", v)
		}
	}
	m, err := NewModel(d, c, 1, 1)
	if err != nil {
		return nil, err
	}
	defer m.Release()
	if err := m.InitParams(o.Seed); err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(o.Seed, 1))
	text := c.VocabRanges[0]
	var out []SampleBench
	for _, streams := range o.Streams {
		gen := min(o.Steps, 16)
		s, err := NewStepModel(m, streams, StepOptions{GenerateSteps: gen})
		if err != nil {
			return nil, err
		}
		for _, prompt := range o.Prompts {
			r, err := benchSampleCase(s, rng, text, prompt, o.Steps)
			if err != nil {
				s.Release()
				return nil, fmt.Errorf("bench sample: %d streams, prompt %d: %w", streams, prompt, err)
			}
			out = append(out, r)
		}
		s.Release()
	}
	return out, nil
}

func benchSampleCase(s *StepModel, rng *rand.Rand, text [2]int, prompt, steps int) (SampleBench, error) {
	res := SampleBench{Streams: s.Streams, Prompt: prompt, GenerateSteps: s.genSteps}
	ids := make([]uint32, prompt)
	for i := range ids {
		ids[i] = uint32(text[0] + rng.IntN(text[1]-text[0]))
	}
	if err := s.Reset(); err != nil {
		return res, err
	}
	if prompt > 1 {
		p, err := s.NewPrefill(1, prompt-1)
		if err != nil {
			return res, err
		}
		// The first run compiles what it has to; time the second.
		if err := p.Run(0, ids[:prompt-1], nil); err != nil {
			p.Release()
			return res, err
		}
		if err := s.d.Sync(); err != nil {
			p.Release()
			return res, err
		}
		start := time.Now()
		err = p.Run(0, ids[:prompt-1], nil)
		if err == nil {
			err = s.d.Sync()
		}
		res.PrefillMs = float64(time.Since(start).Microseconds()) / 1e3
		p.Release()
		if err != nil {
			return res, err
		}
	}
	r := s.d.NewRecorder()
	for i := 1; i < s.Streams; i++ {
		s.RecordCopyStream(r, i, 0)
	}
	if err := r.Submit(); err != nil {
		return res, err
	}
	last := make([]uint32, s.Streams)
	for i := range last {
		last[i] = ids[prompt-1]
	}
	if err := s.SetInputs(last); err != nil {
		return res, err
	}
	if err := s.SetSampling(SampleParams{Temperature: 1, Seed: 1}); err != nil {
		return res, err
	}
	if _, err := s.Step(); err != nil { // warm-up
		return res, err
	}
	start := time.Now()
	for i := 0; i < steps; i++ {
		if _, err := s.Step(); err != nil {
			return res, err
		}
	}
	res.StepMs = float64(time.Since(start).Microseconds()) / 1e3 / float64(steps)
	if _, err := s.Generate(s.genSteps); err != nil { // warm-up
		return res, err
	}
	calls := max(1, steps/s.genSteps)
	start = time.Now()
	for i := 0; i < calls; i++ {
		if _, err := s.Generate(s.genSteps); err != nil {
			return res, err
		}
	}
	sec := time.Since(start).Seconds()
	res.TokensPerSec = float64(calls*s.genSteps*s.Streams) / sec
	res.FLOPRate = res.TokensPerSec * s.FLOPsPerToken()
	return res, nil
}
