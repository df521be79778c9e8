package vq

import (
	"cmp"
	"math"
	"math/rand/v2"
	"slices"
	"strings"

	"mom/trainer/media"
)

// ObjectThreshold is how far (in [0, 1] grey levels) a pixel must differ
// from the background to count as part of the object. The background is
// the median grey of the image's border pixels: black for Fashion-MNIST,
// where the object is then simply the pixels brighter than 0.1.
const ObjectThreshold = 0.1

// Attrs are measurements of an image's grey levels, for captions. All are
// fractions in [0, 1].
type Attrs struct {
	Brightness float64 // mean grey
	Contrast   float64 // standard deviation of the grey levels
	Background float64 // median grey of the border pixels
	Lit        float64 // fraction of pixels that belong to the object (see ObjectThreshold)
	Width      float64 // the object's bounding box width / the image width (0 with no object)
	Height     float64 // the object's bounding box height / the image height
	Symmetry   float64 // 1 - sum|o(x,y) - o(W-1-x,y)| / sum(o(x,y) + o(W-1-x,y)), o = |grey - background|; 1 is mirror-symmetric
	CenterX    float64 // the object's centre of mass across, 0 left edge, 1 right edge (0.5 with no object)
	CenterY    float64 // and down, 0 top, 1 bottom
}

// Attributes measures an image (converted to grey) for captions. An
// invalid image gives zero Attrs.
func Attributes(im *media.Image) Attrs {
	if im.Validate() != nil {
		return Attrs{}
	}
	g := im.Gray()
	W, H := g.W, g.H
	n := float64(W * H)
	var a Attrs
	sum, sum2 := 0.0, 0.0
	for _, v := range g.Pix {
		sum += float64(v)
		sum2 += float64(v) * float64(v)
	}
	a.Brightness = sum / n
	a.Contrast = math.Sqrt(max(0, sum2/n-a.Brightness*a.Brightness))
	border := make([]float32, 0, 2*(W+H))
	for x := range W {
		border = append(border, g.Pix[x], g.Pix[(H-1)*W+x])
	}
	for y := 1; y < H-1; y++ {
		border = append(border, g.Pix[y*W], g.Pix[y*W+W-1])
	}
	slices.Sort(border)
	a.Background = float64(border[len(border)/2])
	obj := func(x, y int) float64 { return math.Abs(float64(g.Pix[y*W+x]) - a.Background) }
	minX, minY, maxX, maxY := W, H, -1, -1
	lit := 0
	mass, mx, my, diff, both := 0.0, 0.0, 0.0, 0.0, 0.0
	for y := range H {
		for x := range W {
			o := obj(x, y)
			mass += o
			mx += o * (float64(x) + 0.5)
			my += o * (float64(y) + 0.5)
			m := obj(W-1-x, y)
			diff += math.Abs(o - m)
			both += o + m
			if o > ObjectThreshold {
				lit++
				minX, maxX = min(minX, x), max(maxX, x)
				minY, maxY = min(minY, y), max(maxY, y)
			}
		}
	}
	a.Lit = float64(lit) / n
	if lit > 0 {
		a.Width = float64(maxX-minX+1) / float64(W)
		a.Height = float64(maxY-minY+1) / float64(H)
	}
	a.CenterX, a.CenterY, a.Symmetry = 0.5, 0.5, 1
	if mass > 0 {
		a.CenterX = mx / mass / float64(W)
		a.CenterY = my / mass / float64(H)
	}
	if both > 0 {
		a.Symmetry = 1 - diff/both
	}
	return a
}

// attrWord is a property an image may have, with ways to say it: cond
// decides whether it applies, phrases are the interchangeable ways.
type attrWord struct {
	cond    func(a Attrs) bool
	phrases []string
}

