package trainer

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"

	"mom/gpu"
	"mom/mom"
	"mom/trainer/data"
	"mom/trainer/runfolder"
	"mom/trainer/safetensors"
)

// runOfCheckpoint returns the run folder holding a checkpoint's step
// folder (runs/NAME for runs/NAME/checkpoints/step_N), or "".
func runOfCheckpoint(stepDir string) string {
	if stepDir == "" {
		return ""
	}
	run := filepath.Dir(filepath.Dir(stepDir))
	if _, err := os.Stat(filepath.Join(run, runfolder.ConfigFile)); err != nil {
		return ""
	}
	return run
}

// GradsLayout documents the tensors of a gradients file for readers in
// other frameworks.
const GradsLayout = `Tensors: batch.inputs, batch.modality, batch.targets, batch.target_modality (U32, [b, l]); ` +
	`in Transfusion batch.noisy_patches and batch.noise (F32, [b, l, p]); loss.total and loss.<modality> (F32, [1]); ` +
	`param.<name> and grad.<name> (F32) for every parameter. Targets of 0xFFFFFFFF are ignored. ` +
	`A split projection's weight is [modalities, out, in] and row r of the batch uses weight set modality[r]; ` +
	`in_proj is stored as in_proj_x and in_proj_z (mamba_ssm's in_proj.weight is their concatenation along out), ` +
	`x_proj as x_proj_dt, x_proj_B, x_proj_C (concatenated along out). The loss is the mean next-token cross-entropy ` +
	`over positions with a target (Chameleon, three modalities), or in Transfusion the mean text cross-entropy plus ` +
	`image_loss_weight times the mean over image positions of the per-position mean squared noise-prediction error; ` +
	`grad.* is the gradient of loss.total.`

// Grads runs one forward and backward pass of the checkpoint's model on a
// fixed batch and returns the batch, the losses, the parameters and every
// gradient as safetensors tensors, with metadata describing the layout.
//
// The batch is the start of the held-out data (the training data when
// there is none) of dataOpt: "synthetic" (seed 1), a dataset folder or a
// token file; "" takes the data of the run the checkpoint belongs to (its
// config.json), else the synthetic stream.
func Grads(d *gpu.Device, ckpt string, batch, seqLen int, dataOpt string) ([]safetensors.Tensor, map[string]string, error) {
	c, err := LoadCheckpointAt(ckpt)
	if err != nil {
		return nil, nil, err
	}
	var cfg mom.Config
	if err := json.Unmarshal(c.Config, &cfg); err != nil {
		return nil, nil, fmt.Errorf("grads: checkpoint config: %w", err)
	}
	if err := cfg.Validate(); err != nil {
		return nil, nil, fmt.Errorf("grads: checkpoint config: %w", err)
	}
	o := DefaultOptions()
	o.Config, o.Batch, o.SeqLen, o.Seed, o.Out = cfg, batch, seqLen, 1, "grads"
	o.Data = dataOpt
	if dataOpt == "" {
		o.Data = "synthetic"
		if run := runOfCheckpoint(c.Dir); run != "" {
			if rc, found, err := runfolder.ReadConfig(run); err == nil && found && rc.Data != "" {
				o.Data, o.EvalData = rc.Data, rc.EvalData
			}
		}
	}
	if err := o.Validate(); err != nil {
		return nil, nil, err
	}
	t := &trainer{o: o, d: d}
	defer t.close()
	if t.m, err = mom.NewModel(d, cfg, batch, seqLen); err != nil {
		return nil, nil, err
	}
	params := map[string]safetensors.Tensor{}
	for _, p := range c.Params {
		params[p.Name] = p
	}
	for _, p := range t.m.Params {
		st, ok := params[p.Spec.Name]
		if !ok {
			return nil, nil, fmt.Errorf("grads: checkpoint %s lacks parameter %s", ckpt, p.Spec.Name)
		}
		v, err := st.Float32s()
		if err != nil {
			return nil, nil, fmt.Errorf("grads: %s: %w", p.Spec.Name, err)
		}
		if err := p.W.Upload(v); err != nil {
			return nil, nil, fmt.Errorf("grads: %s: %w", p.Spec.Name, err)
		}
	}
	train, eval, err := openStreams(o)
	if err != nil {
		return nil, nil, fmt.Errorf("grads: data %s: %w", o.Data, err)
	}
	for _, s := range []data.Stream{train, eval} {
		if c, ok := s.(io.Closer); ok {
			defer c.Close()
		}
	}
	if eval == nil {
		eval = train // a token file without held-out data
	}
	b, err := data.NewBatch(batch, seqLen, cfg.PatchDim)
	if err != nil {
		return nil, nil, err
	}
	if err := eval.Next(b); err != nil {
		return nil, nil, fmt.Errorf("grads: data %s: %w", o.Data, err)
	}
	t.rng = rand.New(rand.NewPCG(1, 0x67726164))
	if err := t.toModelBatch(b); err != nil {
		return nil, nil, err
	}
	if err := t.m.SetBatch(&t.mb, 1); err != nil {
		return nil, nil, err
	}
	lossBuf, err := d.NewBuffer("losses", int64(4*cfg.LossSlots()), gpu.UsageTensor)
	if err != nil {
		return nil, nil, err
	}
	defer lossBuf.Release()
	r := d.NewRecorder()
	t.m.RecordZeroGrads(r)
	t.m.RecordForward(r)
	t.m.RecordBackward(r)
	t.m.RecordLosses(r, lossBuf, 0)
	if err := r.Submit(); err != nil {
		return nil, nil, err
	}
	raw, err := lossBuf.ReadFloat32(0, cfg.LossSlots())
	if err != nil {
		return nil, nil, err
	}
	losses, err := cfg.DecodeLosses(raw)
	if err != nil {
		return nil, nil, fmt.Errorf("grads: %w", err)
	}
	shape := []int{batch, seqLen}
	out := []safetensors.Tensor{
		safetensors.U32("batch.inputs", shape, t.mb.Inputs),
		safetensors.U32("batch.modality", shape, t.mb.Modality),
		safetensors.U32("batch.targets", shape, t.mb.Targets),
		safetensors.U32("batch.target_modality", shape, t.mb.TargetModality),
		safetensors.F32("loss.total", []int{1}, []float32{float32(losses.Total)}),
	}
	if cfg.Continuous() {
		ps := []int{batch, seqLen, cfg.PatchDim}
		out = append(out, safetensors.F32("batch.noisy_patches", ps, t.mb.NoisyPatches), safetensors.F32("batch.noise", ps, t.mb.Noise))
	}
	mods := make([]string, 0, len(losses.PerModality))
	for k := range losses.PerModality {
		mods = append(mods, k)
	}
	sort.Strings(mods)
	for _, k := range mods {
		out = append(out, safetensors.F32("loss."+k, []int{1}, []float32{float32(losses.PerModality[k])}))
	}
	for _, p := range t.m.Params {
		g, err := p.G.Download()
		if err != nil {
			return nil, nil, err
		}
		w, err := params[p.Spec.Name].Float32s()
		if err != nil {
			return nil, nil, err
		}
		out = append(out, safetensors.F32("grad."+p.Spec.Name, p.Spec.Shape, g), safetensors.F32("param."+p.Spec.Name, p.Spec.Shape, w))
	}
	meta := map[string]string{"config": string(cfg.JSON()), "layout": GradsLayout, "checkpoint_step": fmt.Sprint(c.Step),
		"device": d.String(), "data": o.Data}
	return out, meta, nil
}
