package main

import (
	"context"
	"fmt"
	"io"

	"mom/gpu"
	"mom/trainer"
	"mom/viz"
)

// trainWithViz trains in a goroutine and runs the live window on the main
// thread. Without a display it says so and trains headless.
func trainWithViz(ctx context.Context, d *gpu.Device, o trainer.Options, stdout, stderr io.Writer) error {
	c := o.Config
	src := viz.NewSource(viz.RunConfig{Name: o.Out, Dense: c.Splits.Dense(), Modalities: c.ModalityNames()})
	o.OnRecord = func(r trainer.Record) {
		if line, err := r.JSON(); err == nil {
			src.PushLine(line)
		}
	}
	w, err := viz.Open(d, viz.WindowOptions{}, src)
	if err != nil {
		if headless(err) {
			fmt.Fprintf(stderr, "mom: %v; training carries on headless\n", err)
			res, err := trainer.Train(ctx, d, o)
			if res != nil {
				printResult(stdout, o, res)
			}
			return err
		}
		return err
	}
	defer w.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type outcome struct {
		res *trainer.Result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := trainer.Train(ctx, d, o)
		if res != nil {
			printResult(stdout, o, res)
		}
		if err == nil {
			fmt.Fprintln(stderr, "mom: training finished; close the window (or press q) to exit")
		}
		done <- outcome{res, err}
	}()
	werr := w.Run(ctx) // returns when the window closes
	if werr != nil {
		fmt.Fprintf(stderr, "mom: window: %v; training carries on headless\n", werr)
	}
	return (<-done).err
}
