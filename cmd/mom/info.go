package main

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"mom/mom"
)

func init() {
	register(command{"info", "print a preset's parameter counts and FLOPs per token", cmdInfo})
}

// modelFlags are the flags that choose a model.
type modelFlags struct {
	preset, setting, splits *string
	dense                   *bool
	dModel, layers          *int
}

func addModelFlags(fs interface {
	String(string, string, string) *string
	Bool(string, bool, string) *bool
	Int(string, int, string) *int
}) modelFlags {
	return modelFlags{
		preset:  fs.String("preset", "tiny", "model size: tiny, small, 37m, 94m, 443m, 880m, 1.4b"),
		setting: fs.String("setting", "three", "training setting: chameleon, transfusion or three (text+image+speech)"),
		splits:  fs.String("split", "in,x,dt,out", "projections split per modality: any subset of in,x,dt,out"),
		dense:   fs.Bool("dense", false, "the dense Mamba baseline (no splits; overrides --split)"),
		dModel:  fs.Int("d-model", 0, "override the preset's d_model (dt_rank follows: ceil(d_model/16))"),
		layers:  fs.Int("layers", 0, "override the preset's number of layers"),
	}
}

func (m modelFlags) config() (mom.Config, error) {
	sp, err := mom.ParseSplits(*m.splits)
	if err != nil {
		return mom.Config{}, usagef("--split: %v", err)
	}
	if *m.dense {
		sp = mom.Splits{}
	}
	c, err := mom.Preset(*m.preset, mom.Setting(*m.setting), sp)
	if err != nil {
		return c, usagef("%v", err)
	}
	if *m.dModel < 0 || *m.layers < 0 {
		return c, usagef("--d-model %d and --layers %d must not be negative", *m.dModel, *m.layers)
	}
	if *m.dModel > 0 {
		c.DModel, c.DtRank = *m.dModel, (*m.dModel+15)/16
		c.Name = fmt.Sprintf("%s-d%d", c.Name, c.DModel)
	}
	if *m.layers > 0 {
		c.Layers = *m.layers
		c.Name = fmt.Sprintf("%s-l%d", c.Name, c.Layers)
	}
	if err := c.Validate(); err != nil {
		return c, usagef("%v", err)
	}
	return c, nil
}

func cmdInfo(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("info", "info [--preset P] [--setting S] [--split in,x,dt,out | --dense] [--batch B --seq L] [--json]", stderr)
	mf := addModelFlags(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	batch := fs.Int("batch", 8, "sequences per batch (for the largest tensor)")
	seq := fs.Int("seq", 128, "sequence length (for the largest tensor)")
	if err := parse(fs, args); err != nil {
		return err
	}
	c, err := mf.config()
	if err != nil {
		return err
	}
	if *batch <= 0 || *seq <= 1 {
		return usagef("--batch %d and --seq %d must be positive (--seq at least 2)", *batch, *seq)
	}
	total, active := c.ParamCount()
	fl := c.StepFLOPs()
	big := c.BoundWhole(*batch, *seq)[0]
	if *asJSON {
		return json.NewEncoder(stdout).Encode(map[string]any{
			"config": c, "params_total": total, "params_active_per_token": active,
			"flops_forward_per_token": fl.ForwardPerToken, "flops_train_per_token": fl.TrainPerToken,
			"largest_binding": map[string]any{"name": big.Name, "shape": big.Shape, "bytes": big.Bytes, "batch": *batch, "seq": *seq},
		})
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "preset\t%s (%s setting)\n", c.Name, c.Setting)
	fmt.Fprintf(tw, "model\td_model %d, %d layers, d_state %d, d_conv %d, expand %d, dt_rank %d\n", c.DModel, c.Layers, c.DState, c.DConv, c.Expand, c.DtRank)
	fmt.Fprintf(tw, "modalities\t%v, vocabulary %d\n", c.ModalityNames(), c.Vocab)
	fmt.Fprintf(tw, "split per modality\t%s\n", c.Splits)
	fmt.Fprintf(tw, "parameters\t%s total, %s active per token\n", human(float64(total)), human(float64(active)))
	fmt.Fprintf(tw, "FLOPs per token\t%s forward, %s per training step (3x forward; %.0f%% in matrix products)\n",
		human(fl.ForwardPerToken), human(fl.TrainPerToken), 100*fl.MatmulShare)
	fits := "fits"
	if big.Bytes > lavapipeBinding {
		fits = "too large for"
	}
	fmt.Fprintf(tw, "largest tensor\t%s %v = %s at batch %d x %d (bound whole by one kernel; %s lavapipe's 128 MiB)\n",
		big.Name, big.Shape, bytesStr(uint64(big.Bytes)), *batch, *seq, fits)
	fmt.Fprintf(tw, "formula\tper layer 2·D·2E + 2·E·(R+2N) + 2·R·E + 2·E·D (projections) + 2·K·E (conv) + 9·E·N (scan); head 2·V·D; train = 3 × forward\n")
	return tw.Flush()
}

// lavapipeBinding is the storage binding limit of Mesa's lavapipe.
const lavapipeBinding = 128 << 20

func human(x float64) string {
	switch {
	case x >= 1e12:
		return fmt.Sprintf("%.2fT", x/1e12)
	case x >= 1e9:
		return fmt.Sprintf("%.2fG", x/1e9)
	case x >= 1e6:
		return fmt.Sprintf("%.2fM", x/1e6)
	case x >= 1e3:
		return fmt.Sprintf("%.1fk", x/1e3)
	}
	return fmt.Sprintf("%.0f", x)
}
