package vq

import (
	"fmt"
	"math"
	"math/rand/v2"

	"mom/trainer/media"
	"mom/trainer/tokenizer/kmeans"
)

// Defaults of Config.
const (
	DefaultPatch     = 4
	DefaultCodes     = 512
	DefaultSteps     = 200
	DefaultBatchSize = 2048
)

// maxTrainPatches bounds the patches Train keeps in memory: when the
// images hold more, it trains on a uniform sample (without replacement) of
// this many, or of Steps*BatchSize when that is larger. Mini-batch k-means
// draws Steps*BatchSize vectors in all (409,600 with the defaults), so a
// larger pool would change little but the memory and the time to measure
// the training error. (On Fashion-MNIST, more steps, larger batches or
// eight full Lloyd iterations after the mini-batches each gained less
// than 0.15 dB of held-out PSNR.)
const maxTrainPatches = 1 << 19

// Config sets up Train.
type Config struct {
	Patch     int    // patch side p in pixels (default 4)
	Codes     int    // codebook size (default 512)
	Steps     int    // mini-batch k-means steps (default 200)
	BatchSize int    // patches per mini-batch (default 2048)
	Seed      uint64 // the same seed and images give the same tokenizer
	// Progress, if set, is called after each k-means step with (done,
	// total).
	Progress func(done, total int)
}

// Tokenizer turns images of one shape (W x H pixels, C channels) into
// (H/p)*(W/p) discrete codes, one per p x p patch in raster order, and
// back: a code decodes to its centroid, the mean of the training patches
// it stands for.
type Tokenizer struct {
	patch, w, h, c int
	seed           uint64
	trainMSE       float64 // per value, on the training patches
	book           *kmeans.Codebook
}

// checkShape reports an image that is invalid or whose sides are not
// multiples of p.
func checkShape(im *media.Image, p int) error {
	if err := im.Validate(); err != nil {
		return err
	}
	if p <= 0 {
		return fmt.Errorf("patch size %d must be positive", p)
	}
	if im.W%p != 0 || im.H%p != 0 {
		return fmt.Errorf("image %dx%d is not a whole number of %dx%d patches", im.W, im.H, p, p)
	}
	return nil
}

// Train learns a tokenizer from images, which must all have the same
// width, height and channels (the error names the first that does not),
// width and height multiples of cfg.Patch: mini-batch k-means (package
// kmeans, seeded by cfg.Seed) over their p x p patches, each a vector of
// p*p*C values in [0, 1], row-major (dy, dx, c). With more than 2^19
// patches (or Steps*BatchSize, if larger) it trains on a seeded uniform
// sample of that many. The training MSE (per value) it records is that of
// those training patches against their nearest codes.
func Train(images []*media.Image, cfg Config) (*Tokenizer, error) {
	if cfg.Patch == 0 {
		cfg.Patch = DefaultPatch
	}
	if cfg.Codes == 0 {
		cfg.Codes = DefaultCodes
	}
	if cfg.Steps == 0 {
		cfg.Steps = DefaultSteps
	}
	if cfg.BatchSize == 0 {
		cfg.BatchSize = DefaultBatchSize
	}
	if cfg.Patch < 0 || cfg.Codes < 0 || cfg.Steps < 0 || cfg.BatchSize < 0 {
		return nil, fmt.Errorf("vq: patch %d, codes %d, steps %d, batch %d: none may be negative", cfg.Patch, cfg.Codes, cfg.Steps, cfg.BatchSize)
	}
	if len(images) == 0 {
		return nil, fmt.Errorf("vq: no images to train on")
	}
	first := images[0]
	if err := checkShape(first, cfg.Patch); err != nil {
		return nil, fmt.Errorf("vq: image 0: %w", err)
	}
	for i, im := range images[1:] {
		if err := im.Validate(); err != nil {
			return nil, fmt.Errorf("vq: image %d: %w", i+1, err)
		}
		if im.W != first.W || im.H != first.H || im.C != first.C {
			return nil, fmt.Errorf("vq: image %d is %dx%dx%d, but image 0 is %dx%dx%d: all must have one shape", i+1, im.W, im.H, im.C, first.W, first.H, first.C)
		}
	}
	t := &Tokenizer{patch: cfg.Patch, w: first.W, h: first.H, c: first.C, seed: cfg.Seed}
	per, dim := t.TokensPerImage(), t.dim()
	total := len(images) * per
	if total < cfg.Codes {
		return nil, fmt.Errorf("vq: %d images of %d patches are %d patches, fewer than the %d codes", len(images), per, total, cfg.Codes)
	}
	keep := min(total, max(maxTrainPatches, cfg.Steps*cfg.BatchSize))
	data := make([]float32, keep*dim)
	if keep == total {
		for i, im := range images {
			t.patchesInto(data[i*per*dim:(i+1)*per*dim], im, 1, 0)
		}
	} else {
		// A seeded sample without replacement: the first keep entries of
		// a partial Fisher-Yates shuffle of all patch indices.
		rng := rand.New(rand.NewPCG(cfg.Seed, 0x7671)) // "vq"
		idx := make([]int32, total)
		for i := range idx {
			idx[i] = int32(i)
		}
		buf := make([]float32, per*dim)
		for k := range keep {
			j := k + rng.IntN(total-k)
			idx[k], idx[j] = idx[j], idx[k]
		}
		sel := idx[:keep]
		// Group by image so that each is cut into patches once.
		byImage := make(map[int32][]int, 0)
		for k, g := range sel {
			byImage[g/int32(per)] = append(byImage[g/int32(per)], k)
		}
		for i, im := range images {
			ks := byImage[int32(i)]
			if len(ks) == 0 {
				continue
			}
			t.patchesInto(buf, im, 1, 0)
			for _, k := range ks {
				p := int(sel[k]) % per
				copy(data[k*dim:(k+1)*dim], buf[p*dim:(p+1)*dim])
			}
		}
	}
	book, err := kmeans.Train(data, dim, kmeans.Config{K: cfg.Codes, Steps: cfg.Steps, BatchSize: cfg.BatchSize, Seed: cfg.Seed, Progress: cfg.Progress})
	if err != nil {
		return nil, fmt.Errorf("vq: %w", err)
	}
	t.book = book
	sum, err := t.sqError(data)
	if err != nil {
		return nil, err
	}
	t.trainMSE = sum / float64(len(data))
	return t, nil
}

