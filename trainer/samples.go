package trainer

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"mom/mom"
	"mom/trainer/dataset"
	"mom/trainer/runfolder"
	"mom/trainer/sample"
)

// Samples while training (Options.SampleEvery): at every SampleEvery-th
// step and at the run's last, training pauses (its stopwatch stopped) for
// the GPU work of sampling, one Sampler.Generate per modality of the
// setting, then goes on while a background goroutine decodes the samples
// (BPE text, VQ images, speech's Griffin-Lim) and writes them with
// runfolder.WriteSamples into RUN/samples/step_N/<modality>/. The Sampler
// is made once, after the model, and shares its parameter tensors (it sees
// each step's update without a copy); its other buffers are its own, so
// sampling changes nothing that training computes (tested bit for bit).
//
// A step's samples are written into a temporary folder and renamed into
// place, replacing that step's folder if one exists. A resumed run removes
// the sample folders of steps after its checkpoint (it redoes those steps,
// as it drops their metrics records) and writes them again as it reaches
// them.
//
// The pause is reported in the metrics record of the step sampled (or the
// next one written, with --log-every) as sample_s, outside step_ms and
// tokens_per_s; a log line per sampled step gives the generation time and
// the background time of decoding and writing.

// DefaultSampleN is DefaultOptions' SampleN: samples per modality.
const DefaultSampleN = 4

// maxSampleN bounds Options.SampleN (streams of the sampler).
const maxSampleN = 1024

// sampling is the state of samples while training.
type sampling struct {
	every int
	n     int
	v     *sample.Vocab
	opts  []sample.Options // one per modality, checked
	smp   *sample.Sampler

	// The writer goroutine: one job at a time; busy while a job's outcome
	// has not been collected from done.
	jobs chan sampleJob
	done chan error
	busy bool

	// pending are the pauses of sampled steps whose metrics records are
	// not written yet (losses are read a few steps late), oldest first.
	pending []samplePause
}

// samplePause is the time training paused to sample at a step.
type samplePause struct {
	step    int
	seconds float64
}

// sampleJob is one step's samples on their way to the disk.
type sampleJob struct {
	step int
	res  []*sample.Result
	gen  float64 // seconds of generation (the pause)
}

// checkSampling checks the sampling options; Data must name a dataset
// folder (a look at the file system, no more).
func (o Options) checkSampling() error {
	switch {
	case o.SampleEvery < 0:
		return fmt.Errorf("trainer: --sample-every %d must not be negative (0: no samples)", o.SampleEvery)
	case o.SampleEvery == 0:
		return nil
	case o.SampleN < 1 || o.SampleN > maxSampleN:
		return fmt.Errorf("trainer: --sample-n %d: want 1 to %d samples per modality", o.SampleN, maxSampleN)
	case o.Data == "" || o.Data == "synthetic":
		return fmt.Errorf("trainer: --sample-every needs a dataset folder (--data DIR, built by `mom data build`): samples are decoded by its tokenizers, and the synthetic stream has none")
	case !dataset.IsDataset(o.Data):
		return fmt.Errorf("trainer: --sample-every needs a dataset folder (--data DIR, built by `mom data build`): samples are decoded by its tokenizers, and the token file %s has none", o.Data)
	}
	return nil
}

// prepareSampling reads what sampling needs from the dataset (its
// markers and tokenizers) and checks the per-modality options, before the
// run folder or the model is made. It returns nil when o takes no
// samples.
func prepareSampling(o Options) (*sampling, error) {
	if o.SampleEvery == 0 {
		return nil, nil
	}
	if err := o.checkSampling(); err != nil {
		return nil, err
	}
	ds, err := dataset.Open(o.Data)
	if err != nil {
		return nil, fmt.Errorf("trainer: --sample-every: %w", err)
	}
	toks, err := ds.LoadTokenizers()
	if err != nil {
		return nil, fmt.Errorf("trainer: --sample-every: %w", err)
	}
	v, err := sample.NewVocab(o.Config, ds, toks)
	if err != nil {
		return nil, fmt.Errorf("trainer: --sample-every: %w", err)
	}
	s := &sampling{every: o.SampleEvery, n: o.SampleN, v: v}
	for _, m := range o.Config.Modalities {
		so := sample.Options{Prompt: o.SamplePrompt, Modality: m.Name, Params: mom.SampleParams{Temperature: 1}}
		if err := so.Check(v); err != nil {
			return nil, fmt.Errorf("trainer: --sample-every: %s samples (--sample-prompt %q): %w", m.Name, o.SamplePrompt, err)
		}
		s.opts = append(s.opts, so)
	}
	return s, nil
}

