package viz

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io/fs"
	"os"
	"strings"
	"time"
	"unicode"

	xdraw "golang.org/x/image/draw"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"mom/trainer/runfolder"
)

// Samples in the window: a run whose folder is known (FollowRun,
// RunSource, or Source.SetDir for a run trained in this process) shows its
// newest samples (runfolder.LatestSamples: RUN/samples/step_N, written by
// `mom train --sample-every` or `mom sample`) in a column right of the
// loss panels: the image grid, scaled to the column's width, and the
// samples' text below it. The window looks for newer samples at most once
// per WindowOptions.SamplePoll, on its own goroutine, reading files only:
// training, which writes them, never waits for the window.

// DefaultSamplePoll is how often the window looks for newer samples.
const DefaultSamplePoll = time.Second

// The samples column: its share of the window's width, within limits; a
// window narrower than minSampleWindow shows no column.
const (
	sampleColFrac   = 0.36
	minSampleCol    = 200
	maxSampleCol    = 520
	minSampleWindow = 480
)

// sampleColor is the colour of the samples' text; sampleHeadColor their
// heading's.
var (
	sampleColor     = color.Gray{Y: 40}
	sampleHeadColor = color.Black
	sampleRuleColor = color.Gray{Y: 200}
)

// runSamples are the newest samples of one run folder, as loaded for
// drawing.
type runSamples struct {
	dir   string
	step  int // -1: none loaded
	stamp time.Time
	grid  image.Image // nil: no image grid
	texts []string    // the samples' texts
	err   error       // why the newest samples could not be read (shown)

	scaled *image.RGBA // grid scaled to the last layout's size
}

func newRunSamples(dir string) *runSamples { return &runSamples{dir: dir, step: -1} }

// poll reads the run's newest samples when they differ from those loaded
// (a newer step, or the same step written again); text names the
// modality whose set gives the text (the run's first). It reports whether
// anything changed. A step folder being replaced at that moment is simply
// read at the next poll.
func (s *runSamples) poll(text string) bool {
	steps, err := runfolder.SampleSteps(s.dir)
	if err != nil {
		return s.fail(err)
	}
	if len(steps) == 0 {
		if s.step < 0 && s.err == nil {
			return false
		}
		*s = *newRunSamples(s.dir)
		return true
	}
	fi, err := os.Stat(runfolder.SampleStepDir(s.dir, steps[0]))
	if errors.Is(err, fs.ErrNotExist) {
		return false // being replaced
	}
	if err != nil {
		return s.fail(err)
	}
	if steps[0] == s.step && fi.ModTime().Equal(s.stamp) && s.err == nil {
		return false
	}
	got, err := runfolder.ReadSamples(s.dir, steps[0])
	if errors.Is(err, fs.ErrNotExist) {
		return false
	}
	if err != nil {
		return s.fail(err)
	}
	n := &runSamples{dir: s.dir, step: got.Step, stamp: got.Time}
	for _, set := range got.Sets {
		if set.Grid != "" && n.grid == nil {
			if n.grid, err = decodePNGFile(set.Grid); err != nil {
				return s.fail(err)
			}
		}
	}
	n.texts = pickTexts(got.Sets, text)
	*s = *n
	return true
}

// fail records why the samples could not be read; it reports whether that
// changed what is shown.
func (s *runSamples) fail(err error) bool {
	changed := s.err == nil || s.err.Error() != err.Error()
	s.err = err
	return changed
}

// pickTexts returns the texts of the set that asked for the text modality,
// else of the first set with texts.
func pickTexts(sets []runfolder.SampleSet, text string) []string {
	for _, set := range sets {
		if set.Modality == text && len(set.Texts) > 0 {
			return set.Texts
		}
	}
	for _, set := range sets {
		if len(set.Texts) > 0 {
			return set.Texts
		}
	}
	return nil
}

func decodePNGFile(path string) (image.Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		return nil, fmt.Errorf("viz: %s: %w", path, err)
	}
	return img, nil
}

// sampleView is one run's samples as render draws them.
type sampleView struct {
	label string
	s     *runSamples
}

// sampleColumn is where the samples column goes in a w x h image: empty
// when there is nothing to show or the window is too narrow.
func sampleColumn(w, h int, v *view) image.Rectangle {
	if v.hideSamples || len(v.samples) == 0 || w < minSampleWindow {
		return image.Rectangle{}
	}
	cw := min(max(int(float64(w)*sampleColFrac), minSampleCol), maxSampleCol)
	return image.Rect(w-cw, 0, w, h)
}

// pt converts pixels to the canvas's points.
func pt(px float64) vg.Length { return vg.Length(px * 72 / dpi) }

