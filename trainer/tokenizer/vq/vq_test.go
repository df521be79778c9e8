package vq

import (
	"bytes"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"mom/trainer/dataset/source"
	"mom/trainer/media"
	"mom/trainer/safetensors"
)

// protoImages makes n images of w x h x c built from patterns: each p x p
// patch is one of nProto fixed random patches (values in [0.1, 0.9]) plus
// Gaussian noise of standard deviation sigma, so a codebook that finds
// the patterns reconstructs to about the noise.
func protoImages(n, w, h, c, p, nProto int, sigma float64, seed uint64) []*media.Image {
	r := rand.New(rand.NewPCG(seed, 2))
	dim := p * p * c
	protos := make([]float32, nProto*dim)
	for i := range protos {
		protos[i] = float32(0.1 + 0.8*r.Float64())
	}
	out := make([]*media.Image, n)
	for i := range out {
		im, _ := media.NewImage(w, h, c)
		for py := 0; py < h; py += p {
			for px := 0; px < w; px += p {
				k := r.IntN(nProto)
				for dy := range p {
					for dx := range p {
						for ch := range c {
							v := float64(protos[k*dim+(dy*p+dx)*c+ch]) + sigma*r.NormFloat64()
							im.Pix[((py+dy)*w+px+dx)*c+ch] = float32(min(max(v, 0), 1))
						}
					}
				}
			}
		}
		out[i] = im
	}
	return out
}

// roundTripMSE is the mean squared error per value of Decode(Encode(x))
// over images, computed through the public API.
func roundTripMSE(t *testing.T, tok *Tokenizer, images []*media.Image) float64 {
	t.Helper()
	sum, n := 0.0, 0
	for _, im := range images {
		codes, err := tok.Encode(im)
		if err != nil {
			t.Fatal(err)
		}
		if len(codes) != tok.TokensPerImage() {
			t.Fatalf("%d codes, want %d", len(codes), tok.TokensPerImage())
		}
		for _, k := range codes {
			if int(k) >= tok.Size() {
				t.Fatalf("code %d out of range", k)
			}
		}
		back, err := tok.Decode(codes)
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range im.Pix {
			d := float64(v) - float64(back.Pix[i])
			sum += d * d
			n++
		}
	}
	return sum / float64(n)
}

func TestSyntheticReconstruction(t *testing.T) {
	// 64 patterns, 128 codes: every pattern can have a code, so what is
	// lost on held-out images is about the noise, sigma^2 (each pattern's
	// codes sit near its mean; extra codes split the noise a little).
	// Allow 30% above it, below what one missed pattern costs: its
	// patches would go to the nearest other pattern, at an MSE of about
	// 0.04 (at least 0.017 for these patterns), which over its 1/64 of the
	// patches adds 0.7 to 1.7 sigma^2.
	const sigma = 0.02
	for _, tc := range []struct{ w, h, c, p int }{{16, 8, 1, 4}, {12, 12, 3, 2}} {
		train := protoImages(400, tc.w, tc.h, tc.c, tc.p, 64, sigma, 1)
		// The same patterns (the seed fixes them), new noise and layout.
		held := protoImagesSamePatterns(100, tc.w, tc.h, tc.c, tc.p, 64, sigma, 1, 99)
		tok, err := Train(train, Config{Patch: tc.p, Codes: 128, Steps: 100, BatchSize: 512, Seed: 5})
		if err != nil {
			t.Fatal(err)
		}
		w, h, c := tok.Shape()
		if w != tc.w || h != tc.h || c != tc.c || tok.Patch() != tc.p || tok.Size() != 128 || tok.TokensPerImage() != (tc.w/tc.p)*(tc.h/tc.p) {
			t.Fatalf("%v: tokenizer %dx%dx%d patch %d size %d tokens %d", tc, w, h, c, tok.Patch(), tok.Size(), tok.TokensPerImage())
		}
		mse, psnr, err := tok.Evaluate(held)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%v: held-out MSE %.3g (noise %.3g), PSNR %.2f dB; training MSE %.3g", tc, mse, sigma*sigma, psnr, tok.TrainMSE())
		if mse > 1.3*sigma*sigma {
			t.Errorf("%v: held-out MSE %.3g is above 1.3 sigma^2 = %.3g", tc, mse, 1.3*sigma*sigma)
		}
		if math.Abs(psnr-PSNR(mse)) > 1e-9 || math.Abs(PSNR(0.01)-20) > 1e-9 || !math.IsInf(PSNR(0), 1) {
			t.Errorf("PSNR(%v) = %v, reported %v", mse, PSNR(mse), psnr)
		}
		// Evaluate reports exactly the round trip's error.
		rt := roundTripMSE(t, tok, held)
		if math.Abs(rt-mse) > 1e-9*mse {
			t.Errorf("%v: Evaluate MSE %.9g, decode(encode(x)) MSE %.9g", tc, mse, rt)
		}
		if tr := roundTripMSE(t, tok, train); math.Abs(tr-tok.TrainMSE()) > 1e-9*tr {
			t.Errorf("%v: training MSE %.9g, round trip on the training images %.9g", tc, tok.TrainMSE(), tr)
		}
	}
}

