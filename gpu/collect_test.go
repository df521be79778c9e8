package gpu

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// residentMiB is the process's resident memory in MiB (Linux), -1 where
// /proc cannot tell. On a CPU adapter (lavapipe) device memory is host
// memory, so it shows what the driver really holds.
func residentMiB() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			var kib int64
			if _, err := fmt.Sscanf(strings.TrimSpace(v), "%d", &kib); err != nil {
				return -1
			}
			return kib >> 10
		}
	}
	return -1
}

// TestCollect: released buffers are freed by the implementation once
// collected, explicitly (Collect) or by the next buffer created. Dawn holds
// a destroyed buffer's memory until a later submit has completed and the
// device is ticked (without Collect, 1 GiB released stayed resident), so
// the accounting counts it as released until then; wgpu-native frees at
// destroy. On lavapipe the process's resident memory shows the driver's.
func TestCollect(t *testing.T) {
	const size, n = 64 << 20, 4
	for _, c := range []struct {
		name    string
		collect func(d *Device) error
	}{
		{"Collect", func(d *Device) error { return d.Collect() }},
		{"next buffer", func(d *Device) error {
			b, err := d.NewBuffer("after", 4, UsageTensor)
			b.Release()
			return err
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			forEach(t, func(t *testing.T, d *Device) {
				if err := d.Collect(); err != nil {
					t.Fatal(err)
				}
				base, baseRSS := d.Memory(), residentMiB()
				var bs []*Buffer
				for i := 0; i < n; i++ {
					b, err := d.NewBufferIn(MemActivations, fmt.Sprintf("big.%d", i), size, UsageTensor)
					if err != nil {
						t.Fatal(err)
					}
					bs = append(bs, b)
					r := d.NewRecorder()
					r.Clear(b, 0, size) // touch the memory: lavapipe commits it
					if err := r.Submit(); err != nil {
						t.Fatal(err)
					}
				}
				if err := d.Sync(); err != nil {
					t.Fatal(err)
				}
				held := residentMiB()
				d.ResetPeak()
				for _, b := range bs {
					b.Release()
				}
				if err := d.Sync(); err != nil {
					t.Fatal(err)
				}
				m := d.Memory()
				wantReleased := int64(0)
				if d.mem.deferFree {
					wantReleased = n * size
				}
				if m.Live != base.Live || m.Released != wantReleased {
					t.Errorf("after release: live %d (base %d), released %d; want released %d", m.Live, base.Live, m.Released, wantReleased)
				}
				if err := c.collect(d); err != nil {
					t.Fatal(err)
				}
				// (the 4 bytes of "after" may wait)
				if m := d.Memory(); m.Released > 4 || m.Live != base.Live {
					t.Errorf("after %s: live %d (base %d), released %d, want at most 4", c.name, m.Live, base.Live, m.Released)
				}
				if d.Info.adapterType != 3 || baseRSS < 0 {
					return
				}
				after := residentMiB()
				t.Logf("resident: %d MiB before, %d holding %d MiB, %d after", baseRSS, held, n*size>>20, after)
				if held-baseRSS < n*size>>20*3/4 {
					t.Skipf("resident memory grew by %d MiB only for %d MiB of buffers: this driver does not hold them in process memory", held-baseRSS, n*size>>20)
				}
				if after-baseRSS > n*size>>20/4 {
					t.Errorf("resident memory %d MiB after %s, %d before the %d MiB of buffers: the driver still holds them", after, c.name, baseRSS, n*size>>20)
				}
			})
		})
	}
}

// TestCollectDryRun: a dry-run device of a Dawn profile counts released
// memory in its peak until collected, as Dawn holds it.
func TestCollectDryRun(t *testing.T) {
	d, err := OpenDryRun(Profiles["h200"])
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	a, err := d.NewBufferIn(MemParameters, "a", 1<<30, UsageTensor)
	if err != nil {
		t.Fatal(err)
	}
	a.Release()
	b, err := d.NewBufferIn(MemParameters, "b", 1<<20, UsageTensor)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Release()
	// Creating b collected a first: the peak is a alone.
	if m := d.Memory(); m.Peak != 1<<30 || m.Released != 0 {
		t.Errorf("peak %d, released %d; want %d and 0", m.Peak, m.Released, 1<<30)
	}
	c, err := d.NewBufferIn(MemParameters, "c", 32<<20, UsageTensor)
	if err != nil {
		t.Fatal(err)
	}
	c.Release() // below collectMin: held until collected
	d.ResetPeak()
	m := d.Memory()
	if m.Released != 32<<20 || m.Peak != 33<<20 || m.PeakBy[MemReleased] != 32<<20 {
		t.Errorf("released %d, peak %d (released %d at the peak); want %d, %d, %d", m.Released, m.Peak, m.PeakBy[MemReleased], 32<<20, 33<<20, 32<<20)
	}
	if err := d.Collect(); err != nil {
		t.Fatal(err)
	}
	if m := d.Memory(); m.Released != 0 {
		t.Errorf("after Collect: released %d", m.Released)
	}
}
