package trainer

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"mom/gpu"
	"mom/mom"
	"mom/trainer/data"
	"mom/trainer/dataset"
	"mom/trainer/dataset/datasettest"
	"mom/trainer/runfolder"
	"mom/trainer/sample"
)

// smallDataset builds a small dataset of setting from a user's folders
// and returns its folder.
func smallDataset(t *testing.T, setting mom.Setting) string {
	t.Helper()
	f := datasettest.UserFolders(t, setting)
	bo := dataset.Options{Setting: setting, Out: f.Out, Seed: 5, TextVocab: 300, ImageCodes: 16, SpeechUnits: 16, EvalFraction: 0.2,
		TextDirs: f.TextDirs, ImageDir: f.ImageDir, Captions: f.Captions, SpeechDir: f.SpeechDir, Transcripts: f.Transcripts}
	if _, err := dataset.Build(context.Background(), bo); err != nil {
		t.Fatal(err)
	}
	return bo.Out
}

// datasetOptions are tinyOptions on the dataset ds.
func datasetOptions(t *testing.T, setting mom.Setting, ds, out string) Options {
	t.Helper()
	o := tinyOptions(t, setting, mom.AllSplits, out)
	c, err := DatasetConfig(o.Config, ds)
	if err != nil {
		t.Fatal(err)
	}
	o.Config, o.Data = c, ds
	return o
}

// sampledSteps lists the steps of a run's sample folders, oldest first.
func sampledSteps(t *testing.T, run string) []int {
	t.Helper()
	steps, err := runfolder.SampleSteps(run)
	if err != nil {
		t.Fatal(err)
	}
	slices.Reverse(steps)
	return steps
}

// readSamplesJSON reads the ids of each sample of one set.
func readSamplesJSON(t *testing.T, dir string) (prompt string, ids [][]uint32) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, runfolder.SampleJSONFile))
	if err != nil {
		t.Fatal(err)
	}
	var sj struct {
		Prompt  string `json:"prompt"`
		Samples []struct {
			IDs []uint32 `json:"ids"`
		} `json:"samples"`
	}
	if err := json.Unmarshal(b, &sj); err != nil {
		t.Fatal(err)
	}
	for _, s := range sj.Samples {
		ids = append(ids, s.IDs)
	}
	return sj.Prompt, ids
}

