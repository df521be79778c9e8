package main

import (
	"cmp"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"mom/gpu"
	"mom/mom"
	"mom/nn/nnbench"
	"mom/trainer"
)

func init() {
	register(command{"bench", "benchmark kernels (`bench kernels`), host-device transfers (`bench transfer`), training steps, dense vs MoM (`bench step`), or sampling (`bench sample`)", cmdBench})
}

func cmdBench(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "kernels" && args[0] != "step" && args[0] != "sample" && args[0] != "transfer") {
		return usagef("mom bench kernels|transfer|step|sample [flags]")
	}
	switch args[0] {
	case "kernels":
		return benchKernels(args[1:], stdout, stderr)
	case "transfer":
		return benchTransfer(args[1:], stdout, stderr)
	case "sample":
		return benchSample(args[1:], stdout, stderr)
	}
	return benchStep(args[1:], stdout, stderr)
}

func benchKernels(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench kernels", "bench kernels [--size small|large] [--filter REGEXP] [--reps N] [--runtime dawn|wgpu]", stderr)
	df := addDeviceFlags(fs)
	size := fs.String("size", "small", "problem sizes: small (fits lavapipe) or large (a real GPU)")
	filter := fs.String("filter", "", "only cases whose name matches this regular expression")
	reps := fs.Int("reps", 10, "runs per case, recorded into one submit")
	shared := fs.Bool("shared-device", false, "run every case on one device (default: a fresh device per case; "+
		"on Dawn a long sweep on one device was seen to slow later kernels by up to 4x)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *size != "small" && *size != "large" {
		return usagef("--size %q: want small or large", *size)
	}
	re, err := regexp.Compile(*filter)
	if err != nil {
		return usagef("--filter: %v", err)
	}
	if *reps < 1 {
		return usagef("--reps %d: want at least 1", *reps)
	}
	d, err := df.open()
	if err != nil {
		return err
	}
	defer func() {
		if d != nil {
			d.Close()
		}
	}()
	peak := nnbench.DevicePeak(d)
	fmt.Fprintf(stdout, "%s\n%s\n\n", d, roofLine(peak))
	var names []string
	for _, c := range nnbench.Cases(nnbench.Size(*size)) {
		if re.MatchString(c.Name) {
			names = append(names, c.Name)
		}
	}
	tab := newKernelTable(stdout, names)
	first := true
	for _, c := range nnbench.Cases(nnbench.Size(*size)) {
		if !re.MatchString(c.Name) {
			continue
		}
		if !*shared && !first {
			d.Close()
			if d, err = df.open(); err != nil {
				d = nil
				return fmt.Errorf("bench kernels: reopening the device for %s (--shared keeps one device for every case): %w", c.Name, err)
			}
		}
		first = false
		res, err := nnbench.Run(d, c, *reps, peak)
		if err != nil {
			tab.fail(c.Name, err)
			continue
		}
		tab.row(c.Name, res)
	}
	return nil
}

// roofLine states the device's roof, or that its FLOP roof is unknown.
func roofLine(p nnbench.Peak) string {
	switch {
	case p.FLOPs > 0:
		return fmt.Sprintf("roof: %.1f TFLOP/s FP32, %.0f GB/s (%s)", p.FLOPs/1e12, p.Bytes/1e9, p.Source)
	case p.Bytes > 0:
		return fmt.Sprintf("roof: FLOP/s unknown for this device; %.0f GB/s (%s); %% of roof is of the bandwidth", p.Bytes/1e9, p.Source)
	}
	return fmt.Sprintf("roof: unknown for this device (%s)", p.Source)
}

// kernelTable prints the kernel benchmarks as a table whose columns stay
// aligned although each row is printed as soon as it is measured: the
// widths are fixed before the first row.
type kernelTable struct {
	w     io.Writer
	namew int
}

func newKernelTable(w io.Writer, names []string) *kernelTable {
	t := &kernelTable{w: w, namew: len("kernel")}
	for _, n := range names {
		t.namew = max(t.namew, len(n))
	}
	fmt.Fprintf(w, "%-*s  %9s  %10s  %9s  %9s  %s\n", t.namew, "kernel", "ms/run", "GFLOP/s", "GB/s", "% of roof", "timed by")
	return t
}

