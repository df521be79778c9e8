package trainer

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"mom/gpu"
	"mom/gpu/gputest"
	"mom/mom"
	"mom/trainer/data"
	"mom/trainer/dataset"
	"mom/trainer/dataset/datasettest"
)

func forEachDevice(t *testing.T, fn func(t *testing.T, d *gpu.Device)) {
	gputest.ForEachDevice(t, fn)
}

func tinyOptions(t *testing.T, setting mom.Setting, splits mom.Splits, out string) Options {
	c, err := mom.Preset("tiny", setting, splits)
	if err != nil {
		t.Fatal(err)
	}
	o := DefaultOptions()
	o.Config, o.Out = c, out
	o.Batch, o.SeqLen = 4, 64
	o.EvalBatches = 2
	return o
}

func evalLosses(t *testing.T, dir string) []Record {
	t.Helper()
	recs, err := ReadMetrics(filepath.Join(dir, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var out []Record
	for _, r := range recs {
		if r["split"] == "eval" {
			out = append(out, r)
		}
	}
	return out
}

// TestTrainLowersEveryModalityLoss: a few hundred steps of the tiny model
// lower each modality's held-out loss, dense and MoM.
func TestTrainLowersEveryModalityLoss(t *testing.T) {
	forEachDevice(t, func(t *testing.T, d *gpu.Device) {
		for _, splits := range []mom.Splits{{}, mom.AllSplits} {
			name := map[bool]string{true: "dense", false: "mom"}[splits.Dense()]
			t.Run(name, func(t *testing.T) {
				o := tinyOptions(t, mom.ThreeModal, splits, t.TempDir())
				o.Steps, o.EvalEvery, o.CkptEvery = 120, 20, 120
				if _, err := Train(context.Background(), d, o); err != nil {
					t.Fatal(err)
				}
				ev := evalLosses(t, o.Out)
				if len(ev) < 2 {
					t.Fatalf("%d eval records", len(ev))
				}
				first, last := ev[0], ev[len(ev)-1]
				for _, m := range []string{"text", "image", "speech"} {
					a, _ := first["loss_"+m].(float64)
					b, _ := last["loss_"+m].(float64)
					t.Logf("%s %s: held-out loss %.3f at step %v -> %.3f at step %v", name, m, a, first["step"], b, last["step"])
					if !(b < a-0.3) {
						t.Errorf("%s loss went from %.3f to %.3f: not lowered by 0.3", m, a, b)
					}
				}
			})
		}
	})
}

// TestResumeEqualsUninterrupted: a run stopped at step 10 and resumed gives
// exactly the loss curve of the same run uninterrupted.
func TestResumeEqualsUninterrupted(t *testing.T) {
	forEachDevice(t, func(t *testing.T, d *gpu.Device) {
		for _, setting := range []mom.Setting{mom.ThreeModal, mom.Transfusion} {
			t.Run(string(setting), func(t *testing.T) {
				root := t.TempDir()
				a := tinyOptions(t, setting, mom.AllSplits, filepath.Join(root, "a"))
				a.Steps, a.EvalEvery, a.CkptEvery = 20, 5, 10
				if _, err := Train(context.Background(), d, a); err != nil {
					t.Fatal(err)
				}
				b := a
				b.Out = filepath.Join(root, "b")
				b.StopAfter = 13 // checkpoint at 10, three steps lost to the "crash"
				if _, err := Train(context.Background(), d, b); err != nil {
					t.Fatal(err)
				}
				b.StopAfter, b.Resume = 0, true
				os.RemoveAll(filepath.Join(b.Out, "checkpoints", StepDirName(13)))
				os.WriteFile(filepath.Join(b.Out, "checkpoints", "latest"), []byte(StepDirName(10)+"\n"), 0o644)
				if _, err := Train(context.Background(), d, b); err != nil {
					t.Fatal(err)
				}
				ra, err := ReadMetrics(filepath.Join(a.Out, "metrics.jsonl"))
				if err != nil {
					t.Fatal(err)
				}
				rb, err := ReadMetrics(filepath.Join(b.Out, "metrics.jsonl"))
				if err != nil {
					t.Fatal(err)
				}
				key := func(r Record) string {
					parts := []string{fmt.Sprint(r["split"], r["step"])}
					for _, k := range []string{"loss", "loss_text", "loss_image", "loss_speech", "grad_norm", "lr"} {
						if v, ok := r[k]; ok {
							parts = append(parts, fmt.Sprintf("%s=%v", k, v))
						}
					}
					return strings.Join(parts, " ")
				}
				if len(ra) != len(rb) {
					t.Fatalf("uninterrupted run has %d records, resumed %d", len(ra), len(rb))
				}
				for i := range ra {
					if ka, kb := key(ra[i]), key(rb[i]); ka != kb {
						t.Fatalf("record %d differs:\nuninterrupted %s\nresumed       %s", i, ka, kb)
					}
				}
			})
		}
	})
}

// TestNaNLossStops: a NaN loss stops training with an error naming the step,
// and the last good checkpoint stays loadable.
func TestNaNLossStops(t *testing.T) {
	forEachDevice(t, func(t *testing.T, d *gpu.Device) {
		o := tinyOptions(t, mom.Chameleon, mom.AllSplits, t.TempDir())
		o.Steps, o.EvalEvery, o.CkptEvery = 30, 0, 10
		testHookAfterStep = func(tr *trainer, step int) {
			if step == 14 {
				p := tr.m.Param(mom.NameNormF)
				v := make([]float32, p.W.Len())
				for i := range v {
					v[i] = float32(math.NaN())
				}
				if err := p.W.Upload(v); err != nil {
					t.Error(err)
				}
			}
		}
		defer func() { testHookAfterStep = nil }()
		_, err := Train(context.Background(), d, o)
		if err == nil || !strings.Contains(err.Error(), "step 15") || !strings.Contains(err.Error(), "NaN") {
			t.Fatalf("got %v, want an error naming step 15 and NaN", err)
		}
		c, err := LoadCheckpoint(filepath.Join(o.Out, "checkpoints"))
		if err != nil {
			t.Fatalf("last good checkpoint: %v", err)
		}
		if c.Step != 10 {
			t.Errorf("latest checkpoint is step %d, want 10", c.Step)
		}
		for _, p := range c.Params {
			v, _ := p.Float32s()
			for _, x := range v {
				if math.IsNaN(float64(x)) {
					t.Fatalf("checkpoint parameter %s holds NaN", p.Name)
				}
			}
		}
	})
}

func TestOptionsValidate(t *testing.T) {
	base := tinyOptions(t, mom.Chameleon, mom.AllSplits, "x")
	cases := []struct {
		mut  func(*Options)
		want string
	}{
		{func(o *Options) { o.Steps = 0 }, "--steps"},
		{func(o *Options) { o.Out = "" }, "--out"},
		{func(o *Options) { o.LR = -1 }, "learning rates"},
		{func(o *Options) { o.Warmup = o.Steps + 1 }, "--warmup"},
		{func(o *Options) { o.Accum = 0 }, "--accum"},
		{func(o *Options) { o.SeqLen = 1 }, "sequence length"},
		{func(o *Options) { o.LR = math.Inf(1) }, "--lr +Inf must be a finite number"},
		{func(o *Options) { o.MinLR = math.NaN() }, "--min-lr NaN must be a finite number"},
		{func(o *Options) { o.WeightDecay = math.NaN() }, "--wd"},
		{func(o *Options) { o.Steps, o.Warmup = 10, 20 }, "--warmup 20 is longer than the run (--steps 10): lower --warmup"},
		{func(o *Options) { o.EvalBatches = 0 }, "--eval-batches 0 must be at least 1"},
		{func(o *Options) { o.EvalBatches = -1 }, "--eval-batches -1"},
		{func(o *Options) { o.EvalEvery = -5 }, "--eval-every -5"},
		{func(o *Options) { o.CkptEvery = -1 }, "--ckpt-every -1 must not be negative"},
		{func(o *Options) { o.Keep = -1 }, "--keep"},
		{func(o *Options) { o.Schedule = "step" }, "--lr-schedule"},
		{func(o *Options) { o.EvalData = "eval.momtok" }, "--eval-data eval.momtok needs token-file --data"},
		{func(o *Options) { o.Precision = "bf16" }, `--precision "bf16": want f32 or f16`},
		{func(o *Options) { o.LossScale = 1024 }, "apply to --precision f16 only"},
		{func(o *Options) { o.Precision, o.LossScale = "f16", 1000 }, "--loss-scale 1000: want a power of two"},
		{func(o *Options) { o.Precision, o.LossScale = "f16", 1<<25 }, "--loss-scale 3.3554432e+07: want a power of two"},
		{func(o *Options) { o.Precision, o.LossScaleGrowth = "f16", -1 }, "--loss-scale-growth -1"},
	}
	for _, c := range cases {
		o := base
		c.mut(&o)
		if err := o.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("got %v, want an error mentioning %q", err, c.want)
		}
	}
	// Evaluation off: its batch count does not matter.
	o := base
	o.EvalEvery, o.EvalBatches = 0, 0
	if err := o.Validate(); err != nil {
		t.Errorf("evaluation off: %v", err)
	}
}

// TestGradientAccumulationRun: --accum 2 trains, and tokens count both
// micro-batches.
func TestGradientAccumulationRun(t *testing.T) {
	forEachDevice(t, func(t *testing.T, d *gpu.Device) {
		o := tinyOptions(t, mom.Chameleon, mom.AllSplits, t.TempDir())
		o.Steps, o.Warmup, o.Accum, o.EvalEvery, o.CkptEvery = 6, 2, 2, 0, 6
		if _, err := Train(context.Background(), d, o); err != nil {
			t.Fatal(err)
		}
		recs, err := ReadMetrics(filepath.Join(o.Out, "metrics.jsonl"))
		if err != nil {
			t.Fatal(err)
		}
		last := recs[len(recs)-1]
		if tok, _ := last["tokens"].(float64); tok != float64(6*2*o.Batch*o.SeqLen) {
			t.Errorf("tokens after 6 steps of 2 micro-batches: %v, want %d", last["tokens"], 6*2*o.Batch*o.SeqLen)
		}
	})
}

// TestTrainOnTokenFiles: training reads token files, and a file whose
// vocabulary is not the model's is refused with a clear error.
func TestTrainOnTokenFiles(t *testing.T) {
	forEachDevice(t, func(t *testing.T, d *gpu.Device) {
		o := tinyOptions(t, mom.Chameleon, mom.AllSplits, t.TempDir())
		o.Steps, o.Warmup, o.EvalEvery, o.CkptEvery = 8, 2, 4, 8
		vocab := data.VocabOf(o.Config)
		ids := make([]uint32, 5000)
		for i := range ids {
			ids[i] = uint32(i*7) % uint32(o.Config.Vocab)
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
		if ev := evalLosses(t, o.Out); len(ev) != 2 {
			t.Errorf("%d held-out records, want 2", len(ev))
		}
		bad := data.Vocab{Names: vocab.Names, Ranges: [][2]uint32{{0, 10}, {10, uint32(o.Config.Vocab)}}}
		if err := data.WriteTokFile(o.Data, bad, ids, nil); err != nil {
			t.Fatal(err)
		}
		o.Out = t.TempDir()
		if _, err := Train(context.Background(), d, o); err == nil || !strings.Contains(err.Error(), "does not match the model") {
			t.Fatalf("got %v, want a vocabulary mismatch error", err)
		}
	})
}

// TestTrainFourModalities: a fourth modality (video frames as tokens) is a
// row of the modality table; the trainer, the synthetic stream and the
// metrics follow it without other changes, and its held-out loss falls.
func TestTrainFourModalities(t *testing.T) {
	video := mom.Modality{Name: "video", Loss: mom.NextToken, Tokenizer: "video-vq", Synthetic: "grid", Color: "#9467bd", Key: "4", DefaultVocab: 40}
	const four mom.Setting = "four-trainer-test"
	if err := mom.RegisterSetting(mom.SettingSpec{Name: four, Modalities: []mom.Modality{mom.TextModality, mom.ImageTokens, mom.SpeechUnits, video}}); err != nil {
		t.Fatal(err)
	}
	forEachDevice(t, func(t *testing.T, d *gpu.Device) {
		o := tinyOptions(t, four, mom.AllSplits, t.TempDir())
		o.Steps, o.Warmup, o.EvalEvery, o.CkptEvery = 40, 4, 20, 40
		if _, err := Train(context.Background(), d, o); err != nil {
			t.Fatal(err)
		}
		ev := evalLosses(t, o.Out)
		if len(ev) != 2 {
			t.Fatalf("%d held-out records, want 2", len(ev))
		}
		for _, m := range []string{"text", "image", "speech", "video"} {
			first, ok1 := ev[0]["loss_"+m].(float64)
			last, ok2 := ev[1]["loss_"+m].(float64)
			if !ok1 || !ok2 || !(last < first) {
				t.Errorf("held-out %s loss %v -> %v, want it recorded and falling", m, ev[0]["loss_"+m], ev[1]["loss_"+m])
			}
		}
	})
}

// TestTrainOnDataset: a dataset folder of each setting trains the tiny
// model: the vocabulary and patch size come from the dataset, the held-out
// split is its eval split, and every modality's held-out loss falls.
func TestTrainOnDataset(t *testing.T) {
	for _, setting := range []mom.Setting{mom.Chameleon, mom.Transfusion, mom.ThreeModal} {
		f := datasettest.UserFolders(t, setting)
		bo := dataset.Options{Setting: setting, Out: f.Out, Seed: 5, TextVocab: 300, ImageCodes: 16, SpeechUnits: 16, EvalFraction: 0.2,
			TextDirs: f.TextDirs, ImageDir: f.ImageDir, Captions: f.Captions, SpeechDir: f.SpeechDir, Transcripts: f.Transcripts}
		if _, err := dataset.Build(context.Background(), bo); err != nil {
			t.Fatal(err)
		}
		forEachDevice(t, func(t *testing.T, d *gpu.Device) {
			o := tinyOptions(t, setting, mom.AllSplits, t.TempDir())
			c, err := DatasetConfig(o.Config, bo.Out)
			if err != nil {
				t.Fatal(err)
			}
			o.Config, o.Data = c, bo.Out
			// 24 batches cover the small held-out split whole.
			o.Steps, o.Warmup, o.EvalEvery, o.CkptEvery, o.EvalBatches = 60, 5, 30, 60, 24
			if _, err := Train(context.Background(), d, o); err != nil {
				t.Fatal(err)
			}
			ev := evalLosses(t, o.Out)
			if len(ev) != 2 {
				t.Fatalf("%d held-out records, want 2", len(ev))
			}
			for _, m := range c.ModalityNames() {
				first, ok1 := ev[0]["loss_"+m].(float64)
				last, ok2 := ev[1]["loss_"+m].(float64)
				if !ok1 || !ok2 || !(last < first) {
					t.Errorf("%s: held-out %s loss %v -> %v, want it recorded and falling", setting, m, ev[0]["loss_"+m], ev[1]["loss_"+m])
				}
			}
			o.Out, o.EvalData = t.TempDir(), bo.Out
			if _, err := Train(context.Background(), d, o); err == nil || !strings.Contains(err.Error(), "brings its own held-out split") {
				t.Errorf("--eval-data with a dataset: %v", err)
			}
		})
	}
}
