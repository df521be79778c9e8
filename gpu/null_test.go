package gpu

import (
	"strings"
	"testing"
)

// TestDryRun: a device of the null implementation takes a profile's
// limits and features, "allocates" far more than any machine holds, runs
// the recorder and readback paths, and counts every byte by category with
// the peak and its breakdown.
func TestDryRun(t *testing.T) {
	for _, name := range ProfileNames() {
		t.Run(name, func(t *testing.T) {
			p := Profiles[name]
			d, err := OpenDryRun(p)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			if !d.DryRun || d.Lib.Runtime != p.Runtime || d.Limits != p.Limits || d.Info.Name != p.Name {
				t.Fatalf("dry run of %s: runtime %s, limits %+v, name %q", name, d.Lib.Runtime, d.Limits, d.Info.Name)
			}
			for _, f := range p.Features {
				if !d.Has(f) {
					t.Errorf("feature %s missing", f)
				}
			}
			const gib = int64(1) << 30
			w, err := d.NewBufferIn(MemParameters, "layers.0.w", 3*gib, UsageTensor)
			if err != nil {
				t.Fatal(err)
			}
			g, err := d.NewBufferIn(MemGradients, "layers.1.w", 3*gib, UsageTensor)
			if err != nil {
				t.Fatal(err)
			}
			act, err := d.NewBufferIn(MemActivations, "act", gib, UsageTensor)
			if err != nil {
				t.Fatal(err)
			}
			act.Release()
			s, err := d.Shader("x.wgsl", "not even WGSL")
			if err != nil {
				t.Fatal(err)
			}
			pl, err := d.Pipeline(s, "main", Constants{"A": 1})
			if err != nil {
				t.Fatal(err)
			}
			small, err := d.NewBuffer("small", 1024, UsageTensor)
			if err != nil {
				t.Fatal(err)
			}
			bg, err := d.BindGroup(pl, Buf(small))
			if err != nil {
				t.Fatal(err)
			}
			r := d.NewRecorder()
			r.Dispatch(bg, 4, 1, 1)
			r.Copy(small, 0, small, 512, 256)
			if err := r.SubmitChecked(); err != nil {
				t.Fatal(err)
			}
			v, err := small.ReadFloat32(0, 256)
			if err != nil || len(v) != 256 || v[7] != 0 {
				t.Fatalf("read: %v %v", err, len(v))
			}
			if err := small.Write(0, make([]byte, 1024)); err != nil {
				t.Fatal(err)
			}
			m := d.Memory()
			want := 7 * gib // before the activations went and the small buffer came
			if m.Peak != want || m.PeakBy[MemParameters] != 3*gib || m.PeakBy[MemGradients] != 3*gib || m.PeakBy[MemActivations] != gib {
				t.Errorf("peak %d %v, want %d with 3, 3 and 1 GiB", m.Peak, m.PeakBy, want)
			}
			if m.Live != 6*gib+1024 || m.LiveBy[MemActivations] != 0 {
				t.Errorf("live %d %v, want 6 GiB and 1 KiB", m.Live, m.LiveBy)
			}
			if len(m.Top) != 3 || m.Top[0].Label != "layers.N.w" || m.Top[1].Label != "layers.N.w" || m.Top[0].Category == m.Top[1].Category || m.Top[2].Bytes != gib {
				t.Errorf("top %+v: want layers.N.w as parameters and as gradients, then act", m.Top)
			}
			if !strings.Contains(m.Summary(), "parameters 3.00 GiB") {
				t.Errorf("summary %q", m.Summary())
			}
			w.Release()
			g.Release()
			bg.Release()
			small.Release()
			if live := d.LiveObjects(); live["buffer"] > 1 || live["bind group"] != 0 { // the readback's pooled staging stays
				t.Errorf("live objects %v", live)
			}
			// Dawn holds released memory until collected (creating the
			// small buffer collected the activations); wgpu-native frees it.
			want = 0
			if d.Lib.Runtime == Dawn {
				want = 6*gib + 1024
			}
			if m := d.Memory(); m.Released != want {
				t.Errorf("released %d before Collect, want %d", m.Released, want)
			}
			if err := d.Collect(); err != nil {
				t.Fatal(err)
			}
			d.ResetPeak()
			if m := d.Memory(); m.Peak != 0 || m.Live != 0 {
				t.Errorf("after releasing everything and a reset: peak %d, live %d", m.Peak, m.Live)
			}
		})
	}
}
