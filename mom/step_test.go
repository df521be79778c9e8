package mom

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"mom/gpu"
	"mom/gpu/gputest"
	"mom/nn"
)

// stepTol is the tolerance of the step-versus-parallel comparison, on the
// scale of the compared row: a value passes when
// |step - parallel| <= stepTol * rms(parallel row) (+ the same of |parallel|).
//
// Why 1e-4: both paths compute the same float32 math in different orders.
// The parallel forward sums its projections in 64x64 GEMM tiles and runs
// the chunked scan (states composed across threads and chunks); the step
// mode sums its projections over 32 lanes and updates the state one step at
// a time. Each float32 sum of k terms is good to about k·6e-8 relative in
// the worst case and sqrt(k)·6e-8 typically; the tiny model's sums have at
// most 64 terms (k = ed) and the logits pass through 2 layers, 2 norms and
// the head, so the paths agree to a few 1e-6 of the logits' scale. 1e-4
// leaves a margin of more than 10 for other adapters, and is still a
// thousand times below what a real mistake gives (a wrong weight set, a
// state off by one step or a missed conv input changes the logits by
// tens of percent of their scale; the test checks that the logits of
// neighbouring positions differ by far more than the tolerance, so that
// it could fail).
const stepTol = 1e-4

// rowRMS is the root mean square of v.
func rowRMS(v []float32) float64 {
	var ss float64
	for _, x := range v {
		ss += float64(x) * float64(x)
	}
	return math.Sqrt(ss / float64(max(len(v), 1)))
}

// rowDiff returns the largest |a-b| over the row in units of the row's
// scale (the RMS of b).
func rowDiff(a, b []float32) float64 {
	scale := math.Max(rowRMS(b), 1e-12)
	worst := 0.0
	for i := range b {
		d := math.Abs(float64(a[i])-float64(b[i])) / (scale + math.Abs(float64(b[i])))
		if math.IsNaN(d) {
			return math.Inf(1)
		}
		worst = math.Max(worst, d)
	}
	return worst
}

// stepFixture is a GPU model with random parameters and a random batch,
// its parallel forward's logits (and predicted noise), and a step model of
// its batch rows.
type stepFixture struct {
	c      Config
	B, L   int
	b      *Batch
	m      *Model
	s      *StepModel
	logits []float32 // (B, L, V) from the parallel forward
	pred   []float32 // (B, L, P)
}

func newStepFixture(t *testing.T, d *gpu.Device, c Config, B, L int, seed uint64) *stepFixture {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, uint64(len(c.Setting))))
	f := &stepFixture{c: c, B: B, L: L, b: randomBatch(c, B, L, rng)}
	params := float32Params(c, rng)
	m, err := NewModel(d, c, B, L)
	if err != nil {
		t.Fatal(err)
	}
	f.m = m
	t.Cleanup(func() {
		if f.s != nil {
			f.s.Release()
		}
		m.Release()
	})
	uploadParams(t, m, params)
	if err := m.SetBatch(f.b, 1); err != nil {
		t.Fatal(err)
	}
	// The parallel logits: the model's forward, then its head's GEMM again
	// into a tensor of our own (the cross-entropy overwrites the model's
	// logits with their gradient; xf, the final normed state, stays).
	head := m.Param(NameEmbed).W
	if !c.TieEmbeddings {
		head = m.Param(NameHead).W
	}
	lt, err := nn.NewTensor(d, "test.logits", B, L, c.Vocab)
	if err != nil {
		t.Fatal(err)
	}
	defer lt.Release()
	hl, err := nn.NewLinear(d, nn.LinearArgs{X: m.xf, W: head, Y: lt})
	if err != nil {
		t.Fatal(err)
	}
	defer hl.Release()
	var pt *nn.Tensor
	var pl *nn.Linear
	if c.Continuous() {
		if pt, err = nn.NewTensor(d, "test.pred", B, L, c.PatchDim); err != nil {
			t.Fatal(err)
		}
		defer pt.Release()
		if pl, err = nn.NewLinear(d, nn.LinearArgs{X: m.xf, W: m.Param(NamePatchOut).W, Y: pt}); err != nil {
			t.Fatal(err)
		}
		defer pl.Release()
	}
	r := d.NewRecorder()
	m.RecordForward(r)
	hl.RecordForward(r)
	if pl != nil {
		pl.RecordForward(r)
	}
	if err := r.Submit(); err != nil {
		t.Fatal(err)
	}
	if f.logits, err = lt.Download(); err != nil {
		t.Fatal(err)
	}
	if pt != nil {
		if f.pred, err = pt.Download(); err != nil {
			t.Fatal(err)
		}
	}
	if f.s, err = NewStepModel(m, B, StepOptions{}); err != nil {
		t.Fatal(err)
	}
	return f
}