// dim is the number of values in a patch.
func (t *Tokenizer) dim() int { return t.patch * t.patch * t.c }

// TokensPerImage is (H/p)*(W/p), the number of codes of an image.
func (t *Tokenizer) TokensPerImage() int { return (t.w / t.patch) * (t.h / t.patch) }

// Size is the number of codes; every code is in [0, Size()).
func (t *Tokenizer) Size() int { return t.book.K }

// Shape is the width, height and channels of the images the tokenizer
// takes.
func (t *Tokenizer) Shape() (w, h, c int) { return t.w, t.h, t.c }

// Patch is the patch side in pixels.
func (t *Tokenizer) Patch() int { return t.patch }

// TrainMSE is the mean squared error per value (values in [0, 1]) of the
// training patches against their codes' centroids.
func (t *Tokenizer) TrainMSE() float64 { return t.trainMSE }

// Seed is the seed the tokenizer was trained with.
func (t *Tokenizer) Seed() uint64 { return t.seed }

// Codebook is the learned codebook, (Size, p*p*C) centroids of patch
// values in [0, 1] laid out as Patchify lays out a patch (without its
// normalisation). It is the tokenizer's own: do not modify it.
func (t *Tokenizer) Codebook() *kmeans.Codebook { return t.book }

// checkImage reports an image the tokenizer cannot take.
func (t *Tokenizer) checkImage(im *media.Image) error {
	if err := im.Validate(); err != nil {
		return err
	}
	if im.W != t.w || im.H != t.h || im.C != t.c {
		return fmt.Errorf("image is %dx%dx%d, the tokenizer takes %dx%dx%d (resize it first)", im.W, im.H, im.C, t.w, t.h, t.c)
	}
	return nil
}

// patchesInto writes the image's patches in raster order, each row-major
// (dy, dx, c), as scale*v+offset, into dst (TokensPerImage*dim values).
func (t *Tokenizer) patchesInto(dst []float32, im *media.Image, scale, offset float32) {
	cutPatches(dst, im, t.patch, scale, offset)
}

func cutPatches(dst []float32, im *media.Image, p int, scale, offset float32) {
	o := 0
	rowLen := p * im.C
	for py := 0; py < im.H; py += p {
		for px := 0; px < im.W; px += p {
			for dy := range p {
				src := im.Pix[((py+dy)*im.W+px)*im.C:][:rowLen]
				for _, v := range src {
					dst[o] = scale*v + offset
					o++
				}
			}
		}
	}
}

// sqError is the summed squared error (float64, in a fixed order) of
// whole patches against their nearest codes' clamped centroids.
func (t *Tokenizer) sqError(patches []float32) (float64, error) {
	dim := t.dim()
	codes := make([]int32, len(patches)/dim)
	if _, err := t.book.Assign(patches, codes); err != nil {
		return 0, fmt.Errorf("vq: %w", err)
	}
	sum := 0.0
	for i, k := range codes {
		cen := t.book.Centroid(int(k))
		for j, v := range patches[i*dim : (i+1)*dim] {
			d := float64(v) - float64(clamp01(cen[j]))
			sum += d * d
		}
	}
	return sum, nil
}

func clamp01(v float32) float32 { return min(max(v, 0), 1) }

// Encode maps each p x p patch of the image, in raster order, to the index
// of its nearest code (squared Euclidean distance; the lowest index on a
// tie). The image must have the tokenizer's shape.
func (t *Tokenizer) Encode(im *media.Image) ([]uint32, error) {
	if err := t.checkImage(im); err != nil {
		return nil, fmt.Errorf("vq: encoding: %w", err)
	}
	dim := t.dim()
	patches := make([]float32, t.TokensPerImage()*dim)
	t.patchesInto(patches, im, 1, 0)
	out := make([]uint32, t.TokensPerImage())
	for i := range out {
		k, _ := t.book.Nearest(patches[i*dim : (i+1)*dim])
		out[i] = uint32(k)
	}
	return out, nil
}

