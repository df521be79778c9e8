package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"

	"mom/trainer"
	"mom/viz"
)

func init() {
	// GLFW wants every call on the main OS thread: keep main() there.
	runtime.LockOSThread()
	register(command{"plot", "draw runs' per-modality losses to a PNG", cmdPlot})
	register(command{"view", "open the live loss window over runs (following them as they grow)", cmdView})
	register(command{"compare", "FLOPs for a MoM run to reach a dense run's loss (the paper's metric)", cmdCompare})
}

func cmdPlot(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("plot", "plot runs/A [runs/B ...] -o loss.png [--x steps|flops|wall] [--log]", stderr)
	out := fs.String("o", "loss.png", "output PNG")
	xs := fs.String("x", "steps", "x axis: steps, flops or wall")
	logY := fs.Bool("log", false, "logarithmic loss axis")
	if err := parse(fs, reorder(args, map[string]bool{"o": true, "x": true})); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usagef("name at least one run folder")
	}
	x, err := viz.ParseXAxis(*xs)
	if err != nil {
		return usagef("%v", err)
	}
	if err := viz.PlotPNG(fs.Args(), *out, viz.PlotOptions{X: x, LogY: *logY}); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s\n", *out)
	return nil
}

func cmdView(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("view", "view runs/A [runs/B ...] [--runtime dawn|wgpu]", stderr)
	df := addDeviceFlags(fs)
	xs := fs.String("x", "steps", "x axis: steps, flops or wall")
	if err := parse(fs, reorder(args, map[string]bool{"runtime": true, "adapter": true, "x": true})); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usagef("name at least one run folder")
	}
	x, err := viz.ParseXAxis(*xs)
	if err != nil {
		return usagef("%v", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	var srcs []*viz.Source
	for _, dir := range fs.Args() {
		s, err := viz.FollowRun(ctx, dir, 0)
		if err != nil {
			return err
		}
		srcs = append(srcs, s)
	}
	d, err := df.open()
	if err != nil {
		return err
	}
	defer d.Close()
	w, err := viz.Open(d, viz.WindowOptions{X: x}, srcs...)
	if err != nil {
		return err
	}
	defer w.Close()
	return w.Run(ctx)
}

func cmdCompare(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("compare", "compare runs/A runs/B [--json] [--force]", stderr)
	asJSON := fs.Bool("json", false, "print JSON")
	force := fs.Bool("force", false, "compare runs that differ in setting, data, vocabulary or loss kinds (with warnings)")
	if err := parse(fs, reorder(args, nil)); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		return usagef("name two run folders: a dense run and a MoM run (in either order)")
	}
	runs, err := trainer.LoadRuns(fs.Arg(0), fs.Arg(1))
	if err != nil {
		return err
	}
	dense, mom, warnings, err := trainer.PairRuns(runs[0], runs[1], *force)
	for _, w := range warnings {
		fmt.Fprintf(stderr, "mom compare: warning: %s\n", w)
	}
	if err != nil {
		return err
	}
	rs, err := trainer.Compare(dense, mom)
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(rs)
	}
	trainer.FormatReach(stdout, dense, mom, rs)
	return nil
}

// reorder moves flags after positional arguments to the front, so that
// `mom plot runs/a runs/b -o x.png` works; valued lists the flags that take
// a value.
func reorder(args []string, valued map[string]bool) []string {
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if len(a) > 1 && a[0] == '-' {
			flags = append(flags, a)
			name := a[1:]
			if len(name) > 0 && name[0] == '-' {
				name = name[1:]
			}
			if valued[name] && i+1 < len(args) {
				flags = append(flags, args[i+1])
				i++
			}
			continue
		}
		pos = append(pos, a)
	}
	return append(flags, pos...)
}

// headless reports whether err means the window cannot open here.
func headless(err error) bool {
	return errors.Is(err, viz.ErrNoDisplay) || errors.Is(err, viz.ErrNoSurface)
}