func (t *kernelTable) row(name string, r nnbench.Result) {
	frac := "-"
	if r.PeakFrac > 0 {
		frac = fmt.Sprintf("%.1f", 100*r.PeakFrac)
	}
	fmt.Fprintf(t.w, "%-*s  %9.3f  %10.1f  %9.1f  %9s  %s\n", t.namew, name, r.Seconds*1e3, r.FLOPRate/1e9, r.ByteRate/1e9, frac, r.Timed)
}

func (t *kernelTable) fail(name string, err error) {
	fmt.Fprintf(t.w, "%-*s  error: %v\n", t.namew, name, err)
}

func benchStep(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench step", "bench step [--preset P --setting S --batch B --seq L --steps N --rounds R] [--interleave] [--dry-run PROFILE] [--runtime dawn|wgpu]", stderr)
	df := addDeviceFlags(fs)
	preset := fs.String("preset", "tiny", "model size")
	setting := fs.String("setting", "three", "chameleon, transfusion or three")
	batch := fs.Int("batch", 8, "sequences per step")
	seq := fs.Int("seq", 128, "sequence length")
	steps := fs.Int("steps", 5, "steps per round")
	rounds := fs.Int("rounds", 3, "rounds")
	interleave := fs.Bool("interleave", false, "hold the dense and the MoM model at once and alternate them round by round "+
		"(default: one model at a time, which needs the memory of one)")
	recompute := fs.String("recompute", "auto", "recompute the conv and dt_proj outputs in the backward: on, off or auto (on when it saves 2 GiB or more)")
	precision := fs.String("precision", "f32", "f32, or f16: mixed precision as train --precision f16 (needs shader-f16)")
	dryRun := fs.String("dry-run", "", "count what each model would allocate on a device profile ("+strings.Join(gpu.ProfileNames(), ", ")+"); nothing runs")
	profile := fs.Int("profile", 0, "after timing, run one more step with every kernel timed by GPU timestamps and print the N kernels that took longest, "+
		"and the time by shader entry point (0: no profile)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *batch < 1 || *seq < 2 || *steps < 1 || *rounds < 1 {
		return usagef("--batch %d, --seq %d, --steps %d and --rounds %d: want at least 1 (--seq at least 2)", *batch, *seq, *steps, *rounds)
	}
	if r := *recompute; r != "auto" && r != "on" && r != "off" {
		return usagef("--recompute %q: want auto, on or off", r)
	}
	if _, err := mom.ParsePrecision(*precision); err != nil {
		return usagef("--%v", err)
	}
	if err := df.check(); err != nil {
		return err
	}
	dense, err := mom.Preset(*preset, mom.Setting(*setting), mom.Splits{})
	if err != nil {
		return usagef("%v", err)
	}
	moe, _ := mom.Preset(*preset, mom.Setting(*setting), mom.AllSplits)
	o := trainer.BenchOptions{Batch: *batch, Len: *seq, Steps: *steps, Rounds: *rounds, Interleave: *interleave, Recompute: *recompute, Precision: *precision,
		Profile: *profile > 0}
	if *profile < 0 {
		return usagef("--profile %d: want a number of kernels to list, or 0", *profile)
	}
	if *profile > 0 && *interleave {
		return usagef("--profile and --interleave: a profile times one model at a time")
	}
	name := func(c mom.Config) string {
		return map[bool]string{true: "dense", false: "MoM (in,x,dt,out)"}[c.Splits.Dense()]
	}
	if *dryRun != "" {
		d, err := openDryRun(*dryRun)
		if err != nil {
			return err
		}
		defer d.Close()
		reps, err := trainer.BenchFootprints(d, []mom.Config{dense, moe}, o)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "dry run on %s: preset %s, %s setting, batch %d x %d, precision %s\n", d, *preset, *setting, *batch, *seq, precisionName(*precision))
		for i, c := range []mom.Config{dense, moe} {
			fmt.Fprintf(stdout, "\n%s:\n", name(c))
			reps[i].Write(stdout, 12)
		}
		held := max(reps[0].Peak, reps[1].Peak)
		if *interleave {
			held = reps[0].Peak + reps[1].Peak
		}
		fmt.Fprintf(stdout, "\nbench step holds %s at once (%s)\n", gpu.GiB(held), map[bool]string{true: "--interleave: both models", false: "one model at a time"}[*interleave])
		return nil
	}
	d, err := df.open()
	if err != nil {
		return err
	}
	defer d.Close()
	o.Progress = func(format string, args ...any) { fmt.Fprintf(stderr, format+"\n", args...) }
	res, err := trainer.BenchStepsWith(d, []mom.Config{dense, moe}, o)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: preset %s, %s setting, batch %d x %d, %d steps each, %s, precision %s\n", d, *preset, *setting, *batch, *seq, res[0].Steps,
		map[bool]string{true: "interleaved", false: "one model at a time"}[*interleave], precisionName(*precision))
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "model\tms/step\ttokens/s\ttrain TFLOP/s\tsetup s\tGPU memory\t")
	for _, r := range res {
		fmt.Fprintf(tw, "%s\t%.2f\t%.0f\t%.3f\t%.1f\t%s\t\n", name(r.Config), r.MsPerStep, r.TokensPerSec, r.FLOPRate/1e12,
			r.Setup.Seconds(), gpu.GiB(r.Memory.Peak))
	}
	tw.Flush()
	fmt.Fprintf(stdout, "MoM step time / dense step time = %.3f\n", res[1].MsPerStep/res[0].MsPerStep)
	for _, r := range res {
		fmt.Fprintf(stdout, "%s: %s\n", name(r.Config), r.Memory.Summary())
	}
	for _, r := range res {
		if len(r.Profile) > 0 {
			writeProfile(stdout, name(r.Config), r, *profile)
		}
	}
	return nil
}

