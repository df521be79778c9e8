// Package viz shows training runs: per-modality training and held-out loss
// curves, as PNG files (PlotPNG) and in a live window (Open) that presents
// through WebGPU on the same device as training.
//
// # Runs and records
//
// A run is a folder of package trainer/runfolder, whose reader and record
// type this package uses: metrics.jsonl (one JSON object per line, appended
// and flushed per record while the run trains) and config.json (name, kind,
// and the model's modality rows; optional). ReadRun reads a run whole; Tail
// and Follow read a growing file. A torn last line (a record being written)
// is skipped until it is complete; a malformed line elsewhere is an error
// naming the file and line. Steps that go back (a run resumed from a
// checkpoint, or a file written anew) rewind the curve. A run folder that
// does not exist is an error.
//
// # Plots
//
// One panel per modality (any number of them: losses of different
// modalities differ in scale), stacked, sharing the x axis: steps, training
// FLOPs or wall time (XAxis). The modalities, their colours and their
// window keys come from the runs' modality rows (Modality). In a panel the
// first run draws in the modality's colour and each other run in a colour
// and a line style of its own (CurveColor, RunDashes), so dense and MoM
// runs overlay and stay apart; held-out curves are a darker shade with a
// dot per evaluation (EvalColor). Each panel has a legend naming every
// curve "run (dense|MoM) train|eval", with runs of the same name told apart
// by their folders; ticks fall on round numbers with distinct labels; the y
// axis may be logarithmic. PNG files get the usual permissions.
//
// # The live window
//
// Open makes a GLFW window (GLFW_NO_API) and a WebGPU surface on its native
// window (X11 here; Wayland with -tags wayland; the gpu package also takes
// Metal layers and HWNDs, which this package does not wire yet). The plot is
// drawn on the CPU with gonum/plot into an image the size of the window's
// framebuffer, only when data or the view changed and at most MaxFPS times
// a second, uploaded to a texture and drawn by one full-screen triangle
// (shaders/viz_blit.wgsl), then presented (mailbox, else immediate, else
// fifo). Keys: 1-9 show or hide the modalities' panels (each modality's
// key, from its row: text 1, image 2, speech 3, ...); F1-F12 runs; T and E
// training and held-out curves; S the samples column; L log y; X cycles
// the x axis; A (or 0, Home, right click) follows the data again; Q or Esc
// closes the window (training goes on). The
// wheel zooms about the cursor (shift: x only, ctrl: y only), dragging
// pans, and a box in the panel under the cursor reads out each curve's
// value nearest the cursor.
//
// A run whose folder the window knows (FollowRun, RunSource,
// Source.SetDir) has its newest samples (RUN/samples/step_N, read with
// package runfolder) shown in a column right of the panels: the image
// grid scaled to the column's width, and the samples' text below it. The
// window looks for newer samples once per WindowOptions.SamplePoll and
// only reads files, on its own goroutine (samples.go).
//
// Training feeds the window through a Source: Push (or PushLine with the
// JSON line written to metrics.jsonl) appends under a mutex and returns at
// once; the window takes what arrived at its own pace. A slow window draws
// fewer frames; it never drops records and never makes training wait,
// except for the device's lock while a frame is uploaded and presented
// (a few milliseconds on lavapipe).
//
// With no display (DISPLAY and WAYLAND_DISPLAY unset, or GLFW failing)
// Open returns an error wrapping ErrNoDisplay (with GLFW's own reason,
// which GLFW would otherwise log by itself); where WebGPU cannot present to
// the window, ErrNoSurface. Both mean: print the message, go on headless.
//
// # Use from the CLI
//
//	mom plot:   viz.PlotPNG(runDirs, "loss.png", viz.PlotOptions{X: x, LogY: log})
//	mom view:   src, _ := viz.FollowRun(ctx, dir, 0)          // per run folder
//	            w, err := viz.Open(dev, viz.WindowOptions{}, srcs...)
//	            err = w.Run(ctx); w.Close()
//	mom train --viz:
//	            src := viz.NewSource(trainer.FolderConfig(opts))  // name, kind, modality rows
//	            src.SetDir(opts.Out)                              // its samples
//	            the trainer calls src.Push(rec) or src.PushLine(jsonLine) per record,
//	            training runs in a goroutine, w.Run(ctx) on the main goroutine.
//
// GLFW wants all its calls on one OS thread, the main thread on macOS: the
// CLI locks its main goroutine to the main thread in an init function
// (runtime.LockOSThread) and calls Open, Run and Close from main.
package viz
