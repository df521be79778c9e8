package vq

import (
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"mom/trainer/dataset/source"
	"mom/trainer/media"
)

// shape draws a rectangle of value fg on background bg.
func shape(w, h int, bg, fg float32, x0, y0, x1, y1 int) *media.Image {
	im, _ := media.NewImage(w, h, 1)
	for y := range h {
		for x := range w {
			v := bg
			if x >= x0 && x < x1 && y >= y0 && y < y1 {
				v = fg
			}
			im.Pix[y*w+x] = v
		}
	}
	return im
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-6 }

func TestAttributes(t *testing.T) {
	for _, tc := range []struct {
		name  string
		im    *media.Image
		check func(a Attrs) bool
		words []string // must hold
		not   []string // must not
	}{
		{"centred square", shape(20, 20, 0, 1, 5, 5, 15, 15),
			func(a Attrs) bool {
				return near(a.Lit, 0.25) && near(a.Width, 0.5) && near(a.Height, 0.5) && near(a.Symmetry, 1) &&
					near(a.CenterX, 0.5) && near(a.CenterY, 0.5) && near(a.Brightness, 0.25) && near(a.Contrast, math.Sqrt(0.25-0.0625)) && a.Background == 0
			},
			[]string{"bright", "symmetric", "small", "narrow", "short", "high-contrast"}, []string{"dark", "asymmetric", "wide", "tall", "mostly in the upper half", "mostly in the lower half"}},
		{"top bar", shape(20, 20, 0, 0.3, 0, 1, 20, 6),
			func(a Attrs) bool {
				return near(a.Width, 1) && near(a.Height, 0.25) && a.CenterY < 0.2 && near(a.Symmetry, 1)
			},
			[]string{"dark", "wide", "short", "mostly in the upper half", "low-contrast"}, []string{"bright", "tall", "narrow", "mostly in the lower half"}},
		{"left column", shape(20, 20, 0, 0.9, 1, 0, 6, 20),
			func(a Attrs) bool { return a.Symmetry == 0 && a.CenterX < 0.25 && near(a.Height, 1) },
			[]string{"asymmetric", "leaning left", "tall", "narrow"}, []string{"symmetric", "leaning right", "wide"}},
		{"dark object on white", shape(10, 10, 1, 0, 2, 2, 8, 8),
			func(a Attrs) bool {
				return a.Background == 1 && near(a.Lit, 0.36) && near(a.Width, 0.6) && near(a.Symmetry, 1)
			},
			[]string{"dark", "symmetric"}, []string{"bright"}},
		{"flat grey", shape(8, 8, 0.5, 0.5, 0, 0, 0, 0),
			func(a Attrs) bool {
				return a.Lit == 0 && a.Width == 0 && a.Height == 0 && a.Symmetry == 1 && a.Contrast == 0
			},
			[]string{"low-contrast"}, []string{"small", "narrow", "short", "large"}},
	} {
		a := Attributes(tc.im)
		if !tc.check(a) {
			t.Errorf("%s: attributes %+v", tc.name, a)
		}
		d := a.Describes()
		for _, w := range tc.words {
			if !slices.Contains(d, w) {
				t.Errorf("%s: %q is not among %q (%+v)", tc.name, w, d, a)
			}
		}
		for _, w := range tc.not {
			if slices.Contains(d, w) {
				t.Errorf("%s: %q is among %q (%+v)", tc.name, w, d, a)
			}
		}
	}
	// RGB is measured as its grey.
	rgb, _ := media.NewImage(20, 20, 3)
	sq := shape(20, 20, 0, 1, 5, 5, 15, 15)
	for i, v := range sq.Pix {
		rgb.Pix[3*i], rgb.Pix[3*i+1], rgb.Pix[3*i+2] = v, v, v
	}
	if a, b := Attributes(rgb), Attributes(sq); math.Abs(a.Brightness-b.Brightness) > 1e-6 || a.Width != b.Width {
		t.Errorf("RGB %+v, grey %+v", a, b)
	}
	if (Attributes(&media.Image{W: 2, H: 2, C: 1}) != Attrs{}) {
		t.Error("an invalid image gives non-zero attributes")
	}
}

