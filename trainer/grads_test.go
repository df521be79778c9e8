package trainer

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"testing"

	"mom/gpu"
	"mom/mom"
	"mom/trainer/data"
	"mom/trainer/safetensors"
)

// TestGradsFileMatchesReference: the gradients file holds a batch, losses
// and gradients that the CPU reference model reproduces from the file alone.
func TestGradsFileMatchesReference(t *testing.T) {
	forEachDevice(t, func(t *testing.T, d *gpu.Device) {
		for _, setting := range []mom.Setting{mom.ThreeModal, mom.Transfusion} {
			t.Run(string(setting), func(t *testing.T) {
				o := tinyOptions(t, setting, mom.AllSplits, t.TempDir())
				o.Steps, o.Warmup, o.EvalEvery, o.CkptEvery = 4, 2, 0, 4
				if _, err := Train(context.Background(), d, o); err != nil {
					t.Fatal(err)
				}
				const B, L = 2, 16
				ts, meta, err := Grads(d, filepath.Join(o.Out, "checkpoints"), B, L, "")
				if err != nil {
					t.Fatal(err)
				}
				path := filepath.Join(t.TempDir(), "grads.safetensors")
				if err := safetensors.Write(path, ts, meta); err != nil {
					t.Fatal(err)
				}
				ts, meta, err = safetensors.Read(path)
				if err != nil {
					t.Fatal(err)
				}
				var c mom.Config
				if err := json.Unmarshal([]byte(meta["config"]), &c); err != nil {
					t.Fatal(err)
				}
				byName := map[string]safetensors.Tensor{}
				for _, x := range ts {
					byName[x.Name] = x
				}
				u32 := func(n string) []uint32 { v, _ := byName[n].Uint32s(); return v }
				f32 := func(n string) []float32 { v, _ := byName[n].Float32s(); return v }
				b := &mom.Batch{Inputs: u32("batch.inputs"), Modality: u32("batch.modality"), Targets: u32("batch.targets"),
					TargetModality: u32("batch.target_modality")}
				if setting == mom.Transfusion {
					b.NoisyPatches, b.Noise = f32("batch.noisy_patches"), f32("batch.noise")
				}
				params := map[string][]float64{}
				for _, s := range c.ParamSpecs() {
					params[s.Name] = widen(f32("param." + s.Name))
				}
				losses, grads, err := mom.RefStep(c, params, b, B, L, 1)
				if err != nil {
					t.Fatal(err)
				}
				lt := f32("loss.total")[0]
				if want := mom.RefLoss(c, b, losses); math.Abs(float64(lt)-want) > 1e-4*want {
					t.Errorf("loss.total %g, reference %g", lt, want)
				}
				for _, s := range c.ParamSpecs() {
					got, want := f32("grad."+s.Name), grads[s.Name]
					scale := 0.0
					for _, w := range want {
						scale = math.Max(scale, math.Abs(w))
					}
					for i := range want {
						if math.Abs(float64(got[i])-want[i]) > 2e-3*scale+1e-7 {
							t.Fatalf("grad.%s[%d] = %g, reference %g (max %g)", s.Name, i, got[i], want[i], scale)
						}
					}
				}
			})
		}
	})
}

func widen(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

// TestGradsUsesTheRunsData: for a run trained on token files, the batch of
// the gradients file comes from the run's held-out file, not from the
// synthetic stream.
func TestGradsUsesTheRunsData(t *testing.T) {
	forEachDevice(t, func(t *testing.T, d *gpu.Device) {
		o := tinyOptions(t, mom.Chameleon, mom.AllSplits, t.TempDir())
		o.Steps, o.Warmup, o.EvalEvery, o.CkptEvery = 2, 0, 0, 2
		vocab := data.VocabOf(o.Config)
		ids := make([]uint32, 3000)
		for i := range ids {
			ids[i] = uint32(i*11+5) % uint32(o.Config.Vocab)
		}
		dir := t.TempDir()
		o.Data, o.EvalData = filepath.Join(dir, "train.momtok"), filepath.Join(dir, "eval.momtok")
		for _, p := range []string{o.Data, o.EvalData} {
			if err := data.WriteTokFile(p, vocab, ids, nil); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := Train(context.Background(), d, o); err != nil {
			t.Fatal(err)
		}
		const B, L = 2, 16
		ts, meta, err := Grads(d, o.Out, B, L, "")
		if err != nil {
			t.Fatal(err)
		}
		if meta["data"] != o.Data {
			t.Errorf("metadata data %q, want the run's %q", meta["data"], o.Data)
		}
		f, err := data.OpenTokFile(o.EvalData)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		want, err := data.NewBatch(B, L, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Next(want); err != nil {
			t.Fatal(err)
		}
		for _, x := range ts {
			if x.Name == "batch.inputs" {
				got, _ := x.Uint32s()
				if fmt.Sprint(got) != fmt.Sprint(want.Inputs) {
					t.Errorf("batch.inputs %v, want the held-out file's %v", got[:8], want.Inputs[:8])
				}
				return
			}
		}
		t.Error("no batch.inputs")
	})
}