// Decode turns TokensPerImage codes back into an image: each patch is its
// code's centroid, clamped to [0, 1].
func (t *Tokenizer) Decode(codes []uint32) (*media.Image, error) {
	if len(codes) != t.TokensPerImage() {
		return nil, fmt.Errorf("vq: decoding %d codes, an image is %d", len(codes), t.TokensPerImage())
	}
	im, err := media.NewImage(t.w, t.h, t.c)
	if err != nil {
		return nil, fmt.Errorf("vq: %w", err)
	}
	p, c, cols := t.patch, t.c, t.w/t.patch
	for i, k := range codes {
		if int(k) >= t.Size() {
			return nil, fmt.Errorf("vq: code %d at position %d is out of range [0, %d)", k, i, t.Size())
		}
		cen := t.book.Centroid(int(k))
		py, px := (i/cols)*p, (i%cols)*p
		for dy := range p {
			row := im.Pix[((py+dy)*t.w+px)*c:][:p*c]
			for j := range row {
				row[j] = clamp01(cen[dy*p*c+j])
			}
		}
	}
	return im, nil
}

// evalChunk is the number of images Evaluate cuts into patches at once.
const evalChunk = 2048

// Evaluate measures how much an image loses through the tokenizer: the
// mean squared error per value between each image and Decode(Encode(image)),
// over all images, and the PSNR in dB for a peak of 1 (10*log10(1/mse);
// +Inf when nothing is lost). Use images the tokenizer was not trained on.
func (t *Tokenizer) Evaluate(images []*media.Image) (mse, psnr float64, err error) {
	if len(images) == 0 {
		return 0, 0, fmt.Errorf("vq: evaluating on no images")
	}
	per, dim := t.TokensPerImage(), t.dim()
	buf := make([]float32, min(len(images), evalChunk)*per*dim)
	sum := 0.0
	for start := 0; start < len(images); start += evalChunk {
		chunk := images[start:min(start+evalChunk, len(images))]
		for i, im := range chunk {
			if err := t.checkImage(im); err != nil {
				return 0, 0, fmt.Errorf("vq: evaluating image %d: %w", start+i, err)
			}
			t.patchesInto(buf[i*per*dim:(i+1)*per*dim], im, 1, 0)
		}
		s, err := t.sqError(buf[:len(chunk)*per*dim])
		if err != nil {
			return 0, 0, err
		}
		sum += s
	}
	mse = sum / float64(len(images)*per*dim)
	return mse, PSNR(mse), nil
}

// PSNR is the peak signal-to-noise ratio in dB of a mean squared error
// for values with a peak of 1: 10*log10(1/mse).
func PSNR(mse float64) float64 {
	if mse <= 0 {
		return math.Inf(1)
	}
	return -10 * math.Log10(mse)
}

// Patchify cuts an image into p x p patches for the continuous
// (Transfusion) setting: (H/p)*(W/p) patches in raster order, each p*p*C
// values row-major (dy, dx, c), every value v in [0, 1] mapped to 2v-1 in
// [-1, 1]. W and H must be multiples of p.
func Patchify(im *media.Image, p int) ([]float32, error) {
	if err := checkShape(im, p); err != nil {
		return nil, fmt.Errorf("vq: patchify: %w", err)
	}
	out := make([]float32, len(im.Pix))
	cutPatches(out, im, p, 2, -1)
	return out, nil
}

// Unpatchify is Patchify's inverse: it lays the patches of a w x h image
// of c channels back out and maps each value x to (x+1)/2, clamped to
// [0, 1] (model outputs may stray out of range). For values Patchify
// produced the round trip is exact up to float32 rounding of the affine
// map (an error of at most 2^-24), and bit for bit for values on a grid
// of 2^-k with k <= 23.
func Unpatchify(patches []float32, w, h, c, p int) (*media.Image, error) {
	im, err := media.NewImage(w, h, c)
	if err != nil {
		return nil, fmt.Errorf("vq: unpatchify: %w", err)
	}
	if p <= 0 || w%p != 0 || h%p != 0 {
		return nil, fmt.Errorf("vq: unpatchify: image %dx%d is not a whole number of %dx%d patches", w, h, p, p)
	}
	if len(patches) != w*h*c {
		return nil, fmt.Errorf("vq: unpatchify: %d values for a %dx%dx%d image of %d", len(patches), w, h, c, w*h*c)
	}
	o, rowLen := 0, p*c
	for py := 0; py < h; py += p {
		for px := 0; px < w; px += p {
			for dy := range p {
				dst := im.Pix[((py+dy)*w+px)*c:][:rowLen]
				for j := range dst {
					dst[j] = clamp01((patches[o] + 1) / 2)
					o++
				}
			}
		}
	}
	return im, nil
}
