package mom

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"mom/gpu"
	"mom/nn"
)

// TestBackwardStagesListEveryGradientOnce: the stages' finished-gradient
// lists partition the parameters, a tied embedding falling to the last
// stage (the head writes it first).
func TestBackwardStagesListEveryGradientOnce(t *testing.T) {
	forEachDevice(t, func(t *testing.T, d *gpu.Device) {
		for _, c := range []struct {
			setting Setting
			tie     bool
		}{{ThreeModal, true}, {ThreeModal, false}, {Transfusion, true}} {
			t.Run(fmt.Sprintf("%s/tied=%v", c.setting, c.tie), func(t *testing.T) {
				cfg, err := Preset("tiny", c.setting, AllSplits)
				if err != nil {
					t.Fatal(err)
				}
				cfg.TieEmbeddings = c.tie
				m, err := NewModel(d, cfg, 1, 8)
				if err != nil {
					t.Fatal(err)
				}
				defer m.Release()
				seen := map[string]int{}
				for s := 0; s < m.BackwardStages(); s++ {
					for _, p := range m.GradsFinishedBy(s) {
						if prev, ok := seen[p.Spec.Name]; ok {
							t.Errorf("%s finished by stages %d and %d", p.Spec.Name, prev, s)
						}
						seen[p.Spec.Name] = s
					}
				}
				for _, p := range m.Params {
					if _, ok := seen[p.Spec.Name]; !ok {
						t.Errorf("%s is finished by no stage", p.Spec.Name)
					}
				}
				last := m.BackwardStages() - 1
				if s := seen[NameEmbed]; s != last {
					t.Errorf("%s finished by stage %d, want the last (%d)", NameEmbed, s, last)
				}
				if s := seen[LayerParam(cfg.Layers-1, "mixer.out_proj.weight")]; s != 1 {
					t.Errorf("the last layer's out_proj finished by stage %d, want 1", s)
				}
			})
		}
	})
}

// TestBatchSharesSumToTheWholeBatch: models holding a share of a batch each
// (SetBatchShare) give gradients and loss sums that add up to those of one
// model holding the whole batch: what data-parallel ranks rely on.
func TestBatchSharesSumToTheWholeBatch(t *testing.T) {
	forEachDevice(t, func(t *testing.T, d *gpu.Device) {
		for _, setting := range []Setting{ThreeModal, Transfusion} {
			t.Run(string(setting), func(t *testing.T) {
				c, err := Preset("tiny", setting, AllSplits)
				if err != nil {
					t.Fatal(err)
				}
				const B, L, N = 4, 16, 2
				rng := rand.New(rand.NewPCG(31, 32))
				b := randomBatch(c, B, L, rng)
				params := float32Params(c, rng)
				wantLoss, want := gpuStep(t, d, c, params, b, B, L)
				sumLoss := make([]float64, len(wantLoss))
				sum := map[string][]float64{}
				for r := 0; r < N; r++ {
					loss, grads := shareStep(t, d, c, params, b, B/N, L, r*B/N)
					for i, v := range loss {
						sumLoss[i] += float64(v)
					}
					for k, g := range grads {
						if sum[k] == nil {
							sum[k] = make([]float64, len(g))
						}
						for i, v := range g {
							sum[k][i] += float64(v)
						}
					}
				}
				for i := range wantLoss {
					if math.Abs(sumLoss[i]-float64(wantLoss[i])) > 1e-4*math.Max(1, math.Abs(float64(wantLoss[i]))) {
						t.Errorf("loss record [%d]: shares add to %g, whole batch %g", i, sumLoss[i], wantLoss[i])
					}
				}
				for k, w := range want {
					scale := 0.0
					for _, v := range w {
						scale = math.Max(scale, math.Abs(float64(v)))
					}
					for i, v := range w {
						if math.Abs(sum[k][i]-float64(v)) > 1e-4*scale+1e-8 {
							t.Fatalf("%s[%d]: shares add to %g, whole batch %g", k, i, sum[k][i], v)
						}
					}
				}
			})
		}
		c, _ := Preset("tiny", ThreeModal, AllSplits)
		m, err := NewModel(d, c, 2, 16)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Release()
		b := randomBatch(c, 4, 16, rand.New(rand.NewPCG(1, 2)))
		for _, row0 := range []int{-1, 3, 4} {
			if err := m.SetBatchShare(b, 1, row0); err == nil {
				t.Errorf("SetBatchShare of rows %d..%d of a 4-row batch was accepted", row0, row0+1)
			}
		}
		if err := m.SetBatch(b, 1); err == nil {
			t.Errorf("SetBatch accepted 4 rows for a model of 2")
		}
	})
}

