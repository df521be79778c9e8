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

func forEachDevice(t *testing.T, fn func(t *testing.T, d *gpu.Device)) {
	gputest.ForEachDevice(t, fn)
}

// gpuStep uploads params, runs one forward/backward step of the GPU model on
// b and returns the loss record and every gradient.
func gpuStep(t *testing.T, d *gpu.Device, c Config, params map[string][]float64, b *Batch, B, L int) ([]float32, map[string][]float32) {
	t.Helper()
	return gpuStepWith(t, d, c, ModelOptions{}, params, b, B, L)
}

func gpuStepWith(t *testing.T, d *gpu.Device, c Config, o ModelOptions, params map[string][]float64, b *Batch, B, L int) ([]float32, map[string][]float32) {
	t.Helper()
	m, err := NewModelWith(d, c, B, L, o)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Release()
	uploadParams(t, m, params)
	if err := m.SetBatch(b, 1); err != nil {
		t.Fatal(err)
	}
	lossBuf, err := d.NewBuffer("losses", int64(4*c.LossSlots()), gpu.UsageTensor)
	if err != nil {
		t.Fatal(err)
	}
	defer lossBuf.Release()
	r := d.NewRecorder()
	m.RecordZeroGrads(r)
	m.RecordForward(r)
	m.RecordBackward(r)
	m.RecordLosses(r, lossBuf, 0)
	if err := r.Submit(); err != nil {
		t.Fatal(err)
	}
	return readStep(t, m, lossBuf)
}

// uploadParams uploads float64 parameters (by name) into m.
func uploadParams(t *testing.T, m *Model, params map[string][]float64) {
	t.Helper()
	for _, p := range m.Params {
		v := make([]float32, p.Spec.Len())
		for i, x := range params[p.Spec.Name] {
			v[i] = float32(x)
		}
		if err := p.W.Upload(v); err != nil {
			t.Fatal(err)
		}
	}
}

// readStep reads back a step's loss record and every parameter gradient.
func readStep(t *testing.T, m *Model, lossBuf *gpu.Buffer) ([]float32, map[string][]float32) {
	t.Helper()
	c := m.Cfg
	losses, err := lossBuf.ReadFloat32(0, c.LossSlots())
	if err != nil {
		t.Fatal(err)
	}
	grads := map[string][]float32{}
	for _, p := range m.Params {
		g, err := p.G.Download()
		if err != nil {
			t.Fatal(err)
		}
		grads[p.Spec.Name] = g
	}
	return losses, grads
}

// float32Params draws parameters that are exactly representable in float32,
// so the GPU and the float64 reference start from the same numbers.
func float32Params(c Config, rng *rand.Rand) map[string][]float64 {
	ps := randomParams(c, rng)
	for _, v := range ps {
		for i := range v {
			v[i] = float64(float32(v[i]))
		}
	}
	return ps
}

