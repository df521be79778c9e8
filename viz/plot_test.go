package viz

import (
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"mom/trainer/runfolder"
)

// artifactDir is where tests leave images a reader can look at:
// $MOM_ARTIFACTS, else the system's temporary folder.
func artifactDir(t *testing.T) string {
	dir := os.Getenv("MOM_ARTIFACTS")
	if dir == "" {
		dir = os.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func near(a, b color.RGBA, tol int) bool {
	d := func(x, y uint8) int {
		if x > y {
			return int(x - y)
		}
		return int(y - x)
	}
	return d(a.R, b.R) <= tol && d(a.G, b.G) <= tol && d(a.B, b.B) <= tol
}

func rgbaAt(img image.Image, x, y int) color.RGBA {
	r, g, b, _ := img.At(x, y).RGBA()
	return color.RGBA{R: uint8(r >> 8), G: uint8(g >> 8), B: uint8(b >> 8), A: 255}
}

// countColor counts the pixels of r within tol of c.
func countColor(img image.Image, r image.Rectangle, c color.RGBA, tol int) int {
	n := 0
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			if near(rgbaAt(img, x, y), c, tol) {
				n++
			}
		}
	}
	return n
}

// testMods are the modalities of the test runs, with their colours.
func testMods(t *testing.T, runs []*runData) []Modality {
	t.Helper()
	return modalitiesOf(runs)
}

// modColor is the colour of the modality called name among mods.
func modColor(t *testing.T, mods []Modality, name string) color.RGBA {
	t.Helper()
	m, ok := byName(mods, name)
	if !ok {
		t.Fatalf("no modality %s among %s", name, modalityNames(mods))
	}
	return m.Color
}

// checkPanels checks a rendered plot: in each panel's data area the
// panel's modality colours (training and held-out, the first run's) are
// present and the other modalities' are not, and most pixels are the
// background; the margins left of the panels are background.
func checkPanels(t *testing.T, img image.Image, panels []panel, mods []Modality, want []string) {
	t.Helper()
	if len(panels) != len(want) {
		t.Fatalf("%d panels, want %d", len(panels), len(want))
	}
	for i, p := range panels {
		if p.mod != want[i] {
			t.Errorf("panel %d shows %s, want %s", i, p.mod, want[i])
		}
		inner := p.rect.Inset(2)
		if inner.Dx() < 100 || inner.Dy() < 50 {
			t.Fatalf("panel %s data area %v is too small", p.mod, p.rect)
		}
		for _, m := range mods {
			train := countColor(img, inner, m.Color, 12)
			eval := countColor(img, inner, EvalColor(m.Color), 12)
			if m.Name == p.mod {
				if train < 50 {
					t.Errorf("panel %s: %d pixels of the training colour %v, want many", m.Name, train, m.Color)
				}
				if eval < 20 {
					t.Errorf("panel %s: %d pixels of the held-out colour %v, want many", m.Name, eval, EvalColor(m.Color))
				}
			} else if train+eval > 0 {
				t.Errorf("panel %s: %d pixels of %s's colours", p.mod, train+eval, m.Name)
			}
		}
		bg := countColor(img, inner, Background, 0)
		if frac := float64(bg) / float64(inner.Dx()*inner.Dy()); frac < 0.7 {
			t.Errorf("panel %s: only %.0f%% of the data area is background", p.mod, 100*frac)
		}
	}
	// A strip left of the y axis labels and the right margin (above a
	// footer) are background.
	b := img.Bounds()
	for _, r := range []image.Rectangle{image.Rect(0, 0, 2, b.Dy()-20), image.Rect(b.Dx()-3, 0, b.Dx(), b.Dy()-20)} {
		if n := countColor(img, r, Background, 0); n != r.Dx()*r.Dy() {
			t.Errorf("margin %v: %d of %d pixels are background", r, n, r.Dx()*r.Dy())
		}
	}
}