// feed sets every stream's input (and patch) to position t of its batch row.
func (f *stepFixture) feed(t *testing.T, pos int) {
	t.Helper()
	ids := make([]uint32, f.B)
	for s := range ids {
		ids[s] = f.b.Inputs[s*f.L+pos]
	}
	if err := f.s.SetInputs(ids); err != nil {
		t.Fatal(err)
	}
	if P := f.c.PatchDim; f.c.Continuous() {
		p := make([]float32, f.B*P)
		for s := 0; s < f.B; s++ {
			copy(p[s*P:(s+1)*P], f.b.NoisyPatches[(s*f.L+pos)*P:(s*f.L+pos+1)*P])
		}
		if err := f.s.SetPatches(p); err != nil {
			t.Fatal(err)
		}
	}
}

// stepOutputs are the logits (B, V) and predicted noise (B, P) of one step.
type stepOutputs struct{ logits, pred []float32 }

// runSteps steps positions [from, L) and returns each position's outputs.
func (f *stepFixture) runSteps(t *testing.T, from int) map[int]stepOutputs {
	t.Helper()
	out := map[int]stepOutputs{}
	for pos := from; pos < f.L; pos++ {
		f.feed(t, pos)
		if _, err := f.s.Step(); err != nil {
			t.Fatal(err)
		}
		var o stepOutputs
		var err error
		if o.logits, err = f.s.Logits(); err != nil {
			t.Fatal(err)
		}
		if f.c.Continuous() {
			if o.pred, err = f.s.Pred(); err != nil {
				t.Fatal(err)
			}
		}
		out[pos] = o
	}
	return out
}

// parallelRow is row s, position pos of the parallel forward's (B, L, n) output.
func (f *stepFixture) parallelRow(v []float32, n, s, pos int) []float32 {
	return v[(s*f.L+pos)*n : (s*f.L+pos+1)*n]
}