// TestModelMatchesReference: one step of the tiny model on the GPU gives
// the reference model's losses and every parameter gradient.
func TestModelMatchesReference(t *testing.T) {
	forEachDevice(t, func(t *testing.T, d *gpu.Device) {
		for _, setting := range []Setting{Chameleon, Transfusion, ThreeModal} {
			for _, splits := range []Splits{{}, AllSplits} {
				t.Run(fmt.Sprintf("%s/%s", setting, splits), func(t *testing.T) {
					c, err := Preset("tiny", setting, splits)
					if err != nil {
						t.Fatal(err)
					}
					const B, L = 2, 24
					rng := rand.New(rand.NewPCG(11, uint64(len(setting))))
					b := randomBatch(c, B, L, rng)
					params := float32Params(c, rng)
					wantLoss, wantGrads, err := RefStep(c, params, b, B, L, 1)
					if err != nil {
						t.Fatal(err)
					}
					gotLoss, gotGrads := gpuStep(t, d, c, params, b, B, L)
					for i := range wantLoss {
						if math.Abs(float64(gotLoss[i])-wantLoss[i]) > 1e-4*math.Abs(wantLoss[i])+1e-5 {
							t.Errorf("loss record[%d] = %g, reference %g", i, gotLoss[i], wantLoss[i])
						}
					}
					for _, s := range c.ParamSpecs() {
						want, got := wantGrads[s.Name], gotGrads[s.Name]
						scale := 0.0
						for _, w := range want {
							scale = math.Max(scale, math.Abs(w))
						}
						var num, den float64
						worst, worstI := 0.0, 0
						for i := range want {
							diff := math.Abs(float64(got[i]) - want[i])
							if math.IsNaN(diff) {
								t.Fatalf("%s[%d] is NaN", s.Name, i)
							}
							num += diff * diff
							den += want[i] * want[i]
							if diff > worst {
								worst, worstI = diff, i
							}
						}
						// float32 kernels against a float64 reference: every
						// element within 2e-3 of the tensor's largest gradient.
						if worst > 2e-3*scale+1e-7 {
							t.Errorf("%s: worst element %d: GPU %g, reference %g (tensor max %g, relative L2 error %.2g)",
								s.Name, worstI, got[worstI], want[worstI], scale, math.Sqrt(num/math.Max(den, 1e-300)))
						}
					}
				})
			}
		}
	})
}

// TestTextOnlyBatchZeroGradients: under MoM a text-only batch leaves every
// image and speech projection gradient exactly zero on the GPU, in float32
// and in mixed precision.
func TestTextOnlyBatchZeroGradients(t *testing.T) {
	forEachDevice(t, func(t *testing.T, d *gpu.Device) {
		for _, prec := range []nn.DType{nn.F32, nn.F16} {
			t.Run(prec.String(), func(t *testing.T) { textOnlyZeros(t, d, ModelOptions{Precision: prec}) })
		}
	})
}

func textOnlyZeros(t *testing.T, d *gpu.Device, o ModelOptions) {
	c, err := Preset("tiny", ThreeModal, AllSplits)
	if err != nil {
		t.Fatal(err)
	}
	const B, L = 2, 24
	rng := rand.New(rand.NewPCG(5, 6))
	b := randomBatch(c, B, L, rng)
	textEnd := uint32(c.VocabRanges[0][1])
	for i := range b.Inputs {
		b.Modality[i], b.TargetModality[i] = 0, 0
		b.Inputs[i] %= textEnd
		if b.Targets[i] != IgnoreIndex {
			b.Targets[i] %= textEnd
		}
	}
	_, grads := gpuStepWith(t, d, c, o, float32Params(c, rng), b, B, L)
	checked := 0
	for _, s := range c.ParamSpecs() {
		if s.Groups == 1 {
			continue
		}
		per := s.Len() / s.Groups
		g := grads[s.Name]
		for i := per; i < len(g); i++ {
			if g[i] != 0 {
				t.Fatalf("%s: modality %d gradient[%d] = %g, want exactly 0", s.Name, i/per, i%per, g[i])
			}
		}
		nonzero := false
		for _, x := range g[:per] {
			nonzero = nonzero || x != 0
		}
		if !nonzero {
			t.Errorf("%s: the text weights got no gradient", s.Name)
		}
		checked++
	}
	if checked != 8*c.Layers { // in x, in z, x dt, x B, x C, dt w, dt b, out
		t.Errorf("checked %d split tensors, want %d", checked, 8*c.Layers)
	}
}

