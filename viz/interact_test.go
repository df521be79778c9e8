package viz

import (
	"image"
	"math"
	"testing"
)

func closeTo(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

func TestZoomPan(t *testing.T) {
	p := panel{mod: "image", rect: image.Rect(100, 50, 500, 250), xmin: 0, xmax: 400, ymin: 1, ymax: 3}
	v := newView()
	// Zooming in by 2 around the centre halves both ranges about it.
	if !v.zoom([]panel{p}, image.Pt(300, 150), 0.5, zoomX|zoomY) {
		t.Fatal("zoom over the panel was ignored")
	}
	if !closeTo(v.xr.min, 100) || !closeTo(v.xr.max, 300) || !closeTo(v.yr["image"].min, 1.5) || !closeTo(v.yr["image"].max, 2.5) {
		t.Errorf("zoom: x %v y %v", *v.xr, *v.yr["image"])
	}
	if v.yr["text"] != nil || v.yr["speech"] != nil {
		t.Error("zoom changed another panel's y range")
	}
	// Around the left edge: the left edge stays put.
	v.reset()
	v.zoom([]panel{p}, image.Pt(100, 150), 0.5, zoomX)
	if !closeTo(v.xr.min, 0) || !closeTo(v.xr.max, 200) || v.yr["image"] != nil {
		t.Errorf("zoom x at the left edge: %v, y %v", *v.xr, v.yr["image"])
	}
	// Off the panels: nothing.
	v.reset()
	if v.zoom([]panel{p}, image.Pt(10, 10), 0.5, zoomX|zoomY) || v.xr != nil {
		t.Error("zoom off the panels changed the view")
	}
	// Dragging right by 100 pixels (a quarter of the width) moves the
	// data right: the x range moves left by a quarter; dragging down by
	// 50 pixels (a quarter of the height) moves the y range up.
	v.pan(p, 100, 50)
	if !closeTo(v.xr.min, -100) || !closeTo(v.xr.max, 300) || !closeTo(v.yr["image"].min, 1.5) || !closeTo(v.yr["image"].max, 3.5) {
		t.Errorf("pan: x %v y %v", *v.xr, *v.yr["image"])
	}
	// On a log axis zoom and pan work in log space.
	lp := panel{mod: "text", rect: image.Rect(0, 0, 100, 100), xmin: 0, xmax: 1, ymin: 1, ymax: 100, logY: true}
	v.reset()
	if y := lp.dataY(50); !closeTo(y, 10) {
		t.Errorf("log panel mid-height reads %g, want 10", y)
	}
	v.zoom([]panel{lp}, image.Pt(50, 50), 0.5, zoomY)
	if !closeTo(v.yr["text"].min, math.Sqrt(10)) || !closeTo(v.yr["text"].max, math.Sqrt(1000)) {
		t.Errorf("log zoom: %v", *v.yr["text"])
	}
	v.pan(lp, 0, 50)
	if !closeTo(v.yr["text"].min, 10) || !closeTo(v.yr["text"].max, 1000) {
		t.Errorf("log pan: %v", *v.yr["text"])
	}
}

func TestToggles(t *testing.T) {
	runs := testRuns(t)
	v := newView()
	if got := v.panelModalities(runs); len(got) != 3 {
		t.Fatalf("panels %v", got)
	}
	v.toggleModality("image")
	if got := v.panelModalities(runs); len(got) != 2 || got[0].Name != "text" || got[1].Name != "speech" {
		t.Errorf("after hiding image: %v", got)
	}
	v.toggleModality("image")
	v.toggleRun(0)
	v.toggleRun(1)
	if got := v.panelModalities(runs); len(got) != 0 {
		t.Errorf("no runs shown, yet panels %v", got)
	}
	if img, panels, err := render(400, 300, runs, v); err != nil || panels != nil || img == nil {
		t.Errorf("rendering nothing: %v, %v", panels, err)
	}
	v.toggleRun(0)
	v.xr = &rng{1, 2}
	v.yr["text"] = &rng{-1, 2}
	v.toggleLog()
	if !v.logY || v.yr["text"] != nil || v.xr == nil {
		t.Errorf("toggleLog: log %v, y %v, x %v", v.logY, v.yr["text"], v.xr)
	}
	v.cycleX()
	if v.x != XFLOPs || v.xr != nil {
		t.Errorf("cycleX: %v, x range %v", v.x, v.xr)
	}
	v.cycleX()
	v.cycleX()
	if v.x != XSteps {
		t.Errorf("three cycles: %v", v.x)
	}
	v.hideTrain = true
	cs := v.curves(runs, "text")
	if len(cs) != 1 || !cs[0].eval {
		t.Errorf("training hidden: %d curves", len(cs))
	}
	for _, s := range []string{"steps", "flops", "wall"} {
		x, err := ParseXAxis(s)
		if err != nil || x.String() != s {
			t.Errorf("ParseXAxis(%q) = %v, %v", s, x, err)
		}
	}
	if _, err := ParseXAxis("epochs"); err == nil {
		t.Error("ParseXAxis(epochs): want an error")
	}
}
