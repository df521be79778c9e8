package trainer

import (
	"bytes"
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"mom/gpu"
	"mom/mom"
	"mom/trainer/runfolder"
)

// TestTrainRefusesLockedFolder: a second training into a folder another
// holds is refused before it writes anything, naming the holder.
func TestTrainRefusesLockedFolder(t *testing.T) {
	o := tinyOptions(t, mom.Chameleon, mom.AllSplits, t.TempDir())
	l, err := runfolder.Acquire(o.Out)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	for _, resume := range []bool{false, true} {
		o.Resume = resume
		_, err := Train(context.Background(), nil, o)
		if !errors.Is(err, runfolder.ErrLocked) || !strings.Contains(err.Error(), "process ") {
			t.Errorf("resume %v: %v, want a refusal naming the process", resume, err)
		}
	}
	ents, _ := os.ReadDir(o.Out)
	if len(ents) != 1 || ents[0].Name() != runfolder.LockFile {
		t.Errorf("the refused run left %v", ents)
	}
}

// TestResumeOptions: a resumed run takes its settings from its folder;
// flags that disagree are refused in one line, except those that may
// change.
func TestResumeOptions(t *testing.T) {
	o := tinyOptions(t, mom.Chameleon, mom.AllSplits, t.TempDir())
	o.Batch, o.LR, o.Steps, o.EvalEvery = 3, 2e-3, 40, 10
	cfg := FolderConfig(o)
	if err := runfolder.WriteConfig(o.Out, cfg); err != nil {
		t.Fatal(err)
	}
	fresh := func() Options {
		n := DefaultOptions()
		c, _ := mom.Preset("tiny", mom.ThreeModal, mom.AllSplits)
		n.Config, n.Out, n.Resume = c, o.Out, true
		return n
	}
	got, err := ResumeOptions(fresh(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.Batch != 3 || got.LR != 2e-3 || got.Steps != 40 || got.EvalEvery != 10 || got.Config.Setting != mom.Chameleon {
		t.Errorf("options from the folder: batch %d lr %g steps %d eval-every %d setting %s", got.Batch, got.LR, got.Steps, got.EvalEvery, got.Config.Setting)
	}
	for _, c := range []struct {
		name     string
		set      func(*Options)
		explicit string
		want     string // "" accepted
	}{
		{"same batch", func(n *Options) { n.Batch = 3 }, "batch", ""},
		{"batch", func(n *Options) { n.Batch = 8 }, "batch", "--batch 8 differs from the run's 3"},
		{"seq", func(n *Options) { n.SeqLen = 32 }, "seq", "--seq 32 differs from the run's 64"},
		{"lr", func(n *Options) { n.LR = 1e-3 }, "lr", "--lr 0.001 differs from the run's 0.002"},
		{"data", func(n *Options) { n.Data = "x.momtok" }, "data", "--data x.momtok differs"},
		{"setting", func(n *Options) {}, "setting", "--setting three differs from the run's chameleon"},
		{"split", func(n *Options) { n.Config.Splits = mom.Splits{In: true} }, "split", "--split in differs"},
		{"more steps", func(n *Options) { n.Steps = 80 }, "steps", ""},
		{"eval every", func(n *Options) { n.EvalEvery = 5 }, "eval-every", ""},
	} {
		n := fresh()
		if c.explicit != "setting" {
			n.Config = got.Config
		}
		c.set(&n)
		r, err := ResumeOptions(n, map[string]bool{c.explicit: true})
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n")):
			t.Errorf("%s: %v, want one line with %q", c.name, err, c.want)
		case c.want == "" && c.name == "more steps" && r.Steps != 80:
			t.Errorf("more steps: %d", r.Steps)
		}
	}
	if _, err := ResumeOptions(Options{Out: filepath.Join(o.Out, "typo")}, nil); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("missing folder: %v", err)
	}
}

// resumeRun trains o, then resumes it with mutate applied.
func runAndResume(t *testing.T, d *gpu.Device, o Options, mutate func(*Options)) (*Result, error) {
	t.Helper()
	if _, err := Train(context.Background(), d, o); err != nil {
		t.Fatal(err)
	}
	o.Resume = true
	mutate(&o)
	return Train(context.Background(), d, o)
}