// TestStepMatchesParallel is the guard of the step mode: for random
// prompts, dense and MoM, in each setting, the logits (and with continuous
// images the predicted noise) of the step mode equal the parallel
// forward's at every position within stepTol; and a run that prefills a
// prompt with the parallel forward and steps on from its states equals the
// all-step run at every later position.
func TestStepMatchesParallel(t *testing.T) {
	forEachDevice(t, func(t *testing.T, d *gpu.Device) {
		for _, setting := range []Setting{Chameleon, Transfusion, ThreeModal} {
			splitSets := []Splits{{}, AllSplits}
			if setting == ThreeModal {
				splitSets = append(splitSets, Splits{In: true, Dt: true}) // routed and plain projections mixed
			}
			for _, splits := range splitSets {
				t.Run(fmt.Sprintf("%s/%s", setting, splits), func(t *testing.T) {
					c, err := Preset("tiny", setting, splits)
					if err != nil {
						t.Fatal(err)
					}
					// 3 streams (odd); 21 positions: past d_conv and past the
					// scan's 16-step chunk, so the prefill of 18 hands over a
					// state from the second chunk.
					const B, L, prefill = 3, 21, 18
					f := newStepFixture(t, d, c, B, L, 31)
					V, P := c.Vocab, c.PatchDim
					if err := f.s.Reset(); err != nil {
						t.Fatal(err)
					}
					all := f.runSteps(t, 0)
					worst, contrast := 0.0, math.Inf(1)
					for pos := 0; pos < L; pos++ {
						for s := 0; s < B; s++ {
							got := all[pos].logits[s*V : (s+1)*V]
							want := f.parallelRow(f.logits, V, s, pos)
							dv := rowDiff(got, want)
							worst = math.Max(worst, dv)
							if dv > stepTol {
								t.Errorf("stream %d position %d: step logits differ from the parallel forward's by %.3g of their scale (tolerance %g)", s, pos, dv, stepTol)
							}
							if pos > 0 {
								contrast = math.Min(contrast, rowDiff(got, f.parallelRow(f.logits, V, s, pos-1)))
							}
							if P > 0 && c.Modalities[f.b.Modality[s*L+pos]].Continuous {
								if dv := rowDiff(all[pos].pred[s*P:(s+1)*P], f.parallelRow(f.pred, P, s, pos)); dv > stepTol {
									t.Errorf("stream %d position %d: step predicted noise differs from the parallel forward's by %.3g (tolerance %g)", s, pos, dv, stepTol)
								}
							}
						}
					}
					t.Logf("step vs parallel: worst %.2g of the logits' scale; neighbouring positions differ by at least %.2g", worst, contrast)
					if contrast < 100*stepTol {
						t.Errorf("the logits of neighbouring positions differ by only %.3g: the comparison cannot tell positions apart", contrast)
					}

					// Prefill the first 18 tokens through the parallel forward,
					// then step on.
					pf, err := f.s.NewPrefill(B, prefill)
					if err != nil {
						t.Fatal(err)
					}
					defer pf.Release()
					ids := make([]uint32, B*prefill)
					var patches []float32
					if P > 0 {
						patches = make([]float32, B*prefill*P)
					}
					for s := 0; s < B; s++ {
						copy(ids[s*prefill:(s+1)*prefill], f.b.Inputs[s*L:s*L+prefill])
						if P > 0 {
							copy(patches[s*prefill*P:(s+1)*prefill*P], f.b.NoisyPatches[s*L*P:(s*L+prefill)*P])
						}
					}
					if err := f.s.Reset(); err != nil { // states the prefill must overwrite
						t.Fatal(err)
					}
					f.feed(t, 0)
					if _, err := f.s.Step(); err != nil {
						t.Fatal(err)
					}
					if err := pf.Run(0, ids, patches); err != nil {
						t.Fatal(err)
					}
					rest := f.runSteps(t, prefill)
					for pos := prefill; pos < L; pos++ {
						for s := 0; s < B; s++ {
							got := rest[pos].logits[s*V : (s+1)*V]
							if dv := rowDiff(got, all[pos].logits[s*V:(s+1)*V]); dv > stepTol {
								t.Errorf("stream %d position %d: logits after a prefill differ from the all-step run's by %.3g (tolerance %g)", s, pos, dv, stepTol)
							}
							if P > 0 && c.Modalities[f.b.Modality[s*L+pos]].Continuous {
								if dv := rowDiff(rest[pos].pred[s*P:(s+1)*P], all[pos].pred[s*P:(s+1)*P]); dv > stepTol {
									t.Errorf("stream %d position %d: predicted noise after a prefill differs by %.3g", s, pos, dv)
								}
							}
						}
					}
				})
			}
		}
	})
}

