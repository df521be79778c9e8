package nnbench

import (
	"fmt"
	"strings"
	"testing"

	"mom/gpu"
	"mom/gpu/gputest"
)

// TestCasesBuild sets every case up, records it and frees it on dry-run
// devices (an H200 at both sizes: the large shapes build without a GPU;
// lavapipe at the small size): each leaves no device memory behind.
func TestCasesBuild(t *testing.T) {
	for _, c := range []struct {
		profile string
		size    Size
	}{{"h200", Large}, {"h200", Small}, {"h200-wgpu", Large}, {"lavapipe", Small}} {
		d, err := gpu.OpenDryRun(gpu.Profiles[c.profile])
		if err != nil {
			t.Fatal(err)
		}
		cases := Cases(c.size)
		if len(cases) < 20 {
			t.Errorf("%d cases at size %s", len(cases), c.size)
		}
		seen := map[string]bool{}
		for _, k := range cases {
			if seen[k.Name] {
				t.Errorf("two cases called %s", k.Name)
			}
			seen[k.Name] = true
			p, err := k.Setup(d)
			if strings.Contains(k.Name, "_f16") && !d.Has(gpu.FeatureShaderF16) {
				// Dawn on the H200: no shader-f16, and the error says so.
				if err == nil || !strings.Contains(err.Error(), string(gpu.FeatureShaderF16)) {
					t.Errorf("%s %s without shader-f16: %v, want an error naming it", c.profile, k.Name, err)
				}
				continue
			}
			if err != nil {
				t.Errorf("%s %s: %v", c.profile, k.Name, err)
				continue
			}
			if p.Record == nil || (p.FLOPs == 0 && p.Bytes == 0) {
				t.Errorf("%s %s: no record function or no cost", c.profile, k.Name)
			}
			r := d.NewRecorder()
			p.Record(r)
			if err := r.Submit(); err != nil {
				t.Errorf("%s %s: %v", c.profile, k.Name, err)
			}
			p.Cleanup()
			if m := d.Memory(); m.Live != 0 {
				t.Errorf("%s %s: %d bytes live after its cleanup: %v", c.profile, k.Name, m.Live, m.LiveBy)
			}
		}
		if _, err := Run(d, cases[0], 1, Peak{}); err == nil {
			t.Errorf("timing on a dry-run device gave no error")
		}
		d.Close()
	}
}

// TestRunTimesACase: one small case runs and is timed on each runtime.
func TestRunTimesACase(t *testing.T) {
	gputest.ForEachDevice(t, func(t *testing.T, d *gpu.Device) {
		for _, c := range Cases(Small) {
			if c.Name != "fill/n=4194304" {
				continue
			}
			res, err := Run(d, c, 2, Peak{Bytes: 1e9})
			if err != nil {
				t.Fatal(err)
			}
			if res.Seconds <= 0 || res.ByteRate <= 0 || res.PeakFrac <= 0 || res.Dispatches != 1 {
				t.Errorf("result %+v", res)
			}
			return
		}
		t.Fatal("no fill case")
	})
}

// BenchmarkKernels runs every case at the small size on each runtime and
// reports time, GFLOP/s and GB/s per run.
func BenchmarkKernels(b *testing.B) {
	for _, rt := range gputest.Runtimes() {
		d := gputest.Must(b, rt)
		peak := DevicePeak(d)
		for _, c := range Cases(Small) {
			b.Run(string(rt)+"/"+c.Name, func(b *testing.B) {
				var res Result
				var err error
				for i := 0; i < b.N; i++ {
					if res, err = Run(d, c, 5, peak); err != nil {
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

// BenchmarkTransfer moves 64 MiB each way through every transfer path of
// each runtime.
func BenchmarkTransfer(b *testing.B) {
	const size = 64 << 20
	for _, rt := range gputest.Runtimes() {
		d := gputest.Must(b, rt)
		for _, p := range d.TransferPaths() {
			b.Run(fmt.Sprintf("%s/%s", rt, p), func(b *testing.B) {
				var res TransferResult
				var err error
				for i := 0; i < b.N; i++ {
					if res, err = Transfer(d, p, size, 3); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(res.Up/1e9, "up-GB/s")
				b.ReportMetric(res.Down/1e9, "down-GB/s")
				b.ReportMetric(res.UpInPlace/1e9, "up-inplace-GB/s")
				b.ReportMetric(res.DownInPlace/1e9, "down-inplace-GB/s")
			})
		}
	}
}