func testRuns(t *testing.T) []*runData {
	var out []*runData
	for _, name := range []string{"dense", "mom"} {
		r, err := ReadRun(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		rd := newRunData(RunSource(r))
		rd.update()
		out = append(out, rd)
	}
	return out
}

func TestPlotPNG(t *testing.T) {
	out := filepath.Join(artifactDir(t), "mom-viz-plot.png")
	err := PlotPNG([]string{"testdata/dense", "testdata/mom"}, out, PlotOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("plot written to %s", out)
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != 1000 || b.Dy() != 960 {
		t.Errorf("image is %v, want 1000x960", b)
	}
	// The same drawing again, for its panel geometry.
	runs := testRuns(t)
	_, panels, err := render(1000, 960, runs, newView())
	if err != nil {
		t.Fatal(err)
	}
	checkPanels(t, img, panels, testMods(t, runs), []string{"text", "image", "speech"})
}

// fourModalityRun writes a run folder like the trainer's with a fourth
// modality, video: config.json with the model's modality rows (video has
// its own colour and key 4) and 60 steps of metrics with loss_video.
func fourModalityRun(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "four")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	model := `{"name":"tiny","setting":"four","modalities":[
		{"name":"text","loss":"next-token","tokenizer":"bpe","color":"#1f77b4","key":"1"},
		{"name":"image","loss":"next-token","tokenizer":"vq","color":"#ff7f0e","key":"2"},
		{"name":"speech","loss":"next-token","tokenizer":"units","color":"#2ca02c","key":"3"},
		{"name":"video","loss":"next-token","tokenizer":"video-vq","color":"#9467bd","key":"4"}]}`
	cfg := RunConfig{Name: "four", Modalities: []string{"text", "image", "speech", "video"}, Model: []byte(model)}
	if err := runfolder.WriteConfig(dir, cfg); err != nil {
		t.Fatal(err)
	}
	m, err := runfolder.OpenMetrics(filepath.Join(dir, MetricsFile), -1)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	for s := 1; s <= 60; s++ {
		r := Record{"step": s, "split": SplitTrain, "flops": float64(s) * 1e9}
		for i, name := range []string{"text", "image", "speech", "video"} {
			r["loss_"+name] = 5 + float64(i) - math.Log(float64(s)) + 0.2*math.Sin(float64(s+i))
		}
		if err := m.Write(r); err != nil {
			t.Fatal(err)
		}
		if s%10 == 0 {
			r["split"] = SplitEval
			if err := m.Write(r); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir
}

// TestPlotFourModalities: a fourth modality gets its own panel, drawn in
// its row's colour.
func TestPlotFourModalities(t *testing.T) {
	dir := fourModalityRun(t)
	out := filepath.Join(artifactDir(t), "mom-viz-plot-four.png")
	if err := PlotPNG([]string{dir}, out, PlotOptions{}); err != nil {
		t.Fatal(err)
	}
	img := readPNG(t, out)
	r, err := ReadRun(dir)
	if err != nil {
		t.Fatal(err)
	}
	rd := newRunData(RunSource(r))
	rd.update()
	runs := []*runData{rd}
	b := img.Bounds()
	_, panels, err := render(b.Dx(), b.Dy(), runs, newView())
	if err != nil {
		t.Fatal(err)
	}
	mods := modalitiesOf(runs)
	if got := modColor(t, mods, "video"); got != mustColor("#9467bd") {
		t.Errorf("video colour %v, want the row's #9467bd", got)
	}
	if m, _ := byName(mods, "video"); m.Key != "4" {
		t.Errorf("video key %q, want the row's 4", m.Key)
	}
	checkPanels(t, img, panels, mods, []string{"text", "image", "speech", "video"})
}

func readPNG(t *testing.T, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestPlotOptions(t *testing.T) {
	runs := testRuns(t)
	for _, tc := range []struct {
		name string
		set  func(v *view)
		mods []string
	}{
		{"log-flops", func(v *view) { v.logY = true; v.x = XFLOPs }, []string{"text", "image", "speech"}},
		{"wall-image-speech", func(v *view) { v.x = XWall; v.hideMod["text"] = true }, []string{"image", "speech"}},
		{"one-run", func(v *view) { v.hideRun[1] = true; v.hideMod["speech"] = true }, []string{"text", "image"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := newView()
			tc.set(v)
			img, panels, err := render(900, 700, runs, v)
			if err != nil {
				t.Fatal(err)
			}
			checkPanels(t, img, panels, testMods(t, runs), tc.mods)
			p := panels[0]
			switch v.x {
			case XFLOPs:
				if p.xmin < 1.4e12 || p.xmax > 3.1e14 || p.xmax < 2.9e14 {
					t.Errorf("flops axis %g..%g, want about 1.5e12..3e14", p.xmin, p.xmax)
				}
			case XWall:
				if p.xmax < 9.9 || p.xmax > 10.1 {
					t.Errorf("wall axis ends at %g, want about 10 s", p.xmax)
				}
			default:
				if p.xmin != 1 || p.xmax != 200 {
					t.Errorf("step axis %g..%g, want 1..200", p.xmin, p.xmax)
				}
			}
			if v.logY && !p.logY {
				t.Error("log scale not recorded in the panel")
			}
		})
	}
}

func TestPlotPNGErrors(t *testing.T) {
	dir := t.TempDir()
	if err := PlotPNG(nil, filepath.Join(dir, "x.png"), PlotOptions{}); err == nil {
		t.Error("no runs: want an error")
	}
	if err := PlotPNG([]string{filepath.Join(dir, "missing")}, filepath.Join(dir, "x.png"), PlotOptions{}); err == nil {
		t.Error("missing run: want an error")
	}
	if err := PlotPNG([]string{"testdata/dense"}, filepath.Join(dir, "x.png"), PlotOptions{Modalities: []string{"smell"}}); err == nil {
		t.Error("unknown modality: want an error")
	}
}

func TestDecimate(t *testing.T) {
	n := 100000
	xs := make([]float64, n)
	ys := make([]float64, n)
	for i := range xs {
		xs[i] = float64(i)
		ys[i] = math.Sin(float64(i) / 300)
	}
	c := curve{xs: xs, ys: ys, sorted: true}
	out := decimate(c, rng{0, float64(n - 1)}, 500)
	if len(out) > 4*500+2 || len(out) < 500 {
		t.Fatalf("decimated to %d points, want between 500 and 2002", len(out))
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for i, p := range out {
		lo, hi = math.Min(lo, p.Y), math.Max(hi, p.Y)
		if i > 0 && p.X < out[i-1].X {
			t.Fatal("decimated points out of order")
		}
	}
	if lo > -0.9999 || hi < 0.9999 {
		t.Errorf("decimation lost the extremes: %g..%g", lo, hi)
	}
	// A zoomed range keeps one point beyond each side.
	out = decimate(c, rng{1000, 1010}, 500)
	if out[0].X != 999 || out[len(out)-1].X != 1011 {
		t.Errorf("zoomed decimation spans %g..%g, want 999..1011", out[0].X, out[len(out)-1].X)
	}
	// Invalid points are left out; on a log axis so are those <= 0.
	ys[5], xs[7] = math.NaN(), math.Inf(1)
	ys[9] = -1
	c = curve{xs: xs[:12], ys: ys[:12], logY: true}
	out = decimate(c, rng{0, 11}, 500)
	if len(out) != 12-3-1 { // NaN y, infinite x, y = -1, and y = sin(0) = 0
		t.Errorf("%d points kept of 12 with 4 invalid", len(out))
	}
}

func TestReadout(t *testing.T) {
	runs := testRuns(t)
	v := newView()
	_, panels, err := render(900, 700, runs, v)
	if err != nil {
		t.Fatal(err)
	}
	text := panels[0]
	box := readoutColor
	// The cursor over the text panel: a readout box there, none elsewhere.
	v.cursor, v.hasCursor = image.Pt(text.rect.Min.X+text.rect.Dx()/2, text.rect.Min.Y+text.rect.Dy()/2), true
	img, panels2, err := render(900, 700, runs, v)
	if err != nil {
		t.Fatal(err)
	}
	if panels2[0].rect != text.rect {
		t.Fatalf("the readout moved the panel: %v, was %v", panels2[0].rect, text.rect)
	}
	if n := countColor(img, text.rect, box, 2); n < 2000 {
		t.Errorf("%d readout-box pixels in the text panel, want a box", n)
	}
	for _, p := range panels2[1:] {
		if n := countColor(img, p.rect, box, 2); n > 50 {
			t.Errorf("%d readout-box pixels in the %s panel", n, p.mod)
		}
	}
	// Off the panels: no box.
	v.cursor = image.Pt(1, 1)
	img, _, err = render(900, 700, runs, v)
	if err != nil {
		t.Fatal(err)
	}
	if n := countColor(img, img.Bounds(), box, 2); n > 50 {
		t.Errorf("%d readout-box pixels with the cursor off the panels", n)
	}
	// The values shown are the nearest points' (checked on the curves).
	x := text.dataX(float64(text.rect.Min.X + text.rect.Dx()/2))
	c := v.curves(runs, "text")[0]
	k := nearest(c, x)
	if math.Abs(c.xs[k]-x) > 1 {
		t.Errorf("nearest point to x=%g is at %g", x, c.xs[k])
	}
}

// syntheticRun is a run of n training steps and n/100 evaluations.
func syntheticRun(name string, n int) *runData {
	names := []string{"text", "image", "speech"}
	src := NewSource(RunConfig{Name: name, Modalities: names})
	for s := 1; s <= n; s++ {
		r := Record{"step": float64(s), "split": SplitTrain, "flops": float64(s) * 1e12, "wall_s": float64(s) * 0.01}
		for m, name := range names {
			r["loss_"+name] = 2 + float64(m) + 3*math.Exp(-float64(s)/float64(n/5)) + 0.05*math.Sin(float64(s))
		}
		src.Push(r)
		if s%100 == 0 {
			e := Record{}
			for k, v := range r {
				e[k] = v
			}
			e["split"] = SplitEval
			src.Push(e)
		}
	}
	rd := newRunData(src)
	rd.update()
	return rd
}

// BenchmarkRender times drawing the plot image on the CPU (what the
// window does per redraw) at the window's default size.
func BenchmarkRender(b *testing.B) {
	var t testing.T
	for _, bc := range []struct {
		name string
		runs []*runData
	}{
		{"testdata-2runs-210records", testRuns(&t)},
		{"synthetic-2runs-100k-steps", []*runData{syntheticRun("dense", 100000), syntheticRun("mom", 100000)}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			v := newView()
			for i := 0; i < b.N; i++ {
				if _, _, err := render(1100, 800, bc.runs, v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkPush times Source.Push, what training pays per record.
func BenchmarkPush(b *testing.B) {
	s := NewSource(RunConfig{Name: "x"})
	for i := 0; i < b.N; i++ {
		s.Push(Record{"step": float64(i), "split": SplitTrain})
	}
}

// TestTicks: ticks fall on round numbers (1, 2 or 5 times a power of ten)
// with labels that are distinct and exact.
func TestTicks(t *testing.T) {
	for _, c := range []struct {
		min, max float64
		want     string
	}{
		{1, 300, "50 100 150 200 250 300"},
		{0, 1, "0 0.2 0.4 0.6 0.8 1"},
		{1.5e10, 3e10, "1.5e10 2e10 2.5e10 3e10"},
		{1.9e10, 2.1e10, "1.9e10 1.95e10 2e10 2.05e10 2.1e10"},
		{2.31, 2.37, "2.31 2.32 2.33 2.34 2.35 2.36 2.37"},
		{-0.5, 0.5, "-0.4 -0.2 0 0.2 0.4"},
	} {
		var labels []string
		for _, tk := range (niceTicker{}).Ticks(c.min, c.max) {
			if tk.Label != "" {
				labels = append(labels, tk.Label)
			}
		}
		if got := strings.Join(labels, " "); got != c.want {
			t.Errorf("ticks of %g..%g: %s, want %s", c.min, c.max, got, c.want)
		}
	}
}

// TestRunColors: two runs in a panel never share a colour, whatever the
// modality's colour.
func TestRunColors(t *testing.T) {
	for _, mod := range []string{"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd"} {
		c := mustColor(mod)
		seen := map[color.RGBA]bool{}
		for run := 0; run < 5; run++ {
			col := CurveColor(c, run)
			if seen[col] {
				t.Errorf("modality %s: run %d repeats colour %v", mod, run, col)
			}
			seen[col] = true
		}
		if CurveColor(c, 0) != c {
			t.Errorf("modality %s: the first run is not in the modality's colour", mod)
		}
	}
}

// TestPlotPermissions: the PNG is an ordinary file (0666 trimmed by the
// umask), not 0600.
func TestPlotPermissions(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	out := filepath.Join(t.TempDir(), "loss.png")
	if err := PlotPNG([]string{"testdata/dense"}, out, PlotOptions{Width: 300, Height: 300}); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o644 {
		t.Errorf("plot mode %v, want 0644", st.Mode().Perm())
	}
}

// TestLabelsDistinct: runs whose folders share a name get distinct legend
// labels (their parent folders), with their kind.
func TestLabelsDistinct(t *testing.T) {
	var runs []*runData
	for _, dir := range []string{"/x/a/run", "/x/b/run"} {
		r := &Run{Dir: dir, Config: RunConfig{Name: "run", Dense: dir == "/x/a/run"}}
		runs = append(runs, newRunData(RunSource(r)))
	}
	labelRuns(runs)
	if runs[0].label != "a/run (dense)" || runs[1].label != "b/run (MoM)" {
		t.Errorf("labels %q, %q", runs[0].label, runs[1].label)
	}
}
