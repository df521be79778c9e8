package mom

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"mom/gpu"
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
