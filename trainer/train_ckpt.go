package trainer

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"mom/gpu"
	"mom/mom"
	"mom/nn"
	"mom/trainer/runfolder"
	"mom/trainer/safetensors"
)

func (t *trainer) ckptDir() string { return filepath.Join(t.o.Out, runfolder.CheckpointsDir) }

// initFresh draws the parameters, zeroes the optimizer state and seeds the
// noise generator: step 0 of a new run.
func (t *trainer) initFresh() error {
	o := t.o
	start, tenth, bytes := time.Now(), int64(-1), int64(0)
	err := t.m.InitParamsProgress(o.Seed, func(done, total int64) {
		bytes = total
		// Big models say how the start goes, every tenth.
		if total >= 256<<20 && done*10/total != tenth {
			tenth = done * 10 / total
			t.logf("drawing the parameters on %d cores into %s staging: %d%% of %s (%.1f s)",
				runtime.GOMAXPROCS(0), t.d.Transfer(), 10*tenth, gpu.GiB(total), time.Since(start).Seconds())
		}
	})
	if err != nil {
		return err
	}
	t.slowPhase(fmt.Sprintf("drew and uploaded the parameters (%s)", gpu.GiB(bytes)), start)
	r := t.d.NewRecorder()
	for i := range t.mstate {
		r.Clear(t.mstate[i].Buf, 0, t.mstate[i].Bytes())
		r.Clear(t.vstate[i].Buf, 0, t.vstate[i].Bytes())
	}
	if err := r.Submit(); err != nil {
		return err
	}
	t.pcg = rand.NewPCG(o.Seed, 0x7472)
	t.rng = rand.New(t.pcg)
	return nil
}

// checkpoint writes parameters, optimizer state, RNG and data position.
// In a data-parallel run every rank first checks that all hold the same
// parameters; then rank 0 alone writes.
func (t *trainer) checkpoint(step int) (string, error) {
	if t.dp != nil {
		if err := t.dp.checkParams(t, step); err != nil {
			return "", err
		}
		if !t.leader() {
			t.ckptStep = step
			return "", nil
		}
	}
	c := &Checkpoint{Step: step, Meta: map[string]string{}}
	c.Tokens = int64(step) * int64(t.o.Batch*t.o.SeqLen*t.o.Accum)
	c.FLOPs = float64(c.Tokens) * t.flopsTok
	get := func(name string, x *nn.Tensor) (safetensors.Tensor, error) {
		v, err := x.Download()
		if err != nil {
			return safetensors.Tensor{}, fmt.Errorf("trainer: checkpoint: reading %s: %w", name, err)
		}
		return safetensors.F32(name, x.Shape, v), nil
	}
	for i, p := range t.m.Params {
		w, err := get(p.Spec.Name, p.W)
		if err != nil {
			return "", err
		}
		c.Params = append(c.Params, w)
		m, err := get("m."+p.Spec.Name, t.mstate[i])
		if err != nil {
			return "", err
		}
		v, err := get("v."+p.Spec.Name, t.vstate[i])
		if err != nil {
			return "", err
		}
		c.Optimizer = append(c.Optimizer, m, v)
	}
	var err error
	if c.RNG, err = t.pcg.MarshalBinary(); err != nil {
		return "", err
	}
	if c.Data, err = t.train.State(); err != nil {
		return "", err
	}
	c.Config = t.o.Config.JSON()
	c.Meta["wall_s"] = strconv.FormatFloat(t.wallBase+time.Since(t.start).Seconds(), 'g', -1, 64)
	if err := t.saveLossScale(c.Meta); err != nil {
		return "", err
	}
	path, err := runfolder.SaveCheckpoint(t.ckptDir(), c, t.o.Keep)
	if path != "" {
		// Saved (a pruning error may come with it).
		t.wrote, t.ckptStep = true, step
		if t.res != nil {
			t.res.Checkpoint = path
		}
	}
	if err != nil {
		return path, fmt.Errorf("trainer: step %d: %w", step, err)
	}
	return path, nil
}

// restore loads the checkpoint to resume from (Options.ResumeFrom, else the
// newest intact one, setting damaged ones aside) and returns its step, or
// -1 when the run has no checkpoint at all.
func (t *trainer) restore(dir string) (int, error) {
	if removed, err := runfolder.CleanCheckpoints(dir); err != nil {
		return 0, fmt.Errorf("trainer: --resume: %w", err)
	} else if len(removed) > 0 {
		t.logf("--resume: removed what interrupted saves left in %s: %s", dir, strings.Join(removed, ", "))
	}
	var c *Checkpoint
	var err error
	if t.o.ResumeFrom != "" {
		if c, err = t.loadResumeFrom(dir); err != nil {
			return 0, err
		}
	} else {
		var damaged []runfolder.Damaged
		c, damaged, err = runfolder.LoadLatestIntact(dir)
		if errors.Is(err, ErrNoCheckpoint) {
			return -1, nil
		}
		for _, d := range damaged {
			if _, ok := runfolder.ParseStepDirName(filepath.Base(d.Dir)); ok {
				if to, serr := runfolder.SetAside(d.Dir, "damaged"); serr == nil {
					t.logf("--resume: checkpoint %s is damaged (%v); set aside as %s", d.Dir, d.Err, to)
					continue
				}
			}
			t.logf("--resume: %v", d.Err)
		}
		if err != nil {
			return 0, fmt.Errorf("trainer: --resume: %w", err)
		}
		if len(damaged) > 0 {
			t.logf("--resume: continuing from the newest intact checkpoint, %s", c.Dir)
		}
	}
	if err := runfolder.WriteLatest(dir, c.Step); err != nil {
		return 0, fmt.Errorf("trainer: --resume: %w", err)
	}
	if err := t.apply(c); err != nil {
		return 0, err
	}
	t.ckptStep = c.Step
	t.res.Checkpoint = c.Dir
	return c.Step, nil
}