// phraseOwner maps each phrase to the index of its property.
func phraseOwner() map[string]int {
	m := map[string]int{}
	for i, w := range attrWords {
		for _, p := range w.phrases {
			m[p] = i
		}
	}
	return m
}

func TestWords(t *testing.T) {
	owner := phraseOwner()
	a := Attributes(shape(20, 20, 0, 1, 5, 1, 15, 8))
	holds := map[int]bool{}
	for i, w := range attrWords {
		holds[i] = w.cond(a)
	}
	seen := map[string]bool{}
	counts := map[int]int{}
	for s := range uint64(200) {
		words := a.Words(rand.New(rand.NewPCG(s, 0)))
		again := a.Words(rand.New(rand.NewPCG(s, 0)))
		if !slices.Equal(words, again) {
			t.Fatalf("seed %d: %q then %q", s, words, again)
		}
		if len(words) < 1 || len(words) > 4 {
			t.Fatalf("seed %d: %d words", s, len(words))
		}
		props := map[int]bool{}
		inPhrases := false
		for _, w := range words {
			if strings.Contains(w, " ") {
				inPhrases = true
			} else if inPhrases {
				t.Fatalf("seed %d: adjective %q after a phrase in %q", s, w, words)
			}
			k, ok := owner[w]
			if !ok || !holds[k] {
				t.Fatalf("seed %d: %q does not describe %+v", s, w, a)
			}
			if props[k] {
				t.Fatalf("seed %d: %q says one property twice", s, words)
			}
			props[k] = true
			seen[w] = true
		}
		counts[len(words)]++
	}
	// Varied: several phrasings and lengths appear.
	if len(seen) < 6 || len(counts) < 3 {
		t.Errorf("200 draws gave only %d phrases and %d lengths", len(seen), len(counts))
	}
	if w := (Attrs{Brightness: 0.5, Contrast: 0.3, Symmetry: 0.8, CenterX: 0.5, CenterY: 0.5}).Words(rand.New(rand.NewPCG(1, 1))); w != nil {
		t.Errorf("an undistinguished image got %q", w)
	}
	// Opposites never hold together.
	for i := 0; i+1 < len(attrWords); i += 2 {
		r := rand.New(rand.NewPCG(3, 3))
		for range 2000 {
			x := Attrs{Brightness: r.Float64(), Contrast: r.Float64() / 2, Background: float64(r.IntN(2)) * r.Float64(), Lit: r.Float64(), Width: r.Float64(), Height: r.Float64(), Symmetry: r.Float64(), CenterX: r.Float64(), CenterY: r.Float64()}
			if attrWords[i].cond(x) && attrWords[i+1].cond(x) {
				t.Fatalf("%q and %q both hold for %+v", attrWords[i].phrases[0], attrWords[i+1].phrases[0], x)
			}
		}
	}
}

// TestWordsOnFashionMNIST checks on the installed data set that every
// property tells images apart: it holds for some images, but not for most.
func TestWordsOnFashionMNIST(t *testing.T) {
	if _, err := os.Stat(filepath.Join(source.FashionMNISTDir, "t10k-images-idx3-ubyte.gz")); err != nil {
		t.Skipf("Fashion-MNIST is not installed at %s (Debian package dataset-fashion-mnist): %v", source.FashionMNISTDir, err)
	}
	_, test, err := source.FashionMNIST(source.FashionMNISTDir, 0)
	if err != nil {
		t.Fatal(err)
	}
	counts := make([]int, len(attrWords))
	for _, it := range test {
		a := Attributes(it.Image)
		for i, w := range attrWords {
			if w.cond(a) {
				counts[i]++
			}
		}
	}
	for i, w := range attrWords {
		f := float64(counts[i]) / float64(len(test))
		t.Logf("%-26s %.3f", w.phrases[0], f)
		if w.phrases[0] == "leaning left" { // Fashion-MNIST objects are centred or heavier on the right
			continue
		}
		if f < 0.1 || f > 0.6 {
			t.Errorf("%q holds for %.1f%% of the test images, want 10-60%%", w.phrases[0], 100*f)
		}
	}
}
