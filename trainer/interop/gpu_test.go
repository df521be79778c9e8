package interop

import (
	"context"
	"encoding/binary"
	"math"
	"path/filepath"
	"testing"

	"mom/gpu"
	"mom/gpu/gputest"
	"mom/mom"
	"mom/trainer"
	"mom/trainer/safetensors"
)

// logits runs m's forward on the GPU over ids (b sequences of l tokens,
// every position text unless mods says otherwise) and returns (b·l, V).
func logits(t *testing.T, d *gpu.Device, m *Model, ids, mods []uint32, b, l int) []float32 {
	t.Helper()
	gm, err := mom.NewModel(d, m.Config, b, l)
	if err != nil {
		t.Fatal(err)
	}
	defer gm.Release()
	for _, p := range gm.Params {
		if err := p.W.Upload(m.Params[p.Spec.Name]); err != nil {
			t.Fatal(err)
		}
	}
	if mods == nil {
		mods = make([]uint32, len(ids))
	}
	n := len(ids)
	tm := make([]uint32, n)
	targets := make([]uint32, n)
	for i := range targets {
		targets[i] = mom.IgnoreIndex
		if (i+1)%l != 0 {
			targets[i] = ids[i+1]
			tm[i] = mods[i+1]
		}
	}
	batch := &mom.Batch{Inputs: ids, Modality: mods, Targets: targets, TargetModality: tm}
	if m.Config.Continuous() {
		batch.NoisyPatches = make([]float32, n*m.Config.PatchDim)
		batch.Noise = make([]float32, n*m.Config.PatchDim)
	}
	if err := gm.SetBatch(batch, 1); err != nil {
		t.Fatal(err)
	}
	out, err := gm.Logits()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// fixtureBatch reads the stored batch: input ids and transformers' logits.
func fixtureBatch(t *testing.T, dir string) (ids []uint32, want []float32, b, l, v int) {
	t.Helper()
	ts, _, err := safetensors.Read(filepath.Join(dir, "batch.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range ts {
		switch x.Name {
		case "input_ids":
			b, l = x.Shape[0], x.Shape[1]
			for i := 0; i < len(x.Data); i += 8 {
				ids = append(ids, uint32(binary.LittleEndian.Uint64(x.Data[i:])))
			}
		case "logits":
			v = x.Shape[2]
			if want, err = x.Float32s(); err != nil {
				t.Fatal(err)
			}
		}
	}
	return
}

// fixtureTolerance bounds max |mom - transformers| over the fixture's
// logits, relative to the largest |logit| (37.5 here, so 3.8e-4 absolute).
// Both compute in float32 and differ only in the order of the sums (tiled
// GEMMs and a chunked scan on the GPU; PyTorch's CPU kernels and a
// sequential scan in transformers): a few float32 ulps of the largest
// values. Measured on lavapipe, Dawn and wgpu-native: 5.7e-6 absolute,
// 1.5e-7 relative, so the bound leaves a 65x margin for other devices and
// drivers, while a wrong tensor, name, half or layout moves the logits by
// order one.
const fixtureTolerance = 1e-5

// TestFixtureLogits: mom imports the transformers and the mamba_ssm
// fixture, runs the forward on the stored batch and matches the logits
// transformers computed, within fixtureTolerance. The import places the
// text model in the three-modality setting of a small dataset (new image
// and speech rows); the text columns of the logits do not depend on them.
func TestFixtureLogits(t *testing.T) {
	ds, err := ReadDataset("testdata/dataset_tiny")
	if err != nil {
		t.Fatal(err)
	}
	gputest.ForEachDevice(t, func(t *testing.T, d *gpu.Device) {
		for _, dir := range []string{"testdata/hf_tiny", "testdata/mamba_ssm_tiny"} {
			src, err := ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			m, err := Upcycle(src, Target{Dataset: ds, Seed: 1})
			if err != nil {
				t.Fatal(err)
			}
			ids, want, b, l, v := fixtureBatch(t, dir)
			got := logits(t, d, m, ids, nil, b, l)
			V := m.Config.Vocab
			var maxAbs, maxErr float64
			for r := 0; r < b*l; r++ {
				for k := 0; k < v; k++ {
					w, g := float64(want[r*v+k]), float64(got[r*V+k])
					maxAbs = math.Max(maxAbs, math.Abs(w))
					maxErr = math.Max(maxErr, math.Abs(g-w))
				}
			}
			t.Logf("%s: max |logit| %.3f, max |mom - transformers| %.3g (%.3g relative)", dir, maxAbs, maxErr, maxErr/maxAbs)
			if !(maxErr <= fixtureTolerance*maxAbs) {
				t.Errorf("%s: logits differ from transformers' by %.3g, above %.1g x %.3f", dir, maxErr, fixtureTolerance, maxAbs)
			}
		}
	})
}

// TestUpcycledLogitsEqualDense: a dense model upcycled to Mixture-of-Mamba
// (every expert a copy) gives the dense model's logits before any step,
// on a batch that mixes all three modalities.
func TestUpcycledLogitsEqualDense(t *testing.T) {
	c, err := mom.Preset("tiny", mom.ThreeModal, mom.Splits{})
	if err != nil {
		t.Fatal(err)
	}
	dense := randomModel(c, 5)
	for k, v := range dense.Params { // keep the random model well-behaved
		for i := range v {
			v[i] *= 0.3
		}
		dense.Params[k] = v
	}
	all := mom.AllSplits
	moe, err := Upcycle(dense, Target{Splits: &all})
	if err != nil {
		t.Fatal(err)
	}
	const b, l = 2, 24
	ids, mods := make([]uint32, b*l), make([]uint32, b*l)
	for i := range ids {
		mod := (i / 5) % 3 // runs of five tokens of each modality
		r := c.VocabRanges[mod]
		ids[i] = uint32(r[0] + (i*7)%(r[1]-r[0]))
		mods[i] = uint32(mod)
	}
	gputest.ForEachDevice(t, func(t *testing.T, d *gpu.Device) {
		want := logits(t, d, dense, ids, mods, b, l)
		got := logits(t, d, moe, ids, mods, b, l)
		var maxAbs, maxErr float64
		for i := range want {
			maxAbs = math.Max(maxAbs, math.Abs(float64(want[i])))
			maxErr = math.Max(maxErr, math.Abs(float64(got[i]-want[i])))
		}
		t.Logf("max |logit| %.3f, max |MoM - dense| %.3g", maxAbs, maxErr)
		// Measured on lavapipe: exactly equal. The bound allows a grouped
		// GEMM that sums in another order than the plain one on other
		// devices.
		if !(maxErr <= 1e-5*math.Max(1, maxAbs)) {
			t.Errorf("upcycled logits differ from the dense model's by %.3g (max |logit| %.3f)", maxErr, maxAbs)
		}
	})
}

// TestImportedRunResumes: `mom train --resume` continues an imported run
// from its step-0 checkpoint (no RNG state or data position in it).
func TestImportedRunResumes(t *testing.T) {
	ds, err := ReadDataset("testdata/dataset_tiny")
	if err != nil {
		t.Fatal(err)
	}
	all := mom.AllSplits
	gputest.ForEachDevice(t, func(t *testing.T, d *gpu.Device) {
		out := filepath.Join(t.TempDir(), "up")
		res, err := Import(ImportOptions{From: "testdata/hf_tiny", Out: out, Target: Target{Dataset: ds, Splits: &all}})
		if err != nil {
			t.Fatal(err)
		}
		o := trainer.DefaultOptions()
		o.Config, o.Out, o.Resume = res.Model.Config, out, true
		o.Steps, o.Batch, o.SeqLen, o.Warmup, o.EvalEvery, o.CkptEvery = 2, 2, 16, 1, 0, 2
		r, err := trainer.Train(context.Background(), d, o)
		if err != nil {
			t.Fatal(err)
		}
		if r.Steps != 2 || !(r.Final.Total > 0) {
			t.Errorf("resumed run: %d steps, loss %v", r.Steps, r.Final.Total)
		}
	})
}