// TestGradientAccumulation: two micro-batches with accum=2 accumulate the
// mean of their gradients.
func TestGradientAccumulation(t *testing.T) {
	forEachDevice(t, func(t *testing.T, d *gpu.Device) {
		c, err := Preset("tiny", ThreeModal, AllSplits)
		if err != nil {
			t.Fatal(err)
		}
		const B, L = 2, 24
		rng := rand.New(rand.NewPCG(21, 22))
		b1, b2 := randomBatch(c, B, L, rng), randomBatch(c, B, L, rng)
		params := float32Params(c, rng)
		_, g1, err := RefStep(c, params, b1, B, L, 2)
		if err != nil {
			t.Fatal(err)
		}
		_, g2, err := RefStep(c, params, b2, B, L, 2)
		if err != nil {
			t.Fatal(err)
		}
		m, err := NewModel(d, c, B, L)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Release()
		uploadParams(t, m, params)
		for i, b := range []*Batch{b1, b2} {
			if err := m.SetBatch(b, 2); err != nil {
				t.Fatal(err)
			}
			r := d.NewRecorder()
			if i == 0 {
				m.RecordZeroGrads(r)
			}
			m.RecordForward(r)
			m.RecordBackward(r)
			if err := r.Submit(); err != nil {
				t.Fatal(err)
			}
		}
		for _, p := range m.Params {
			got, err := p.G.Download()
			if err != nil {
				t.Fatal(err)
			}
			want1, want2 := g1[p.Spec.Name], g2[p.Spec.Name]
			scale := 0.0
			for i := range want1 {
				scale = math.Max(scale, math.Abs(want1[i]+want2[i]))
			}
			for i := range got {
				if w := want1[i] + want2[i]; math.Abs(float64(got[i])-w) > 2e-3*scale+1e-7 {
					t.Fatalf("%s[%d]: accumulated %g, reference %g", p.Spec.Name, i, got[i], w)
				}
			}
		}
	})
}

// TestModelReleaseFreesEverything: creating and releasing a model 100 times
// (MoM and dense, batches large enough for split-K weight gradients)
// leaves the device's live object counts where they started: every op
// releases its bind groups and buffers, and the split-K scratch belongs to
// the model.
func TestModelReleaseFreesEverything(t *testing.T) {
	forEachDevice(t, func(t *testing.T, d *gpu.Device) {
		for _, splits := range []Splits{AllSplits, {}} {
			c, err := Preset("tiny", Transfusion, splits)
			if err != nil {
				t.Fatal(err)
			}
			cycle := func() {
				m, err := NewModel(d, c, 4, 128)
				if err != nil {
					t.Fatal(err)
				}
				m.Release()
				m.Release() // harmless
			}
			cycle() // pipelines and shaders are cached per device on first use
			before := d.LiveObjects()
			for i := 0; i < 100; i++ {
				cycle()
			}
			after := d.LiveObjects()
			for _, k := range []string{"buffer", "bind group", "pipeline", "shader", "texture"} {
				if after[k] != before[k] {
					t.Errorf("%s: after 100 models %d live %s objects, %d before", splits, after[k], k, before[k])
				}
			}
		}
	})
}

// TestRecomputeSameNumbers: a model that recomputes the conv output and
// dt_proj's output in the backward gives bit for bit the losses and
// gradients of one that keeps them (MoM and dense, on a batch of every
// modality).
func TestRecomputeSameNumbers(t *testing.T) {
	forEachDevice(t, func(t *testing.T, d *gpu.Device) {
		for _, splits := range []Splits{{}, AllSplits} {
			c, err := Preset("tiny", ThreeModal, splits)
			if err != nil {
				t.Fatal(err)
			}
			const B, L = 2, 40
			rng := rand.New(rand.NewPCG(5, 6))
			b := randomBatch(c, B, L, rng)
			params := float32Params(c, rng)
			keepLoss, keepGrads := gpuStepWith(t, d, c, ModelOptions{}, params, b, B, L)
			recLoss, recGrads := gpuStepWith(t, d, c, ModelOptions{Recompute: true}, params, b, B, L)
			for i := range keepLoss {
				if math.Float32bits(keepLoss[i]) != math.Float32bits(recLoss[i]) {
					t.Errorf("%s: loss record[%d]: %g recomputing, %g keeping", splits, i, recLoss[i], keepLoss[i])
				}
			}
			for name, g := range keepGrads {
				for i := range g {
					if math.Float32bits(g[i]) != math.Float32bits(recGrads[name][i]) {
						t.Errorf("%s: %s[%d]: %g recomputing, %g keeping", splits, name, i, recGrads[name][i], g[i])
						break
					}
				}
			}
		}
	})
}
