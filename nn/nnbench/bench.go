package nnbench

import (
	"fmt"
	"strings"
	"time"

	"mom/gpu"
)

// Size picks the problem sizes of the kernel benchmarks.
type Size string

const (
	// Small fits a software rasteriser (lavapipe) and CI.
	Small Size = "small"
	// Large is sized for a real GPU (the H200 figures of the issues).
	Large Size = "large"
)

// Case is one kernel benchmark: Setup builds the op on a device and returns
// what one run records, costs and frees.
type Case struct {
	Name  string
	Setup func(d *gpu.Device) (*Prepared, error)
}

// Prepared is a benchmark set up on a device.
type Prepared struct {
	Record  func(r *gpu.Recorder)
	FLOPs   float64 // floating-point operations per run
	Bytes   float64 // compulsory device-memory traffic per run
	Cleanup func()  // releases the op and its tensors
}

// Cases lists every case at size, by name.
func Cases(size Size) []Case {
	var out []Case
	for _, gen := range []func(Size) []Case{
		gemmCases, groupedCases, scanCases, convCases, rmsnormCases, xentCases, mseCases,
		embeddingCases, adamwCases, gradnormCases, elementwiseCases, fillCases, stepCases,
	} {
		out = append(out, gen(size)...)
	}
	sortCases(out)
	return out
}

func sortCases(cs []Case) {
	for i := 1; i < len(cs); i++ {
		for j := i; j > 0 && cs[j].Name < cs[j-1].Name; j-- {
			cs[j], cs[j-1] = cs[j-1], cs[j]
		}
	}
}

// Peak is the device's roof: FP32 FLOP/s and memory bytes/s.
type Peak struct {
	FLOPs, Bytes float64
	Source       string
}

// DevicePeak returns the datasheet roof for known devices (the H200: 66.9
// TFLOP/s FP32, 4.8 TB/s) and otherwise the measured copy bandwidth with no
// FLOP roof.
func DevicePeak(d *gpu.Device) Peak {
	name := strings.ToLower(d.Info.Name)
	switch {
	case strings.Contains(name, "h200"):
		return Peak{66.9e12, 4.8e12, "NVIDIA H200 datasheet"}
	case strings.Contains(name, "h100"):
		return Peak{66.9e12, 3.35e12, "NVIDIA H100 SXM datasheet"}
	}
	bw, err := CopyBandwidth(d, 64<<20, 5)
	if err != nil {
		return Peak{Source: "unknown: " + err.Error()}
	}
	return Peak{0, bw, "measured buffer copy"}
}

// CopyBandwidth measures a device-to-device copy, counting bytes read plus
// bytes written.
func CopyBandwidth(d *gpu.Device, size int64, reps int) (float64, error) {
	a, err := d.NewBuffer("bw.a", size, gpu.UsageTensor)
	if err != nil {
		return 0, err
	}
	defer a.Release()
	b, err := d.NewBuffer("bw.b", size, gpu.UsageTensor)
	if err != nil {
		return 0, err
	}
	defer b.Release()
	run := func(n int) (time.Duration, error) {
		r := d.NewRecorder()
		for i := 0; i < n; i++ {
			r.Copy(a, 0, b, 0, size)
		}
		start := time.Now()
		if err := r.Submit(); err != nil {
			return 0, err
		}
		err := d.Sync()
		return time.Since(start), err
	}
	if _, err := run(1); err != nil {
		return 0, err
	}
	el, err := run(reps)
	if err != nil {
		return 0, err
	}
	return float64(2*size*int64(reps)) / el.Seconds(), nil
}

// Result is the outcome of one case.
type Result struct {
	Name       string
	Seconds    float64 // per run (GPU timestamps when available, else wall clock)
	Timed      string  // "gpu timestamps" or "wall clock"
	FLOPs      float64
	Bytes      float64
	FLOPRate   float64 // FLOP/s
	ByteRate   float64 // bytes/s
	PeakFrac   float64 // the larger of the two fractions of the roof
	Dispatches int
}

// Run times one case: one warm-up submit, then reps runs recorded into
// one submit. With timestamp-query each run's dispatches are timed on the GPU.
func Run(d *gpu.Device, c Case, reps int, peak Peak) (Result, error) {
	run, err := c.Setup(d)
	if err != nil {
		return Result{}, fmt.Errorf("%s: %w", c.Name, err)
	}
	if run.Cleanup != nil {
		defer run.Cleanup()
	}
	res := Result{Name: c.Name, FLOPs: run.FLOPs, Bytes: run.Bytes}
	if d.DryRun {
		return res, fmt.Errorf("%s: a dry-run device runs nothing to time", c.Name)
	}
	warm := d.NewRecorder()
	run.Record(warm)
	res.Dispatches = warm.Len()
	if err := warm.Submit(); err != nil {
		return res, fmt.Errorf("%s: %w", c.Name, err)
	}
	if err := d.Sync(); err != nil {
		return res, fmt.Errorf("%s: %w", c.Name, err)
	}
	if d.Has(gpu.FeatureTimestampQuery) && reps*res.Dispatches <= 2048 {
		r, err := d.NewProfiledRecorder(reps * res.Dispatches)
		if err != nil {
			return res, err
		}
		defer r.Release()
		for i := 0; i < reps; i++ {
			run.Record(r)
		}
		if err := r.Submit(); err != nil {
			return res, fmt.Errorf("%s: %w", c.Name, err)
		}
		ts, err := r.Timings()
		if err != nil {
			return res, err
		}
		total := 0.0
		for _, t := range ts {
			total += t.Ns
		}
		res.Seconds = total / 1e9 / float64(reps)
		res.Timed = "gpu timestamps"
	} else {
		r := d.NewRecorder()
		for i := 0; i < reps; i++ {
			run.Record(r)
		}
		start := time.Now()
		if err := r.Submit(); err != nil {
			return res, fmt.Errorf("%s: %w", c.Name, err)
		}
		if err := d.Sync(); err != nil {
			return res, fmt.Errorf("%s: %w", c.Name, err)
		}
		res.Seconds = time.Since(start).Seconds() / float64(reps)
		res.Timed = "wall clock"
	}
	if res.Seconds > 0 {
		res.FLOPRate = res.FLOPs / res.Seconds
		res.ByteRate = res.Bytes / res.Seconds
	}
	if peak.FLOPs > 0 {
		res.PeakFrac = res.FLOPRate / peak.FLOPs
	}
	if peak.Bytes > 0 && res.ByteRate/peak.Bytes > res.PeakFrac {
		res.PeakFrac = res.ByteRate / peak.Bytes
	}
	return res, nil
}