// TestStepPrefillStreams: with 17 streams (the LM head on the tiled GEMM
// from headGEMMStreams streams on) the step mode matches the parallel
// forward; a one-row prefill run into each stream in turn leaves each
// stream its own prompt's states; and copying a stream's states over
// another continues the same prompt in both.
func TestStepPrefillStreams(t *testing.T) {
	forEachDevice(t, func(t *testing.T, d *gpu.Device) {
		c, err := Preset("tiny", ThreeModal, AllSplits)
		if err != nil {
			t.Fatal(err)
		}
		const B, L, prefill = headGEMMStreams + 1, 12, 9
		f := newStepFixture(t, d, c, B, L, 32)
		V := c.Vocab
		if err := f.s.Reset(); err != nil {
			t.Fatal(err)
		}
		all := f.runSteps(t, 0)
		for pos := 0; pos < L; pos++ {
			for s := 0; s < B; s++ {
				if dv := rowDiff(all[pos].logits[s*V:(s+1)*V], f.parallelRow(f.logits, V, s, pos)); dv > stepTol {
					t.Errorf("stream %d position %d: step logits differ from the parallel forward's by %.3g", s, pos, dv)
				}
			}
		}
		pf, err := f.s.NewPrefill(1, prefill)
		if err != nil {
			t.Fatal(err)
		}
		defer pf.Release()
		for s := 0; s < B; s++ {
			if err := pf.Run(s, f.b.Inputs[s*L:s*L+prefill], nil); err != nil {
				t.Fatal(err)
			}
		}
		r := d.NewRecorder()
		f.s.RecordCopyStream(r, 2, 1)
		if err := r.Submit(); err != nil {
			t.Fatal(err)
		}
		rows := make([]int, B) // the prompt each stream continues
		for s := range rows {
			rows[s] = s
		}
		rows[2] = 1
		for pos := prefill; pos < L; pos++ {
			ids := make([]uint32, B)
			for s, row := range rows {
				ids[s] = f.b.Inputs[row*L+pos]
			}
			if err := f.s.SetInputs(ids); err != nil {
				t.Fatal(err)
			}
			if _, err := f.s.Step(); err != nil {
				t.Fatal(err)
			}
			got, err := f.s.Logits()
			if err != nil {
				t.Fatal(err)
			}
			for s, row := range rows {
				if dv := rowDiff(got[s*V:(s+1)*V], all[pos].logits[row*V:(row+1)*V]); dv > stepTol {
					t.Errorf("position %d stream %d (prompt %d): logits differ from the all-step run's by %.3g", pos, s, row, dv)
				}
			}
		}
	})
}

// TestStepSampling: greedy steps choose the argmax of the step's logits;
// Generate's steps in one submit equal single steps with the same seed and
// counters; the allowed ranges hold.
func TestStepSampling(t *testing.T) {
	forEachDevice(t, func(t *testing.T, d *gpu.Device) {
		c, err := Preset("tiny", ThreeModal, AllSplits)
		if err != nil {
			t.Fatal(err)
		}
		const B = 5
		f := newStepFixture(t, d, c, B, 4, 33)
		s, V := f.s, c.Vocab
		start := []uint32{1, 2, 3, 100, 150}
		restart := func(p SampleParams, allowed [][2]int) {
			if err := s.Reset(); err != nil {
				t.Fatal(err)
			}
			if err := s.SetInputs(start); err != nil {
				t.Fatal(err)
			}
			if err := s.SetSampling(p); err != nil {
				t.Fatal(err)
			}
			if err := s.SetAllowed(allowed); err != nil {
				t.Fatal(err)
			}
		}
		// Greedy: the argmax (lowest id on ties) of the logits.
		restart(SampleParams{}, nil)
		for i := 0; i < 3; i++ {
			ids, err := s.Step()
			if err != nil {
				t.Fatal(err)
			}
			logits, err := s.Logits()
			if err != nil {
				t.Fatal(err)
			}
			for st := 0; st < B; st++ {
				row := logits[st*V : (st+1)*V]
				best := 0
				for j, v := range row {
					if v > row[best] {
						best = j
					}
				}
				if int(ids[st]) != best {
					t.Errorf("greedy step %d stream %d: id %d, the argmax is %d", i, st, ids[st], best)
				}
			}
		}
		// Sampling: 6 steps in one submit equal 6 single steps.
		image, speech := c.VocabRanges[1], c.VocabRanges[2]
		allowed := [][2]int{{}, image, speech, {}, image}
		p := SampleParams{Temperature: 1.2, TopK: 20, TopP: 0.95, Seed: 77}
		restart(p, allowed)
		var single []uint32
		for i := 0; i < 6; i++ {
			ids, err := s.Step()
			if err != nil {
				t.Fatal(err)
			}
			single = append(single, ids...)
		}
		restart(p, allowed)
		batched, err := s.Generate(6)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(batched) != fmt.Sprint(single) {
			t.Errorf("Generate(6) gave %v, six single steps %v", batched, single)
		}
		for i, id := range batched {
			if r := allowed[i%B]; r != [2]int{} && (int(id) < r[0] || int(id) >= r[1]) {
				t.Errorf("step %d stream %d sampled %d outside its allowed range %v", i/B, i%B, id, r)
			}
		}
		if _, err := s.Generate(17); err == nil {
			t.Error("Generate(17) with room for 16 steps: no error")
		}
		if err := s.SetInputs([]uint32{0, 0, 0, 0, uint32(V)}); err == nil {
			t.Error("an input id outside the vocabulary: no error")
		}
		if err := s.SetAllowed([][2]int{{0, V + 1}, {}, {}, {}, {}}); err == nil {
			t.Error("an allowed range past the vocabulary: no error")
		}
		if _, err := s.NewPrefill(B+1, 3); err == nil {
			t.Error("a prefill of more prompts than streams: no error")
		}
	})
}

