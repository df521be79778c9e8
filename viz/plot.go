package viz

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"mom/trainer/atomicfile"
)

// XAxis is what the plots put on the horizontal axis.
type XAxis int

// Horizontal axes.
const (
	XSteps XAxis = iota // optimizer steps
	XFLOPs              // training FLOPs so far
	XWall               // wall-clock seconds since the run started
)

func (x XAxis) String() string {
	switch x {
	case XFLOPs:
		return "flops"
	case XWall:
		return "wall"
	}
	return "steps"
}

// Label is the axis label.
func (x XAxis) Label() string {
	switch x {
	case XFLOPs:
		return "training FLOPs"
	case XWall:
		return "wall time (s)"
	}
	return "step"
}

// ParseXAxis accepts "steps" (or "step", ""), "flops" and "wall" (or "time").
func ParseXAxis(s string) (XAxis, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "step", "steps":
		return XSteps, nil
	case "flops", "flop":
		return XFLOPs, nil
	case "wall", "time", "wall_s", "seconds":
		return XWall, nil
	}
	return XSteps, fmt.Errorf("viz: unknown x axis %q: want steps, flops or wall", s)
}

// The colour scheme. Each modality has its own panel (losses of different
// modalities differ in scale), stacked vertically and sharing the x range.
// In a panel the first run draws in the modality's colour (its row's, see
// Modality) and every other run in a distinct colour of its own
// (CurveColor), and each run has its own line style too: the first solid,
// the second dashed, then dotted, dash-dot, long dashes. Held-out losses
// are a darker shade of the run's colour (EvalColor) with a dot at every
// evaluation. Legends name each curve "run (dense|MoM) train|eval".
var (
	// Background is the colour of the plot area and the margins.
	Background = color.RGBA{R: 255, G: 255, B: 255, A: 255}
	gridColor  = color.RGBA{R: 228, G: 228, B: 228, A: 255}
	// readoutColor fills the box of values under the cursor.
	readoutColor = color.RGBA{R: 255, G: 250, B: 222, A: 255}
)

var runDashes = [][]vg.Length{
	nil,
	{vg.Points(6), vg.Points(3)},
	{vg.Points(1.5), vg.Points(2.5)},
	{vg.Points(6), vg.Points(2.5), vg.Points(1.5), vg.Points(2.5)},
	{vg.Points(12), vg.Points(4)},
}

// RunDashes returns the dash pattern of the i-th run (nil: solid).
func RunDashes(i int) []vg.Length { return runDashes[i%len(runDashes)] }

const (
	dpi       = 96
	lineWidth = 1.6 // points: 2.1 pixels at 96 dpi
)

// PlotOptions configure PlotPNG.
type PlotOptions struct {
	X    XAxis
	LogY bool
	// Width and Height of the image in pixels; zero: 1000 wide and 300 per
	// panel plus 60.
	Width, Height int
	// Modalities to draw, one panel each; nil: every modality of the runs.
	Modalities []string
	// HideTrain and HideEval leave out the training or held-out curves.
	HideTrain, HideEval bool
	// Title above the first panel; "" names the runs.
	Title string
}

// PlotPNG draws the per-modality training and held-out losses of runs (run
// folders, or paths to their metrics.jsonl) overlaid, one panel per
// modality, and writes a PNG to out.
func PlotPNG(runs []string, out string, opts PlotOptions) error {
	if len(runs) == 0 {
		return errors.New("viz: PlotPNG needs at least one run")
	}
	var rds []*runData
	for _, path := range runs {
		r, err := ReadRun(path)
		if err != nil {
			return err
		}
		rd := newRunData(RunSource(r))
		rd.update()
		rds = append(rds, rd)
	}
	labelRuns(rds)
	v := newView()
	v.x = opts.X
	v.logY = opts.LogY
	v.hideTrain, v.hideEval = opts.HideTrain, opts.HideEval
	if opts.Modalities != nil {
		mods := modalitiesOf(rds)
		for _, m := range mods {
			v.hideMod[m.Name] = true
		}
		for _, name := range opts.Modalities {
			if _, ok := byName(mods, name); !ok {
				return fmt.Errorf("viz: the runs have no modality %q (they have %s)", name, modalityNames(mods))
			}
			v.hideMod[name] = false
		}
	}
	v.title = opts.Title
	w, h := opts.Width, opts.Height
	if w <= 0 {
		w = 1000
	}
	if h <= 0 {
		h = 60 + 300*max(1, len(v.panelModalities(rds)))
	}
	img, _, err := render(w, h, rds, v)
	if err != nil {
		return err
	}
	return writePNG(out, img)
}

