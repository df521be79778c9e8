package media

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// randomImage has values on the 8-bit grid k/255, so that a PNG round trip
// is exact.
func randomImage(w, h, c int, seed uint64) *Image {
	r := rand.New(rand.NewPCG(seed, 1))
	im := &Image{W: w, H: h, C: c, Pix: make([]float32, w*h*c)}
	for i := range im.Pix {
		im.Pix[i] = float32(r.IntN(256)) / 255
	}
	return im
}

func encodeGoImage(t testing.TB, img image.Image, format string) []byte {
	t.Helper()
	var buf bytes.Buffer
	var err error
	if format == "png" {
		err = png.Encode(&buf, img)
	} else {
		err = jpeg.Encode(&buf, img, &jpeg.Options{Quality: 95})
	}
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestPNGRoundTrip(t *testing.T) {
	for _, tc := range []struct{ w, h, c int }{{1, 1, 1}, {28, 28, 1}, {7, 3, 3}, {64, 48, 3}} {
		im := randomImage(tc.w, tc.h, tc.c, uint64(tc.w*tc.h*tc.c))
		var buf bytes.Buffer
		if err := EncodePNG(&buf, im); err != nil {
			t.Fatal(err)
		}
		got, err := DecodeImage(&buf)
		if err != nil {
			t.Fatal(err)
		}
		if got.W != im.W || got.H != im.H || got.C != im.C {
			t.Fatalf("%v: decoded %dx%dx%d", tc, got.W, got.H, got.C)
		}
		for i := range im.Pix {
			if got.Pix[i] != im.Pix[i] {
				t.Fatalf("%v: value %d is %v, wrote %v", tc, i, got.Pix[i], im.Pix[i])
			}
		}
	}
}

func TestDecodeColourModels(t *testing.T) {
	rect := image.Rect(0, 0, 4, 3)
	gray16 := image.NewGray16(rect)
	greyPal := image.NewPaletted(rect, color.Palette{color.Gray{0}, color.Gray{128}, color.Gray{255}})
	colPal := image.NewPaletted(rect, color.Palette{color.RGBA{255, 0, 0, 255}, color.RGBA{0, 0, 255, 255}})
	nrgba := image.NewNRGBA(rect)
	nrgba64 := image.NewNRGBA64(rect)
	gray := image.NewGray(rect)
	rgba := image.NewRGBA(rect)
	smooth := image.NewRGBA(rect) // JPEG subsamples colour: keep it flat
	for y := range 3 {
		for x := range 4 {
			v := uint8(40*x + 60*y)
			gray16.SetGray16(x, y, color.Gray16{uint16(v) * 257})
			gray.SetGray(x, y, color.Gray{v})
			greyPal.SetColorIndex(x, y, uint8((x+y)%3))
			colPal.SetColorIndex(x, y, uint8((x+y)%2))
			nrgba.SetNRGBA(x, y, color.NRGBA{200, 100, 50, uint8(85 * x)})
			nrgba64.SetNRGBA64(x, y, color.NRGBA64{60000, 30000, 1000, uint16(21845 * x)})
			rgba.SetRGBA(x, y, color.RGBA{v, 255 - v, v / 2, 255})
			smooth.SetRGBA(x, y, color.RGBA{200, 100 + uint8(2*x), 50, 255})
		}
	}
	// want is the colour that pixel (x, y) should decode to: the
	// premultiplied colour (alpha over black), as 16-bit values.
	want := func(img image.Image, x, y, c int) float64 {
		r, g, b, _ := img.At(x, y).RGBA()
		return float64([]uint32{r, g, b}[c]) / 65535
	}
	for _, tc := range []struct {
		name   string
		img    image.Image
		format string
		c      int
		tol    float64
	}{
		{"gray8 png", gray, "png", 1, 1e-6},
		{"gray16 png", gray16, "png", 1, 1e-6},
		{"grey palette png", greyPal, "png", 1, 1e-6},
		{"colour palette png", colPal, "png", 3, 1e-6},
		{"nrgba with alpha png", nrgba, "png", 3, 1.0 / 255},
		{"nrgba64 with alpha png", nrgba64, "png", 3, 1e-4},
		{"rgba png", rgba, "png", 3, 1e-6},
		{"gray jpeg", gray, "jpeg", 1, 0.1},
		{"rgba jpeg", smooth, "jpeg", 3, 0.03},
	} {
		im, err := DecodeImage(bytes.NewReader(encodeGoImage(t, tc.img, tc.format)))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if im.W != 4 || im.H != 3 || im.C != tc.c {
			t.Fatalf("%s: decoded %dx%dx%d, want 4x3x%d", tc.name, im.W, im.H, im.C, tc.c)
		}
		for y := range 3 {
			for x := range 4 {
				for c := range tc.c {
					w := want(tc.img, x, y, c)
					if tc.c == 1 {
						w = want(tc.img, x, y, 0)
					}
					if d := math.Abs(float64(im.At(x, y, c)) - w); d > tc.tol {
						t.Fatalf("%s: pixel (%d,%d) channel %d = %v, want %v", tc.name, x, y, c, im.At(x, y, c), w)
					}
				}
			}
		}
	}
}

// pngWithSize is a valid small PNG whose header is rewritten to claim
// w x h pixels (with a correct CRC), so that only the size is wrong.
func pngWithSize(t testing.TB, w, h uint32) []byte {
	b := encodeGoImage(t, image.NewGray(image.Rect(0, 0, 2, 2)), "png")
	b = append([]byte(nil), b...)
	// signature (8), IHDR length (4), "IHDR" (4), width, height.
	binary.BigEndian.PutUint32(b[16:], w)
	binary.BigEndian.PutUint32(b[20:], h)
	crc := crc32.ChecksumIEEE(b[12:29])
	binary.BigEndian.PutUint32(b[29:], crc)
	return b
}

func TestDecodeImageErrors(t *testing.T) {
	good := encodeGoImage(t, randomImageGo(5, 5), "png")
	var gifBuf bytes.Buffer
	if err := gif.Encode(&gifBuf, image.NewPaletted(image.Rect(0, 0, 2, 2), color.Palette{color.Black, color.White}), nil); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, in, want string
	}{
		{"empty", "", "neither PNG nor JPEG"},
		{"garbage", "hello, world", "neither PNG nor JPEG"},
		{"gif", gifBuf.String(), "neither PNG nor JPEG"},
		{"truncated png", string(good[:len(good)/2]), "decoding PNG"},
		{"png signature only", string(good[:8]), "PNG header"},
		{"jpeg marker only", "\xff\xd8", "JPEG header"},
		{"huge png", string(pngWithSize(t, 1<<15, 1<<15)), "over the limit"},
	} {
		_, err := DecodeImage(strings.NewReader(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
}

func randomImageGo(w, h int) image.Image {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	r := rand.New(rand.NewPCG(7, 7))
	for i := range img.Pix {
		img.Pix[i] = uint8(r.IntN(256))
	}
	for i := 3; i < len(img.Pix); i += 4 {
		img.Pix[i] = 255
	}
	return img
}

func TestReadWritePNGFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.png")
	im := randomImage(9, 4, 3, 3)
	if err := WritePNG(path, im); err != nil {
		t.Fatal(err)
	}
	got, err := ReadImage(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := range im.Pix {
		if got.Pix[i] != im.Pix[i] {
			t.Fatalf("value %d: %v, want %v", i, got.Pix[i], im.Pix[i])
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "bad.png"), []byte("not an image"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Join(dir, "missing.png"), filepath.Join(dir, "bad.png")} {
		if _, err := ReadImage(p); err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("ReadImage(%s): error %v, want one naming the file", p, err)
		}
	}
	if err := WritePNG(filepath.Join(dir, "y.png"), &Image{W: 2, H: 2, C: 3, Pix: make([]float32, 5)}); err == nil {
		t.Error("WritePNG of an image with too few values: no error")
	}
	if _, err := os.Stat(filepath.Join(dir, "y.png")); !os.IsNotExist(err) {
		t.Errorf("a failed WritePNG left a file: %v", err)
	}
}

func TestGray(t *testing.T) {
	im := &Image{W: 2, H: 1, C: 3, Pix: []float32{1, 0, 0, 0.2, 0.4, 0.6}}
	g := im.Gray()
	for i, want := range []float64{0.299, 0.299*0.2 + 0.587*0.4 + 0.114*0.6} {
		if math.Abs(float64(g.Pix[i])-want) > 1e-6 {
			t.Errorf("grey %d = %v, want %v", i, g.Pix[i], want)
		}
	}
	g2 := g.Gray()
	g2.Pix[0] = 0.5
	if g.Pix[0] == 0.5 || g2.C != 1 {
		t.Error("Gray of a grey image is not a copy")
	}
}

func TestResize(t *testing.T) {
	// A one-pixel checkerboard reduced 4x: an area filter gives grey
	// (0.5) everywhere; sampling would give pure black or white.
	check := &Image{W: 32, H: 32, C: 1, Pix: make([]float32, 32*32)}
	for y := range 32 {
		for x := range 32 {
			check.Pix[y*32+x] = float32((x + y) % 2)
		}
	}
	small := check.Resize(8, 8)
	for i, v := range small.Pix {
		if math.Abs(float64(v)-0.5) > 0.02 {
			t.Fatalf("checkerboard reduced: pixel %d = %v, want about 0.5", i, v)
		}
	}
	// A flat colour stays flat, at any size, up or down.
	flat := &Image{W: 10, H: 6, C: 3, Pix: make([]float32, 10*6*3)}
	for i := range flat.Pix {
		flat.Pix[i] = []float32{0.2, 0.6, 0.9}[i%3]
	}
	for _, sz := range [][2]int{{3, 2}, {10, 6}, {25, 13}, {1, 1}} {
		r := flat.Resize(sz[0], sz[1])
		if r.W != sz[0] || r.H != sz[1] || r.C != 3 || len(r.Pix) != sz[0]*sz[1]*3 {
			t.Fatalf("resize to %v: got %dx%dx%d", sz, r.W, r.H, r.C)
		}
		for i, v := range r.Pix {
			if math.Abs(float64(v-flat.Pix[i%3])) > 1e-4 {
				t.Fatalf("flat resized to %v: value %d = %v, want %v", sz, i, v, flat.Pix[i%3])
			}
		}
	}
	// A left-dark, right-bright image keeps its halves.
	half := &Image{W: 40, H: 20, C: 1, Pix: make([]float32, 800)}
	for y := range 20 {
		for x := 20; x < 40; x++ {
			half.Pix[y*40+x] = 1
		}
	}
	h := half.Resize(10, 5)
	if h.At(0, 2, 0) > 0.01 || h.At(9, 2, 0) < 0.99 {
		t.Errorf("halves resized: left %v right %v", h.At(0, 2, 0), h.At(9, 2, 0))
	}
	if flat.Resize(0, 3) != nil || flat.Resize(3, -1) != nil {
		t.Error("Resize to a non-positive size did not return nil")
	}
}

func TestWrapCaption(t *testing.T) {
	for _, tc := range []struct {
		in    string
		width int
		want  []string
	}{
		{"", 10, nil},
		{"a dark shirt", 20, []string{"a dark shirt"}},
		{"a dark shirt", 6, []string{"a dark", "shirt"}},
		{"abcdefghij", 4, []string{"abcd", "efgh", "ij"}},
		{"one two three four five six", 5, []string{"one", "two", "th..."}},
		{"caf\u00e9\tlatte\n", 20, []string{"caf? latte"}},
	} {
		got := wrapCaption(tc.in, tc.width, 3)
		if strings.Join(got, "|") != strings.Join(tc.want, "|") {
			t.Errorf("wrap(%q, %d) = %q, want %q", tc.in, tc.width, got, tc.want)
		}
		for _, l := range got {
			if len(l) > tc.width {
				t.Errorf("wrap(%q, %d): line %q is too long", tc.in, tc.width, l)
			}
		}
	}
}

func TestGrid(t *testing.T) {
	a := randomImage(4, 3, 1, 1)
	b := randomImage(2, 5, 3, 2)
	g, err := Grid([]*Image{a, b, a}, []string{"first", "second one here", ""}, 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	cellW := max(4*3, 2*3, gridMinChars*7)
	imgH := 5 * 3
	cellH := imgH + gridCaptionGap + 1*13 // every caption fits on one line of 16 characters
	wantW, wantH := gridPad+2*(cellW+gridPad), gridPad+2*(cellH+gridPad)
	if g.C != 3 || g.W != wantW || g.H != wantH {
		t.Fatalf("grid is %dx%dx%d, want %dx%dx3", g.W, g.H, g.C, wantW, wantH)
	}
	// Image a's pixel (1, 2) is the block at the cell's centred origin.
	ox := gridPad + (cellW-4*3)/2
	oy := gridPad + (imgH-3*3)/2
	for dy := range 3 {
		for dx := range 3 {
			for c := range 3 {
				got := g.At(ox+1*3+dx, oy+2*3+dy, c)
				want := float32(imagePix8(a.At(1, 2, 0))) / 255
				if got != want {
					t.Fatalf("grid pixel of a(1,2) channel %d = %v, want %v", c, got, want)
				}
			}
		}
	}
	// The corner is white; the caption strip holds dark text pixels.
	if g.At(0, 0, 0) != 1 {
		t.Error("grid background is not white")
	}
	dark := 0
	for y := gridPad + imgH; y < gridPad+imgH+gridCaptionGap+13; y++ {
		for x := gridPad; x < gridPad+cellW; x++ {
			if g.At(x, y, 0) < 0.5 {
				dark++
			}
		}
	}
	if dark < 10 {
		t.Errorf("caption strip has %d dark pixels, want text", dark)
	}
	for _, tc := range []struct {
		name     string
		images   []*Image
		captions []string
		cols     int
		scale    int
	}{
		{"no images", nil, nil, 2, 1},
		{"zero columns", []*Image{a}, nil, 0, 1},
		{"zero scale", []*Image{a}, nil, 1, 0},
		{"caption count", []*Image{a, b}, []string{"x"}, 1, 1},
		{"bad image", []*Image{{W: 2, H: 2, C: 2}}, nil, 1, 1},
		{"nil image", []*Image{nil}, nil, 1, 1},
		{"too large", []*Image{a}, nil, 1, 4000},
	} {
		if _, err := Grid(tc.images, tc.captions, tc.cols, tc.scale); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
	// Without captions, cells are just the images.
	g2, err := Grid([]*Image{a}, nil, 5, 2)
	if err != nil {
		t.Fatal(err)
	}
	if g2.W != 2*gridPad+8 || g2.H != 2*gridPad+6 {
		t.Errorf("captionless grid is %dx%d, want %dx%d", g2.W, g2.H, 2*gridPad+8, 2*gridPad+6)
	}
}

// FuzzDecodeImage checks that no input makes DecodeImage panic, and that
// what it accepts is a valid image with values in [0, 1].
func FuzzDecodeImage(f *testing.F) {
	f.Add(encodeGoImage(f, randomImageGo(3, 2), "png"))
	f.Add(encodeGoImage(f, randomImageGo(3, 2), "jpeg"))
	f.Add(encodeGoImage(f, image.NewGray(image.Rect(0, 0, 5, 1)), "png"))
	f.Add(encodeGoImage(f, image.NewGray(image.Rect(0, 0, 8, 8)), "jpeg"))
	f.Add(pngWithSize(f, 1<<15, 1<<15))
	f.Add([]byte("\x89PNG\r\n\x1a\n"))
	f.Add([]byte{0xff, 0xd8, 0xff})
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, b []byte) {
		im, err := DecodeImage(bytes.NewReader(b))
		if err != nil {
			return
		}
		if err := im.Validate(); err != nil {
			t.Fatal(err)
		}
		for i, v := range im.Pix {
			if !(v >= 0 && v <= 1) {
				t.Fatalf("value %d = %v", i, v)
			}
		}
	})
}
