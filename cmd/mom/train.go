package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"

	"mom/trainer"
	"mom/trainer/dataset"
)

func init() {
	register(command{"train", "train a Mixture-of-Mamba (or dense Mamba) model", cmdTrain})
}

func cmdTrain(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("train", "train --preset P --steps N --out runs/NAME [--dense | --split in,x,dt,out] [flags]", stderr)
	mf := addModelFlags(fs)
	df := addDeviceFlags(fs)
	o := trainer.DefaultOptions()
	fs.StringVar(&o.Out, "out", "", "run folder (metrics.jsonl, config.json, checkpoints/)")
	fs.IntVar(&o.Steps, "steps", o.Steps, "optimizer steps")
	fs.IntVar(&o.Batch, "batch", o.Batch, "sequences per micro-batch")
	fs.IntVar(&o.SeqLen, "seq", o.SeqLen, "sequence length")
	fs.IntVar(&o.Accum, "accum", o.Accum, "micro-batches per optimizer step (gradient accumulation)")
	fs.Float64Var(&o.LR, "lr", o.LR, "peak learning rate")
	fs.Float64Var(&o.MinLR, "min-lr", o.MinLR, "learning rate at the end of the cosine decay")
	fs.IntVar(&o.Warmup, "warmup", o.Warmup, "linear warmup steps")
	fs.Float64Var(&o.WeightDecay, "wd", o.WeightDecay, "AdamW decoupled weight decay")
	fs.Float64Var(&o.ClipNorm, "clip", o.ClipNorm, "global gradient-norm clip (0: off)")
	seed := fs.Uint64("seed", o.Seed, "random seed (init, data, noise)")
	fs.IntVar(&o.EvalEvery, "eval-every", o.EvalEvery, "held-out evaluation every N steps (0: off)")
	fs.IntVar(&o.EvalBatches, "eval-batches", o.EvalBatches, "held-out batches per evaluation")
	fs.IntVar(&o.LogEvery, "log-every", o.LogEvery, "write a metrics record every N steps")
	fs.IntVar(&o.CkptEvery, "ckpt-every", o.CkptEvery, "checkpoint every N steps (0: only at the end)")
	fs.IntVar(&o.Keep, "keep", o.Keep, "checkpoints to keep")
	fs.BoolVar(&o.Resume, "resume", false, "continue the run in --out from its latest checkpoint")
	fs.IntVar(&o.StopAfter, "stop-after", 0, "stop (with a checkpoint) after this step; --resume continues")
	fs.StringVar(&o.Data, "data", o.Data, "training data: synthetic, a dataset folder (mom data build), or a token file (.momtok)")
	fs.StringVar(&o.EvalData, "eval-data", "", "held-out token file (with a token-file --data; a dataset brings its own)")
	viz := fs.Bool("viz", false, "open the live loss window (needs a display)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected arguments %v", fs.Args())
	}
	if o.Out == "" {
		return usagef("--out is required (e.g. --out runs/mom-tiny)")
	}
	o.Seed = *seed
	if dataset.IsDataset(o.Data) && !flagSet(fs, "setting") {
		// A dataset folder says which setting it trains.
		ds, err := dataset.Open(o.Data)
		if err != nil {
			return err
		}
		*mf.setting = ds.Manifest.Setting
	}
	c, err := mf.config()
	if err != nil {
		return err
	}
	if o.Resume && !modelFlagSet(fs) {
		// Resuming takes the model from the run folder (an imported run's
		// is no preset).
		if rc, ok, err := runModelConfig(o.Out); err != nil {
			return err
		} else if ok {
			c = rc
		}
	}
	if c, err = trainer.DatasetConfig(c, o.Data); err != nil {
		return usagef("--data: %v", err)
	}
	o.Config = c
	if o.CkptEvery == 0 {
		o.CkptEvery = o.Steps
	}
	if err := o.Validate(); err != nil {
		return usagef("%v", err)
	}
	d, err := df.open()
	if err != nil {
		return err
	}
	defer d.Close()
	o.Progress = stderr
	if f, ok := stderr.(*os.File); ok {
		o.Terminal = trainer.IsTerminal(f)
	}
	total, active := c.ParamCount()
	fmt.Fprintf(stderr, "mom: training %s %s (%s split: %s), %s params (%s active/token) on %s -> %s\n",
		c.Name, c.Setting, map[bool]string{true: "dense", false: "MoM"}[c.Splits.Dense()], c.Splits,
		human(float64(total)), human(float64(active)), d, o.Out)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if *viz {
		return trainWithViz(ctx, d, o, stdout, stderr)
	}
	res, err := trainer.Train(ctx, d, o)
	if res != nil {
		printResult(stdout, o, res)
	}
	return err
}

// modelFlagSet reports whether a flag choosing the model was given.
func modelFlagSet(fs *flag.FlagSet) bool {
	set := false
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "preset", "setting", "split", "dense":
			set = true
		}
	})
	return set
}

func printResult(w io.Writer, o trainer.Options, res *trainer.Result) {
	keys := make([]string, 0, len(res.Final.PerModality))
	for k := range res.Final.PerModality {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %.4f", k, res.Final.PerModality[k]))
	}
	fmt.Fprintf(w, "%s: %d steps, final train loss %.4f (%s), %.0f tokens/s\n", filepath.Base(o.Out), res.Steps,
		res.Final.Total, strings.Join(parts, ", "), res.TokensPerSec)
	if res.Eval.PerModality != nil {
		fmt.Fprintf(w, "%s: held-out loss %.4f\n", filepath.Base(o.Out), res.Eval.Total)
	}
	if res.Checkpoint != "" {
		fmt.Fprintf(w, "%s: checkpoint %s\n", filepath.Base(o.Out), res.Checkpoint)
	}
}

// flagSet reports whether the flag called name was given on the command
// line.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}
