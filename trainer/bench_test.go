package trainer

import (
	"testing"

	"mom/gpu"
	"mom/gpu/gputest"
	"mom/mom"
)

// BenchmarkStep reports tokens/s of full training steps of the tiny model,
// dense and MoM at the same config, on each runtime.
func BenchmarkStep(b *testing.B) {
	for _, rt := range []string{"dawn", "wgpu"} {
		b.Run(rt, func(b *testing.B) {
			rtime, err := gpu.ParseRuntime(rt)
			if err != nil {
				b.Fatal(err)
			}
			d := gputest.Must(b, rtime)
			dense, _ := mom.Preset("tiny", mom.ThreeModal, mom.Splits{})
			moe, _ := mom.Preset("tiny", mom.ThreeModal, mom.AllSplits)
			for i := 0; i < b.N; i++ {
				res, err := BenchSteps(d, []mom.Config{dense, moe}, 8, 128, 3, 2)
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(res[0].TokensPerSec, "dense-tok/s")
				b.ReportMetric(res[1].TokensPerSec, "mom-tok/s")
				b.ReportMetric(res[1].MsPerStep/res[0].MsPerStep, "mom/dense-time")
			}
		})
	}
}

// TestBenchStepsFreesBetweenModels: one model at a time, the second model's
// memory report holds nothing of the first's (Dawn frees released buffers
// only when collected; before, the first model's memory was still held
// while the second was built: 113 GiB on the H200 for 38.4 + 76.1). Dawn
// only: wgpu-native frees at release.
func TestBenchStepsFreesBetweenModels(t *testing.T) {
	gputest.ForEachDevice(t, func(t *testing.T, d *gpu.Device) {
		if d.Lib.Runtime != gpu.Dawn {
			t.Skip("wgpu-native frees released buffers at once")
		}
		dense, _ := mom.Preset("tiny", mom.ThreeModal, mom.Splits{})
		moe, _ := mom.Preset("tiny", mom.ThreeModal, mom.AllSplits)
		res, err := BenchStepsWith(d, []mom.Config{dense, moe}, BenchOptions{Batch: 2, Len: 16, Steps: 1, Rounds: 1})
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range res {
			if n := r.Memory.PeakBy[gpu.MemReleased]; n != 0 {
				t.Errorf("model %d (%s): %d bytes released and not yet freed at its peak", i, r.Config.Splits, n)
			}
			if r.Memory.PeakBy[gpu.MemParameters] == 0 {
				t.Errorf("model %d (%s): no parameters at the peak: %s", i, r.Config.Splits, r.Memory.Summary())
			}
		}
		if m := d.Memory(); m.Released != 0 {
			t.Errorf("after the bench: %d bytes released and not yet freed", m.Released)
		}
	})
}
