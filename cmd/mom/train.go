package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"mom/gpu"
	"mom/trainer"
	"mom/trainer/dataset"
	"mom/trainer/mpi"
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
	fs.IntVar(&o.Warmup, "warmup", o.Warmup, "linear warmup steps (default 20, at most a tenth of --steps)")
	fs.StringVar(&o.Schedule, "lr-schedule", trainer.ScheduleCosine, "learning rate after the warmup: cosine, linear (to --min-lr) or constant")
	fs.Float64Var(&o.WeightDecay, "wd", o.WeightDecay, "AdamW decoupled weight decay")
	fs.Float64Var(&o.ClipNorm, "clip", o.ClipNorm, "global gradient-norm clip (0: off)")
	seed := fs.Uint64("seed", o.Seed, "random seed (init, data, noise)")
	fs.IntVar(&o.EvalEvery, "eval-every", o.EvalEvery, "held-out evaluation every N steps (0: off)")
	fs.IntVar(&o.EvalBatches, "eval-batches", o.EvalBatches, "held-out batches per evaluation")
	fs.IntVar(&o.LogEvery, "log-every", o.LogEvery, "write a metrics record every N steps")
	fs.IntVar(&o.CkptEvery, "ckpt-every", o.CkptEvery, "checkpoint every N steps (0: only at the end; the end always has one)")
	fs.IntVar(&o.Keep, "keep", o.Keep, "checkpoints to keep (0: all)")
	fs.BoolVar(&o.Resume, "resume", false, "continue the run in --out from its newest intact checkpoint, with its own settings")
	fs.StringVar(&o.ResumeFrom, "resume-from", "", "continue the run in --out from this checkpoint (step_N or N), setting newer ones aside")
	fs.IntVar(&o.StopAfter, "stop-after", 0, "stop (with a checkpoint) after this step; --resume continues")
	fs.StringVar(&o.Data, "data", o.Data, "training data: synthetic, a dataset folder (mom data build), or a token file (.momtok)")
	fs.StringVar(&o.EvalData, "eval-data", "", "held-out token file (with a token-file --data; a dataset brings its own)")
	fs.IntVar(&o.SampleEvery, "sample-every", 0, "write samples (text, image grid, speech WAVs) into RUN/samples/step_N every N steps and at the end (0: off; needs a dataset --data)")
	fs.IntVar(&o.SampleN, "sample-n", o.SampleN, "samples per modality with --sample-every")
	fs.StringVar(&o.SamplePrompt, "sample-prompt", "", "text the samples continue with --sample-every (\"\": from the start of a document)")
	viz := fs.Bool("viz", false, "open the live loss window (needs a display)")
	pf := addParallelFlags(fs)
	fs.StringVar(&o.Recompute, "recompute", "auto", "recompute the conv and dt_proj outputs in the backward instead of keeping them per layer: on, off or auto (on when it saves 2 GiB or more)")
	fs.StringVar(&o.Precision, "precision", "f32", "f32, or f16: mixed precision (float16 copies of the weights and activations into the GEMMs and the conv; "+
		"master weights, gradients, AdamW and the scan's state in float32; dynamic loss scaling); needs an adapter with shader-f16")
	fs.Float64Var(&o.LossScale, "loss-scale", 0, "with --precision f16: the first loss scale, a power of two (0: 65536)")
	fs.IntVar(&o.LossScaleGrowth, "loss-scale-growth", 0, "with --precision f16: double the loss scale after this many steps without overflow (0: 2000)")
	dryRun := fs.String("dry-run", "", "count what the run would allocate on a device profile ("+strings.Join(gpu.ProfileNames(), ", ")+") and exit: nothing runs, nothing is written")
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
	if err := pf.apply(&o); err != nil {
		return err
	}
	if l := mpi.Launched(); l.Size > 1 {
		// One rank of an mpirun job.
		if *viz {
			return usagef("--viz does not run under mpirun: watch the run with `mom view %s`", o.Out)
		}
		return trainRank(fs, mf, df, pf, o, stdout, stderr)
	}
	o, err := trainOptions(fs, mf, o)
	if err != nil {
		return err
	}
	if *dryRun != "" {
		return trainDryRun(*dryRun, o, stdout)
	}
	d, err := df.open()
	if err != nil {
		return err
	}
	defer d.Close()
	defer func() { fmt.Fprintf(stderr, "mom: %s\n", d.Memory().Summary()) }()
	o.Progress = stderr
	if f, ok := stderr.(*os.File); ok {
		o.Terminal = trainer.IsTerminal(f)
	}
	announce(stderr, o, d)
	ctx, stop := stopOnSignals(stderr, "")
	defer stop()
	if *viz {
		return trainWithViz(ctx, d, o, stdout, stderr)
	}
	res, err := trainer.Train(ctx, d, o)
	printResult(stdout, o, res, err)
	return trainExit(err)
}

