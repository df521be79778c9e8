package main

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"mom/mom"
	"mom/trainer"
	"mom/trainer/dataset"
	"mom/trainer/dataset/datasettest"
	"mom/trainer/safetensors"
)

// smallDataset builds a small dataset of setting from a user's folders.
func smallDataset(t *testing.T, setting mom.Setting) string {
	t.Helper()
	f := datasettest.UserFolders(t, setting)
	o := dataset.Options{Setting: setting, Out: f.Out, Seed: 5, TextVocab: 300, ImageCodes: 16, SpeechUnits: 16, EvalFraction: 0.2,
		TextDirs: f.TextDirs, ImageDir: f.ImageDir, Captions: f.Captions, SpeechDir: f.SpeechDir, Transcripts: f.Transcripts}
	if _, err := dataset.Build(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	return o.Out
}

// fakeRun writes a run folder without a device: the tiny model of setting
// (fitted to the dataset data, or "synthetic") with freshly initialised
// parameters in a step-0 checkpoint, and a config.json naming its data.
func fakeRun(t *testing.T, setting mom.Setting, data string) string {
	t.Helper()
	c, err := mom.Preset("tiny", setting, mom.AllSplits)
	if err != nil {
		t.Fatal(err)
	}
	if c, err = trainer.DatasetConfig(c, data); err != nil {
		t.Fatal(err)
	}
	run := filepath.Join(t.TempDir(), "run")
	ck := &trainer.Checkpoint{Config: c.JSON()}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, s := range c.ParamSpecs() {
		ck.Params = append(ck.Params, safetensors.F32(s.Name, s.Shape, mom.InitParam(s, rng)))
	}
	if _, err := trainer.SaveCheckpoint(filepath.Join(run, "checkpoints"), ck, 0); err != nil {
		t.Fatal(err)
	}
	cfg, _ := json.Marshal(map[string]any{"data": data, "batch": 2, "seq_len": 32, "seed": 1, "model": c})
	if err := os.WriteFile(filepath.Join(run, "config.json"), cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	return run
}

// TestSampleEvalUsageErrors: bad invocations of sample and eval are
// refused before a device opens (the WebGPU library here does not exist,
// so opening one would fail with another message).
func TestSampleEvalUsageErrors(t *testing.T) {
	t.Setenv("MOM_WEBGPU_LIB", filepath.Join(t.TempDir(), "libwebgpu.so"))
	dsTF := smallDataset(t, mom.Transfusion)
	three := fakeRun(t, mom.ThreeModal, smallDataset(t, mom.ThreeModal))
	tf := fakeRun(t, mom.Transfusion, dsTF)
	synth := fakeRun(t, mom.ThreeModal, "synthetic")
	prompt := filepath.Join(t.TempDir(), "prompt.txt")
	os.WriteFile(prompt, []byte("a round spot\n"), 0o644)
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"sample"}, 2, "--checkpoint is required"},
		{[]string{"sample", "--checkpoint", three, "--prompt", "a", "--prompt-file", prompt}, 2, "--prompt and --prompt-file"},
		{[]string{"sample", "--checkpoint", three, "--prompt-file", filepath.Join(t.TempDir(), "none")}, 2, "--prompt-file"},
		{[]string{"sample", "--checkpoint", three, "--n", "0"}, 2, "--n 0"},
		{[]string{"sample", "--checkpoint", three, "--max-tokens", "0"}, 2, "--max-tokens"},
		{[]string{"sample", "--checkpoint", three, "--modality", "video"}, 2, `no "video" modality`},
		{[]string{"sample", "--checkpoint", tf, "--modality", "speech"}, 2, `no "speech" modality`},
		{[]string{"sample", "--checkpoint", three, "--modality", "image", "--steps", "8"}, 2, "not denoised"},
		{[]string{"sample", "--checkpoint", three, "--sampler", "ddim"}, 2, "not denoised"},
		{[]string{"sample", "--checkpoint", tf, "--modality", "image", "--sampler", "euler"}, 2, "unknown diffusion sampler"},
		{[]string{"sample", "--checkpoint", tf, "--modality", "image", "--steps", "99"}, 2, "diffusion steps"},
		{[]string{"sample", "--checkpoint", three, "--modality", "image", "--max-tokens", "10"}, 2, "more than --max-tokens"},
		{[]string{"sample", "--checkpoint", three, "--temperature", "-1"}, 2, "temperature"},
		{[]string{"sample", "--checkpoint", synth}, 2, "synthetic data, so it has no tokenizers"},
		{[]string{"sample", "--checkpoint", three, "--data", dsTF}, 1, "does not fit"},
		{[]string{"eval", "--checkpoint", three, "--data", dsTF}, 1, "does not fit"},
		{[]string{"sample", "--checkpoint", filepath.Join(t.TempDir(), "nothing")}, 1, "checkpoint"},
		{[]string{"eval"}, 2, "--checkpoint is required"},
		{[]string{"eval", "--checkpoint", three, "--batches", "-1"}, 2, "--batches"},
		{[]string{"eval", "--checkpoint", three, "--json", "a", "b"}, 2, "unexpected arguments"},
		{[]string{"eval", "--checkpoint", three, "--data", t.TempDir()}, 1, "mom data build"},
	}
	for _, c := range cases {
		code, _, errOut := runCLI(c.args...)
		if code != c.code || !strings.Contains(errOut, c.want) {
			t.Errorf("mom %v: exit %d, stderr %q; want exit %d and %q", c.args, code, errOut, c.code, c.want)
		}
	}
	// With everything in order, the next thing is the device: here the
	// missing library.
	code, _, errOut := runCLI("sample", "--checkpoint", three, "--prompt-file", prompt)
	if code != 1 || !strings.Contains(errOut, "libwebgpu.so") {
		t.Errorf("a valid invocation: exit %d, %q; want the missing library", code, errOut)
	}
}