// TestStepModelRelease: creating and releasing a step model with a prefill
// many times leaves the device's live object counts where they started.
func TestStepModelRelease(t *testing.T) {
	forEachDevice(t, func(t *testing.T, d *gpu.Device) {
		c, err := Preset("tiny", Transfusion, AllSplits)
		if err != nil {
			t.Fatal(err)
		}
		m, err := NewModel(d, c, 2, 8)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Release()
		cycle := func() {
			s, err := NewStepModel(m, 3, StepOptions{GenerateSteps: 2})
			if err != nil {
				t.Fatal(err)
			}
			p, err := s.NewPrefill(2, 5)
			if err != nil {
				t.Fatal(err)
			}
			if err := p.Run(1, make([]uint32, 10), nil); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Generate(2); err != nil {
				t.Fatal(err)
			}
			p.Release()
			s.Release()
		}
		cycle() // compiles the pipelines, which the device caches
		if err := d.Sync(); err != nil {
			t.Fatal(err)
		}
		before := d.LiveObjects()
		for i := 0; i < 10; i++ {
			cycle()
		}
		if err := d.Sync(); err != nil {
			t.Fatal(err)
		}
		if after := d.LiveObjects(); fmt.Sprint(before) != fmt.Sprint(after) {
			t.Errorf("live objects changed over 10 create/release cycles: %v -> %v", before, after)
		}
	})
}

// BenchmarkStep times one step of the tiny model (MoM, three modalities)
// at 1 and 64 streams, submit and id readback included.
func BenchmarkStep(b *testing.B) {
	d := gputest.Must(b, gputest.Runtimes()[0])
	c, err := Preset("tiny", ThreeModal, AllSplits)
	if err != nil {
		b.Fatal(err)
	}
	m, err := NewModel(d, c, 1, 1)
	if err != nil {
		b.Fatal(err)
	}
	defer m.Release()
	if err := m.InitParams(1); err != nil {
		b.Fatal(err)
	}
	for _, streams := range []int{1, 64} {
		b.Run(fmt.Sprintf("streams%d", streams), func(b *testing.B) {
			s, err := NewStepModel(m, streams, StepOptions{})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Release()
			if _, err := s.Step(); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := s.Step(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(streams*b.N)/b.Elapsed().Seconds(), "tokens/s")
		})
	}
}