// The thresholds below were chosen from the quantiles of the attributes
// over the 60,000 Fashion-MNIST training images, so that each property
// holds for about a fifth to a quarter of the images ("tall" for half:
// most clothes fill the frame's height; "leaning left" for almost none,
// as the shoes' mass sits at the heel, on the right) and the words tell
// images and classes apart. TestWordsOnFashionMNIST prints the fractions
// on the test images. Properties come in pairs of opposites (even index,
// odd index), which never hold together.
var attrWords = []attrWord{
	{func(a Attrs) bool { return a.objectMean() < 0.5 }, []string{"dark", "dim", "dark-toned", "shadowy"}},
	{func(a Attrs) bool { return a.objectMean() > 0.76 }, []string{"bright", "light", "pale", "light-toned"}},
	{func(a Attrs) bool { return a.Contrast > 0.39 }, []string{"high-contrast", "crisp", "vivid"}},
	{func(a Attrs) bool { return a.Contrast < 0.26 }, []string{"low-contrast", "faint", "soft-toned"}},
	{func(a Attrs) bool { return a.Lit > 0.57 }, []string{"large", "bulky", "filling most of the frame"}},
	{func(a Attrs) bool { return a.Lit > 0 && a.Lit < 0.32 }, []string{"small", "slender", "taking little of the frame"}},
	{func(a Attrs) bool { return a.Width > 0.9 && a.Width > a.Height+0.15 }, []string{"wide", "broad", "wider than it is tall"}},
	{func(a Attrs) bool { return a.Width > 0 && a.Width < 0.6 }, []string{"narrow", "thin", "slim"}},
	{func(a Attrs) bool { return a.Height > 0.95 && a.Height > a.Width+0.2 }, []string{"tall", "long", "taller than it is wide"}},
	{func(a Attrs) bool { return a.Height > 0 && a.Height < 0.6 }, []string{"short", "low", "flat"}},
	{func(a Attrs) bool { return a.Symmetry > 0.9 }, []string{"symmetric", "mirror-symmetric", "balanced left to right"}},
	{func(a Attrs) bool { return a.Symmetry < 0.6 }, []string{"asymmetric", "lopsided", "uneven from side to side"}},
	{func(a Attrs) bool { return a.CenterY < 0.48 }, []string{"mostly in the upper half", "top-heavy", "weighted towards the top"}},
	{func(a Attrs) bool { return a.CenterY > 0.56 }, []string{"mostly in the lower half", "bottom-heavy", "weighted towards the bottom"}},
	{func(a Attrs) bool { return a.CenterX < 0.42 }, []string{"leaning left", "weighted to the left"}},
	{func(a Attrs) bool { return a.CenterX > 0.58 }, []string{"leaning right", "weighted to the right"}},
}

// objectMean is the mean grey of the object's pixels (Brightness over the
// whole image mostly measures the object's size on a black background).
func (a Attrs) objectMean() float64 {
	if a.Lit == 0 {
		return a.Brightness
	}
	// Brightness = Lit*objectMean + (1-Lit)*background (approximately:
	// the non-object pixels are near the background).
	return (a.Brightness - (1-a.Lit)*a.Background) / a.Lit
}

// Words returns a few (one to four) descriptive words or phrases that
// hold for the image, e.g. "dark", "wide", "symmetric", "mostly in the
// upper half": the properties that apply are shuffled, a random number of
// them kept, and each said in one of its interchangeable ways, so that
// captions built from them vary. Single words (no space: "dark",
// "high-contrast") are adjectives that read before the noun ("a dark
// coat"); they come first. Entries with a space are phrases that read
// after it ("a coat, mostly in the upper half"). An image with no
// distinctive property gives none. The same rng state gives the same
// words.
func (a Attrs) Words(rng *rand.Rand) []string {
	var apply []int
	for i, w := range attrWords {
		if w.cond(a) {
			apply = append(apply, i)
		}
	}
	if len(apply) == 0 {
		return nil
	}
	rng.Shuffle(len(apply), func(i, j int) { apply[i], apply[j] = apply[j], apply[i] })
	n := 1 + rng.IntN(min(len(apply), 4))
	out := make([]string, n)
	for i, k := range apply[:n] {
		ph := attrWords[k].phrases
		out[i] = ph[rng.IntN(len(ph))]
	}
	phrase := func(s string) int {
		if strings.Contains(s, " ") {
			return 1
		}
		return 0
	}
	slices.SortStableFunc(out, func(x, y string) int { return cmp.Compare(phrase(x), phrase(y)) })
	return out
}

// Describes reports which properties hold, by their first phrase, in a
// fixed order: what Words chooses from.
func (a Attrs) Describes() []string {
	var out []string
	for _, w := range attrWords {
		if w.cond(a) {
			out = append(out, w.phrases[0])
		}
	}
	return out
}
