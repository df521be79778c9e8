package viz

import (
	"fmt"
	"image/color"
	"strconv"
	"strings"

	"mom/trainer/runfolder"
)

// MaxModalities is the most modalities the window gives keys to (1-9);
// the plots draw any number.
const MaxModalities = 9

// Modality is how the plots and the window show one modality: its name,
// its colour (the first run's curves; see CurveColor) and the window key
// that shows or hides its panel. They come from the runs' modality rows
// (config.json's model.modalities); runs made before the rows had colours
// get the built-in ones for text, image and speech and a palette colour
// otherwise, and keys in order.
type Modality struct {
	Name  string
	Color color.RGBA
	Key   string // "1".."9"; "" when all nine are taken
}

// builtinColors are the colours of the original three modalities (as in
// the modality table of package mom).
var builtinColors = map[string]string{"text": "#1f77b4", "image": "#ff7f0e", "speech": "#2ca02c"}

// palette colours modalities without a colour of their own, in order.
var palette = []string{"#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f", "#d62728", "#1f77b4", "#ff7f0e"}

// ParseColor reads "#rrggbb".
func ParseColor(s string) (color.RGBA, error) {
	if len(s) != 7 || s[0] != '#' {
		return color.RGBA{}, fmt.Errorf("viz: colour %q: want #rrggbb", s)
	}
	v, err := strconv.ParseUint(s[1:], 16, 32)
	if err != nil {
		return color.RGBA{}, fmt.Errorf("viz: colour %q: want #rrggbb", s)
	}
	return color.RGBA{R: uint8(v >> 16), G: uint8(v >> 8), B: uint8(v), A: 255}, nil
}

func mustColor(s string) color.RGBA {
	c, err := ParseColor(s)
	if err != nil {
		panic(err)
	}
	return c
}

// modalitySet gathers the modalities of several runs in order of first
// appearance (each run's rows in id order, then losses seen in its records
// that no row declares), giving each a colour and a key.
type modalitySet struct {
	list  []Modality
	index map[string]int
	keys  map[string]bool
}

func newModalitySet() *modalitySet {
	return &modalitySet{index: map[string]int{}, keys: map[string]bool{}}
}

func (s *modalitySet) add(row runfolder.Modality) {
	if _, ok := s.index[row.Name]; ok || row.Name == "" {
		return
	}
	m := Modality{Name: row.Name}
	c, err := ParseColor(row.Color)
	if err != nil {
		if b, ok := builtinColors[row.Name]; ok {
			c = mustColor(b)
		} else {
			c = mustColor(palette[len(s.list)%len(palette)])
		}
	}
	m.Color = c
	if k := row.Key; len(k) == 1 && k[0] >= '1' && k[0] <= '9' && !s.keys[k] {
		m.Key = k
	} else {
		for d := byte('1'); d <= '9'; d++ {
			if !s.keys[string(d)] {
				m.Key = string(d)
				break
			}
		}
	}
	if m.Key != "" {
		s.keys[m.Key] = true
	}
	s.index[row.Name] = len(s.list)
	s.list = append(s.list, m)
}

// modalitiesOf lists the modalities of runs.
func modalitiesOf(runs []*runData) []Modality {
	s := newModalitySet()
	for _, rd := range runs {
		for _, row := range rd.rows {
			s.add(row)
		}
		for _, n := range rd.seenNames {
			s.add(runfolder.Modality{Name: n})
		}
	}
	return s.list
}

// byName finds a modality in a list.
func byName(mods []Modality, name string) (Modality, bool) {
	for _, m := range mods {
		if m.Name == name {
			return m, true
		}
	}
	return Modality{}, false
}

// runPalette colours the curves of the second and later runs in a panel;
// colours too near the panel's own (the first run's) are skipped, so two
// runs never share a colour.
var runPalette = []string{"#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f", "#1f77b4", "#ff7f0e", "#2ca02c"}

// CurveColor is the training-curve colour of run number run (0-based, in
// the order given) in the panel of a modality of colour mod: the first run
// draws in the modality's colour, the others in distinct palette colours.
func CurveColor(mod color.RGBA, run int) color.RGBA {
	if run <= 0 {
		return mod
	}
	var cands []color.RGBA
	for _, s := range runPalette {
		c := mustColor(s)
		if colorDist(c, mod) > 80 {
			cands = append(cands, c)
		}
	}
	return cands[(run-1)%len(cands)]
}

func colorDist(a, b color.RGBA) int {
	d := func(x, y uint8) int {
		if x > y {
			return int(x - y)
		}
		return int(y - x)
	}
	return d(a.R, b.R) + d(a.G, b.G) + d(a.B, b.B)
}

// EvalColor is the held-out curve colour for a training-curve colour c: c
// at 60% brightness.
func EvalColor(c color.RGBA) color.RGBA {
	return color.RGBA{R: uint8(int(c.R) * 6 / 10), G: uint8(int(c.G) * 6 / 10), B: uint8(int(c.B) * 6 / 10), A: 255}
}

// modalityNames joins names for messages.
func modalityNames(mods []Modality) string {
	names := make([]string, len(mods))
	for i, m := range mods {
		names[i] = m.Name
	}
	return strings.Join(names, ", ")
}
