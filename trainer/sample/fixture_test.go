package sample_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"mom/gpu"
	"mom/gpu/gputest"
	"mom/mom"
	"mom/trainer"
	"mom/trainer/dataset"
	"mom/trainer/dataset/datasettest"
	"mom/trainer/sample"
)

// The fixtures: per setting, a small dataset built from a user's folders
// (datasettest.UserFolders) and the tiny model trained on it for a few
// dozen steps, made once per test binary (on the first runtime; the
// checkpoint serves every runtime).

var (
	fixMu   sync.Mutex
	fixDir  string
	fixRuns = map[mom.Setting]string{}
)

func TestMain(m *testing.M) {
	code := m.Run()
	if fixDir != "" {
		os.RemoveAll(fixDir)
	}
	os.Exit(code)
}

// trainedRun returns the run folder of the tiny model trained on a small
// dataset of setting.
func trainedRun(t *testing.T, setting mom.Setting) string {
	t.Helper()
	fixMu.Lock()
	defer fixMu.Unlock()
	if run, ok := fixRuns[setting]; ok {
		return run
	}
	if fixDir == "" {
		var err error
		if fixDir, err = os.MkdirTemp("", "mom-sample-test-"); err != nil {
			t.Fatal(err)
		}
	}
	f := datasettest.UserFolders(t, setting)
	ds := filepath.Join(fixDir, "ds-"+string(setting))
	bo := dataset.Options{Setting: setting, Out: ds, Seed: 5, TextVocab: 300, ImageCodes: 16, SpeechUnits: 16, EvalFraction: 0.2,
		TextDirs: f.TextDirs, ImageDir: f.ImageDir, Captions: f.Captions, SpeechDir: f.SpeechDir, Transcripts: f.Transcripts}
	if _, err := dataset.Build(context.Background(), bo); err != nil {
		t.Fatal(err)
	}
	c, err := mom.Preset("tiny", setting, mom.AllSplits)
	if err != nil {
		t.Fatal(err)
	}
	if c, err = trainer.DatasetConfig(c, ds); err != nil {
		t.Fatal(err)
	}
	o := trainer.DefaultOptions()
	o.Config, o.Data, o.Out = c, ds, filepath.Join(fixDir, "run-"+string(setting))
	o.Batch, o.SeqLen, o.Steps, o.Warmup, o.EvalEvery, o.CkptEvery = 4, 64, 40, 5, 0, 40
	d := gputest.Must(t, gputest.Runtimes()[0])
	if _, err := trainer.Train(context.Background(), d, o); err != nil {
		t.Fatal(fmt.Errorf("training the fixture: %w", err))
	}
	fixRuns[setting] = o.Out
	return o.Out
}

// fixture is a trained run opened for sampling on a device.
type fixture struct {
	tr *trainer.Trained
	v  *sample.Vocab
	m  *mom.Model
	s  *sample.Sampler
}

// openFixture opens the trained run of setting on d with a sampler of n
// streams.
func openFixture(t *testing.T, d *gpu.Device, setting mom.Setting, n int) *fixture {
	t.Helper()
	f := &fixture{}
	var err error
	if f.tr, err = trainer.OpenTrained(trainedRun(t, setting)); err != nil {
		t.Fatal(err)
	}
	ds, err := f.tr.Dataset("")
	if err != nil {
		t.Fatal(err)
	}
	toks, err := ds.LoadTokenizers()
	if err != nil {
		t.Fatal(err)
	}
	if f.v, err = sample.NewVocab(f.tr.Config, ds, toks); err != nil {
		t.Fatal(err)
	}
	if f.m, err = f.tr.NewModel(d, 1, 1); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.m.Release)
	if f.s, err = sample.New(f.m, f.v, n); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.s.Release)
	return f
}