// startSamples begins the samples of a run continuing from step: on a
// resumed run the sample folders of later steps (and leftovers of
// interrupted writes) are removed whether or not this process samples;
// with sampling, the Sampler is made (once) and the writer started.
func (t *trainer) startSamples(step int) error {
	if t.o.Resume {
		removed, err := runfolder.CleanSamples(t.o.Out, step)
		if err != nil {
			return fmt.Errorf("trainer: --resume: %w", err)
		}
		if len(removed) > 0 {
			t.logf("--resume: removed samples written after step %d (or left by interrupted writes) in %s: %s",
				step, filepath.Join(t.o.Out, runfolder.SamplesDir), strings.Join(removed, ", "))
		}
	}
	s := t.samples
	if s == nil {
		return nil
	}
	var err error
	if s.smp, err = sample.New(t.m, s.v, s.n); err != nil {
		return fmt.Errorf("trainer: --sample-every: %w", err)
	}
	s.jobs, s.done = make(chan sampleJob, 1), make(chan error, 1)
	go func() {
		for j := range s.jobs {
			s.done <- t.writeSamples(j)
		}
	}()
	return nil
}

// sampleAt takes the samples of step when it is due (a multiple of the
// interval, or last, the run's last step). Training pauses for the
// generation only: the losses in flight (queue, whose last is step's) are
// waited for first, each arrival timed as the loop would time it, then
// the stopwatch stops while the sampler runs; decoding and writing go to
// the writer goroutine. The losses are decoded and recorded by the loop
// as usual, after the sampling.
func (t *trainer) sampleAt(step, last int, queue []inflight) error {
	s := t.samples
	if s == nil || (step%s.every != 0 && step != last) {
		return nil
	}
	t.collectSamples()
	for i := range queue {
		if _, err := queue[i].rb.Wait(); err != nil {
			return fmt.Errorf("trainer: stopping: step %d: %w; %s", queue[i].step, err, t.ckptNote())
		}
		queue[i].doneAt = t.watch.elapsed()
	}
	t.watch.stop()
	t0 := time.Now()
	job := sampleJob{step: step}
	for _, o := range s.opts {
		o.Params.Seed = uint64(step)
		res, err := s.smp.Generate(o)
		if err != nil {
			t.watch.start()
			return fmt.Errorf("trainer: samples at step %d: %s: %w; %s", step, o.Modality, err, t.ckptNote())
		}
		job.res = append(job.res, res)
	}
	job.gen = time.Since(t0).Seconds()
	t.watch.start()
	s.pending = append(s.pending, samplePause{step, job.gen})
	t.res.SampleSeconds += job.gen
	s.jobs <- job
	s.busy = true
	return nil
}

// collectSamples waits for the writer's job in flight, if any. A failed
// write is reported and training goes on (those samples are lost, the run
// is not).
func (t *trainer) collectSamples() {
	s := t.samples
	if s == nil || !s.busy {
		return
	}
	s.busy = false
	if err := <-s.done; err != nil {
		t.logf("%v; training goes on", err)
	}
}

// writeSamples decodes and writes one step's samples (on the writer
// goroutine) and logs where they went and what they cost.
func (t *trainer) writeSamples(j sampleJob) error {
	t0 := time.Now()
	var what []string
	dir, err := runfolder.WriteSamples(t.o.Out, j.step, func(dir string) error {
		for _, r := range j.res {
			files, err := r.Write(filepath.Join(dir, r.Modality))
			if err != nil {
				return err
			}
			what = append(what, fmt.Sprintf("%d %s (%d files)", len(r.Samples), r.Modality, len(files)))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("trainer: samples of step %d: %w", j.step, err)
	}
	t.logf("samples of step %d in %s: %s; generation %.2f s (training paused), decoding and writing %.2f s (in the background)",
		j.step, dir, strings.Join(what, ", "), j.gen, time.Since(t0).Seconds())
	return nil
}

// annotateSamples puts the pauses of the steps sampled up to step into
// its training record: the sampled step's, or the first written after it
// (--log-every).
func (t *trainer) annotateSamples(rec Record, step int) {
	s := t.samples
	if s == nil {
		return
	}
	sum, n := 0.0, 0
	for n < len(s.pending) && s.pending[n].step <= step {
		sum += s.pending[n].seconds
		n++
	}
	if n > 0 {
		rec["sample_s"] = sum
		s.pending = append(s.pending[:0], s.pending[n:]...)
	}
}

// stopSamples waits for the samples being written, stops the writer and
// releases the Sampler (before the model whose parameters it shares).
func (t *trainer) stopSamples() {
	s := t.samples
	if s == nil {
		return
	}
	if s.jobs != nil {
		t.collectSamples()
		close(s.jobs)
		s.jobs = nil
	}
	if s.smp != nil {
		s.smp.Release()
		s.smp = nil
	}
}
