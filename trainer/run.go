package trainer

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"mom/mom"
	"mom/trainer/runfolder"
)

// runSetting is one setting of a run as config.json records it: its key
// there, its flag on the command line, and whether a resumed run may change
// it. A safe change (the number of steps, the schedule, how often to
// evaluate, log and checkpoint) starts a new segment of the run; any other
// (the batch shape, the learning rates, the seed, the data) would make the
// token and FLOP counters, the loss curves or the optimizer state
// inconsistent, and is refused.
type runSetting struct {
	key, flag string
	safe      bool
	get       func(o *Options) string               // the option, in flag notation
	file      func(c *runfolder.Config) string      // the file's top-level value, same notation
	set       func(o *Options, v string) error      // the option from a value in flag notation
	put       func(c *runfolder.Config, o *Options) // the file's top-level value from the option
}

func fmtFloat(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

func intSetting(key, flag string, safe bool, opt func(*Options) *int, file func(*runfolder.Config) *int) runSetting {
	return runSetting{key: key, flag: flag, safe: safe,
		get:  func(o *Options) string { return strconv.Itoa(*opt(o)) },
		file: func(c *runfolder.Config) string { return strconv.Itoa(*file(c)) },
		set: func(o *Options, v string) (err error) {
			*opt(o), err = strconv.Atoi(v)
			return err
		},
		put: func(c *runfolder.Config, o *Options) { *file(c) = *opt(o) }}
}

func floatSetting(key, flag string, opt func(*Options) *float64, file func(*runfolder.Config) *float64) runSetting {
	return runSetting{key: key, flag: flag,
		get:  func(o *Options) string { return fmtFloat(*opt(o)) },
		file: func(c *runfolder.Config) string { return fmtFloat(*file(c)) },
		set: func(o *Options, v string) (err error) {
			*opt(o), err = strconv.ParseFloat(v, 64)
			return err
		},
		put: func(c *runfolder.Config, o *Options) { *file(c) = *opt(o) }}
}

func stringSetting(key, flag string, opt func(*Options) *string, file func(*runfolder.Config) *string) runSetting {
	return runSetting{key: key, flag: flag,
		get:  func(o *Options) string { return *opt(o) },
		file: func(c *runfolder.Config) string { return *file(c) },
		set:  func(o *Options, v string) error { *opt(o) = v; return nil },
		put:  func(c *runfolder.Config, o *Options) { *file(c) = *opt(o) }}
}

// runSettings are the settings config.json records, in its order.
var runSettings = []runSetting{
	intSetting("batch", "batch", false, func(o *Options) *int { return &o.Batch }, func(c *runfolder.Config) *int { return &c.Batch }),
	intSetting("seq_len", "seq", false, func(o *Options) *int { return &o.SeqLen }, func(c *runfolder.Config) *int { return &c.SeqLen }),
	intSetting("accum", "accum", false, func(o *Options) *int { return &o.Accum }, func(c *runfolder.Config) *int { return &c.Accum }),
	intSetting("steps", "steps", true, func(o *Options) *int { return &o.Steps }, func(c *runfolder.Config) *int { return &c.Steps }),
	floatSetting("lr", "lr", func(o *Options) *float64 { return &o.LR }, func(c *runfolder.Config) *float64 { return &c.LR }),
	floatSetting("min_lr", "min-lr", func(o *Options) *float64 { return &o.MinLR }, func(c *runfolder.Config) *float64 { return &c.MinLR }),
	intSetting("warmup", "warmup", false, func(o *Options) *int { return &o.Warmup }, func(c *runfolder.Config) *int { return &c.Warmup }),
	{key: "lr_schedule", flag: "lr-schedule", safe: true,
		get:  func(o *Options) string { return scheduleName(o.Schedule) },
		file: func(c *runfolder.Config) string { return scheduleName(c.Schedule) },
		set:  func(o *Options, v string) error { o.Schedule = v; return nil },
		put:  func(c *runfolder.Config, o *Options) { c.Schedule = scheduleName(o.Schedule) }},
	floatSetting("weight_decay", "wd", func(o *Options) *float64 { return &o.WeightDecay }, func(c *runfolder.Config) *float64 { return &c.WeightDecay }),
	floatSetting("clip", "clip", func(o *Options) *float64 { return &o.ClipNorm }, func(c *runfolder.Config) *float64 { return &c.ClipNorm }),
	{key: "adam_betas", flag: "",
		get:  func(o *Options) string { return fmtFloat(o.Beta1) + "," + fmtFloat(o.Beta2) },
		file: func(c *runfolder.Config) string { return fmtFloat(c.AdamBetas[0]) + "," + fmtFloat(c.AdamBetas[1]) },
		set: func(o *Options, v string) (err error) {
			a, b, _ := strings.Cut(v, ",")
			if o.Beta1, err = strconv.ParseFloat(a, 64); err == nil {
				o.Beta2, err = strconv.ParseFloat(b, 64)
			}
			return err
		},
		put: func(c *runfolder.Config, o *Options) { c.AdamBetas = [2]float64{o.Beta1, o.Beta2} }},
	floatSetting("adam_eps", "", func(o *Options) *float64 { return &o.AdamEps }, func(c *runfolder.Config) *float64 { return &c.AdamEps }),
	{key: "seed", flag: "seed",
		get:  func(o *Options) string { return strconv.FormatUint(o.Seed, 10) },
		file: func(c *runfolder.Config) string { return strconv.FormatUint(c.Seed, 10) },
		set: func(o *Options, v string) (err error) {
			o.Seed, err = strconv.ParseUint(v, 10, 64)
			return err
		},
		put: func(c *runfolder.Config, o *Options) { c.Seed = o.Seed }},
	stringSetting("data", "data", func(o *Options) *string { return &o.Data }, func(c *runfolder.Config) *string { return &c.Data }),
	stringSetting("eval_data", "eval-data", func(o *Options) *string { return &o.EvalData }, func(c *runfolder.Config) *string { return &c.EvalData }),
	intSetting("eval_every", "eval-every", true, func(o *Options) *int { return &o.EvalEvery }, func(c *runfolder.Config) *int { return &c.EvalEvery }),
	intSetting("eval_batches", "eval-batches", false, func(o *Options) *int { return &o.EvalBatches }, func(c *runfolder.Config) *int { return &c.EvalBatches }),
	intSetting("log_every", "log-every", true, func(o *Options) *int { return &o.LogEvery }, func(c *runfolder.Config) *int { return &c.LogEvery }),
	intSetting("ckpt_every", "ckpt-every", true, func(o *Options) *int { return &o.CkptEvery }, func(c *runfolder.Config) *int { return &c.CkptEvery }),
	intSetting("keep", "keep", true, func(o *Options) *int { return &o.Keep }, func(c *runfolder.Config) *int { return &c.Keep }),
	// The precision may change on a resume: the master weights and the
	// optimizer state are float32 either way.
	{key: "precision", flag: "precision", safe: true,
		get:  func(o *Options) string { return precisionName(o.Precision) },
		file: func(c *runfolder.Config) string { return precisionName(c.Precision) },
		set:  func(o *Options, v string) error { o.Precision = v; return nil },
		put:  func(c *runfolder.Config, o *Options) { c.Precision = precisionName(o.Precision) }},
}

func scheduleName(k string) string {
	if k == "" {
		return ScheduleCosine
	}
	return k
}

// current returns a setting's value in the run's folder now (the newest
// segment's, else the top-level one) and whether the file records it (runs
// made by older versions, and imported runs, lack some).
func current(c runfolder.Config, s runSetting) (string, bool) {
	switch s.key {
	case "steps":
		if c.TotalSteps() <= 0 { // absent, or 0 as an imported run's
			return "", false
		}
		return strconv.Itoa(c.TotalSteps()), true
	case "lr_schedule":
		if n := len(c.Segments); n > 0 {
			return scheduleName(c.Segments[n-1].Schedule), true
		}
		return scheduleName(c.Schedule), true // runs before the setting were cosine
	}
	if v, ok := c.Changed(s.key); ok {
		return v, true
	}
	if !c.Has(s.key) {
		return "", false
	}
	return s.file(&c), true
}

// ResumeOptions prepares the options of a resumed run from its folder
// (o.Out's config.json) before anything is opened: every setting the run
// recorded (the model included) is taken from the folder, so no flag needs
// retyping. explicit names the flags given on the command line; each must
// agree with the run, except those a resumed run may change (ResumeOptions
// lists them: --steps, --lr-schedule, --eval-every, --log-every,
// --ckpt-every, --keep, --precision), which start a new segment of the
// run. A conflict
// is an error of one line naming the flag, the run's value and the fix.
func ResumeOptions(o Options, explicit map[string]bool) (Options, error) {
	if o.Out == "" {
		return o, errors.New("trainer: --resume needs --out, the run folder to continue")
	}
	if _, err := os.Stat(o.Out); errors.Is(err, fs.ErrNotExist) {
		return o, fmt.Errorf("trainer: --resume: %s does not exist: there is no run to resume (start it without --resume)", o.Out)
	}
	cfg, found, err := runfolder.ReadConfig(o.Out)
	if err != nil {
		return o, fmt.Errorf("trainer: --resume: %w", err)
	}
	if !found {
		return o, fmt.Errorf("trainer: --resume: %s holds no %s: there is no run to resume (start it without --resume)", o.Out, runfolder.ConfigFile)
	}
	if len(cfg.Model) > 0 {
		var saved mom.Config
		if err := json.Unmarshal(cfg.Model, &saved); err != nil {
			return o, fmt.Errorf("trainer: --resume: %s: model: %w", filepath.Join(o.Out, runfolder.ConfigFile), err)
		}
		for _, f := range []struct {
			flag, want, have string
		}{
			{"preset", o.Config.Name, saved.Name},
			{"setting", string(o.Config.Setting), string(saved.Setting)},
			{"split", o.Config.Splits.String(), saved.Splits.String()},
			{"dense", strconv.FormatBool(o.Config.Splits.Dense()), strconv.FormatBool(saved.Splits.Dense())},
		} {
			if explicit[f.flag] && f.want != f.have {
				return o, fmt.Errorf("trainer: --resume: --%s %s differs from the run's %s in %s; a resumed run keeps its model: drop --%s, or start a new run",
					f.flag, f.want, f.have, filepath.Join(o.Out, runfolder.ConfigFile), f.flag)
			}
		}
		o.Config = saved
	}
	for _, s := range runSettings {
		have, ok := current(cfg, s)
		if !ok {
			continue
		}
		if s.flag != "" && explicit[s.flag] {
			if want := s.get(&o); want != have && !s.safe {
				return o, settingConflict(s, want, have, o.Out)
			}
			continue
		}
		if err := s.set(&o, have); err != nil {
			return o, fmt.Errorf("trainer: --resume: %s: %s %q: %w", filepath.Join(o.Out, runfolder.ConfigFile), s.key, have, err)
		}
	}
	if o.ResumeFrom == "" {
		steps, _ := runfolder.ListCheckpoints(filepath.Join(o.Out, runfolder.CheckpointsDir))
		if len(steps) > 0 && steps[0] >= o.Steps {
			return o, fmt.Errorf("trainer: --resume: the run in %s is complete (a checkpoint at step %d, --steps %d): give a larger --steps to extend it",
				o.Out, steps[0], o.Steps)
		}
	}
	return o, nil
}

func settingConflict(s runSetting, want, have, dir string) error {
	name := "--" + s.flag
	if s.flag == "" {
		name = s.key
	}
	return fmt.Errorf("trainer: --resume: %s %s differs from the run's %s in %s; a resumed run keeps it (changing it would break the run's counters or curves): drop %s, or start a new run",
		name, want, have, filepath.Join(dir, runfolder.ConfigFile), name)
}

// describeModel names a model in one phrase: "tiny three MoM (split
// in,x,dt,out)".
func describeModel(c mom.Config) string {
	kind := "MoM (split " + c.Splits.String() + ")"
	if c.Splits.Dense() {
		kind = "dense"
	}
	return fmt.Sprintf("%s %s %s, vocabulary %d", c.Name, c.Setting, kind, c.Vocab)
}

// folderConfig is the config.json of a new run.
func (t *trainer) folderConfig() runfolder.Config {
	fc := FolderConfig(t.o)
	fc.Device = t.deviceName()
	return fc
}

// FolderConfig is the config.json a new run with options o starts with
// (the live window reads its name, kind and modality rows from it).
func FolderConfig(o Options) runfolder.Config {
	c := o.Config
	fc := runfolder.Config{Name: filepath.Base(filepath.Clean(o.Out)), Dense: c.Splits.Dense(), Splits: splitNames(c.Splits),
		Modalities: c.ModalityNames(), Model: c.JSON()}
	for _, s := range runSettings {
		s.put(&fc, &o)
	}
	return fc
}

// reconcile checks a resumed run's options against its folder's config
// (every setting that may not change must be the same; the model too) and
// returns the config to write: settings the file lacked filled in, and a
// new segment from step on when a setting that may change did. Segments
// that started at or after step are dropped: the run redoes those steps.
func (t *trainer) reconcile(cfg runfolder.Config, step int) (runfolder.Config, error) {
	o := t.o
	if len(cfg.Model) > 0 {
		var saved mom.Config
		if err := json.Unmarshal(cfg.Model, &saved); err != nil {
			return cfg, fmt.Errorf("trainer: --resume: %s: model: %w", filepath.Join(o.Out, runfolder.ConfigFile), err)
		}
		if string(saved.JSON()) != string(o.Config.JSON()) {
			return cfg, fmt.Errorf("trainer: --resume: the model %s differs from the run's %s in %s; a resumed run keeps its model",
				describeModel(o.Config), describeModel(saved), o.Out)
		}
	} else {
		cfg.Model = o.Config.JSON()
	}
	keep := cfg.Segments[:0]
	for _, sg := range cfg.Segments {
		if sg.Start < step {
			keep = append(keep, sg)
		}
	}
	cfg.Segments = keep
	changed := map[string][2]string{}
	for _, s := range runSettings {
		want := s.get(&t.o)
		have, ok := current(cfg, s)
		if !ok {
			if len(cfg.Segments) == 0 {
				s.put(&cfg, &t.o) // not recorded yet: recorded now, as the run's first setting
			}
			continue
		}
		if want == have {
			continue
		}
		if !s.safe {
			return cfg, settingConflict(s, want, have, o.Out)
		}
		changed[s.key] = [2]string{have, want}
	}
	if step == 0 {
		// Started again from step 0 (an imported run's first training, or a
		// run that stopped before its first checkpoint): the options are the
		// first segment's; keys of other tools stay.
		cfg.Segments = nil
		for _, s := range runSettings {
			s.put(&cfg, &t.o)
		}
		cfg.Device = t.deviceName()
		return cfg, nil
	}
	if len(changed) > 0 {
		cfg.Segments = append(cfg.Segments, runfolder.Segment{Start: step, Steps: o.Steps, Schedule: scheduleName(o.Schedule),
			Changed: changed, Time: time.Now().UTC().Format(time.RFC3339), Device: t.deviceName()})
	}
	if cfg.Device == "" {
		cfg.Device = t.deviceName()
	}
	return cfg, nil
}

// scheduleOf is the learning-rate schedule a run's config describes.
func (t *trainer) scheduleOf(cfg runfolder.Config) Schedule {
	o := t.o
	s := Schedule{Kind: scheduleName(cfg.Schedule), Peak: o.LR, Min: o.MinLR, Warmup: o.Warmup, Total: cfg.Steps}
	if cfg.Steps <= 0 {
		s.Total = o.Steps
	}
	for _, sg := range cfg.Segments {
		s.Segments = append(s.Segments, ScheduleSegment{Start: sg.Start, Total: sg.Steps, Kind: scheduleName(sg.Schedule)})
	}
	return s
}

// logf tells the user something about the run (on the progress writer).
func (t *trainer) logf(format string, args ...any) {
	if t.progress != nil {
		t.progress.Log("trainer: "+format, args...)
		return
	}
	if t.o.Progress != nil {
		fmt.Fprintf(t.o.Progress, "trainer: "+format+"\n", args...)
	}
}

// begin starts or resumes the run in its folder: the parameters and
// optimizer state (initialised, or restored from a checkpoint), the
// metrics file, config.json and the schedule. It returns the step the
// loop continues from.
func (t *trainer) begin() (int, error) {
	o := t.o
	ckdir := filepath.Join(o.Out, runfolder.CheckpointsDir)
	cfg, found, err := runfolder.ReadConfig(o.Out)
	if err != nil {
		return 0, fmt.Errorf("trainer: %w", err)
	}
	step := -1
	if o.Resume {
		if !found {
			return 0, fmt.Errorf("trainer: --resume: %s holds no %s: there is no run to resume (start it without --resume)", o.Out, runfolder.ConfigFile)
		}
		if step, err = t.restore(ckdir); err != nil {
			return 0, err
		}
		if step < 0 {
			n, err := runfolder.CountMetrics(filepath.Join(o.Out, runfolder.MetricsFile), 0)
			if err != nil {
				return 0, fmt.Errorf("trainer: --resume: %w", err)
			}
			t.logf("--resume: %s holds no checkpoint (the run stopped before its first): the run restarts from step 0, dropping its %d metric record(s)", o.Out, n)
			cfg.Segments = nil
		}
	} else if steps, _ := runfolder.ListCheckpoints(ckdir); len(steps) > 0 {
		return 0, fmt.Errorf("trainer: %s holds checkpoints of an earlier run (newest step %d): use --resume to continue it, or another --out", o.Out, steps[0])
	}
	if step < 0 {
		if err := t.initFresh(); err != nil {
			return 0, err
		}
		step = 0
	}
	if t.metrics, err = runfolder.OpenMetrics(filepath.Join(o.Out, runfolder.MetricsFile), map[bool]int{true: step, false: -1}[o.Resume]); err != nil {
		return 0, fmt.Errorf("trainer: %w", err)
	}
	if o.Resume {
		if cfg, err = t.reconcile(cfg, step); err != nil {
			return 0, err
		}
	} else {
		cfg = t.folderConfig()
	}
	if err := runfolder.WriteConfig(o.Out, cfg); err != nil {
		return 0, fmt.Errorf("trainer: %w", err)
	}
	t.sched = t.scheduleOf(cfg)
	return step, nil
}