// TestResumeExtendsRun: more steps on resume is a new segment of the run
// (config.json keeps the first segment's settings); the learning rate goes
// on from where it was, never up again (no new warmup); a changed batch is
// refused and changes nothing.
func TestResumeExtendsRun(t *testing.T) {
	forEachDevice(t, func(t *testing.T, d *gpu.Device) {
		o := tinyOptions(t, mom.Chameleon, mom.AllSplits, t.TempDir())
		o.Steps, o.Warmup, o.EvalEvery, o.CkptEvery, o.Batch, o.SeqLen = 10, 4, 0, 5, 2, 32
		o.StopAfter = 6 // stopped half way: checkpoint at 6
		if _, err := runAndResume(t, d, o, func(n *Options) { n.StopAfter, n.Batch = 0, 4 }); err == nil || !strings.Contains(err.Error(), "batch") {
			t.Fatalf("resume with another batch: %v", err)
		}
		o.StopAfter = 0
		o.Resume = true
		o.Steps = 20
		if _, err := Train(context.Background(), d, o); err != nil {
			t.Fatal(err)
		}
		cfg, _, err := runfolder.ReadConfig(o.Out)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Steps != 10 || len(cfg.Segments) != 1 || cfg.Segments[0].Start != 6 || cfg.Segments[0].Steps != 20 ||
			cfg.Segments[0].Changed["steps"] != [2]string{"10", "20"} {
			t.Errorf("config after extending: steps %d, segments %+v", cfg.Steps, cfg.Segments)
		}
		recs, err := ReadMetrics(filepath.Join(o.Out, runfolder.MetricsFile))
		if err != nil {
			t.Fatal(err)
		}
		var lrs []float64
		var tokens []float64
		for _, r := range recs {
			if r.Split() == "train" {
				lrs = append(lrs, r.Float("lr"))
				tokens = append(tokens, r.Float("tokens"))
			}
		}
		if len(lrs) != 20 {
			t.Fatalf("%d training records, want 20", len(lrs))
		}
		for i := 4; i < len(lrs); i++ {
			if lrs[i] > lrs[i-1]+1e-15 {
				t.Errorf("the learning rate rose at step %d: %g -> %g", i+1, lrs[i-1], lrs[i])
			}
		}
		if lrs[19] != o.MinLR {
			t.Errorf("the last step's rate %g, want min-lr %g", lrs[19], o.MinLR)
		}
		for i, tk := range tokens {
			if tk != float64((i+1)*o.Batch*o.SeqLen) {
				t.Errorf("step %d: %g tokens", i+1, tk)
			}
		}
	})
}

