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
// thread. Without a display it says so and trains headless. Closing the
// window (Q, Esc or its close button) closes it at once; training goes on
// to its end (Ctrl-C stops it with a checkpoint).
func trainWithViz(ctx context.Context, d *gpu.Device, o trainer.Options, stdout, stderr io.Writer) error {
	src := viz.NewSource(trainer.FolderConfig(o))
	src.SetDir(o.Out) // the window shows the samples written there
	o.OnRecord = src.Push
	w, err := viz.Open(d, viz.WindowOptions{}, src)
	if err != nil {
		if headless(err) {
			fmt.Fprintf(stderr, "mom: %v; training carries on headless\n", err)
			res, err := trainer.Train(ctx, d, o)
			printResult(stdout, o, res, err)
			return trainExit(err)
		}
		return err
	}
	type outcome struct {
		res *trainer.Result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := trainer.Train(ctx, d, o)
		printResult(stdout, o, res, err)
		if err == nil {
			fmt.Fprintln(stderr, "mom: training finished; close the window (or press Q) to exit")
		}
		done <- outcome{res, err}
	}()
	werr := w.Run(ctx) // returns when the window is closed, or on a signal
	w.Close()          // at once: a window left open would no longer answer
	if werr != nil {
		fmt.Fprintf(stderr, "mom: window: %v; training carries on headless\n", werr)
	}
	select {
	case out := <-done:
		return trainExit(out.err)
	default:
	}
	if ctx.Err() == nil {
		fmt.Fprintln(stderr, "mom: window closed; training carries on (Ctrl-C stops it with a checkpoint)")
	}
	return trainExit((<-done).err)
}