// writePNG replaces out atomically with the image, as an ordinary file
// (0666 trimmed by the umask).
func writePNG(out string, img image.Image) error {
	if dir := filepath.Dir(out); dir != "" {
		if err := os.MkdirAll(dir, 0o777); err != nil {
			return fmt.Errorf("viz: %w", err)
		}
	}
	if err := atomicfile.Write(out, 0o666, func(w io.Writer) error { return png.Encode(w, img) }); err != nil {
		return fmt.Errorf("viz: %w", err)
	}
	return nil
}

// rng is a closed interval.
type rng struct{ min, max float64 }

// view is what to draw and how: the state the window's keys and mouse
// change, and PlotPNG's options.
type view struct {
	x         XAxis
	logY      bool
	hideMod   map[string]bool // by modality name
	hideRun   map[int]bool
	hideTrain bool
	hideEval  bool
	xr        *rng            // manual x range; nil follows the data
	yr        map[string]*rng // manual y ranges per panel (modality name)
	cursor    image.Point
	hasCursor bool
	title     string
	footer    string
	// samples are the runs' newest samples, drawn in a column right of the
	// panels (the window's; PlotPNG draws none) unless hideSamples.
	samples     []sampleView
	hideSamples bool
}

func newView() *view {
	return &view{hideRun: map[int]bool{}, hideMod: map[string]bool{}, yr: map[string]*rng{}}
}

// panelModalities lists the modalities that get a panel: shown, and with
// data (or declared in the config) in a shown run.
func (v *view) panelModalities(runs []*runData) []Modality {
	var out []Modality
	for _, m := range modalitiesOf(runs) {
		if v.hideMod[m.Name] {
			continue
		}
		for i, rd := range runs {
			if !v.hideRun[i] && rd.has[m.Name] {
				out = append(out, m)
				break
			}
		}
	}
	return out
}

// panel is where one modality was drawn, for mapping pixels to data.
type panel struct {
	mod        string          // the modality's name
	color      color.RGBA      // and its colour
	rect       image.Rectangle // the data area, in pixels
	xmin, xmax float64
	ymin, ymax float64
	logY       bool
}

func (p panel) dataX(px float64) float64 {
	t := (px - float64(p.rect.Min.X)) / float64(p.rect.Dx())
	return p.xmin + t*(p.xmax-p.xmin)
}

func (p panel) dataY(py float64) float64 {
	t := (float64(p.rect.Max.Y) - py) / float64(p.rect.Dy())
	if p.logY {
		return math.Exp(math.Log(p.ymin) + t*(math.Log(p.ymax)-math.Log(p.ymin)))
	}
	return p.ymin + t*(p.ymax-p.ymin)
}

func (p panel) pixelX(x float64) float64 {
	return float64(p.rect.Min.X) + (x-p.xmin)/(p.xmax-p.xmin)*float64(p.rect.Dx())
}

