package gpu

import (
	"fmt"
	"testing"
)

// The benchmarks run on every runtime of $MOM_RUNTIMES. Each reports a
// per-unit figure with b.ReportMetric, never asserts a time.

func benchDevices(b *testing.B, fn func(b *testing.B, d *Device)) {
	for _, rt := range runtimes() {
		d, ok := devices[rt]
		if !ok {
			var err error
			if d, err = Open(Options{Runtime: rt, Adapter: -1}); err != nil {
				b.Fatal(err)
			}
			devices[rt] = d
		}
		b.Run(string(rt), func(b *testing.B) { fn(b, d) })
	}
}

// BenchmarkDispatchOverhead compares many small dispatches recorded into one
// submit with one submit per dispatch.
func BenchmarkDispatchOverhead(b *testing.B) {
	benchDevices(b, func(b *testing.B, d *Device) {
		p := mustPipeline(b, d, "inc.wgsl", incWGSL, nil)
		buf := mustBuffer(b, d, "x", 256)
		defer buf.Release()
		g, err := d.BindGroup(p, Buf(buf))
		if err != nil {
			b.Fatal(err)
		}
		defer g.Release()
		const n = 1000
		b.Run("one-submit", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				r := d.NewRecorder()
				for j := 0; j < n; j++ {
					r.Dispatch(g, 1, 1, 1)
				}
				if err := r.Submit(); err != nil {
					b.Fatal(err)
				}
				if err := d.Sync(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*n), "µs/dispatch")
		})
		b.Run("submit-each", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				for j := 0; j < n; j++ {
					r := d.NewRecorder()
					r.Dispatch(g, 1, 1, 1)
					if err := r.Submit(); err != nil {
						b.Fatal(err)
					}
				}
				if err := d.Sync(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*n), "µs/dispatch")
		})
	})
}

// BenchmarkTransfer measures upload (queue write) and download (copy, map,
// read) bandwidth.
func BenchmarkTransfer(b *testing.B) {
	benchDevices(b, func(b *testing.B, d *Device) {
		for _, size := range []int64{1 << 20, 64 << 20} {
			buf := mustBuffer(b, d, "t", size)
			data := make([]byte, size)
			b.Run(fmt.Sprintf("upload/%dMiB", size>>20), func(b *testing.B) {
				b.SetBytes(size)
				for i := 0; i < b.N; i++ {
					if err := buf.Write(0, data); err != nil {
						b.Fatal(err)
					}
					if err := d.Sync(); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run(fmt.Sprintf("download/%dMiB", size>>20), func(b *testing.B) {
				b.SetBytes(size)
				for i := 0; i < b.N; i++ {
					if _, err := buf.Read(0, size); err != nil {
						b.Fatal(err)
					}
				}
			})
			buf.Release()
		}
	})
}
