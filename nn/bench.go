package nn

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"mom/gpu"
)

// BenchSize picks the problem sizes of the kernel benchmarks.
type BenchSize string

const (
	// BenchSmall fits a software rasteriser (lavapipe) and CI.
	BenchSmall BenchSize = "small"
	// BenchLarge is sized for a real GPU (the H200 figures of the issues).
	BenchLarge BenchSize = "large"
)

// BenchCase is one kernel benchmark: Setup builds the op on a device and
// returns a function recording one run, the FLOPs and the fewest bytes one
// run must move through device memory, and a cleanup.
type BenchCase struct {
	Name  string
	Setup func(d *gpu.Device) (*BenchRun, error)
}

// BenchRun is a prepared benchmark.
type BenchRun struct {
	Record  func(r *gpu.Recorder)
	FLOPs   float64 // floating-point operations per run
	Bytes   float64 // compulsory device-memory traffic per run
	Cleanup func()
}

var (
	benchMu   sync.Mutex
	benchGens []func(BenchSize) []BenchCase
)

// RegisterBench adds a generator of benchmark cases (called from init in the
// file of each op).
func RegisterBench(gen func(BenchSize) []BenchCase) {
	benchMu.Lock()
	defer benchMu.Unlock()
	benchGens = append(benchGens, gen)
}

// BenchCases lists every registered case at the given size, by name.
func BenchCases(size BenchSize) []BenchCase {
	benchMu.Lock()
	defer benchMu.Unlock()
	var out []BenchCase
	for _, g := range benchGens {
		out = append(out, g(size)...)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
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

// BenchResult is the outcome of one case.
type BenchResult struct {
	Name      string
	Seconds   float64 // per run (GPU timestamps when available, else wall clock)
	Timed     string  // "gpu timestamps" or "wall clock"
	FLOPs     float64
	Bytes     float64
	FLOPRate  float64 // FLOP/s
	ByteRate  float64 // bytes/s
	PeakFrac  float64 // the larger of the two fractions of the roof
	Dispatchs int
}

// RunBench times one case: one warm-up submit, then reps runs recorded into
// one submit. With timestamp-query each run's dispatches are timed on the GPU.
func RunBench(d *gpu.Device, c BenchCase, reps int, peak Peak) (BenchResult, error) {
	run, err := c.Setup(d)
	if err != nil {
		return BenchResult{}, fmt.Errorf("%s: %w", c.Name, err)
	}
	if run.Cleanup != nil {
		defer run.Cleanup()
	}
	res := BenchResult{Name: c.Name, FLOPs: run.FLOPs, Bytes: run.Bytes}
	warm := d.NewRecorder()
	run.Record(warm)
	res.Dispatchs = warm.Len()
	if err := warm.Submit(); err != nil {
		return res, fmt.Errorf("%s: %w", c.Name, err)
	}
	if err := d.Sync(); err != nil {
		return res, fmt.Errorf("%s: %w", c.Name, err)
	}
	if d.Has(gpu.FeatureTimestampQuery) && reps*res.Dispatchs <= 2048 {
		r, err := d.NewProfiledRecorder(reps * res.Dispatchs)
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