// curve is one line of one panel. xs and ys are the run's own slices
// (not copied): points with a non-finite value, or y <= 0 on a log axis,
// are skipped wherever a curve is read.
type curve struct {
	run    int
	eval   bool
	xs, ys []float64
	logY   bool
	n      int     // valid points
	lo, hi float64 // x extent of the valid points
	sorted bool    // xs finite and non-decreasing: binary search works
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

func (c *curve) valid(k int) bool {
	return finite(c.xs[k]) && finite(c.ys[k]) && (!c.logY || c.ys[k] > 0)
}

// span returns the index range [lo, hi) of the points with x in xr, plus
// one on each side (the whole curve when x is not sorted).
func (c *curve) span(xr rng) (int, int) {
	if !c.sorted {
		return 0, len(c.xs)
	}
	lo := sort.SearchFloat64s(c.xs, xr.min)
	hi := sort.Search(len(c.xs), func(i int) bool { return c.xs[i] > xr.max })
	if lo > 0 {
		lo--
	}
	if hi < len(c.xs) {
		hi++
	}
	return lo, hi
}

// curves collects the shown curves of modality m that have a valid point.
func (v *view) curves(runs []*runData, m string) []curve {
	var out []curve
	for i, rd := range runs {
		if v.hideRun[i] {
			continue
		}
		for _, eval := range []bool{false, true} {
			if (eval && v.hideEval) || (!eval && v.hideTrain) {
				continue
			}
			s := rd.split(eval)
			ys := s.loss[m]
			if len(ys) != s.len() {
				continue // no loss of m in this split
			}
			c := curve{run: i, eval: eval, xs: s.x(v.x), ys: ys, logY: v.logY,
				lo: math.Inf(1), hi: math.Inf(-1), sorted: true}
			for k := range c.xs {
				x := c.xs[k]
				if !finite(x) || (k > 0 && x < c.xs[k-1]) {
					c.sorted = false
				}
				if c.valid(k) {
					c.n++
					c.lo, c.hi = math.Min(c.lo, x), math.Max(c.hi, x)
				}
			}
			if c.n > 0 {
				out = append(out, c)
			}
		}
	}
	return out
}

// xRange is the shared x range: the manual one, or the data's.
func (v *view) xRange(curvesOf map[string][]curve) rng {
	if v.xr != nil {
		return *v.xr
	}
	r := rng{math.Inf(1), math.Inf(-1)}
	for _, cs := range curvesOf {
		for _, c := range cs {
			r.min, r.max = math.Min(r.min, c.lo), math.Max(r.max, c.hi)
		}
	}
	if r.min > r.max {
		return rng{0, 1}
	}
	if r.min == r.max {
		return rng{r.min - 0.5, r.max + 0.5}
	}
	return r
}

// yRange is panel m's manual range, or that of its points inside xr, with
// 5% room above and below (in log space on a log axis).
func (v *view) yRange(cs []curve, m string, xr rng) rng {
	if v.yr[m] != nil {
		return *v.yr[m]
	}
	r := rng{math.Inf(1), math.Inf(-1)}
	for _, c := range cs {
		lo, hi := c.span(xr)
		for k := lo; k < hi; k++ {
			if x := c.xs[k]; c.valid(k) && x >= xr.min && x <= xr.max {
				r.min, r.max = math.Min(r.min, c.ys[k]), math.Max(r.max, c.ys[k])
			}
		}
	}
	if r.min > r.max {
		if v.logY {
			return rng{0.1, 10}
		}
		return rng{0, 1}
	}
	if v.logY {
		lo, hi := math.Log(r.min), math.Log(r.max)
		if hi-lo < 1e-9 {
			lo, hi = lo-0.1, hi+0.1
		}
		pad := 0.05 * (hi - lo)
		return rng{math.Exp(lo - pad), math.Exp(hi + pad)}
	}
	if r.max-r.min < 1e-12*math.Max(1, math.Abs(r.max)) {
		return rng{r.min - 0.5, r.max + 0.5}
	}
	pad := 0.05 * (r.max - r.min)
	return rng{r.min - pad, r.max + pad}
}

// decimate returns the valid points of c in [xr.min, xr.max] (and one on
// each side), keeping at most four per pixel column (the first, lowest,
// highest and last) when there are more than four per column: a long run
// draws in time proportional to the window's width and looks the same.
func decimate(c curve, xr rng, cols int) plotter.XYs {
	lo, hi := c.span(xr)
	if !c.sorted || hi-lo <= 4*cols || cols <= 0 {
		out := make(plotter.XYs, 0, hi-lo)
		for k := lo; k < hi; k++ {
			if c.valid(k) {
				out = append(out, plotter.XY{X: c.xs[k], Y: c.ys[k]})
			}
		}
		return out
	}
	out := make(plotter.XYs, 0, 4*cols+2)
	width := (xr.max - xr.min) / float64(cols)
	k := lo
	for k < hi {
		if !c.valid(k) {
			k++
			continue
		}
		col := math.Floor((c.xs[k] - xr.min) / width)
		first, minK, maxK, last := k, k, k, k
		for ; k < hi && math.Floor((c.xs[k]-xr.min)/width) == col; k++ {
			if !c.valid(k) {
				continue
			}
			if c.ys[k] < c.ys[minK] {
				minK = k
			}
			if c.ys[k] > c.ys[maxK] {
				maxK = k
			}
			last = k
		}
		idx := []int{first, minK, maxK, last}
		sort.Ints(idx)
		prev := -1
		for _, j := range idx {
			if j != prev {
				out = append(out, plotter.XY{X: c.xs[j], Y: c.ys[j]})
				prev = j
			}
		}
	}
	return out
}

// chunkedLine is a polyline stroked in pieces of at most chunkPoints
// points. The rasteriser's cost grows with the cells a single path covers
// per row, so one stroke of a few thousand points is several times slower
// than the same points in pieces; the dash pattern carries on across the
// pieces.
type chunkedLine struct {
	xys   plotter.XYs
	style draw.LineStyle
}

const chunkPoints = 128

// Plot implements plot.Plotter.
func (l *chunkedLine) Plot(c draw.Canvas, plt *plot.Plot) {
	trX, trY := plt.Transforms(&c)
	ps := make([]vg.Point, len(l.xys))
	for i, p := range l.xys {
		ps[i] = vg.Point{X: trX(p.X), Y: trY(p.Y)}
	}
	sty := l.style
	var done vg.Length // path length stroked so far, for the dash offset
	for _, seg := range c.ClipLinesXY(ps) {
		for start := 0; start+1 < len(seg); start += chunkPoints {
			piece := seg[start:min(start+chunkPoints+1, len(seg))]
			sty.DashOffs = l.style.DashOffs + done
			c.StrokeLines(sty, piece)
			for i := 1; i < len(piece); i++ {
				dx, dy := piece[i].X-piece[i-1].X, piece[i].Y-piece[i-1].Y
				done += vg.Length(math.Hypot(float64(dx), float64(dy)))
			}
		}
	}
}

// Thumbnail implements plot.Thumbnailer for the legend.
func (l *chunkedLine) Thumbnail(c *draw.Canvas) {
	y := c.Center().Y
	c.StrokeLine2(l.style, c.Min.X, y, c.Max.X, y)
}

// logTicker labels a log axis: powers of ten when the range spans a decade
// or more, plain ticks (placed on the log scale) inside one decade.
type logTicker struct{}

func (logTicker) Ticks(min, max float64) []plot.Tick {
	if max/min >= 10 {
		return plot.LogTicks{Prec: -1}.Ticks(min, max)
	}
	var out []plot.Tick
	for _, t := range (niceTicker{}).Ticks(min, max) {
		if t.Value > 0 {
			out = append(out, t)
		}
	}
	return out
}

// niceTicker places major ticks at round numbers (1, 2 or 5 times a power
// of ten, three to seven of them) with minor ticks between, and
// labels each major tick as briefly as keeps every label distinct and
// exact ("40", "2.5e10").
type niceTicker struct{}

func (niceTicker) Ticks(min, max float64) []plot.Tick {
	if !(max > min) || math.IsInf(max-min, 0) || math.IsNaN(max-min) {
		return []plot.Tick{{Value: min, Label: formatTick(min, 6)}}
	}
	span := max - min
	mag := math.Pow(10, math.Floor(math.Log10(span/5)))
	step, minors := mag, 5
	for _, m := range []struct {
		f float64
		n int
	}{{1, 5}, {2, 4}, {5, 5}, {10, 5}} {
		step, minors = m.f*mag, m.n
		if span/step <= 7 {
			break
		}
	}
	first := math.Ceil(min/step-1e-9) * step
	var majors []float64
	for k := 0; ; k++ {
		x := first + float64(k)*step
		if x > max+1e-9*step {
			break
		}
		if math.Abs(x) < 1e-12*step {
			x = 0
		}
		majors = append(majors, x)
	}
	labels := tickLabels(majors, step)
	var out []plot.Tick
	for i, x := range majors {
		out = append(out, plot.Tick{Value: x, Label: labels[i]})
	}
	ms := step / float64(minors)
	for x := math.Ceil(min/ms-1e-9) * ms; x <= max+1e-9*ms; x += ms {
		onMajor := math.Abs(x/step-math.Round(x/step)) < 1e-6
		if !onMajor {
			out = append(out, plot.Tick{Value: x})
		}
	}
	return out
}

// tickLabels formats round numbers with the fewest significant digits that
// give each its own label.
func tickLabels(xs []float64, step float64) []string {
	for prec := 1; prec <= 15; prec++ {
		out := make([]string, len(xs))
		seen := map[string]bool{}
		ok := true
		for i, x := range xs {
			out[i] = formatTick(x, prec)
			if seen[out[i]] {
				ok = false
			}
			seen[out[i]] = true
			if v, err := strconv.ParseFloat(out[i], 64); err != nil || math.Abs(v-x) > 1e-6*step {
				ok = false
			}
		}
		if ok {
			return out
		}
	}
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = strconv.FormatFloat(x, 'g', -1, 64)
	}
	return out
}