// TestSamplesWhileTraining: a run with --sample-every, stopped and
// resumed, computes exactly what the same run without samples computes
// (every loss, gradient norm and learning rate, bit for bit); it writes
// text, an image grid and WAVs at every K-th step and the last, drops the
// samples after the checkpoint it resumed from, records each pause as
// sample_s; and the samples of a step are those a fresh sampler draws from
// that step's checkpoint (the sampler sees the step's weights).
func TestSamplesWhileTraining(t *testing.T) {
	ds := smallDataset(t, mom.ThreeModal)
	forEachDevice(t, func(t *testing.T, d *gpu.Device) {
		root := t.TempDir()
		a := datasetOptions(t, mom.ThreeModal, ds, filepath.Join(root, "plain"))
		a.Steps, a.Warmup, a.EvalEvery, a.CkptEvery, a.Keep = 10, 2, 5, 4, 0
		if _, err := Train(context.Background(), d, a); err != nil {
			t.Fatal(err)
		}
		b := a
		b.Out = filepath.Join(root, "sampled")
		b.SampleEvery, b.SampleN, b.SamplePrompt = 4, 2, "the quick"
		b.StopAfter = 6 // checkpoints at 4 and 6, samples at 4 and 6
		res, err := Train(context.Background(), d, b)
		if err != nil {
			t.Fatal(err)
		}
		if res.SampleSeconds <= 0 {
			t.Errorf("the result reports %g s of sampling", res.SampleSeconds)
		}
		if got := sampledSteps(t, b.Out); !slices.Equal(got, []int{4, 6}) {
			t.Fatalf("samples at steps %v before the resume, want [4 6]", got)
		}
		// A crash after the samples of step 6 but before its checkpoint.
		os.RemoveAll(filepath.Join(b.Out, "checkpoints", StepDirName(6)))
		os.WriteFile(filepath.Join(b.Out, "checkpoints", "latest"), []byte(StepDirName(4)+"\n"), 0o644)
		var log strings.Builder
		b.StopAfter, b.Resume, b.Progress = 0, true, &log
		before := d.LiveObjects()
		if _, err := Train(context.Background(), d, b); err != nil {
			t.Fatal(err)
		}
		after := d.LiveObjects()
		for _, k := range []string{"buffer", "bind group"} {
			if after[k] != before[k] {
				t.Errorf("%d live %s objects after a run with samples, %d before: the sampler leaks", after[k], k, before[k])
			}
		}
		if got := sampledSteps(t, b.Out); !slices.Equal(got, []int{4, 8, 10}) {
			t.Errorf("samples at steps %v after the resume, want [4 8 10] (6 dropped with its metrics, 10 the last)", got)
		}
		if !strings.Contains(log.String(), "removed samples written after step 4") || !strings.Contains(log.String(), "samples of step 8 in") {
			t.Errorf("the log does not tell of the samples dropped and written:\n%s", log.String())
		}

		ra, err := ReadMetrics(filepath.Join(a.Out, "metrics.jsonl"))
		if err != nil {
			t.Fatal(err)
		}
		rb, err := ReadMetrics(filepath.Join(b.Out, "metrics.jsonl"))
		if err != nil {
			t.Fatal(err)
		}
		if len(ra) != len(rb) {
			t.Fatalf("%d records without samples, %d with", len(ra), len(rb))
		}
		for i := range ra {
			for k, va := range ra[i] {
				switch k {
				case "wall_s", "step_ms", "tokens_per_s":
					continue // times
				}
				if vb := rb[i][k]; fmt.Sprint(va) != fmt.Sprint(vb) {
					t.Errorf("record %d (%v step %v): %s = %v without samples, %v with", i, ra[i]["split"], ra[i]["step"], k, va, vb)
				}
			}
			step, _ := rb[i].Step()
			_, has := rb[i]["sample_s"]
			want := rb[i].Split() == "train" && (step == 4 || step == 8 || step == 10)
			if has != want {
				t.Errorf("record %d (%s step %d): sample_s present %v, want %v", i, rb[i].Split(), step, has, want)
			}
			if s := rb[i].Float("sample_s"); has && !(s > 0) {
				t.Errorf("step %d: sample_s %v", step, s)
			}
		}

		// Every modality's set: text continuing the prompt, an image grid,
		// speech as WAV files.
		step := sampleDir(t, b.Out, 8)
		for _, m := range []string{"text", "image", "speech"} {
			prompt, ids := readSamplesJSON(t, filepath.Join(step, m))
			if prompt != b.SamplePrompt || len(ids) != b.SampleN {
				t.Errorf("%s: prompt %q and %d samples, want %q and %d", m, prompt, len(ids), b.SamplePrompt, b.SampleN)
			}
		}
		if _, err := os.Stat(filepath.Join(step, "image", runfolder.SampleGridFile)); err != nil {
			t.Errorf("no image grid: %v", err)
		}
		if wavs, _ := filepath.Glob(filepath.Join(step, "speech", "*.wav")); len(wavs) == 0 {
			t.Errorf("no speech WAV files in %s", filepath.Join(step, "speech"))
		}
		got, err := runfolder.LatestSamples(b.Out)
		if err != nil {
			t.Fatal(err)
		}
		if got == nil || got.Step != 10 || len(got.Sets) != 3 || got.Sets[0].Grid == "" || got.Sets[2].Modality != "text" ||
			!strings.HasPrefix(got.Sets[2].Texts[0], b.SamplePrompt) {
			t.Errorf("the newest samples read back: %+v", got)
		}

		// Step 4's samples are a fresh sampler's on checkpoint 4, seed 4.
		tr, err := OpenTrained(filepath.Join(b.Out, "checkpoints", StepDirName(4)))
		if err != nil {
			t.Fatal(err)
		}
		dset, err := tr.Dataset("")
		if err != nil {
			t.Fatal(err)
		}
		toks, err := dset.LoadTokenizers()
		if err != nil {
			t.Fatal(err)
		}
		v, err := sample.NewVocab(tr.Config, dset, toks)
		if err != nil {
			t.Fatal(err)
		}
		m, err := tr.NewModel(d, 1, 1)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Release()
		smp, err := sample.New(m, v, b.SampleN)
		if err != nil {
			t.Fatal(err)
		}
		defer smp.Release()
		for _, mod := range []string{"text", "image"} {
			r, err := smp.Sample(sample.Options{Prompt: b.SamplePrompt, Modality: mod, Params: mom.SampleParams{Temperature: 1, Seed: 4}})
			if err != nil {
				t.Fatal(err)
			}
			_, ids := readSamplesJSON(t, filepath.Join(sampleDir(t, b.Out, 4), mod))
			for i, s := range r.Samples {
				if !slices.Equal(s.IDs, ids[i]) {
					t.Errorf("%s sample %d at step 4: training wrote %v, the checkpoint's sampler draws %v", mod, i, ids[i], s.IDs)
				}
			}
		}
	})
}

