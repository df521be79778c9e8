package speech

import (
	"fmt"
	"math"
	"runtime"
	"sync"

	"gonum.org/v1/gonum/dsp/fourier"

	"mom/trainer/media"
	"mom/trainer/tokenizer/kmeans"
)

// DefaultUnits is the number of units when Config.Units is 0.
const DefaultUnits = 512

// maxUnits bounds the number of units a tokenizer may have.
const maxUnits = 1 << 20

// maxRunLength bounds a unit's mean run length (in frames: 10 s), so
// that a tokenizer file cannot make decoding expand a token without limit.
const maxRunLength = 1000

// stdFloor bounds a band's standard deviation from below (in log units),
// so that a band that never changes in training does not blow up.
const stdFloor = 1e-3

// Config sets up Train.
type Config struct {
	Units    int  // number of units (k-means centroids); 0 means DefaultUnits
	Collapse bool // runs of one unit become one token
	// Steps and BatchSize are k-means' mini-batch steps and size (0: the
	// kmeans package's defaults, 200 and 2048).
	Steps, BatchSize int
	Seed             uint64 // the same seed and clips give the same tokenizer
	// Progress, if set, is called after each k-means step with (done,
	// total).
	Progress func(done, total int)
}

// Tokenizer maps audio to speech units and back.
type Tokenizer struct {
	collapse bool
	seed     uint64
	mean     []float32 // (Mels) per-band mean of the training log-mel frames
	std      []float32 // (Mels) and standard deviation
	runLen   []float32 // (units) mean run length of each unit in frames, >= 1
	book     *kmeans.Codebook
}

// Size is the number of units, the tokenizer's vocabulary size: tokens
// are 0 to Size()-1.
func (t *Tokenizer) Size() int { return t.book.K }

// Collapse tells whether runs of one unit are one token.
func (t *Tokenizer) Collapse() bool { return t.collapse }

// forEach runs f(i) for i in [0, n) on up to GOMAXPROCS goroutines, each
// with its own FFT, and returns the error of the lowest i that failed.
func forEach(n int, f func(i int, fft *fourier.FFT) error) error {
	workers := max(1, min(runtime.GOMAXPROCS(0), n))
	errs := make([]error, n)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fft := fourier.NewFFT(NFFT)
			for i := w; i < n; i += workers {
				errs[i] = f(i, fft)
			}
		}()
	}
	wg.Wait()
	return firstError(errs)
}

