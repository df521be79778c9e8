package viz

import (
	"context"
	"fmt"
	"image"
	"image/color"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-gl/glfw/v3.3/glfw"

	"mom/trainer/media"
	"mom/trainer/runfolder"
)

// Grid colours no curve, text or background has.
var (
	magenta = color.RGBA{R: 250, G: 0, B: 250, A: 255}
	lime    = color.RGBA{R: 0, G: 250, B: 0, A: 255}
	yellow  = color.RGBA{R: 250, G: 250, B: 0, A: 255}
)

// copyRun copies the test run testdata/name (config and metrics) into a
// new folder and returns it.
func copyRun(t *testing.T, name string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{ConfigFile, MetricsFile} {
		b, err := os.ReadFile(filepath.Join("testdata", name, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// writeSamples writes step's samples into run as training does: an image
// set whose grid is a 56x28 image of one colour, and a text set.
func writeSamples(t *testing.T, run string, step int, grid color.RGBA, texts ...string) {
	t.Helper()
	im, err := media.NewImage(56, 28, 3)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(im.Pix); i += 3 {
		im.Pix[i], im.Pix[i+1], im.Pix[i+2] = float32(grid.R)/255, float32(grid.G)/255, float32(grid.B)/255
	}
	_, err = runfolder.WriteSamples(run, step, func(dir string) error {
		img := filepath.Join(dir, "image")
		if err := os.MkdirAll(img, 0o755); err != nil {
			return err
		}
		if err := media.WritePNG(filepath.Join(img, runfolder.SampleGridFile), im); err != nil {
			return err
		}
		js := `{"prompt": "", "modality": "image", "samples": [{"text": "[image 1]"}]}`
		if err := os.WriteFile(filepath.Join(img, runfolder.SampleJSONFile), []byte(js), 0o644); err != nil {
			return err
		}
		txt := filepath.Join(dir, "text")
		if err := os.MkdirAll(txt, 0o755); err != nil {
			return err
		}
		var parts []string
		for _, s := range texts {
			parts = append(parts, fmt.Sprintf(`{"text": %q}`, s))
		}
		js = `{"prompt": "", "modality": "text", "samples": [` + strings.Join(parts, ",") + `]}`
		return os.WriteFile(filepath.Join(txt, runfolder.SampleJSONFile), []byte(js), 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// darkPixels counts the pixels of r darker than grey 100 (text).
func darkPixels(img image.Image, r image.Rectangle) int {
	n := 0
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			c := rgbaAt(img, x, y)
			if int(c.R)+int(c.G)+int(c.B) < 300 {
				n++
			}
		}
	}
	return n
}

// colourBox is the bounding box of the pixels of img near c (empty when
// none).
func colourBox(img image.Image, r image.Rectangle, c color.RGBA) image.Rectangle {
	var box image.Rectangle
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			if near(rgbaAt(img, x, y), c, 12) {
				box = box.Union(image.Rect(x, y, x+1, y+1))
			}
		}
	}
	return box
}

const longText = "the quick brown fox jumps over a lazy dog while seven small birds sing near an old stone bridge at dawn and then again at dusk"

// TestRenderSamples: a run's newest samples appear in a column right of
// the panels (the grid scaled to its width, the text below it), follow the
// newest step and a step written again, say why they cannot be read, and
// S hides them.
func TestRenderSamples(t *testing.T) {
	dir := copyRun(t, "mom")
	r, err := ReadRun(dir)
	if err != nil {
		t.Fatal(err)
	}
	rd := newRunData(RunSource(r))
	rd.update()
	runs := []*runData{rd}
	rs := newRunSamples(dir)
	if rs.poll("text") {
		t.Error("a run without samples changed")
	}
	writeSamples(t, dir, 10, magenta, longText, "a second sample")
	if !rs.poll("text") || rs.step != 10 || rs.grid == nil || len(rs.texts) != 2 {
		t.Fatalf("after step 10 was written: changed step %d, grid %v, texts %q", rs.step, rs.grid != nil, rs.texts)
	}
	if rs.poll("text") {
		t.Error("the same samples polled again changed")
	}
	const W, H = 900, 700
	v := newView()
	v.samples = []sampleView{{label: "mom", s: rs}}
	img, panels, err := render(W, H, runs, v)
	if err != nil {
		t.Fatal(err)
	}
	col := sampleColumn(W, H, v)
	if col.Empty() || col.Max.X != W || col.Dx() != int(W*sampleColFrac) {
		t.Fatalf("column %v", col)
	}
	for _, p := range panels {
		if p.rect.Max.X > col.Min.X {
			t.Errorf("panel %s %v reaches into the samples column at x %d", p.mod, p.rect, col.Min.X)
		}
	}
	checkPanels(t, img, panels, testMods(t, runs), []string{"text", "image", "speech"})
	plots := image.Rect(0, 0, col.Min.X, H)
	box := colourBox(img, col, magenta)
	// The 2:1 grid takes the column's width less the margins.
	if box.Dx() < col.Dx()-2*8-2 || box.Dx() > col.Dx() || box.Dy() < box.Dx()/2-2 || box.Dy() > box.Dx()/2+2 {
		t.Errorf("the grid is drawn in %v, want the column's width (%d) at 2:1", box, col.Dx())
	}
	if n := countColor(img, plots, magenta, 12); n > 0 {
		t.Errorf("%d grid pixels left of the column", n)
	}
	below := image.Rect(col.Min.X, box.Max.Y, col.Max.X, H-30)
	textPx := darkPixels(img, below)
	if textPx < 400 {
		t.Errorf("%d dark (text) pixels below the grid, want the samples' text", textPx)
	}
	out := filepath.Join(artifactDir(t), "mom-viz-samples.png")
	if err := writePNG(out, img); err != nil {
		t.Fatal(err)
	}
	t.Logf("plot with samples written to %s", out)

	// One short text draws fewer text pixels than the long one.
	writeSamples(t, dir, 20, lime, "ok")
	if !rs.poll("text") || rs.step != 20 {
		t.Fatalf("step 20 not taken: step %d", rs.step)
	}
	img, _, _ = render(W, H, runs, v)
	if n := countColor(img, col, magenta, 12); n > 0 {
		t.Errorf("%d pixels of step 10's grid after step 20", n)
	}
	box = colourBox(img, col, lime)
	if box.Empty() {
		t.Fatal("step 20's grid is not drawn")
	}
	if n := darkPixels(img, image.Rect(col.Min.X, box.Max.Y, col.Max.X, H-30)); n >= textPx/2 {
		t.Errorf("a two-letter text draws %d dark pixels, the long one %d", n, textPx)
	}
	// The same step written again (a resumed run) is read again.
	time.Sleep(10 * time.Millisecond) // a new folder time on coarse clocks
	writeSamples(t, dir, 20, yellow, "ok")
	if !rs.poll("text") {
		t.Fatal("step 20 written again was not read again")
	}
	img, _, _ = render(W, H, runs, v)
	if countColor(img, col, yellow, 12) == 0 || countColor(img, col, lime, 12) > 0 {
		t.Error("step 20 written again: the old grid shows, or the new one does not")
	}
	// S hides the column: the panels take the width, no grid is drawn.
	v.hideSamples = true
	img, wide, _ := render(W, H, runs, v)
	if countColor(img, img.Bounds(), yellow, 12) > 0 || wide[0].rect.Max.X <= col.Min.X {
		t.Errorf("with the samples hidden: panel %v, %d grid pixels", wide[0].rect, countColor(img, img.Bounds(), yellow, 12))
	}
	v.hideSamples = false
	// A damaged samples file is named in the column.
	os.WriteFile(filepath.Join(runfolder.SampleStepDir(dir, 20), "text", runfolder.SampleJSONFile), []byte("{"), 0o644)
	os.Chtimes(runfolder.SampleStepDir(dir, 20), time.Now(), time.Now().Add(time.Hour))
	if !rs.poll("text") || rs.err == nil || !strings.Contains(rs.err.Error(), runfolder.SampleJSONFile) {
		t.Errorf("a damaged samples.json: changed, err %v", rs.err)
	}
	// Too narrow a window has no column.
	if c := sampleColumn(minSampleWindow-1, H, v); !c.Empty() {
		t.Errorf("a %d-pixel window has the column %v", minSampleWindow-1, c)
	}
}

// TestWrap: lines fit the width, words stay whole unless one alone is
// wider, and nothing is lost.
func TestWrap(t *testing.T) {
	sty := textStyle(8.5, color.Black)
	for _, tc := range []struct {
		text  string
		width int
	}{
		{longText, 150},
		{longText, 1000},
		{"aVeryLongWordWithoutAnySpacesThatCannotFitOnOneLineAtAll short", 60},
		{"x", 1}, // a single character wider than the width
		{"", 100},
	} {
		lines := wrap(sty, tc.text, tc.width)
		if got, want := strings.ReplaceAll(strings.Join(lines, ""), " ", ""), strings.ReplaceAll(tc.text, " ", ""); got != want {
			t.Errorf("wrap(%q, %d) lost text: %q", tc.text, tc.width, lines)
		}
		for _, l := range lines {
			if w := int(sty.Width(l).Dots(dpi)); w > tc.width && len([]rune(l)) > 1 {
				t.Errorf("wrap(%q, %d): line %q is %d pixels", tc.text, tc.width, l, w)
			}
		}
	}
	if got := printable("a\tb\nc\x00\xffd"); got != "a b c??d" {
		t.Errorf("printable: %q", got)
	}
}

// TestWindowSamples: the window shows the newest samples of a followed
// run folder (`mom view`) and of a run trained in this process (`mom
// train --viz`, Source.SetDir) beside the loss panels, takes a newer step
// as it appears, and F2 and S hide them; seen on the screen.
func TestWindowSamples(t *testing.T) {
	needDisplay(t)
	followed := copyRun(t, "mom")
	writeSamples(t, followed, 10, magenta, longText)
	live := t.TempDir()
	writeSamples(t, live, 4, lime, "a live sample")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, err := FollowRun(ctx, followed, 20*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b := NewSource(RunConfig{Name: "live", Modalities: []string{"text"}})
	b.SetDir(live)
	for s := 1; s <= 20; s++ {
		b.Push(Record{"step": float64(s), "split": SplitTrain, "loss_text": 5 - float64(s)/10})
	}
	d := device(t, runtimes(t)[0])
	before := d.LiveObjects()
	w, err := Open(d, WindowOptions{Width: 760, Height: 560, Title: "samples", SamplePoll: time.Hour}, a, b)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer func() {
		w.Close()
		for k, n := range d.LiveObjects() {
			if n != before[k] && k != "shader" {
				t.Errorf("after Close: %d live %s objects, %d before", n, k, before[k])
			}
		}
	}()
	w.win.SetPos(0, 0)
	glfw.PollEvents()
	w.v.hasCursor = false
	for a.Len() == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	colOf := func() image.Rectangle { return sampleColumn(w.fbW, w.fbH, w.v) }
	shot := windowShot(t, w, func(img *image.RGBA) error {
		col := colOf()
		if col.Empty() {
			return fmt.Errorf("no samples column")
		}
		for _, c := range []color.RGBA{magenta, lime} {
			if n := countColor(img, col, c, 12); n < 500 {
				return fmt.Errorf("%d pixels of the grid colour %v in the column %v", n, c, col)
			}
		}
		if n := countColor(img, image.Rect(0, 0, col.Min.X, img.Bounds().Dy()), magenta, 12); n > 0 {
			return fmt.Errorf("%d grid pixels among the panels", n)
		}
		return nil
	})
	out := filepath.Join(artifactDir(t), "mom-viz-screenshot-samples.png")
	if err := writePNG(out, shot); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot with samples written to %s", out)
	for _, p := range w.panels {
		if p.rect.Max.X > colOf().Min.X {
			t.Errorf("panel %s %v reaches into the samples column", p.mod, p.rect)
		}
	}
	// A newer step of the followed run replaces its samples.
	writeSamples(t, followed, 30, yellow, "newer")
	w.lastPoll = time.Time{}
	windowShot(t, w, func(img *image.RGBA) error {
		col := colOf()
		if n := countColor(img, col, magenta, 12); n > 0 {
			return fmt.Errorf("%d pixels of step 10's grid after step 30", n)
		}
		if n := countColor(img, col, yellow, 12); n < 500 {
			return fmt.Errorf("%d pixels of step 30's grid", n)
		}
		return nil
	})
	// F2 hides the live run, and its samples; S hides the column.
	w.key(glfw.KeyF2)
	windowShot(t, w, func(img *image.RGBA) error {
		if n := countColor(img, img.Bounds(), lime, 12); n > 0 {
			return fmt.Errorf("%d pixels of the hidden run's grid", n)
		}
		return nil
	})
	w.key(glfw.KeyS)
	windowShot(t, w, func(img *image.RGBA) error {
		if n := countColor(img, img.Bounds(), yellow, 12); n > 0 {
			return fmt.Errorf("%d grid pixels with the samples hidden", n)
		}
		if !colOf().Empty() {
			return fmt.Errorf("a column with the samples hidden")
		}
		return nil
	})
}
