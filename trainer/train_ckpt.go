package trainer

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"time"

	"mom/mom"
	"mom/nn"
	"mom/trainer/safetensors"
)

func (t *trainer) ckptDir() string { return filepath.Join(t.o.Out, "checkpoints") }

// checkpoint writes parameters, optimizer state, RNG and data position.
func (t *trainer) checkpoint(step int) (string, error) {
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
	return SaveCheckpoint(t.ckptDir(), c, t.o.Keep)
}

// restore loads the latest checkpoint and returns its step.
func (t *trainer) restore() (int, error) {
	c, err := LoadCheckpoint(t.ckptDir())
	if err != nil {
		return 0, fmt.Errorf("trainer: --resume: %w", err)
	}
	var saved mom.Config
	if err := json.Unmarshal(c.Config, &saved); err != nil {
		return 0, fmt.Errorf("trainer: --resume: checkpoint config: %w", err)
	}
	if a, b := string(saved.JSON()), string(t.o.Config.JSON()); a != b {
		return 0, fmt.Errorf("trainer: --resume: the checkpoint at step %d was made with a different model config:\n%s\nnow:\n%s", c.Step, a, b)
	}
	if c.Step >= t.o.Steps {
		return 0, fmt.Errorf("trainer: --resume: the checkpoint is at step %d, --steps is %d: nothing to do", c.Step, t.o.Steps)
	}
	tensors := map[string]safetensors.Tensor{}
	for _, x := range append(c.Params, c.Optimizer...) {
		tensors[x.Name] = x
	}
	put := func(name string, x *nn.Tensor) error {
		st, ok := tensors[name]
		if !ok {
			return fmt.Errorf("trainer: --resume: checkpoint lacks %s", name)
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
			return 0, err
		}
		if err := put("m."+p.Spec.Name, t.mstate[i]); err != nil {
			return 0, err
		}
		if err := put("v."+p.Spec.Name, t.vstate[i]); err != nil {
			return 0, err
		}
	}
	// A checkpoint without RNG state and data position (one written by
	// `mom import`) starts them as a fresh run does.
	t.pcg = &rand.PCG{}
	if len(c.RNG) == 0 {
		t.pcg = rand.NewPCG(t.o.Seed, 0x7472)
	} else if err := t.pcg.UnmarshalBinary(c.RNG); err != nil {
		return 0, fmt.Errorf("trainer: --resume: RNG state: %w", err)
	}
	t.rng = rand.New(t.pcg)
	if len(c.Data) > 0 && string(c.Data) != "null" {
		if err := t.train.Restore(c.Data); err != nil {
			return 0, fmt.Errorf("trainer: --resume: data position: %w", err)
		}
	}
	if w, err := strconv.ParseFloat(c.Meta["wall_s"], 64); err == nil {
		t.wallBase = w
	}
	return c.Step, nil
}