// formatTick writes x with prec significant digits: plainly up to 1e5,
// with an exponent beyond ("2.5e10").
func formatTick(x float64, prec int) string {
	if x == 0 {
		return "0"
	}
	if a := math.Abs(x); a >= 1e-3 && a < 1e5 {
		s := strconv.FormatFloat(x, 'f', -1, 64)
		r := strconv.FormatFloat(x, 'g', prec, 64)
		if !strings.ContainsAny(r, "e") {
			return r
		}
		return s
	}
	s := strconv.FormatFloat(x, 'e', prec-1, 64)
	mant, exp, _ := strings.Cut(s, "e")
	if strings.Contains(mant, ".") {
		mant = strings.TrimRight(strings.TrimRight(mant, "0"), ".")
	}
	e, _ := strconv.Atoi(exp)
	return mant + "e" + strconv.Itoa(e)
}

// runLabel names a run in legends: "name (dense)" or "name (MoM)", just
// the name when it already says which.
func runLabel(name string, cfg RunConfig) string {
	kind := cfg.Kind()
	if strings.Contains(strings.ToLower(name), strings.ToLower(kind)) {
		return name
	}
	return fmt.Sprintf("%s (%s)", name, kind)
}

// render draws the shown runs into a w x h image, one panel per shown
// modality, and returns it with where each panel's data area is.
func render(w, h int, runs []*runData, v *view) (*image.RGBA, []panel, error) {
	if w < 50 || h < 50 {
		return nil, nil, fmt.Errorf("viz: image %dx%d is too small to plot", w, h)
	}
	cv := vgimg.NewWith(vgimg.UseWH(vg.Length(w)*vg.Inch/dpi, vg.Length(h)*vg.Inch/dpi), vgimg.UseDPI(dpi),
		vgimg.UseBackgroundColor(Background))
	img, ok := cv.Image().(*image.RGBA)
	if !ok || img.Bounds().Dx() != w || img.Bounds().Dy() != h {
		return nil, nil, fmt.Errorf("viz: the plot canvas is %v, want %dx%d RGBA", cv.Image().Bounds(), w, h)
	}
	dc := draw.New(cv)
	labelRuns(runs)
	mods := v.panelModalities(runs)
	footerH := vg.Length(0)
	if v.footer != "" {
		footerH = vg.Points(14)
	}
	col := sampleColumn(w, h, v)
	area := draw.Crop(dc, 0, -pt(float64(col.Dx())), footerH, 0)
	sideBar := func() {
		if !col.Empty() {
			drawSamples(img, dc, h, col, int(math.Ceil(footerH.Dots(dpi))), v.samples)
		}
	}
	curvesOf := map[string][]curve{}
	for _, m := range mods {
		curvesOf[m.Name] = v.curves(runs, m.Name)
	}
	xr := v.xRange(curvesOf)
	title := v.title
	if title == "" {
		var names []string
		for i, rd := range runs {
			if !v.hideRun[i] {
				names = append(names, rd.label)
			}
		}
		title = strings.Join(names, " vs ")
	}
	cols := max(1, w)
	var plots [][]*plot.Plot
	for pi, m := range mods {
		p := plot.New()
		p.BackgroundColor = Background
		p.Title.Text = m.Name + " loss"
		if pi == 0 && title != "" {
			p.Title.Text = title + ": " + p.Title.Text
		}
		p.Y.Label.Text = "loss"
		if v.logY {
			p.Y.Label.Text = "loss (log)"
			p.Y.Scale = plot.LogScale{}
			p.Y.Tick.Marker = logTicker{}
		}
		p.X.Tick.Marker = niceTicker{}
		if !v.logY {
			p.Y.Tick.Marker = niceTicker{}
		}
		if pi == len(mods)-1 {
			p.X.Label.Text = v.x.Label()
		}
		p.Legend.Top = true
		p.Legend.Left = false
		p.Legend.TextStyle.Font.Size = vg.Points(9)
		p.Legend.XOffs = -vg.Points(6)
		p.Legend.YOffs = -vg.Points(4)
		grid := plotter.NewGrid()
		grid.Vertical.Color = gridColor
		grid.Horizontal.Color = gridColor
		p.Add(grid)
		cs := curvesOf[m.Name]
		for _, c := range cs {
			xys := decimate(c, xr, cols)
			if len(xys) == 0 {
				continue
			}
			col := CurveColor(m.Color, c.run)
			line := &chunkedLine{xys: xys, style: draw.LineStyle{
				Color: col, Width: vg.Points(lineWidth), Dashes: RunDashes(c.run)}}
			name := runs[c.run].label + " train"
			thumbs := []plot.Thumbnailer{line}
			p.Add(line)
			if c.eval {
				line.style.Color = EvalColor(col)
				name = runs[c.run].label + " eval"
				if len(xys) <= 400 {
					dots, err := plotter.NewScatter(xys)
					if err != nil {
						return nil, nil, fmt.Errorf("viz: %s curve of %s: %w", m.Name, runs[c.run].cfg.Name, err)
					}
					dots.GlyphStyle = draw.GlyphStyle{Color: EvalColor(col), Radius: vg.Points(2.2), Shape: draw.CircleGlyph{}}
					p.Add(dots)
					thumbs = append(thumbs, dots)
				}
			}
			p.Legend.Add(name, thumbs...)
		}
		yr := v.yRange(cs, m.Name, xr)
		p.X.Min, p.X.Max = xr.min, xr.max
		p.Y.Min, p.Y.Max = yr.min, yr.max
		plots = append(plots, []*plot.Plot{p})
	}
	if len(plots) == 0 {
		p := plot.New()
		p.BackgroundColor = Background
		p.Title.Text = "no losses to show yet"
		if title != "" {
			p.Title.Text = title + ": " + p.Title.Text
		}
		p.HideAxes()
		p.Draw(area)
		sideBar()
		drawFooter(dc, v.footer)
		return img, nil, nil
	}
	tiles := draw.Tiles{
		Rows: len(plots), Cols: 1,
		PadTop: vg.Points(4), PadBottom: vg.Points(2), PadLeft: vg.Points(2), PadRight: vg.Points(10),
		PadY: vg.Points(8),
	}
	canvases := plot.Align(plots, tiles, area)
	var panels []panel
	for i, row := range plots {
		p := row[0]
		c := canvases[i][0]
		p.Draw(c)
		da := p.DataCanvas(c)
		r := image.Rect(
			int(math.Round(da.Min.X.Dots(dpi))), h-int(math.Round(da.Max.Y.Dots(dpi))),
			int(math.Round(da.Max.X.Dots(dpi))), h-int(math.Round(da.Min.Y.Dots(dpi))))
		panels = append(panels, panel{mod: mods[i].Name, color: mods[i].Color, rect: r, xmin: p.X.Min, xmax: p.X.Max, ymin: p.Y.Min, ymax: p.Y.Max, logY: v.logY})
	}
	if v.hasCursor {
		drawReadout(dc, h, panels, runs, curvesOf, v)
	}
	sideBar()
	drawFooter(dc, v.footer)
	return img, panels, nil
}

