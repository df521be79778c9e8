package nn_test

import (
	"testing"

	"mom/nn"
	"mom/nn/internal/ktest"
)

// BenchmarkKernels runs every registered kernel case at the small size on
// each runtime and reports time, GFLOP/s and GB/s per run.
func BenchmarkKernels(b *testing.B) {
	for _, rt := range ktest.Runtimes() {
		d, err := ktest.Device(rt)
		if err != nil {
			b.Fatal(err)
		}
		peak := nn.DevicePeak(d)
		for _, c := range nn.BenchCases(nn.BenchSmall) {
			b.Run(string(rt)+"/"+c.Name, func(b *testing.B) {
				var res nn.BenchResult
				for i := 0; i < b.N; i++ {
					res, err = nn.RunBench(d, c, 5, peak)
					if err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(res.Seconds*1e3, "ms/run")
				b.ReportMetric(res.FLOPRate/1e9, "GFLOP/s")
				b.ReportMetric(res.ByteRate/1e9, "GB/s")
				b.ReportMetric(res.PeakFrac*100, "%peak")
			})
		}
	}
}
