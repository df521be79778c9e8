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