// announce says what is trained where.
func announce(stderr io.Writer, o trainer.Options, d *gpu.Device) {
	c := o.Config
	total, active := c.ParamCount()
	on := d.String()
	if o.World != nil {
		on = fmt.Sprintf("%d ranks (rank 0: %s)", o.World.Size(), d)
	}
	prec := ""
	if precisionName(o.Precision) == "f16" {
		prec = " in mixed precision (float16 into the GEMMs and the conv)"
	}
	fmt.Fprintf(stderr, "mom: training %s %s (%s split: %s), %s params (%s active/token) on %s%s -> %s\n",
		c.Name, c.Setting, map[bool]string{true: "dense", false: "MoM"}[c.Splits.Dense()], c.Splits,
		human(float64(total)), human(float64(active)), on, prec, o.Out)
}

// trainOptions completes the options from the flags and, for --resume, the
// run folder, and checks them: everything before a device opens.
func trainOptions(fs *flag.FlagSet, mf modelFlags, o trainer.Options) (trainer.Options, error) {
	if dataset.IsDataset(o.Data) && !flagSet(fs, "setting") {
		// A dataset folder says which setting it trains.
		ds, err := dataset.Open(o.Data)
		if err != nil {
			return o, err
		}
		*mf.setting = ds.Manifest.Setting
	}
	c, err := mf.config()
	if err != nil {
		return o, err
	}
	if o.Resume && !modelFlagSet(fs) {
		// Resuming takes the model from the run folder (an imported run's
		// is no preset).
		if rc, ok, err := runModelConfig(o.Out); err != nil {
			return o, err
		} else if ok {
			c = rc
		}
	}
	if c, err = trainer.DatasetConfig(c, o.Data); err != nil {
		return o, usagef("--data: %v", err)
	}
	o.Config = c
	explicit := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { explicit[f.Name] = true })
	if o.ResumeFrom != "" {
		o.Resume = true
	}
	if o.Resume {
		// The run's own settings, from its folder; flags must agree.
		if o, err = trainer.ResumeOptions(o, explicit); err != nil {
			return o, usagef("%v", err)
		}
	} else if !explicit["warmup"] {
		o.Warmup = min(o.Warmup, o.Steps/10)
	}
	if err := o.Validate(); err != nil {
		return o, usagef("%v", err)
	}
	return o, nil
}

// signalStop is the cause of a run stopped by a signal.
type signalStop struct{ sig os.Signal }

func (s signalStop) Error() string { return "stopped by " + signalName(s.sig) }

func signalName(s os.Signal) string {
	switch s {
	case syscall.SIGTERM:
		return "SIGTERM"
	case syscall.SIGUSR1:
		return "SIGUSR1"
	}
	return "SIGINT"
}

// signalExitCode is the exit status of a run stopped by signal s: 128 +
// the signal's number, as shells report a process killed by it (130 for
// SIGINT, 143 for SIGTERM, 138 for SIGUSR1).
func signalExitCode(s os.Signal) int {
	switch s {
	case syscall.SIGTERM:
		return 143
	case syscall.SIGUSR1:
		return 138
	}
	return 130
}

// exitNow ends the process (tests replace it).
var exitNow = os.Exit

// stopOnSignals returns a context that the first SIGINT or SIGTERM cancels
// with a signalStop cause: the trainer finishes the steps it submitted,
// writes a checkpoint and returns. A second signal exits at once. stop
// undoes the handling. A rank of an mpirun job (rank says which, "" when
// training alone) also stops on SIGUSR1, which mpirun forwards to every
// rank without killing them a second later as it does after SIGINT and
// SIGTERM.
func stopOnSignals(stderr io.Writer, rank string) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancelCause(context.Background())
	ch := make(chan os.Signal, 2)
	sigs := []os.Signal{os.Interrupt, syscall.SIGTERM}
	if rank != "" {
		sigs = append(sigs, syscall.SIGUSR1)
		rank += ": "
	}
	signal.Notify(ch, sigs...)
	done := make(chan struct{})
	go func() {
		select {
		case s := <-ch:
			switch {
			case rank != "" && s == syscall.SIGUSR1:
				fmt.Fprintf(stderr, "\nmom: %s%s: the ranks stop together after the current step, with a checkpoint\n", rank, signalName(s))
			case rank != "":
				fmt.Fprintf(stderr, "\nmom: %s%s: the ranks stop together after the current step, with a checkpoint, if mpirun leaves the time: "+
					"it sends SIGTERM when a rank has failed or the job is stopped, and SIGKILL a second later (`kill -USR1` to mpirun stops a job cleanly)\n",
					rank, signalName(s))
			default:
				fmt.Fprintf(stderr, "\nmom: %s: finishing the current step and writing a checkpoint (press Ctrl-C again to quit at once)\n", signalName(s))
			}
			cancel(signalStop{s})
		case <-done:
			return
		}
		select {
		case s := <-ch:
			fmt.Fprintf(stderr, "mom: %s%s again: quitting now; --resume continues from the last checkpoint written\n", rank, signalName(s))
			exitNow(signalExitCode(s))
		case <-done:
		}
	}()
	return ctx, func() {
		signal.Stop(ch)
		close(done)
		cancel(nil)
	}
}