func benchSample(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench sample", "bench sample [--preset P --setting S --dense|--split LIST --streams 1,64 --prompts 16,256,4096 --steps N] [--runtime dawn|wgpu]", stderr)
	df := addDeviceFlags(fs)
	preset := fs.String("preset", "tiny", "model size")
	setting := fs.String("setting", "three", "chameleon, transfusion or three")
	dense := fs.Bool("dense", false, "the dense Mamba baseline (no split projections)")
	split := fs.String("split", "all", "split projections: a subset of in,x,dt,out, all or none")
	streams := fs.String("streams", "1,64", "concurrent streams (comma-separated)")
	prompts := fs.String("prompts", "16,256,4096", "prompt lengths (comma-separated)")
	steps := fs.Int("steps", 32, "steps timed per case")
	if err := parse(fs, args); err != nil {
		return err
	}
	splits, err := mom.ParseSplits(*split)
	if err != nil {
		return usagef("--split: %v", err)
	}
	if *dense {
		splits = mom.Splits{}
	}
	c, err := mom.Preset(*preset, mom.Setting(*setting), splits)
	if err != nil {
		return usagef("%v", err)
	}
	ss, err := parseInts("--streams", *streams)
	if err != nil {
		return err
	}
	ps, err := parseInts("--prompts", *prompts)
	if err != nil {
		return err
	}
	if *steps < 1 {
		return usagef("--steps %d: want at least 1", *steps)
	}
	d, err := df.open()
	if err != nil {
		return err
	}
	defer d.Close()
	res, err := mom.BenchSample(d, c, mom.SampleBenchOptions{Streams: ss, Prompts: ps, Steps: *steps, Seed: 1})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: preset %s, %s setting, splits %s; %d steps timed per case, sampling at temperature 1\n", d, *preset, *setting, splits, *steps)
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "streams\tprompt\tprefill ms\tstep latency ms\ttokens/s\tsteps/submit\tGFLOP/s\t")
	for _, r := range res {
		fmt.Fprintf(tw, "%d\t%d\t%.1f\t%.3f\t%.0f\t%d\t%.2f\t\n", r.Streams, r.Prompt, r.PrefillMs, r.StepMs, r.TokensPerSec, r.GenerateSteps, r.FLOPRate/1e9)
	}
	return tw.Flush()
}

