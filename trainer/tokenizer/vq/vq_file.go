package vq

import (
	"fmt"
	"math"
	"os"
	"strconv"

	"mom/trainer/safetensors"
	"mom/trainer/tokenizer/kmeans"
)

// The tokenizer file: safetensors with one tensor, "codebook" (F32,
// (codes, p*p*C), each row a patch of values in [0, 1] laid out row-major
// (dy, dx, c)), and string metadata: "format" = FileFormat, "version" =
// FileVersion, "patch", "width", "height", "channels", "codes", "seed"
// (decimal integers) and "train_mse" (per value, decimal).
const (
	FileFormat  = "mom-vq-image"
	FileVersion = 1
)

// Limits a file must respect.
const (
	maxSide  = 1 << 14
	maxCodes = 1 << 24
)

// Save writes the tokenizer to path (see FileFormat), atomically.
func (t *Tokenizer) Save(path string) error {
	meta := map[string]string{
		"format":    FileFormat,
		"version":   strconv.Itoa(FileVersion),
		"patch":     strconv.Itoa(t.patch),
		"width":     strconv.Itoa(t.w),
		"height":    strconv.Itoa(t.h),
		"channels":  strconv.Itoa(t.c),
		"codes":     strconv.Itoa(t.book.K),
		"seed":      strconv.FormatUint(t.seed, 10),
		"train_mse": strconv.FormatFloat(t.trainMSE, 'g', -1, 64),
	}
	ts := []safetensors.Tensor{safetensors.F32("codebook", []int{t.book.K, t.book.Dim}, t.book.Centroids)}
	if err := safetensors.Write(path, ts, meta); err != nil {
		return fmt.Errorf("vq: saving tokenizer: %w", err)
	}
	return nil
}

// Load reads a tokenizer file written by Save (see Parse).
func Load(path string) (*Tokenizer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("vq: loading tokenizer: %w", err)
	}
	t, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%w (file %s)", err, path)
	}
	return t, nil
}

// Parse reads a tokenizer from the bytes of a file written by Save. It
// checks the safetensors structure, the format name and version, that the
// sizes are positive and consistent (width and height multiples of the
// patch, channels 1 or 3), that the codebook is the one F32 tensor and has
// shape (codes, patch*patch*channels), and that every value is finite.
func Parse(b []byte) (*Tokenizer, error) {
	ts, meta, err := safetensors.Decode(b)
	if err != nil {
		return nil, fmt.Errorf("vq: tokenizer file: %w", err)
	}
	if meta == nil {
		return nil, fmt.Errorf("vq: tokenizer file has no metadata (not a %s file)", FileFormat)
	}
	if meta["format"] != FileFormat {
		return nil, fmt.Errorf("vq: tokenizer file: format %q, want %q", meta["format"], FileFormat)
	}
	v, err := strconv.Atoi(meta["version"])
	if err != nil || v != FileVersion {
		return nil, fmt.Errorf("vq: tokenizer file: version %q is not supported (this build reads version %d)", meta["version"], FileVersion)
	}
	ints := map[string]int{}
	for _, k := range []string{"patch", "width", "height", "channels", "codes"} {
		s, ok := meta[k]
		if !ok {
			return nil, fmt.Errorf("vq: tokenizer file: metadata %q is missing", k)
		}
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("vq: tokenizer file: metadata %q = %q is not a positive integer", k, s)
		}
		ints[k] = n
	}
	p, w, h, c, k := ints["patch"], ints["width"], ints["height"], ints["channels"], ints["codes"]
	switch {
	case w > maxSide || h > maxSide:
		return nil, fmt.Errorf("vq: tokenizer file: image %dx%d is over %d pixels a side", w, h, maxSide)
	case c != 1 && c != 3:
		return nil, fmt.Errorf("vq: tokenizer file: %d channels, want 1 or 3", c)
	case w%p != 0 || h%p != 0:
		return nil, fmt.Errorf("vq: tokenizer file: image %dx%d is not a whole number of %dx%d patches", w, h, p, p)
	case k > maxCodes:
		return nil, fmt.Errorf("vq: tokenizer file: %d codes, over the limit of %d", k, maxCodes)
	}
	seed, err := strconv.ParseUint(meta["seed"], 10, 64)
	if err != nil {
		return nil, fmt.Errorf("vq: tokenizer file: metadata \"seed\" = %q is not an unsigned integer", meta["seed"])
	}
	mse, err := strconv.ParseFloat(meta["train_mse"], 64)
	if err != nil || math.IsNaN(mse) || math.IsInf(mse, 0) || mse < 0 {
		return nil, fmt.Errorf("vq: tokenizer file: metadata \"train_mse\" = %q is not a finite non-negative number", meta["train_mse"])
	}
	if len(ts) != 1 || ts[0].Name != "codebook" {
		names := make([]string, len(ts))
		for i, t := range ts {
			names[i] = t.Name
		}
		return nil, fmt.Errorf("vq: tokenizer file holds tensors %q, want exactly \"codebook\"", names)
	}
	cb := ts[0]
	dim := p * p * c
	if len(cb.Shape) != 2 || cb.Shape[0] != k || cb.Shape[1] != dim {
		return nil, fmt.Errorf("vq: tokenizer file: codebook shape %v, want [%d %d] (codes, patch*patch*channels)", cb.Shape, k, dim)
	}
	vals, err := cb.Float32s()
	if err != nil {
		return nil, fmt.Errorf("vq: tokenizer file: %w", err)
	}
	book, err := kmeans.New(k, dim, vals)
	if err != nil {
		return nil, fmt.Errorf("vq: tokenizer file: %w", err)
	}
	return &Tokenizer{patch: p, w: w, h: h, c: c, seed: seed, trainMSE: mse, book: book}, nil
}
