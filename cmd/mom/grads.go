package main

import (
	"fmt"
	"io"

	"mom/trainer"
	"mom/trainer/safetensors"
)

func init() {
	register(command{"grads", "write one step's batch, losses and gradients from a checkpoint (safetensors)", cmdGrads})
}

func cmdGrads(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("grads", "grads --checkpoint runs/NAME[/checkpoints/step_N] --out grads.safetensors [--batch B --seq L] [--data D]", stderr)
	df := addDeviceFlags(fs)
	ckpt := fs.String("checkpoint", "", "run folder, checkpoints folder or step folder")
	out := fs.String("out", "", "output safetensors file")
	batch := fs.Int("batch", 2, "sequences in the fixed batch")
	seq := fs.Int("seq", 64, "sequence length")
	dataOpt := fs.String("data", "", "data of the batch: synthetic, a dataset folder or a token file (default: the run's own)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *ckpt == "" || *out == "" {
		return usagef("--checkpoint and --out are required")
	}
	if *batch < 1 || *seq < 2 {
		return usagef("--batch %d and --seq %d: want at least 1 and 2", *batch, *seq)
	}
	d, err := df.open()
	if err != nil {
		return err
	}
	defer d.Close()
	ts, meta, err := trainer.Grads(d, *ckpt, *batch, *seq, *dataOpt)
	if err != nil {
		return err
	}
	if err := safetensors.Write(*out, ts, meta); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s: %d tensors (batch, losses, parameters, gradients); layout in its metadata\n", *out, len(ts))
	return nil
}