func textStyle(size float64, c color.Color) draw.TextStyle {
	return draw.TextStyle{
		Color:   c,
		Font:    font.From(plot.DefaultFont, vg.Points(size)),
		XAlign:  draw.XLeft,
		YAlign:  draw.YBottom,
		Handler: plot.DefaultTextHandler,
	}
}

func drawFooter(dc draw.Canvas, footer string) {
	if footer == "" {
		return
	}
	sty := textStyle(8.5, color.Gray{Y: 70})
	dc.FillText(sty, vg.Point{X: dc.Min.X + vg.Points(4), Y: dc.Min.Y + vg.Points(3)}, footer)
}

// formatX writes an x value for the readout.
func formatX(kind XAxis, x float64) string {
	switch kind {
	case XFLOPs:
		return fmt.Sprintf("%.3g FLOPs", x)
	case XWall:
		return fmt.Sprintf("%.1f s", x)
	}
	return fmt.Sprintf("step %.0f", x)
}

// nearest returns the index of the valid point of c closest in x to x
// (-1 for none).
func nearest(c curve, x float64) int {
	best, bd := -1, math.Inf(1)
	for k, cx := range c.xs {
		if d := math.Abs(cx - x); d < bd && c.valid(k) {
			best, bd = k, d
		}
	}
	return best
}