// TestSampleEvalCLI: mom sample writes images (discrete and by diffusion)
// and text; mom eval prints its table and writes JSON to a file or stdout.
func TestSampleEvalCLI(t *testing.T) {
	three := fakeRun(t, mom.ThreeModal, smallDataset(t, mom.ThreeModal))
	tf := fakeRun(t, mom.Transfusion, smallDataset(t, mom.Transfusion))
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"sample", "--checkpoint", three, "--modality", "image", "--n", "2", "--out", filepath.Join(dir, "img")},
			[]string{"img/grid.png", "img/sample_01_image_1.png", "img/samples.json"}},
		{[]string{"sample", "--checkpoint", three, "--prompt", "the", "--n", "1", "--max-tokens", "8", "--temperature", "0"},
			[]string{filepath.Join(three, "samples", "step_00000000", "samples.txt")}},
		{[]string{"sample", "--checkpoint", tf, "--modality", "image", "--n", "2", "--steps", "2", "--sampler", "ddim", "--out", filepath.Join(dir, "tf")},
			[]string{"tf/grid.png"}},
	} {
		code, out, errOut := runCLI(c.args...)
		if code != 0 {
			t.Fatalf("mom %v: exit %d\n%s%s", c.args, code, out, errOut)
		}
		for _, w := range c.want {
			if !filepath.IsAbs(w) {
				w = filepath.Join(dir, w)
			}
			if _, err := os.Stat(w); err != nil {
				t.Errorf("mom %v: %v\n%s", c.args, err, out)
			}
		}
	}
	js := filepath.Join(dir, "eval.json")
	code, out, errOut := runCLI("eval", "--checkpoint", three, "--batches", "1", "--json", js)
	if code != 0 || !strings.Contains(out, "bits/byte") || !strings.Contains(out, "total loss") {
		t.Fatalf("eval: exit %d\n%s%s", code, out, errOut)
	}
	var res trainer.EvalResult
	b, _ := os.ReadFile(js)
	if err := json.Unmarshal(b, &res); err != nil || res.Batches != 1 || res.Modalities["speech"] == nil || res.Modalities["text"].BitsPerByte == nil {
		t.Errorf("eval JSON: %v\n%s", err, b)
	}
	code, out, errOut = runCLI("eval", "--checkpoint", tf, "--json")
	var whole trainer.EvalResult
	if code != 0 || json.Unmarshal([]byte(out), &whole) != nil || !whole.Whole || whole.Modalities["image"].Kind != mom.Diffusion {
		t.Errorf("eval --json to stdout: exit %d\n%s%s", code, out, errOut)
	}
}

// TestTrainSamplesCLI: mom train --sample-every writes each sampled step's
// text, image grid and speech into the run folder, logs each with its
// times, and records the pause in the metrics.
func TestTrainSamplesCLI(t *testing.T) {
	ds := smallDataset(t, mom.ThreeModal)
	run := filepath.Join(t.TempDir(), "run")
	code, out, errOut := runCLI("train", "--preset", "tiny", "--data", ds, "--out", run, "--steps", "4", "--batch", "2", "--seq", "32",
		"--eval-every", "0", "--sample-every", "3", "--sample-n", "1", "--sample-prompt", "the quick")
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	if !strings.Contains(out, "s paused for samples") {
		t.Errorf("the summary does not give the time sampling took:\n%s", out)
	}
	for _, step := range []int{3, 4} { // every third step, and the last
		dir := filepath.Join(run, "samples", trainer.StepDirName(step))
		if !strings.Contains(errOut, "samples of step "+strconv.Itoa(step)+" in "+dir) {
			t.Errorf("no log line for the samples of step %d:\n%s", step, errOut)
		}
		for _, f := range []string{"text/samples.txt", "image/grid.png", "speech/samples.json"} {
			if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
				t.Error(err)
			}
		}
	}
	b, _ := os.ReadFile(filepath.Join(run, "metrics.jsonl"))
	if n := strings.Count(string(b), `"sample_s":`); n != 2 {
		t.Errorf("%d metrics records with sample_s, want 2:\n%s", n, b)
	}
}
