package trainer

import (
	"strings"
	"testing"

	"mom/gpu"
	"mom/mom"
)

// TestFootprint counts, on a dry-run H200, what training allocates: the
// 1.4b MoM preset at 4x1024 (108 GiB measured on the H200 before the
// scans shared their backward workspace and the backward recomputed the
// conv and dt_proj outputs) fits 80 GiB, the 94m dense preset stays under
// the 7.6 GiB measured, parameters, gradients and the two AdamW moments are
// exactly four float32 copies of the parameters, and the scans' backward
// workspace exists once.
func TestFootprint(t *testing.T) {
	d, err := gpu.OpenDryRun(gpu.Profiles["h200"])
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	const gib = float64(1 << 30)
	for _, c := range []struct {
		preset    string
		split     mom.Splits
		b, l      int
		maxGiB    float64
		recompute bool // auto turns it on
	}{
		{"1.4b", mom.AllSplits, 4, 1024, 80, true},
		{"94m", mom.Splits{}, 8, 512, 7.6, false},
		{"94m", mom.AllSplits, 8, 512, 7.6, false},
	} {
		cfg, err := mom.Preset(c.preset, mom.ThreeModal, c.split)
		if err != nil {
			t.Fatal(err)
		}
		o := DefaultOptions()
		o.Config, o.Batch, o.SeqLen = cfg, c.b, c.l
		r, err := Footprint(d, o)
		if err != nil {
			t.Fatal(err)
		}
		name := c.preset + " " + c.split.String()
		if got := float64(r.Peak) / gib; got > c.maxGiB {
			var b strings.Builder
			r.Write(&b, 12)
			t.Errorf("%s at %dx%d: peak %.2f GiB, want at most %.1f\n%s", name, c.b, c.l, got, c.maxGiB, b.String())
		}
		params, _ := cfg.ParamCount()
		for _, cat := range []gpu.MemCategory{gpu.MemParameters, gpu.MemGradients} {
			if r.PeakBy[cat] != 4*params {
				t.Errorf("%s: %s %d bytes, want 4 x %d parameters", name, cat, r.PeakBy[cat], params)
			}
		}
		if r.PeakBy[gpu.MemOptimizer] != 8*params {
			t.Errorf("%s: optimizer %d bytes, want 8 x %d parameters", name, r.PeakBy[gpu.MemOptimizer], params)
		}
		var perLayerX2, shared, workspaces int
		for _, it := range r.Top {
			switch it.Label {
			case "lN.x2":
				perLayerX2 = it.Count
			case "x2.recomputed":
				shared = it.Count
			case "scan.workspace":
				workspaces += it.Count
			}
		}
		if workspaces != 0 {
			t.Errorf("%s: %d scans have a workspace of their own; the model's share one", name, workspaces)
		}
		if c.recompute && (perLayerX2 != 0 || shared != 1) || !c.recompute && (perLayerX2 != cfg.Layers || shared != 0) {
			t.Errorf("%s: %d per-layer conv outputs and %d shared ones; recompute should be %v", name, perLayerX2, shared, c.recompute)
		}
	}
}