// drawReadout draws a vertical line at the cursor through every panel and,
// in the panel under the cursor, the values of each shown curve nearest to
// the cursor's x.
func drawReadout(dc draw.Canvas, h int, panels []panel, runs []*runData, curvesOf map[string][]curve, v *view) {
	var under *panel
	for i := range panels {
		if v.cursor.In(panels[i].rect) {
			under = &panels[i]
		}
	}
	if under == nil {
		return
	}
	x := under.dataX(float64(v.cursor.X))
	px := vg.Length(float64(v.cursor.X) * 72 / dpi)
	guide := draw.LineStyle{Color: color.Gray{Y: 150}, Width: vg.Points(0.75), Dashes: []vg.Length{vg.Points(3), vg.Points(2)}}
	for _, p := range panels {
		top := vg.Length(float64(h-p.rect.Min.Y) * 72 / dpi)
		bot := vg.Length(float64(h-p.rect.Max.Y) * 72 / dpi)
		dc.StrokeLine2(guide, px, bot, px, top)
	}
	lines := []string{formatX(v.x, x) + fmt.Sprintf("   loss %.4g", under.dataY(float64(v.cursor.Y)))}
	var colors []color.Color
	colors = append(colors, color.Black)
	for _, c := range curvesOf[under.mod] {
		k := nearest(c, x)
		if k < 0 {
			continue
		}
		split := "train"
		col := CurveColor(under.color, c.run)
		if c.eval {
			split, col = "eval", EvalColor(col)
		}
		lines = append(lines, fmt.Sprintf("%s %s: %.4f at %s", runs[c.run].label, split, c.ys[k], formatX(v.x, c.xs[k])))
		colors = append(colors, col)
	}
	sty := textStyle(9, color.Black)
	lh := sty.Height("Xg") + vg.Points(1)
	var wmax vg.Length
	for _, l := range lines {
		wmax = max(wmax, sty.Width(l))
	}
	left := vg.Length(float64(under.rect.Min.X)*72/dpi) + vg.Points(6)
	top := vg.Length(float64(h-under.rect.Min.Y)*72/dpi) - vg.Points(6)
	boxH := lh*vg.Length(len(lines)) + vg.Points(4)
	box := vg.Rectangle{Min: vg.Point{X: left - vg.Points(3), Y: top - boxH}, Max: vg.Point{X: left + wmax + vg.Points(3), Y: top}}
	dc.SetColor(readoutColor)
	dc.Fill(box.Path())
	dc.SetLineStyle(draw.LineStyle{Color: color.Gray{Y: 180}, Width: vg.Points(0.5)})
	dc.Stroke(box.Path())
	for i, l := range lines {
		sty.Color = colors[i]
		dc.FillText(sty, vg.Point{X: left, Y: top - lh*vg.Length(i+1)}, l)
	}
}