// loadResumeFrom loads the checkpoint Options.ResumeFrom names (a step
// folder of this run: "step_N", N, or its path) and sets the run's newer
// checkpoints aside: the run goes on from the one chosen.
func (t *trainer) loadResumeFrom(dir string) (*Checkpoint, error) {
	name := t.o.ResumeFrom
	if n, err := strconv.Atoi(name); err == nil {
		name = runfolder.StepDirName(n)
	}
	p := name
	if !strings.ContainsRune(name, filepath.Separator) && !strings.Contains(name, "/") {
		p = filepath.Join(dir, name)
	}
	absDir, _ := filepath.Abs(dir)
	absP, _ := filepath.Abs(p)
	want, ok := runfolder.ParseStepDirName(filepath.Base(absP))
	if !ok || filepath.Dir(absP) != absDir {
		return nil, fmt.Errorf("trainer: --resume-from %s: want a checkpoint of this run: step_N (or N, or a folder of %s)", t.o.ResumeFrom, dir)
	}
	if _, err := os.Stat(p); err != nil {
		have, _ := runfolder.ListCheckpoints(dir)
		return nil, fmt.Errorf("trainer: --resume-from %s: %s has no such checkpoint (it has steps %v)", t.o.ResumeFrom, dir, have)
	}
	c, err := runfolder.LoadCheckpointAt(p)
	if err != nil {
		return nil, fmt.Errorf("trainer: --resume-from %s: %w", t.o.ResumeFrom, err)
	}
	steps, err := runfolder.ListCheckpoints(dir)
	if err != nil {
		return nil, err
	}
	for _, s := range steps {
		if s > want {
			to, err := runfolder.SetAside(filepath.Join(dir, runfolder.StepDirName(s)), "superseded")
			if err != nil {
				return nil, fmt.Errorf("trainer: --resume-from: %w", err)
			}
			t.logf("--resume-from: the newer checkpoint %s is set aside as %s", runfolder.StepDirName(s), to)
		}
	}
	return c, nil
}

// apply puts a checkpoint's parameters, optimizer state, RNG and data
// position in place.
func (t *trainer) apply(c *Checkpoint) error {
	var saved mom.Config
	if err := json.Unmarshal(c.Config, &saved); err != nil {
		return fmt.Errorf("trainer: --resume: checkpoint %s: config: %w", c.Dir, err)
	}
	if a, b := string(saved.JSON()), string(t.o.Config.JSON()); a != b {
		return fmt.Errorf("trainer: --resume: the checkpoint %s was made with the model %s, the run asks for %s",
			c.Dir, describeModel(saved), describeModel(t.o.Config))
	}
	if c.Step >= t.o.Steps {
		return fmt.Errorf("trainer: --resume: the run is complete: its checkpoint %s is at step %d and --steps is %d (give a larger --steps to extend it)",
			c.Dir, c.Step, t.o.Steps)
	}
	tensors := map[string]safetensors.Tensor{}
	for _, x := range append(c.Params, c.Optimizer...) {
		tensors[x.Name] = x
	}
	put := func(name string, x *nn.Tensor) error {
		st, ok := tensors[name]
		if !ok {
			return fmt.Errorf("trainer: --resume: checkpoint %s lacks %s", c.Dir, name)
		}
		v, err := st.Float32s()
		if err != nil {
			return fmt.Errorf("trainer: --resume: %s: %w", name, err)
		}
		if err := x.Upload(v); err != nil {
			return fmt.Errorf("trainer: --resume: %s: %w", name, err)
		}
		return nil
	}
	for i, p := range t.m.Params {
		if err := put(p.Spec.Name, p.W); err != nil {
			return err
		}
		if err := put("m."+p.Spec.Name, t.mstate[i]); err != nil {
			return err
		}
		if err := put("v."+p.Spec.Name, t.vstate[i]); err != nil {
			return err
		}
	}
	// A step-0 checkpoint made outside training (an import) may have no RNG
	// state or data position: those start as a new run's.
	if len(c.RNG) == 0 && c.Step == 0 {
		t.pcg = rand.NewPCG(t.o.Seed, 0x7472)
	} else {
		t.pcg = &rand.PCG{}
		if err := t.pcg.UnmarshalBinary(c.RNG); err != nil {
			return fmt.Errorf("trainer: --resume: checkpoint %s: RNG state: %w", c.Dir, err)
		}
	}
	t.rng = rand.New(t.pcg)
	if len(c.Data) > 0 || c.Step > 0 {
		if err := t.train.Restore(c.Data); err != nil {
			return fmt.Errorf("trainer: --resume: checkpoint %s: data position: %w", c.Dir, err)
		}
	}
	if w, err := strconv.ParseFloat(c.Meta["wall_s"], 64); err == nil {
		t.wallBase = w
	}
	return t.restoreLossScale(c.Meta, c.Dir)
}