// protoImagesSamePatterns is protoImages with the patterns of seed and the
// layout and noise of another seed.
func protoImagesSamePatterns(n, w, h, c, p, nProto int, sigma float64, seed, other uint64) []*media.Image {
	r := rand.New(rand.NewPCG(seed, 2))
	dim := p * p * c
	protos := make([]float32, nProto*dim)
	for i := range protos {
		protos[i] = float32(0.1 + 0.8*r.Float64())
	}
	r = rand.New(rand.NewPCG(other, 3))
	out := make([]*media.Image, n)
	for i := range out {
		im, _ := media.NewImage(w, h, c)
		for py := 0; py < h; py += p {
			for px := 0; px < w; px += p {
				k := r.IntN(nProto)
				for dy := range p {
					for dx := range p {
						for ch := range c {
							v := float64(protos[k*dim+(dy*p+dx)*c+ch]) + sigma*r.NormFloat64()
							im.Pix[((py+dy)*w+px+dx)*c+ch] = float32(min(max(v, 0), 1))
						}
					}
				}
			}
		}
		out[i] = im
	}
	return out
}

// boxAveragePSNR is the PSNR of replacing every p x p patch by its mean
// value: a baseline at about the VQ's rate (one 8-9 bit number per patch).
func boxAveragePSNR(images []*media.Image, p int) float64 {
	sum, n := 0.0, 0
	for _, im := range images {
		for py := 0; py < im.H; py += p {
			for px := 0; px < im.W; px += p {
				for c := range im.C {
					m := 0.0
					for dy := range p {
						for dx := range p {
							m += float64(im.At(px+dx, py+dy, c))
						}
					}
					m /= float64(p * p)
					for dy := range p {
						for dx := range p {
							d := float64(im.At(px+dx, py+dy, c)) - m
							sum += d * d
							n++
						}
					}
				}
			}
		}
	}
	return PSNR(sum / float64(n))
}