// trainExit turns a signal stop into its exit status.
func trainExit(err error) error {
	var s signalStop
	if errors.As(err, &s) {
		return exitError{code: signalExitCode(s.sig), err: err}
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

// printResult says how far a run got: steps, losses, throughput, and the
// checkpoint that exists, whether it finished or stopped early (err).
func printResult(w io.Writer, o trainer.Options, res *trainer.Result, err error) {
	if res == nil {
		return // it never started: the error says why
	}
	name := filepath.Base(filepath.Clean(o.Out))
	var s signalStop
	switch {
	case err == nil:
		fmt.Fprintf(w, "%s: %d steps done", name, res.Steps)
	case errors.As(err, &s):
		fmt.Fprintf(w, "%s: %s after step %d of %d", name, signalName(s.sig), res.Steps, res.Total)
	case errors.Is(err, trainer.ErrStoppedWithOthers):
		fmt.Fprintf(w, "%s: stopped with the other ranks after step %d of %d", name, res.Steps, res.Total)
	default:
		fmt.Fprintf(w, "%s: stopped by an error after step %d of %d", name, res.Steps, res.Total)
	}
	if res.Start > 0 {
		fmt.Fprintf(w, " (resumed at step %d)", res.Start)
	}
	if res.Steps > res.Start {
		keys := make([]string, 0, len(res.Final.PerModality))
		for k := range res.Final.PerModality {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var parts []string
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%s %.4f", k, res.Final.PerModality[k]))
		}
		fmt.Fprintf(w, ", last train loss %.4f (%s)", res.Final.Total, strings.Join(parts, ", "))
	}
	if res.TokensPerSec > 0 {
		job := ""
		if o.World != nil {
			job = fmt.Sprintf(", the whole job of %d ranks", o.World.Size())
		}
		fmt.Fprintf(w, ", %.0f tokens/s (mean after the first step%s)", res.TokensPerSec, job)
	}
	if res.SampleSeconds > 0 {
		fmt.Fprintf(w, ", %.1f s paused for samples (not in the tokens/s)", res.SampleSeconds)
	}
	if res.Skipped > 0 {
		fmt.Fprintf(w, ", %d step(s) skipped by float16 loss scaling", res.Skipped)
	}
	fmt.Fprintln(w)
	if res.Eval.PerModality != nil {
		fmt.Fprintf(w, "%s: held-out loss %.4f\n", name, res.Eval.Total)
	}
	switch {
	case res.Checkpoint == "":
		fmt.Fprintf(w, "%s: no checkpoint written\n", name)
	case err != nil:
		fmt.Fprintf(w, "%s: checkpoint %s (continue with --resume)\n", name, res.Checkpoint)
	default:
		fmt.Fprintf(w, "%s: checkpoint %s\n", name, res.Checkpoint)
	}
}

// flagSet reports whether the flag called name was given on the command
// line.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// trainDryRun prints what training o would allocate on a device profile.
func trainDryRun(profile string, o trainer.Options, stdout io.Writer) error {
	d, err := openDryRun(profile)
	if err != nil {
		return err
	}
	defer d.Close()
	r, err := trainer.Footprint(d, o)
	if err != nil {
		return err
	}
	c := o.Config
	fmt.Fprintf(stdout, "dry run on %s: %s %s (%s), batch %d x %d, accum %d, precision %s\n", d, c.Name, c.Setting, c.Splits, o.Batch, o.SeqLen, o.Accum, precisionName(o.Precision))
	r.Write(stdout, 20)
	return nil
}

// precisionName is a precision in flag notation ("" is f32).
func precisionName(p string) string {
	if p == "" {
		return "f32"
	}
	return p
}