// parseInts reads a comma-separated list of positive integers.
func parseInts(flag, s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || v < 1 {
			return nil, usagef("%s %q: want positive integers separated by commas", flag, s)
		}
		out = append(out, v)
	}
	return out, nil
}

func benchTransfer(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench transfer", "bench transfer [--mib N] [--reps N] [--paths LIST] [--runtime dawn|wgpu]", stderr)
	df := addDeviceFlags(fs)
	mib := fs.Int("mib", 256, "MiB moved each way")
	reps := fs.Int("reps", 3, "timed runs each way (the best counts), after a warm-up")
	paths := fs.String("paths", "all", "transfer paths to time: all (those the device offers) or a list of host-mapped, mapped, queue")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *mib < 1 || *reps < 1 {
		return usagef("--mib %d and --reps %d: want at least 1", *mib, *reps)
	}
	var want []gpu.TransferPath
	if *paths != "all" {
		for _, p := range strings.Split(*paths, ",") {
			tp, err := gpu.ParseTransferPath(strings.TrimSpace(p))
			if err != nil || tp == gpu.PathAuto {
				return usagef("--paths %q: want all or a list of host-mapped, mapped, queue", *paths)
			}
			want = append(want, tp)
		}
	}
	if err := df.check(); err != nil {
		return err
	}
	d, err := df.open()
	if err != nil {
		return err
	}
	defer d.Close()
	if want == nil {
		want = d.TransferPaths()
	}
	fmt.Fprintf(stdout, "%s: %d MiB each way, best of %d runs; offered: %v\n", d, *mib, *reps, d.TransferPaths())
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "path\tup GB/s\tdown GB/s\tup in place GB/s\tdown in place GB/s\t")
	var failed error
	for _, p := range want {
		r, err := nnbench.Transfer(d, p, int64(*mib)<<20, *reps)
		if err != nil {
			fmt.Fprintf(tw, "%s\terror: %v\t\t\t\t\n", p, err)
			failed = err
			continue
		}
		fmt.Fprintf(tw, "%s\t%.2f\t%.2f\t%.2f\t%.2f\t\n", p, r.Up/1e9, r.Down/1e9, r.UpInPlace/1e9, r.DownInPlace/1e9)
	}
	tw.Flush()
	return failed
}

// writeProfile prints a profiled step: the top kernels (pipelines with
// their constants) and the time by shader entry point.
func writeProfile(w io.Writer, name string, r trainer.StepBench, top int) {
	total := 0.0
	byEntry := map[string]*trainer.KernelTime{}
	for _, k := range r.Profile {
		total += k.Ns
		e, _, _ := strings.Cut(k.Kernel, "{")
		if byEntry[e] == nil {
			byEntry[e] = &trainer.KernelTime{Kernel: e}
		}
		byEntry[e].Ns += k.Ns
		byEntry[e].Dispatches += k.Dispatches
	}
	fmt.Fprintf(w, "\n%s: profile of one step, every dispatch timed alone: kernels %.2f ms in all (the timed step: %.2f ms)\n", name, total/1e6, r.MsPerStep)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ms\t%\tdispatches\tentry point\t")
	entries := make([]trainer.KernelTime, 0, len(byEntry))
	for _, k := range byEntry {
		entries = append(entries, *k)
	}
	slices.SortFunc(entries, func(a, b trainer.KernelTime) int { return cmp.Compare(b.Ns, a.Ns) })
	for _, k := range entries {
		fmt.Fprintf(tw, "%.3f\t%.1f\t%d\t%s\t\n", k.Ns/1e6, 100*k.Ns/total, k.Dispatches, k.Kernel)
	}
	tw.Flush()
	fmt.Fprintf(w, "top %d kernels:\n", min(top, len(r.Profile)))
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ms\t%\tdispatches\tkernel\t")
	for i, k := range r.Profile {
		if i == top {
			break
		}
		fmt.Fprintf(tw, "%.3f\t%.1f\t%d\t%s\t\n", k.Ns/1e6, 100*k.Ns/total, k.Dispatches, k.Kernel)
	}
	tw.Flush()
}