// sampleDir returns the samples folder of step in run, failing the
// test when it is missing.
func sampleDir(t *testing.T, run string, step int) string {
	t.Helper()
	dir := runfolder.SampleStepDir(run, step)
	if _, err := os.Stat(dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestSamplesWhileTrainingTransfusion: continuous images are denoised
// between steps and written as a grid beside the text.
func TestSamplesWhileTrainingTransfusion(t *testing.T) {
	ds := smallDataset(t, mom.Transfusion)
	forEachDevice(t, func(t *testing.T, d *gpu.Device) {
		o := datasetOptions(t, mom.Transfusion, ds, t.TempDir())
		o.Steps, o.Warmup, o.EvalEvery, o.CkptEvery, o.SampleEvery, o.SampleN = 3, 1, 0, 3, 2, 2
		if _, err := Train(context.Background(), d, o); err != nil {
			t.Fatal(err)
		}
		if got := sampledSteps(t, o.Out); !slices.Equal(got, []int{2, 3}) {
			t.Fatalf("samples at steps %v, want [2 3]", got)
		}
		s, err := runfolder.LatestSamples(o.Out)
		if err != nil {
			t.Fatal(err)
		}
		if len(s.Sets) != 2 || s.Sets[0].Modality != "image" || s.Sets[0].Grid == "" || s.Sets[1].Modality != "text" || len(s.Sets[1].Texts) != 2 {
			t.Errorf("step 3's samples: %+v", s)
		}
	})
}

// TestSamplesRefused: sampling needs a dataset's tokenizers; the synthetic
// stream and token files are refused before a run folder is made, as are
// bad counts.
func TestSamplesRefused(t *testing.T) {
	dir := t.TempDir()
	base := tinyOptions(t, mom.Chameleon, mom.AllSplits, filepath.Join(dir, "run"))
	tok := filepath.Join(dir, "train.momtok")
	if err := data.WriteTokFile(tok, data.VocabOf(base.Config), []uint32{1, 2, 3, 4}, nil); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		mut  func(*Options)
		want string
	}{
		{"synthetic", func(o *Options) { o.SampleEvery = 5 }, "--sample-every needs a dataset folder"},
		{"token file", func(o *Options) { o.SampleEvery, o.Data = 5, tok }, "the token file " + tok + " has none"},
		{"negative", func(o *Options) { o.SampleEvery = -1 }, "--sample-every -1 must not be negative"},
		{"too many", func(o *Options) { o.SampleEvery, o.SampleN = 5, 5000 }, "--sample-n 5000"},
		{"none", func(o *Options) { o.SampleEvery, o.SampleN = 5, 0 }, "--sample-n 0"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := base
			c.mut(&o)
			if err := o.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Validate: %v, want an error saying %q", err, c.want)
			}
			// Train refuses before it opens anything (a nil device would
			// crash anything that tried).
			if _, err := Train(context.Background(), nil, o); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Train: %v, want an error saying %q", err, c.want)
			}
			if _, err := os.Stat(o.Out); err == nil {
				t.Errorf("the refused run made its folder %s", o.Out)
			}
		})
	}
}

// TestAnnotateSamples: each sampling pause goes into the record of its
// step, or into the first written after it; adjacent sampled steps keep
// their own.
func TestAnnotateSamples(t *testing.T) {
	cases := []struct {
		name    string
		pauses  []samplePause
		records []int
		want    []float64 // sample_s per record; 0: none
	}{
		{"each its own", []samplePause{{3, 1}, {4, 2}}, []int{2, 3, 4, 5}, []float64{0, 1, 2, 0}},
		{"log every 5", []samplePause{{3, 1}, {4, 2}}, []int{5}, []float64{3}},
		{"later pause waits", []samplePause{{3, 1}, {10, 4}}, []int{5, 10}, []float64{1, 4}},
		{"none", nil, []int{1, 2}, []float64{0, 0}},
	}
	for _, c := range cases {
		tr := &trainer{samples: &sampling{pending: slices.Clone(c.pauses)}}
		for i, step := range c.records {
			rec := Record{}
			tr.annotateSamples(rec, step)
			got, _ := rec["sample_s"].(float64)
			if _, has := rec["sample_s"]; has != (c.want[i] != 0) || got != c.want[i] {
				t.Errorf("%s: record of step %d: sample_s %v, want %v", c.name, step, rec["sample_s"], c.want[i])
			}
		}
	}
	(&trainer{}).annotateSamples(Record{}, 1) // no sampling: nothing to do
}