// drawSamples draws the samples of each run in views into the column col
// of img (whose canvas is dc; h is the image's height; footerH the
// footer's height in pixels): one section per run, stacked.
func drawSamples(img *image.RGBA, dc draw.Canvas, h int, col image.Rectangle, footerH int, views []sampleView) {
	rule := draw.LineStyle{Color: sampleRuleColor, Width: vg.Points(1)}
	x0 := float64(col.Min.X)
	dc.StrokeLine2(rule, pt(x0), pt(float64(h-col.Max.Y+footerH)), pt(x0), pt(float64(h-col.Min.Y)))
	const pad = 8
	head := textStyle(9.5, sampleHeadColor)
	body := textStyle(8.5, sampleColor)
	headH := int(head.Height("Xg").Dots(dpi)) + 2
	lineH := int(body.Height("Xg").Dots(dpi)) + 1
	secH := (col.Dy() - footerH) / len(views)
	for i, sv := range views {
		top := col.Min.Y + i*secH + pad
		bottom := col.Min.Y + (i+1)*secH - pad/2
		left, right := col.Min.X+pad, col.Max.X-pad
		// text writes a line with its top at y (pixels, from the top).
		text := func(sty draw.TextStyle, y, lh int, s string) {
			dc.FillText(sty, vg.Point{X: pt(float64(left)), Y: pt(float64(h - y - lh + 2))}, s)
		}
		s := sv.s
		heading := fmt.Sprintf("samples of %s at step %d", sv.label, s.step)
		if s.step < 0 {
			heading = fmt.Sprintf("samples of %s", sv.label)
		}
		for _, l := range wrap(head, heading, right-left) {
			if top+headH > bottom {
				break
			}
			text(head, top, headH, l)
			top += headH
		}
		top += 2
		if s.err != nil {
			for _, l := range wrap(body, "cannot read them: "+s.err.Error(), right-left) {
				if top+lineH > bottom {
					break
				}
				text(body, top, lineH, l)
				top += lineH
			}
			continue
		}
		if s.grid != nil {
			b := s.grid.Bounds()
			maxH := max((bottom-top)*3/5, 1)
			scale := min(float64(right-left)/float64(b.Dx()), float64(maxH)/float64(b.Dy()))
			gw, gh := max(int(float64(b.Dx())*scale), 1), max(int(float64(b.Dy())*scale), 1)
			if s.scaled == nil || s.scaled.Bounds().Dx() != gw || s.scaled.Bounds().Dy() != gh {
				s.scaled = image.NewRGBA(image.Rect(0, 0, gw, gh))
				var k xdraw.Interpolator = xdraw.NearestNeighbor // keep small images' pixels sharp
				if scale < 1 {
					k = xdraw.ApproxBiLinear
				}
				k.Scale(s.scaled, s.scaled.Bounds(), s.grid, b, xdraw.Src, nil)
			}
			at := image.Pt(left+(right-left-gw)/2, top)
			xdraw.Draw(img, image.Rectangle{Min: at, Max: at.Add(image.Pt(gw, gh))}, s.scaled, image.Point{}, xdraw.Src)
			top += gh + 6
		}
		for k, t := range s.texts {
			if top+lineH > bottom {
				break
			}
			for j, l := range wrap(body, fmt.Sprintf("%d. %s", k+1, printable(t)), right-left) {
				if top+lineH > bottom {
					break
				}
				if j > 0 {
					l = "   " + l
				}
				text(body, top, lineH, l)
				top += lineH
			}
			top += lineH / 2
		}
	}
}

// printable replaces control characters and invalid bytes of a sample's
// text by spaces and the replacement character, one line per paragraph.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\n' || r == '\t' || r == '\r':
			return ' '
		case r == unicode.ReplacementChar || !unicode.IsPrint(r):
			return '?'
		}
		return r
	}, strings.ToValidUTF8(s, "?"))
}

// wrap breaks s into lines of at most width pixels in sty, at spaces
// where it can and inside words that alone are wider.
func wrap(sty draw.TextStyle, s string, width int) []string {
	fits := func(l string) bool { return int(sty.Width(l).Dots(dpi)) <= width }
	var lines []string
	line := ""
	for _, word := range strings.Fields(s) {
		try := word
		if line != "" {
			try = line + " " + word
		}
		if fits(try) {
			line = try
			continue
		}
		if line != "" {
			lines = append(lines, line)
			line = ""
		}
		for rs := []rune(word); len(rs) > 1 && !fits(word); rs = []rune(word) {
			n := len(rs) - 1
			for n > 1 && !fits(string(rs[:n])) {
				n--
			}
			lines = append(lines, string(rs[:n]))
			word = string(rs[n:])
		}
		line = word
	}
	if line != "" {
		lines = append(lines, line)
	}
	return lines
}