func TestFashionMNISTReconstruction(t *testing.T) {
	if _, err := os.Stat(filepath.Join(source.FashionMNISTDir, "train-images-idx3-ubyte.gz")); err != nil {
		t.Skipf("Fashion-MNIST is not installed at %s (Debian package dataset-fashion-mnist): %v", source.FashionMNISTDir, err)
	}
	train, test, err := source.FashionMNIST(source.FashionMNISTDir, 6000)
	if err != nil {
		t.Fatal(err)
	}
	var tr, te []*media.Image
	for _, it := range train {
		tr = append(tr, it.Image)
	}
	for _, it := range test[:2000] {
		te = append(te, it.Image)
	}
	tok, err := Train(tr, Config{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if tok.TokensPerImage() != 49 || tok.Size() != 512 {
		t.Fatalf("defaults give %d tokens of %d codes, want 49 of 512", tok.TokensPerImage(), tok.Size())
	}
	mse, psnr, err := tok.Evaluate(te)
	if err != nil {
		t.Fatal(err)
	}
	box := boxAveragePSNR(te, 4)
	t.Logf("Fashion-MNIST, 6000 training images, 2000 held out: MSE %.5f, PSNR %.2f dB (training MSE %.5f); 4x4 box average %.2f dB", mse, psnr, tok.TrainMSE(), box)
	// Trained on all 60,000 images the defaults reach 22.1 dB on the 10,000
	// test images; a tenth of the data may cost a little. 20 dB is also
	// far above the 4x4 box average (about 14.8 dB), which spends about
	// the same bits per patch on its mean alone: the codes must carry
	// shape.
	if psnr < 20 || psnr < box+4 {
		t.Errorf("held-out PSNR %.2f dB, want at least 20 dB and 4 dB above the box average (%.2f dB)", psnr, box)
	}
}

func TestDeterminism(t *testing.T) {
	images := protoImages(50, 8, 8, 1, 4, 16, 0.05, 3)
	train := func(seed uint64) *Tokenizer {
		tok, err := Train(images, Config{Codes: 16, Steps: 20, BatchSize: 64, Seed: seed})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	a, b, c := train(7), train(7), train(8)
	same := func(x, y *Tokenizer) bool {
		for i, v := range x.Codebook().Centroids {
			if math.Float32bits(v) != math.Float32bits(y.Codebook().Centroids[i]) {
				return false
			}
		}
		return x.TrainMSE() == y.TrainMSE()
	}
	if !same(a, b) {
		t.Error("the same seed gave different codebooks")
	}
	if same(a, c) {
		t.Error("different seeds gave the same codebook")
	}
}

func TestSampledTraining(t *testing.T) {
	// More patches than the pool: Train samples, still deterministically,
	// and learns the patterns.
	images := protoImages(600, 64, 64, 1, 2, 8, 0.01, 4) // 600*1024 patches > 2^19
	cfg := Config{Patch: 2, Codes: 16, Steps: 30, BatchSize: 256, Seed: 1}
	a, err := Train(images, cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Train(images, cfg)
	for i, v := range a.Codebook().Centroids {
		if v != b.Codebook().Centroids[i] {
			t.Fatal("sampled training is not deterministic")
		}
	}
	if mse, _, _ := a.Evaluate(images[:20]); mse > 1.3*0.01*0.01 {
		t.Errorf("sampled training: MSE %.3g, want about the noise %.3g", mse, 0.01*0.01)
	}
}

func TestTrainErrors(t *testing.T) {
	ok := protoImages(10, 8, 8, 1, 4, 4, 0.05, 1)
	other := protoImages(1, 8, 12, 1, 4, 4, 0.05, 1)[0]
	rgb := protoImages(1, 8, 8, 3, 4, 4, 0.05, 1)[0]
	bad := &media.Image{W: 8, H: 8, C: 1, Pix: make([]float32, 10)}
	with := func(i int, im *media.Image) []*media.Image {
		out := append([]*media.Image(nil), ok...)
		out[i] = im
		return out
	}
	for _, tc := range []struct {
		name   string
		images []*media.Image
		cfg    Config
		want   string
	}{
		{"no images", nil, Config{}, "no images"},
		{"other height", with(3, other), Config{Codes: 4}, "image 3 is 8x12x1"},
		{"other channels", with(5, rgb), Config{Codes: 4}, "image 5 is 8x8x3"},
		{"bad pixels", with(2, bad), Config{Codes: 4}, "image 2"},
		{"nil image", with(1, nil), Config{Codes: 4}, "image 1"},
		{"not whole patches", ok, Config{Patch: 3, Codes: 4}, "whole number of 3x3 patches"},
		{"too few patches", ok, Config{Codes: 41}, "fewer than the 41 codes"},
		{"negative", ok, Config{Codes: -1}, "negative"},
	} {
		_, err := Train(tc.images, tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
}

func TestEncodeDecodeErrors(t *testing.T) {
	images := protoImages(10, 8, 8, 1, 4, 4, 0.05, 1)
	tok, err := Train(images, Config{Codes: 4, Steps: 5, BatchSize: 8})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tok.Encode(protoImages(1, 8, 4, 1, 4, 4, 0.05, 1)[0]); err == nil || !strings.Contains(err.Error(), "8x4x1") {
		t.Errorf("encoding an image of another shape: %v", err)
	}
	if _, err := tok.Encode(nil); err == nil {
		t.Error("encoding nil: no error")
	}
	if _, err := tok.Decode(make([]uint32, 3)); err == nil || !strings.Contains(err.Error(), "3 codes") {
		t.Errorf("decoding 3 codes: %v", err)
	}
	if _, err := tok.Decode([]uint32{0, 1, 4, 0}); err == nil || !strings.Contains(err.Error(), "position 2") {
		t.Errorf("decoding an out-of-range code: %v", err)
	}
	if _, _, err := tok.Evaluate([]*media.Image{images[0], rgbOf(images[0])}); err == nil || !strings.Contains(err.Error(), "image 1") {
		t.Errorf("evaluating a mismatched image: %v", err)
	}
	if _, _, err := tok.Evaluate(nil); err == nil {
		t.Error("evaluating no images: no error")
	}
}

func rgbOf(im *media.Image) *media.Image {
	out, _ := media.NewImage(im.W, im.H, 3)
	for i, v := range im.Pix {
		out.Pix[3*i], out.Pix[3*i+1], out.Pix[3*i+2] = v, v, v
	}
	return out
}

func TestPatchify(t *testing.T) {
	for _, tc := range []struct{ w, h, c, p int }{{4, 4, 1, 4}, {8, 4, 3, 2}, {6, 9, 1, 3}, {5, 5, 3, 1}} {
		// Values on a 2^-8 grid: the round trip is bit for bit.
		im, _ := media.NewImage(tc.w, tc.h, tc.c)
		r := rand.New(rand.NewPCG(uint64(tc.w), uint64(tc.p)))
		for i := range im.Pix {
			im.Pix[i] = float32(r.IntN(257)) / 256
		}
		patches, err := Patchify(im, tc.p)
		if err != nil {
			t.Fatal(err)
		}
		// The layout: patch k (raster order) value (dy, dx, c).
		cols := tc.w / tc.p
		for k := range (tc.w / tc.p) * (tc.h / tc.p) {
			for dy := range tc.p {
				for dx := range tc.p {
					for c := range tc.c {
						got := patches[k*tc.p*tc.p*tc.c+(dy*tc.p+dx)*tc.c+c]
						want := 2*im.At((k%cols)*tc.p+dx, (k/cols)*tc.p+dy, c) - 1
						if got != want || got < -1 || got > 1 {
							t.Fatalf("%v: patch %d (%d,%d,%d) = %v, want %v", tc, k, dy, dx, c, got, want)
						}
					}
				}
			}
		}
		back, err := Unpatchify(patches, tc.w, tc.h, tc.c, tc.p)
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range im.Pix {
			if math.Float32bits(back.Pix[i]) != math.Float32bits(v) {
				t.Fatalf("%v: value %d came back as %v, was %v", tc, i, back.Pix[i], v)
			}
		}
		// Any value in [0, 1]: within 2^-24.
		for i := range im.Pix {
			im.Pix[i] = r.Float32()
		}
		patches, _ = Patchify(im, tc.p)
		back, _ = Unpatchify(patches, tc.w, tc.h, tc.c, tc.p)
		for i, v := range im.Pix {
			if math.Abs(float64(back.Pix[i]-v)) > 1.0/(1<<24) {
				t.Fatalf("%v: value %d came back as %v, was %v", tc, i, back.Pix[i], v)
			}
		}
	}
	// Out-of-range model outputs are clamped.
	back, err := Unpatchify([]float32{-3, 3, 0, 1}, 2, 2, 1, 2)
	if err != nil || back.Pix[0] != 0 || back.Pix[1] != 1 || back.Pix[2] != 0.5 || back.Pix[3] != 1 {
		t.Errorf("clamping: %v %v", back, err)
	}
	im, _ := media.NewImage(6, 4, 1)
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"patchify: not whole", func() error { _, err := Patchify(im, 4); return err }()},
		{"patchify: zero patch", func() error { _, err := Patchify(im, 0); return err }()},
		{"patchify: nil", func() error { _, err := Patchify(nil, 2); return err }()},
		{"unpatchify: length", func() error { _, err := Unpatchify(make([]float32, 23), 6, 4, 1, 2); return err }()},
		{"unpatchify: not whole", func() error { _, err := Unpatchify(make([]float32, 24), 6, 4, 1, 4); return err }()},
		{"unpatchify: channels", func() error { _, err := Unpatchify(make([]float32, 48), 6, 4, 2, 2); return err }()},
	} {
		if tc.err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
}

func TestSaveLoad(t *testing.T) {
	images := protoImages(30, 8, 4, 3, 2, 8, 0.05, 9)
	tok, err := Train(images, Config{Patch: 2, Codes: 8, Steps: 10, BatchSize: 32, Seed: 1234567890123})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "vq.safetensors")
	if err := tok.Save(path); err != nil {
		t.Fatal(err)
	}
	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	w, h, c := got.Shape()
	if w != 8 || h != 4 || c != 3 || got.Patch() != 2 || got.Size() != 8 || got.Seed() != 1234567890123 || got.TrainMSE() != tok.TrainMSE() {
		t.Fatalf("loaded %dx%dx%d patch %d size %d seed %d mse %v", w, h, c, got.Patch(), got.Size(), got.Seed(), got.TrainMSE())
	}
	for i, v := range tok.Codebook().Centroids {
		if got.Codebook().Centroids[i] != v {
			t.Fatal("loaded codebook differs")
		}
	}
	a, _ := tok.Encode(images[0])
	b, _ := got.Encode(images[0])
	for i := range a {
		if a[i] != b[i] {
			t.Fatal("loaded tokenizer encodes differently")
		}
	}
	// Other tools see the codebook and its shape.
	ts, meta, err := safetensors.Read(path)
	if err != nil || len(ts) != 1 || ts[0].Name != "codebook" || ts[0].Shape[0] != 8 || ts[0].Shape[1] != 12 || meta["format"] != FileFormat {
		t.Errorf("file: %v %v %v", ts, meta, err)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "none")); err == nil {
		t.Error("loading a missing file: no error")
	}
	os.WriteFile(path, []byte("junk"), 0o644)
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("loading junk: %v", err)
	}
}

// vqFile encodes a tokenizer file with the given metadata and codebook.
func vqFile(t testing.TB, meta map[string]string, tensors ...safetensors.Tensor) []byte {
	var buf bytes.Buffer
	if err := safetensors.Encode(&buf, tensors, meta); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func goodMeta() map[string]string {
	return map[string]string{"format": FileFormat, "version": "1", "patch": "2", "width": "4", "height": "2", "channels": "1", "codes": "3", "seed": "5", "train_mse": "0.01"}
}

func TestParseErrors(t *testing.T) {
	book := safetensors.F32("codebook", []int{3, 4}, make([]float32, 12))
	if _, err := Parse(vqFile(t, goodMeta(), book)); err != nil {
		t.Fatalf("a good file: %v", err)
	}
	edit := func(k, v string) map[string]string {
		m := goodMeta()
		if v == "" {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	nan := make([]float32, 12)
	nan[7] = float32(math.NaN())
	for _, tc := range []struct {
		name string
		file []byte
		want string
	}{
		{"not safetensors", []byte("hello"), "tokenizer file"},
		{"no metadata", vqFile(t, nil, book), "no metadata"},
		{"other format", vqFile(t, edit("format", "mom-bpe"), book), "format"},
		{"new version", vqFile(t, edit("version", "2"), book), "version \"2\""},
		{"no version", vqFile(t, edit("version", ""), book), "version"},
		{"no patch", vqFile(t, edit("patch", ""), book), "\"patch\" is missing"},
		{"zero width", vqFile(t, edit("width", "0"), book), "\"width\""},
		{"two channels", vqFile(t, edit("channels", "2"), book), "2 channels"},
		{"not whole patches", vqFile(t, edit("width", "5"), book), "whole number"},
		{"huge image", vqFile(t, edit("width", "40000"), book), "pixels a side"},
		{"bad seed", vqFile(t, edit("seed", "-1"), book), "seed"},
		{"bad mse", vqFile(t, edit("train_mse", "NaN"), book), "train_mse"},
		{"codes disagree", vqFile(t, edit("codes", "4"), book), "codebook shape [3 4], want [4 4]"},
		{"patch disagrees", vqFile(t, edit("patch", "1"), book), "want [3 1]"},
		{"no codebook", vqFile(t, goodMeta(), safetensors.F32("other", []int{3, 4}, make([]float32, 12))), "want exactly \"codebook\""},
		{"extra tensor", vqFile(t, goodMeta(), book, safetensors.F32("x", []int{1}, []float32{1})), "want exactly"},
		{"not F32", vqFile(t, goodMeta(), safetensors.U32("codebook", []int{3, 4}, make([]uint32, 12))), "not F32"},
		{"NaN value", vqFile(t, goodMeta(), safetensors.F32("codebook", []int{3, 4}, nan)), "centroid 1 value 3"},
	} {
		_, err := Parse(tc.file)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
}

// FuzzParse checks that no input makes Parse panic and that what it
// accepts is a working tokenizer.
func FuzzParse(f *testing.F) {
	book := safetensors.F32("codebook", []int{3, 4}, []float32{0, 0.5, 1, 0.25, 1, 1, 0, 0, 0.1, 0.2, 0.3, 0.4})
	f.Add(vqFile(f, goodMeta(), book))
	m := goodMeta()
	m["version"] = "2"
	f.Add(vqFile(f, m, book))
	m = goodMeta()
	m["channels"] = "3"
	f.Add(vqFile(f, m, book))
	f.Add(vqFile(f, nil, book))
	f.Add([]byte{8, 0, 0, 0, 0, 0, 0, 0, '{', '}', ' ', ' ', ' ', ' ', ' ', ' '})
	f.Fuzz(func(t *testing.T, b []byte) {
		tok, err := Parse(b)
		if err != nil {
			return
		}
		w, h, c := tok.Shape()
		if tok.Size() <= 0 || tok.TokensPerImage() <= 0 || w%tok.Patch() != 0 || h%tok.Patch() != 0 || (c != 1 && c != 3) {
			t.Fatalf("accepted a tokenizer of %dx%dx%d, patch %d, %d codes", w, h, c, tok.Patch(), tok.Size())
		}
		if w*h > 1<<16 {
			return
		}
		im, err := tok.Decode(make([]uint32, tok.TokensPerImage()))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tok.Encode(im); err != nil {
			t.Fatal(err)
		}
	})
}
