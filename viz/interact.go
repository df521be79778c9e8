package viz

import (
	"image"
	"math"
)

// The window's interactions, as changes of the view. They know nothing of
// GLFW, so tests drive them directly.

// toggleModality shows or hides the panel of the modality called name
// (its key, 1-9).
func (v *view) toggleModality(name string) { v.hideMod[name] = !v.hideMod[name] }

// toggleRun shows or hides run i (keys F1..F12).
func (v *view) toggleRun(i int) { v.hideRun[i] = !v.hideRun[i] }

// toggleLog switches the y axes between linear and log (key L). Manual y
// ranges are dropped: a linear range may reach below zero.
func (v *view) toggleLog() {
	v.logY = !v.logY
	v.yr = map[string]*rng{}
}

// cycleX moves the x axis to the next of steps, FLOPs, wall time (key X);
// the manual x range belonged to the old axis and is dropped.
func (v *view) cycleX() {
	v.x = (v.x + 1) % 3
	v.xr = nil
}

// reset follows the data again on every axis (key A, 0, Home, right click).
func (v *view) reset() {
	v.xr = nil
	v.yr = map[string]*rng{}
}

// panelAt returns the panel whose data area holds pixel pt.
func panelAt(panels []panel, pt image.Point) (panel, bool) {
	for _, p := range panels {
		if pt.In(p.rect) {
			return p, true
		}
	}
	return panel{}, false
}

// Zoom axes.
const (
	zoomX = 1 << iota
	zoomY
)

// zoom scales the ranges around the data point under pixel at by factor
// (below 1 zooms in): the shared x range and, for zoomY, the y range of the
// panel under the cursor. It reports whether the cursor was over a panel.
func (v *view) zoom(panels []panel, at image.Point, factor float64, axes int) bool {
	p, ok := panelAt(panels, at)
	if !ok || factor <= 0 {
		return false
	}
	if axes&zoomX != 0 {
		cx := p.dataX(float64(at.X))
		v.xr = &rng{cx + (p.xmin-cx)*factor, cx + (p.xmax-cx)*factor}
	}
	if axes&zoomY != 0 {
		if p.logY {
			c := math.Log(p.dataY(float64(at.Y)))
			lo, hi := math.Log(p.ymin), math.Log(p.ymax)
			v.yr[p.mod] = &rng{math.Exp(c + (lo-c)*factor), math.Exp(c + (hi-c)*factor)}
		} else {
			c := p.dataY(float64(at.Y))
			v.yr[p.mod] = &rng{c + (p.ymin-c)*factor, c + (p.ymax-c)*factor}
		}
	}
	return true
}

// pan moves the view by a drag of (dx, dy) pixels that started over panel p
// (p holds the ranges at the start of the drag): the shared x range and p's
// y range follow the pointer.
func (v *view) pan(p panel, dx, dy float64) {
	sx := (p.xmax - p.xmin) / float64(p.rect.Dx())
	v.xr = &rng{p.xmin - dx*sx, p.xmax - dx*sx}
	if p.logY {
		lo, hi := math.Log(p.ymin), math.Log(p.ymax)
		s := (hi - lo) / float64(p.rect.Dy())
		v.yr[p.mod] = &rng{math.Exp(lo + dy*s), math.Exp(hi + dy*s)}
	} else {
		s := (p.ymax - p.ymin) / float64(p.rect.Dy())
		v.yr[p.mod] = &rng{p.ymin + dy*s, p.ymax + dy*s}
	}
}