func firstError(errs []error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// clipsLogMel computes every clip's log-mel frames in parallel.
func clipsLogMel(clips []*media.Audio) ([][]float32, error) {
	out := make([][]float32, len(clips))
	err := forEach(len(clips), func(i int, fft *fourier.FFT) error {
		x, err := samples16k(clips[i])
		if err != nil {
			return fmt.Errorf("clip %d: %w", i, err)
		}
		out[i] = logMel(fft, x)
		return nil
	})
	return out, err
}

// Train learns a tokenizer from clips: their log-mel frames, normalised per
// band by the mean and standard deviation over all frames, are clustered by
// mini-batch k-means into cfg.Units units; then every frame is assigned,
// and each unit's mean run length is recorded for decoding collapsed
// tokens. It is deterministic for a seed.
func Train(clips []*media.Audio, cfg Config) (*Tokenizer, error) {
	if cfg.Units == 0 {
		cfg.Units = DefaultUnits
	}
	if cfg.Units < 1 || cfg.Units > maxUnits {
		return nil, fmt.Errorf("speech: %d units (want 1 to %d)", cfg.Units, maxUnits)
	}
	lms, err := clipsLogMel(clips)
	if err != nil {
		return nil, fmt.Errorf("speech: training: %w", err)
	}
	n := 0
	perClip := make([]int, len(lms))
	for i, lm := range lms {
		perClip[i] = len(lm) / Mels
		n += perClip[i]
	}
	if n < cfg.Units {
		return nil, fmt.Errorf("speech: training: %d frames from %d clips cannot train %d units", n, len(clips), cfg.Units)
	}
	t := &Tokenizer{collapse: cfg.Collapse, seed: cfg.Seed, mean: make([]float32, Mels), std: make([]float32, Mels)}
	var sum, sq [Mels]float64
	for _, lm := range lms {
		for i, v := range lm {
			sum[i%Mels] += float64(v)
		}
	}
	for m := range Mels {
		t.mean[m] = float32(sum[m] / float64(n))
	}
	for _, lm := range lms {
		for i, v := range lm {
			d := float64(v - t.mean[i%Mels])
			sq[i%Mels] += d * d
		}
	}
	for m := range Mels {
		t.std[m] = float32(max(stdFloor, math.Sqrt(sq[m]/float64(n))))
	}
	data := make([]float32, 0, n*Mels)
	for i, lm := range lms {
		data = append(data, lm...)
		lms[i] = nil
	}
	t.normalise(data)
	t.book, err = kmeans.Train(data, Mels, kmeans.Config{K: cfg.Units, Steps: cfg.Steps, BatchSize: cfg.BatchSize, Seed: cfg.Seed, Progress: cfg.Progress})
	if err != nil {
		return nil, fmt.Errorf("speech: training units: %w", err)
	}
	codes := make([]int32, n)
	if _, err := t.book.Assign(data, codes); err != nil {
		return nil, fmt.Errorf("speech: training units: %w", err)
	}
	t.runLen = runLengths(codes, perClip, cfg.Units)
	return t, nil
}

// runLengths returns each unit's mean run length in frames (1 for a unit
// never seen) from the codes of all frames, runs counted clip by clip
// (perClip frames each).
func runLengths(codes []int32, perClip []int, units int) []float32 {
	frames := make([]float64, units)
	runs := make([]float64, units)
	off := 0
	for _, nf := range perClip {
		c := codes[off : off+nf]
		for i := 0; i < len(c); {
			j := i + 1
			for j < len(c) && c[j] == c[i] {
				j++
			}
			frames[c[i]] += float64(j - i)
			runs[c[i]]++
			i = j
		}
		off += nf
	}
	out := make([]float32, units)
	for k := range out {
		out[k] = 1
		if runs[k] > 0 {
			out[k] = float32(min(maxRunLength, frames[k]/runs[k]))
		}
	}
	return out
}

// normalise maps log-mel frames to the units' space in place.
func (t *Tokenizer) normalise(lm []float32) {
	for i := range lm {
		m := i % Mels
		lm[i] = (lm[i] - t.mean[m]) / t.std[m]
	}
}

// denormalise maps unit-space frames back to log-mel in place.
func (t *Tokenizer) denormalise(z []float32) {
	for i := range z {
		m := i % Mels
		z[i] = z[i]*t.std[m] + t.mean[m]
	}
}

// frameCodes returns the nearest unit of each normalised frame of lm
// (modified in place) and the mean squared distance (normalised units).
func (t *Tokenizer) frameCodes(lm []float32) ([]int32, float64, error) {
	t.normalise(lm)
	codes := make([]int32, len(lm)/Mels)
	d, err := t.book.Assign(lm, codes)
	return codes, d, err
}

// collapseRuns turns each run of one unit into one token.
func collapseRuns(codes []int32) []uint32 {
	out := make([]uint32, 0, len(codes))
	for i, c := range codes {
		if i == 0 || c != codes[i-1] {
			out = append(out, uint32(c))
		}
	}
	return out
}

func toTokens(codes []int32, collapse bool) []uint32 {
	if collapse {
		return collapseRuns(codes)
	}
	out := make([]uint32, len(codes))
	for i, c := range codes {
		out[i] = uint32(c)
	}
	return out
}

// Encode maps a (resampled to 16 kHz if needed) to units, one per 10 ms
// frame; with Collapse, each run of one unit is one token.
func (t *Tokenizer) Encode(a *media.Audio) ([]uint32, error) {
	lm, err := LogMel(a)
	if err != nil {
		return nil, err
	}
	codes, _, err := t.frameCodes(lm)
	if err != nil {
		return nil, fmt.Errorf("speech: encoding: %w", err)
	}
	return toTokens(codes, t.collapse), nil
}

// expand turns tokens into one unit per frame: with Collapse, token u
// stands for runLen[u] frames, rounded so that the total stays within half
// a frame of the sum of the run lengths (every token gets at least one).
func (t *Tokenizer) expand(units []uint32) ([]int32, error) {
	for i, u := range units {
		if int64(u) >= int64(t.book.K) {
			return nil, fmt.Errorf("speech: decoding: unit %d at position %d is out of range (the tokenizer has %d units)", u, i, t.book.K)
		}
	}
	if !t.collapse {
		out := make([]int32, len(units))
		for i, u := range units {
			out[i] = int32(u)
		}
		return out, nil
	}
	var out []int32
	acc := 0.0
	for _, u := range units {
		acc += float64(t.runLen[u])
		for float64(len(out)) < math.Round(acc) {
			out = append(out, int32(u))
		}
	}
	return out, nil
}

// Decode turns units back into 16 kHz audio: each frame's unit gives its
// centroid's log-mel frame (de-normalised), which the filterbank's
// pseudo-inverse and Griffin-Lim turn into sound (see the package doc).
// Each frame is 10 ms; collapsed tokens are re-expanded by their units'
// mean run lengths.
func (t *Tokenizer) Decode(units []uint32) (*media.Audio, error) {
	codes, err := t.expand(units)
	if err != nil {
		return nil, err
	}
	return &media.Audio{Rate: Rate, Samples: logMelToAudio(t.centroidFrames(codes), len(codes))}, nil
}

// centroidFrames is the de-normalised centroid of each code, (len, Mels).
func (t *Tokenizer) centroidFrames(codes []int32) []float32 {
	lm := make([]float32, len(codes)*Mels)
	for i, c := range codes {
		copy(lm[i*Mels:], t.book.Centroid(int(c)))
	}
	t.denormalise(lm)
	return lm
}
