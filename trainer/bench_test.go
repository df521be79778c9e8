package trainer

import (
	"testing"

	"mom/gpu"
	"mom/mom"
)

func benchDevice(b *testing.B, name string) *gpu.Device {
	rt, err := gpu.ParseRuntime(name)
	if err != nil {
		b.Fatal(err)
	}
	devMu.Lock()
	defer devMu.Unlock()
	if d, ok := devices[rt]; ok {
		return d
	}
	d, err := gpu.Open(gpu.Options{Runtime: rt, Adapter: -1})
	if err != nil {
		b.Fatal(err)
	}
	devices[rt] = d
	return d
}

// BenchmarkStep reports tokens/s of full training steps of the tiny model,
// dense and MoM at the same config, on each runtime.
func BenchmarkStep(b *testing.B) {
	for _, rt := range []string{"dawn", "wgpu"} {
		b.Run(rt, func(b *testing.B) {
			d := benchDevice(b, rt)
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