// shareStep is gpuStep on rows row0 .. row0+B-1 of b.
func shareStep(t *testing.T, d *gpu.Device, c Config, params map[string][]float64, b *Batch, B, L, row0 int) ([]float32, map[string][]float32) {
	t.Helper()
	m, err := NewModel(d, c, B, L)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Release()
	uploadParams(t, m, params)
	if err := m.SetBatchShare(b, 1, row0); err != nil {
		t.Fatal(err)
	}
	lossBuf, err := d.NewBuffer("losses", int64(4*c.LossSlots()), gpu.UsageTensor)
	if err != nil {
		t.Fatal(err)
	}
	defer lossBuf.Release()
	// The backward stage by stage, each in its own submit.
	r := d.NewRecorder()
	m.RecordZeroGrads(r)
	m.RecordForward(r)
	m.RecordLosses(r, lossBuf, 0)
	for s := 0; s < m.BackwardStages(); s++ {
		m.RecordBackwardStage(r, s)
		if err := r.Submit(); err != nil {
			t.Fatal(err)
		}
		r = d.NewRecorder()
	}
	if err := r.Submit(); err != nil {
		t.Fatal(err)
	}
	return readStep(t, m, lossBuf)
}

// TestDeferredEmbeddingBackward: with DeferEmbeddingBackward a tied
// table's gradient is finished by the head's stage, the stages leave out
// the embedding's scatter, and that scatter done afterwards by a
// backward-only embedding over EmbeddingRows gives the whole backward's
// gradient; RecordBackward stays whole; an untied table is not deferred.
func TestDeferredEmbeddingBackward(t *testing.T) {
	forEachDevice(t, func(t *testing.T, d *gpu.Device) {
		c, err := Preset("tiny", ThreeModal, AllSplits)
		if err != nil {
			t.Fatal(err)
		}
		const B, L = 2, 16
		rng := rand.New(rand.NewPCG(41, 42))
		b := randomBatch(c, B, L, rng)
		params := float32Params(c, rng)
		m, err := NewModel(d, c, B, L)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Release()
		uploadParams(t, m, params)
		if err := m.SetBatch(b, 1); err != nil {
			t.Fatal(err)
		}
		emb := m.Param(NameEmbed)
		grad := func(record func(r *gpu.Recorder)) []float32 {
			t.Helper()
			r := d.NewRecorder()
			m.RecordZeroGrads(r)
			m.RecordForward(r)
			record(r)
			if err := r.Submit(); err != nil {
				t.Fatal(err)
			}
			g, err := emb.G.Download()
			if err != nil {
				t.Fatal(err)
			}
			return g
		}
		want := grad(m.RecordBackward)
		if !m.DeferEmbeddingBackward() {
			t.Fatal("a tied table was not deferred")
		}
		finished := -1
		for s := 0; s < m.BackwardStages(); s++ {
			for _, p := range m.GradsFinishedBy(s) {
				if p == emb {
					finished = s
				}
			}
		}
		if finished != 0 {
			t.Errorf("deferred: %s finished by stage %d, want 0 (the head's)", NameEmbed, finished)
		}
		scatter, err := nn.NewEmbedding(d, nn.EmbeddingArgs{E: emb.W, DOut: m.EmbeddingRows(), DE: emb.G})
		if err != nil {
			t.Fatal(err)
		}
		defer scatter.Release()
		if err := scatter.Update(b.Inputs); err != nil {
			t.Fatal(err)
		}
		stages := func(r *gpu.Recorder) {
			for s := 0; s < m.BackwardStages(); s++ {
				m.RecordBackwardStage(r, s)
			}
		}
		headOnly := grad(stages)
		got := grad(func(r *gpu.Recorder) { stages(r); scatter.RecordBackward(r) })
		whole := grad(m.RecordBackward)
		differs := false
		for i := range want {
			if headOnly[i] != want[i] {
				differs = true
			}
			if got[i] != want[i] {
				t.Fatalf("stages + scatter: %s[%d] = %g, whole backward %g", NameEmbed, i, got[i], want[i])
			}
			if whole[i] != want[i] {
				t.Fatalf("RecordBackward with the deferral: %s[%d] = %g, want %g", NameEmbed, i, whole[i], want[i])
			}
		}
		if !differs {
			t.Error("the deferred stages gave the whole gradient: the scatter was not left out")
		}
		c.TieEmbeddings = false
		u, err := NewModel(d, c, B, L)
		if err != nil {
			t.Fatal(err)
		}
		defer u.Release()
		if u.DeferEmbeddingBackward() {
			t.Error("an untied table was deferred")
		}
	})
}
