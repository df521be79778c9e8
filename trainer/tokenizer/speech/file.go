package speech

import (
	"fmt"
	"math"
	"os"
	"strconv"

	"mom/trainer/safetensors"
	"mom/trainer/tokenizer/kmeans"
)

// The tokenizer file: safetensors with these tensors (F32) and metadata.
const (
	// FileFormat is the metadata "format" of a speech tokenizer file, and
	// FileVersion its "version"; Parse reads only this version.
	FileFormat  = "mom-speech-units"
	FileVersion = 1
)

// settings are the metadata entries that must equal this build's
// constants.
func settings() map[string]string {
	return map[string]string{
		"rate":          strconv.Itoa(Rate),
		"window":        strconv.Itoa(WindowLength),
		"window_kind":   "hann-periodic",
		"hop":           strconv.Itoa(Hop),
		"n_fft":         strconv.Itoa(NFFT),
		"mels":          strconv.Itoa(Mels),
		"mel_scale":     MelScale,
		"mel_fmin":      "0",
		"mel_fmax":      strconv.Itoa(Rate / 2),
		"log_eps":       strconv.FormatFloat(LogEps, 'g', -1, 64),
		"griffin_lim":   strconv.Itoa(GriffinLimIters),
		"gl_momentum":   strconv.FormatFloat(GriffinLimMomentum, 'g', -1, 64),
		"frame_centred": "true",
	}
}

// Save writes the tokenizer to path (atomically) as safetensors: tensors
// "centroids" (units, mels) in the normalised space, "mel_mean" and
// "mel_std" (mels), "run_length" (units); metadata: format, version, the
// feature settings (rate, window, hop, n_fft, mels, mel scale, ...), units,
// collapse and seed.
func (t *Tokenizer) Save(path string) error {
	meta := settings()
	meta["format"] = FileFormat
	meta["version"] = strconv.Itoa(FileVersion)
	meta["units"] = strconv.Itoa(t.Size())
	meta["collapse"] = strconv.FormatBool(t.collapse)
	meta["seed"] = strconv.FormatUint(t.seed, 10)
	k := t.Size()
	tensors := []safetensors.Tensor{
		safetensors.F32("centroids", []int{k, Mels}, t.book.Centroids),
		safetensors.F32("mel_mean", []int{Mels}, t.mean),
		safetensors.F32("mel_std", []int{Mels}, t.std),
		safetensors.F32("run_length", []int{k}, t.runLen),
	}
	if err := safetensors.Write(path, tensors, meta); err != nil {
		return fmt.Errorf("speech: saving tokenizer: %w", err)
	}
	return nil
}

// Load reads a tokenizer file written by Save.
func Load(path string) (*Tokenizer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("speech: loading tokenizer: %w", err)
	}
	t, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// Parse reads a tokenizer file held in b. It checks the format and
// version, that the feature settings are this build's, the tensors' names,
// dtypes and shapes, and that every value is finite (standard deviations
// positive, run lengths from 1 to maxRunLength frames).
func Parse(b []byte) (*Tokenizer, error) {
	tensors, meta, err := safetensors.Decode(b)
	if err != nil {
		return nil, fmt.Errorf("speech: tokenizer file: %w", err)
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("speech: tokenizer file: %s", fmt.Sprintf(format, args...))
	}
	if f := meta["format"]; f != FileFormat {
		return nil, bad("format %q, want %q (not a speech tokenizer)", f, FileFormat)
	}
	if v := meta["version"]; v != strconv.Itoa(FileVersion) {
		return nil, bad("version %q is not supported (this build reads version %d)", v, FileVersion)
	}
	for key, want := range settings() {
		if got, ok := meta[key]; !ok {
			return nil, bad("metadata lacks %q", key)
		} else if got != want {
			return nil, bad("made with %s = %s; this build computes %s", key, got, want)
		}
	}
	units, err := strconv.Atoi(meta["units"])
	if err != nil || units < 1 || units > maxUnits {
		return nil, bad("units %q (want 1 to %d)", meta["units"], maxUnits)
	}
	collapse, err := strconv.ParseBool(meta["collapse"])
	if err != nil {
		return nil, bad("collapse %q is not true or false", meta["collapse"])
	}
	seed, err := strconv.ParseUint(meta["seed"], 10, 64)
	if err != nil {
		return nil, bad("seed %q is not an unsigned integer", meta["seed"])
	}
	want := map[string][]int{"centroids": {units, Mels}, "mel_mean": {Mels}, "mel_std": {Mels}, "run_length": {units}}
	vals := map[string][]float32{}
	for _, ts := range tensors {
		shape, ok := want[ts.Name]
		if !ok {
			return nil, bad("unexpected tensor %q", ts.Name)
		}
		if !sameShape(ts.Shape, shape) {
			return nil, bad("tensor %s has shape %v, want %v", ts.Name, ts.Shape, shape)
		}
		v, err := ts.Float32s()
		if err != nil {
			return nil, bad("%v", err)
		}
		for i, x := range v {
			if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
				return nil, bad("tensor %s value %d is %v", ts.Name, i, x)
			}
		}
		vals[ts.Name] = v
	}
	for name := range want {
		if vals[name] == nil {
			return nil, bad("missing tensor %q", name)
		}
	}
	for i, s := range vals["mel_std"] {
		if s <= 0 {
			return nil, bad("mel_std value %d is %v, not positive", i, s)
		}
	}
	for i, r := range vals["run_length"] {
		if r < 1 || r > maxRunLength {
			return nil, bad("run_length value %d is %v (want 1 to %d frames)", i, r, maxRunLength)
		}
	}
	book, err := kmeans.New(units, Mels, vals["centroids"])
	if err != nil {
		return nil, bad("%v", err)
	}
	return &Tokenizer{collapse: collapse, seed: seed, mean: vals["mel_mean"], std: vals["mel_std"], runLen: vals["run_length"], book: book}, nil
}

func sameShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