// nanAt makes the run's losses NaN from the step after step.
func nanAt(t *testing.T, step int) func() {
	testHookAfterStep = func(tr *trainer, s int) {
		if s == step {
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
	return func() { testHookAfterStep = nil }
}

// TestResumeWithoutCheckpoint: a run that stopped before its first
// checkpoint resumes from step 0, dropping its metrics, and says so; the
// early stop reported the steps done and that no checkpoint exists.
func TestResumeWithoutCheckpoint(t *testing.T) {
	forEachDevice(t, func(t *testing.T, d *gpu.Device) {
		o := tinyOptions(t, mom.Chameleon, mom.AllSplits, t.TempDir())
		o.Steps, o.Warmup, o.EvalEvery, o.CkptEvery, o.Batch, o.SeqLen = 8, 0, 0, 100, 2, 32
		undo := nanAt(t, 3)
		res, err := Train(context.Background(), d, o)
		undo()
		if err == nil || !strings.Contains(err.Error(), "no checkpoint has been written") || strings.Contains(err.Error(), "is intact") {
			t.Fatalf("stopped by NaN: %v", err)
		}
		if res == nil || res.Steps != 3 || res.Checkpoint != "" {
			t.Fatalf("result %+v, want 3 steps and no checkpoint", res)
		}
		var log bytes.Buffer
		o.Resume, o.Progress = true, &log
		res, err = Train(context.Background(), d, o)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(log.String(), "restarts from step 0") || !strings.Contains(log.String(), "3 metric record") {
			t.Errorf("no message about the restart: %q", log.String())
		}
		if res.Start != 0 || res.Steps != 8 {
			t.Errorf("result %+v", res)
		}
		recs, _ := ReadMetrics(filepath.Join(o.Out, runfolder.MetricsFile))
		if len(recs) != 8 {
			t.Errorf("%d records after the restart, want 8", len(recs))
		}
	})
}

// TestCancelWritesCheckpoint: cancelling a run (a signal) finishes the
// steps in flight, checkpoints the last one and returns the cause; the run
// resumes from there.
func TestCancelWritesCheckpoint(t *testing.T) {
	forEachDevice(t, func(t *testing.T, d *gpu.Device) {
		o := tinyOptions(t, mom.Chameleon, mom.AllSplits, t.TempDir())
		o.Steps, o.Warmup, o.EvalEvery, o.CkptEvery, o.Batch, o.SeqLen = 12, 0, 0, 100, 2, 32
		cause := errors.New("stopped by SIGTERM")
		ctx, cancel := context.WithCancelCause(context.Background())
		testHookAfterStep = func(tr *trainer, s int) {
			if s == 5 {
				cancel(cause)
			}
		}
		res, err := Train(ctx, d, o)
		testHookAfterStep = nil
		if !errors.Is(err, cause) {
			t.Fatalf("Train: %v, want the cause", err)
		}
		want := filepath.Join(o.Out, runfolder.CheckpointsDir, StepDirName(5))
		if res == nil || res.Steps != 5 || res.Checkpoint != want {
			t.Fatalf("result %+v, want 5 steps and %s", res, want)
		}
		o.Resume = true
		if res, err = Train(context.Background(), d, o); err != nil || res.Start != 5 || res.Steps != 12 {
			t.Fatalf("resume: %+v, %v", res, err)
		}
	})
}

// TestCheckpointOnlyAtEnd: --ckpt-every 0 writes one checkpoint, at the
// end; the end always has one.
func TestCheckpointOnlyAtEnd(t *testing.T) {
	forEachDevice(t, func(t *testing.T, d *gpu.Device) {
		o := tinyOptions(t, mom.Chameleon, mom.AllSplits, t.TempDir())
		o.Steps, o.Warmup, o.EvalEvery, o.CkptEvery, o.Keep, o.Batch, o.SeqLen = 7, 0, 0, 0, 0, 2, 32
		res, err := Train(context.Background(), d, o)
		if err != nil {
			t.Fatal(err)
		}
		steps, _ := runfolder.ListCheckpoints(filepath.Join(o.Out, runfolder.CheckpointsDir))
		if len(steps) != 1 || steps[0] != 7 || filepath.Base(res.Checkpoint) != StepDirName(7) {
			t.Errorf("checkpoints %v, result %s; want only step 7", steps, res.Checkpoint)
		}
	})
}

// TestResumeFallsBack: a damaged newest checkpoint is set aside and the run
// resumes from the newest intact one, saying so; --resume-from picks an
// older one and sets the newer aside.
func TestResumeFallsBack(t *testing.T) {
	forEachDevice(t, func(t *testing.T, d *gpu.Device) {
		o := tinyOptions(t, mom.Chameleon, mom.AllSplits, t.TempDir())
		o.Steps, o.Warmup, o.EvalEvery, o.CkptEvery, o.Keep, o.Batch, o.SeqLen = 12, 0, 0, 4, 0, 2, 32
		o.StopAfter = 9 // checkpoints at 4, 8 and 9
		if _, err := Train(context.Background(), d, o); err != nil {
			t.Fatal(err)
		}
		ck := filepath.Join(o.Out, runfolder.CheckpointsDir)
		mp := filepath.Join(ck, StepDirName(9), "model.safetensors")
		b, _ := os.ReadFile(mp)
		b[len(b)-5] ^= 1
		os.WriteFile(mp, b, 0o644)
		os.WriteFile(filepath.Join(ck, ".latest.tmp-77"), nil, 0o644)
		var log bytes.Buffer
		o.StopAfter, o.Resume, o.Progress = 10, true, &log
		res, err := Train(context.Background(), d, o)
		if err != nil {
			t.Fatal(err)
		}
		if res.Start != 8 {
			t.Errorf("resumed at %d, want 8", res.Start)
		}
		for _, want := range []string{StepDirName(9) + " is damaged", "damaged-" + StepDirName(9), "newest intact checkpoint", ".latest.tmp-77"} {
			if !strings.Contains(log.String(), want) {
				t.Errorf("the log lacks %q:\n%s", want, log.String())
			}
		}
		if _, err := os.Stat(filepath.Join(ck, ".latest.tmp-77")); err == nil {
			t.Error("the leftover .latest.tmp-77 is still there")
		}
		o.StopAfter, o.ResumeFrom = 0, StepDirName(4)
		log.Reset()
		res, err = Train(context.Background(), d, o)
		if err != nil {
			t.Fatal(err)
		}
		if res.Start != 4 || !strings.Contains(log.String(), "superseded-"+StepDirName(8)) {
			t.Errorf("--resume-from step 4: started at %d; log %s", res.Start, log.String())
		}
		o.ResumeFrom = "step_3"
		if _, err := Train(context.Background(), d, o); err == nil || !strings.Contains(err.Error(), "no such checkpoint") {
			t.Errorf("--resume-from a missing step: %v", err)
		}
	})
}

// TestMeanTokensPerSec: the reported throughput is the mean over the steps
// after the first (tokens over the time those steps took), the definition
// of `mom bench step`, not the last step's rate.
func TestMeanTokensPerSec(t *testing.T) {
	forEachDevice(t, func(t *testing.T, d *gpu.Device) {
		o := tinyOptions(t, mom.Chameleon, mom.AllSplits, t.TempDir())
		o.Steps, o.Warmup, o.EvalEvery, o.CkptEvery, o.Batch, o.SeqLen = 8, 0, 4, 4, 2, 32
		res, err := Train(context.Background(), d, o)
		if err != nil {
			t.Fatal(err)
		}
		recs, _ := ReadMetrics(filepath.Join(o.Out, runfolder.MetricsFile))
		var ms float64
		for _, r := range recs {
			if s, _ := r.Step(); r.Split() == "train" && s >= 2 {
				ms += r.Float("step_ms")
			}
		}
		want := float64(7*o.Batch*o.SeqLen) / (ms / 1e3)
		if math.Abs(res.TokensPerSec-want) > 1e-6*want {
			t.Errorf("tokens/s %g, want %g: 7 steps' tokens over their %g ms", res.TokensPerSec, want, ms)
		}
	})
}

// TestFailedStartLeavesNothing: a run that fails before training (a data
// file missing, a model too large for the device) leaves no folder.
func TestFailedStartLeavesNothing(t *testing.T) {
	forEachDevice(t, func(t *testing.T, d *gpu.Device) {
		for _, c := range []struct {
			name string
			set  func(*Options)
		}{
			{"missing data", func(o *Options) { o.Data = filepath.Join(t.TempDir(), "none.momtok") }},
			{"too large", func(o *Options) { o.Batch, o.SeqLen = 1<<16, 1<<12 }},
		} {
			o := tinyOptions(t, mom.Chameleon, mom.AllSplits, filepath.Join(t.TempDir(), "run"))
			c.set(&o)
			if _, err := Train(context.Background(), d, o); err == nil {
				t.Fatalf("%s: no error", c.name)
			}
			if _, err := os.Stat(o.Out); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s: the run folder is left: %v", c.name, err)
			}
		}
	})
}

// TestPairRuns: the comparison takes the dense run as the baseline from the
// configs whatever the order, and refuses runs that are not comparable.
func TestPairRuns(t *testing.T) {
	root := t.TempDir()
	mk := func(name string, dense bool, setting, data string) *Run {
		o := tinyOptions(t, mom.Setting(setting), map[bool]mom.Splits{true: {}, false: mom.AllSplits}[dense], filepath.Join(root, name))
		o.Data = data
		os.MkdirAll(o.Out, 0o755)
		if err := runfolder.WriteConfig(o.Out, FolderConfig(o)); err != nil {
			t.Fatal(err)
		}
		writeRunMetrics(t, o.Out)
		r, err := LoadRun(o.Out)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	dense := mk("a", true, "three", "synthetic")
	moe := mk("b", false, "three", "synthetic")
	d, m, warn, err := PairRuns(moe, dense, false)
	if err != nil || d != dense || m != moe || len(warn) != 0 {
		t.Errorf("MoM named first: dense %v, warnings %v, %v", d.Name, warn, err)
	}
	for _, c := range []struct {
		a, b *Run
		want string
	}{
		{dense, mk("c", true, "three", "synthetic"), "both runs are dense"},
		{dense, mk("d", false, "chameleon", "synthetic"), "setting"},
		{dense, mk("e", false, "three", "other.momtok"), "data"},
		{dense, mk("f", false, "transfusion", "synthetic"), "loss kinds"},
	} {
		if _, _, _, err := PairRuns(c.a, c.b, false); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s vs %s: %v, want %q", c.a.Name, c.b.Name, err, c.want)
		}
		if _, _, warn, err := PairRuns(c.a, c.b, true); err != nil || len(warn) == 0 {
			t.Errorf("forced %s vs %s: %v, warnings %v", c.a.Name, c.b.Name, err, warn)
		}
	}
	// Runs trained for different lengths: compared, with a warning.
	longer := mk("g", false, "three", "synthetic")
	longer.Config.Segments = []runfolder.Segment{{Start: 300, Steps: 600}}
	if _, _, warn, err := PairRuns(dense, longer, false); err != nil || len(warn) != 1 || !strings.Contains(warn[0], "steps 300 vs 600") {
		t.Errorf("runs of different lengths: %v, %v", warn, err)
	}
	// Folders of the same name get distinct names.
	x, y := filepath.Join(root, "p", "run"), filepath.Join(root, "q", "run")
	for _, dir := range []string{x, y} {
		os.MkdirAll(dir, 0o755)
		writeRunMetrics(t, dir)
	}
	runs, err := LoadRuns(x, y)
	if err != nil {
		t.Fatal(err)
	}
	if runs[0].Name == runs[1].Name || runs[0].Name != "p/run" {
		t.Errorf("names %q and %q", runs[0].Name, runs[1].Name)
	}
}

func writeRunMetrics(t *testing.T, dir string) {
	m, err := OpenMetrics(filepath.Join(dir, runfolder.MetricsFile), -1)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	for s := 10; s <= 40; s += 10 {
		m.Write(Record{"step": s, "split": "eval", "flops": float64(s), "loss": 5 - float64(s)/20})
	}
}

// TestScheduleSegments: a segment continues the rate from where it was.
func TestScheduleSegments(t *testing.T) {
	const peak, lo = 1e-3, 1e-4
	base := Schedule{Kind: ScheduleCosine, Peak: peak, Min: lo, Warmup: 10, Total: 100}
	// Uninterrupted equals LR.
	for s := 0; s <= 120; s++ {
		if got, want := base.At(s), LR(s, 10, 100, peak, lo); got != want {
			t.Fatalf("step %d: %g, want %g", s, got, want)
		}
	}
	for _, c := range []struct {
		name string
		seg  ScheduleSegment
	}{
		{"extended half way", ScheduleSegment{Start: 50, Total: 200, Kind: ScheduleCosine}},
		{"extended after the end", ScheduleSegment{Start: 100, Total: 150, Kind: ScheduleCosine}},
		{"linear from half way", ScheduleSegment{Start: 60, Total: 90, Kind: ScheduleLinear}},
		{"constant", ScheduleSegment{Start: 70, Total: 200, Kind: ScheduleConstant}},
		{"inside the warmup", ScheduleSegment{Start: 5, Total: 300, Kind: ScheduleCosine}},
	} {
		s := base
		s.Segments = []ScheduleSegment{c.seg}
		for i := 0; i <= c.seg.Start; i++ {
			if s.At(i) != base.At(i) {
				t.Errorf("%s: step %d changed before the segment", c.name, i)
			}
		}
		prev := s.At(c.seg.Start)
		for i := c.seg.Start + 1; i <= c.seg.Total; i++ {
			v := s.At(i)
			if i > s.Warmup && v > prev+1e-18 {
				t.Errorf("%s: the rate rose at step %d: %g -> %g", c.name, i, prev, v)
			}
			if i == c.seg.Start+1 && c.seg.Start >= s.Warmup && math.Abs(v-prev) > 0.05*peak {
				t.Errorf("%s: the rate jumped at the segment: %g -> %g", c.name, prev, v)
			}
			prev = v
		}
		end := s.At(c.seg.Total)
		if c.seg.Kind != ScheduleConstant && end != lo {
			t.Errorf("%s: ends at %g, want %g", c.name, end, lo)
		}
	}
}

// TestTrainerReleasesEverything: setting a trainer up and closing it (the
// model, the optimizer, the gradient norm, the loss buffer) leaves the live
// object counts where they were, in float32 and in mixed precision (with
// the loss scale).
func TestTrainerReleasesEverything(t *testing.T) {
	forEachDevice(t, func(t *testing.T, d *gpu.Device) {
		for _, prec := range []string{"f32", "f16"} {
			o := tinyOptions(t, mom.ThreeModal, mom.AllSplits, "unused")
			o.Precision = prec
			trainerCycles(t, d, o)
		}
	})
}

func trainerCycles(t *testing.T, d *gpu.Device, o Options) {
	cycle := func() {
		tr := &trainer{o: o, d: d}
		if err := tr.setup(); err != nil {
			t.Fatal(err)
		}
		tr.close()
	}
	cycle()
	before := d.LiveObjects()
	for i := 0; i < 10; i++ {
		cycle()
	}
	after := d.LiveObjects()
	for _, k := range []string{"buffer", "bind group"} {
		if after[k] != before[k] {
			t.Errorf("%s: %d live %s objects after 10 trainers, %d before", o.Precision, after[k], k, before[k])
		}
	}
}

// TestResumeImportedRun: a folder as an import writes it (config.json with
// the model but no training settings, "steps": 0, a key of its own, and a
// step-0 checkpoint) trains on --resume; config.json gains the settings and
// keeps the import's key.
func TestResumeImportedRun(t *testing.T) {
	forEachDevice(t, func(t *testing.T, d *gpu.Device) {
		o := tinyOptions(t, mom.Chameleon, mom.AllSplits, t.TempDir())
		o.Steps, o.Warmup, o.EvalEvery, o.CkptEvery, o.Batch, o.SeqLen = 4, 0, 0, 4, 2, 32
		tr := &trainer{o: o, d: d, res: &Result{}}
		if err := tr.setup(); err != nil {
			t.Fatal(err)
		}
		if err := tr.initFresh(); err != nil {
			t.Fatal(err)
		}
		p, err := tr.checkpoint(0)
		if err != nil {
			t.Fatal(err)
		}
		tr.close()
		// An import's checkpoint has no RNG state and no data position.
		ck, err := LoadCheckpointAt(p)
		if err != nil {
			t.Fatal(err)
		}
		ck.RNG, ck.Data = nil, nil
		if _, err := SaveCheckpoint(filepath.Dir(p), ck, 0); err != nil {
			t.Fatal(err)
		}
		cfg := `{"name": "imp", "dense": false, "splits": ["in","x","dt","out"], "modalities": ["text","image"],
			"model": ` + string(o.Config.JSON()) + `, "steps": 0, "data": "synthetic", "imported": {"from": "hf"}}`
		if err := os.WriteFile(filepath.Join(o.Out, runfolder.ConfigFile), []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		n, err := ResumeOptions(Options{Out: o.Out, Steps: 4, Batch: 2, SeqLen: 32, Accum: 1, LR: 1e-3, MinLR: 1e-4, LogEvery: 1,
			Beta1: 0.9, Beta2: 0.95, AdamEps: 1e-8, Seed: 1, Data: "synthetic", Resume: true}, map[string]bool{"steps": true})
		if err != nil {
			t.Fatal(err)
		}
		res, err := Train(context.Background(), d, n)
		if err != nil {
			t.Fatal(err)
		}
		if res.Start != 0 || res.Steps != 4 {
			t.Errorf("result %+v", res)
		}
		c, _, err := runfolder.ReadConfig(o.Out)
		if err != nil {
			t.Fatal(err)
		}
		if c.Extra("imported") == nil || c.Batch != 2 || c.Steps != 4 || len(c.Segments) != 0 {
			t.Errorf("config after the first training: imported %s, batch %d, steps %d, segments %v", c.Extra("imported"), c.Batch, c.Steps, c.Segments)
		}
	})
}
