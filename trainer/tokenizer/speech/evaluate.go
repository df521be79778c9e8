package speech

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/dsp/fourier"

	"mom/trainer/media"
)

// dBPerLog converts a difference of natural logs of power to decibels.
var dBPerLog = 10 / math.Ln10

// Stats is what Evaluate measures. Distortions are mean squared
// differences per log-mel value (natural log of mel power, so 1 is about
// 4.34 dB), averaged over frames; each has an RMS form in dB.
type Stats struct {
	Clips   int
	Seconds float64 // audio evaluated
	Frames  int     // 10 ms frames
	Tokens  int     // after collapsing, where the tokenizer collapses

	FramesPerSecond, TokensPerSecond float64
	UnitsUsed                        int     // distinct units among the tokens
	UnitsUsedFraction                float64 // UnitsUsed / Size
	EntropyBits                      float64 // unigram entropy of the tokens
	Perplexity                       float64 // 2^EntropyBits
	MeanRunLength                    float64 // frames per run of one unit, before collapsing

	// QuantMSE: each frame against its unit's centroid (de-normalised);
	// QuantNormMSE the same in the normalised space k-means works in.
	QuantMSE, QuantDB float64
	QuantNormMSE      float64
	// VocoderMSE: the original log-mel frames turned into audio (the
	// filterbank's pseudo-inverse and Griffin-Lim) and analysed again,
	// against the original: what decoding loses without quantisation.
	VocoderMSE, VocoderDB float64
	// ResynthMSE: Decode(Encode(clip)) analysed again, against the
	// original: the whole round trip. Frame by frame when the tokenizer
	// does not collapse; after dynamic time warping (ResynthDTW) when it
	// does, since re-expanded runs shift the timing.
	ResynthMSE, ResynthDB float64
	ResynthDTW            bool
}

// String is a one-paragraph summary.
func (s Stats) String() string {
	return fmt.Sprintf("%d clips, %.1f s: %.1f frames/s, %.1f tokens/s; %d units used (%.1f%%), unigram entropy %.2f bits (perplexity %.1f), mean run %.2f frames; "+
		"log-mel RMS error: quantisation %.2f dB (normalised MSE %.3f), vocoder %.2f dB, round trip %.2f dB%s",
		s.Clips, s.Seconds, s.FramesPerSecond, s.TokensPerSecond, s.UnitsUsed, 100*s.UnitsUsedFraction, s.EntropyBits, s.Perplexity, s.MeanRunLength,
		s.QuantDB, s.QuantNormMSE, s.VocoderDB, s.ResynthDB, map[bool]string{true: " (time-warped)", false: ""}[s.ResynthDTW])
}

// clipEval is one clip's share of Stats.
type clipEval struct {
	samples, frames, runs int
	tokens                []uint32
	quant, quantNorm      float64 // sums over values
	vocoder, resynth      float64 // sums over values (resynth: mean over the path x frames when warped)
}

// Evaluate encodes and decodes every clip and measures what is lost (see
// Stats). It runs on all CPUs; decoding dominates (two Griffin-Lim runs
// per clip).
func (t *Tokenizer) Evaluate(clips []*media.Audio) (Stats, error) {
	evals := make([]clipEval, len(clips))
	err := forEach(len(clips), func(i int, fft *fourier.FFT) error {
		e, err := t.evalClip(clips[i], fft)
		if err != nil {
			return fmt.Errorf("speech: evaluating clip %d: %w", i, err)
		}
		evals[i] = e
		return nil
	})
	if err != nil {
		return Stats{}, err
	}
	s := Stats{Clips: len(clips), ResynthDTW: t.collapse}
	counts := make([]int, t.Size())
	runs, samples := 0, 0
	for _, e := range evals {
		samples += e.samples
		s.Frames += e.frames
		s.Tokens += len(e.tokens)
		runs += e.runs
		for _, u := range e.tokens {
			counts[u]++
		}
		s.QuantMSE += e.quant
		s.QuantNormMSE += e.quantNorm
		s.VocoderMSE += e.vocoder
		s.ResynthMSE += e.resynth
	}
	s.Seconds = float64(samples) / Rate
	if s.Seconds > 0 {
		s.FramesPerSecond = float64(s.Frames) / s.Seconds
		s.TokensPerSecond = float64(s.Tokens) / s.Seconds
	}
	if runs > 0 {
		s.MeanRunLength = float64(s.Frames) / float64(runs)
	}
	for _, c := range counts {
		if c > 0 {
			s.UnitsUsed++
			p := float64(c) / float64(s.Tokens)
			s.EntropyBits -= p * math.Log2(p)
		}
	}
	s.UnitsUsedFraction = float64(s.UnitsUsed) / float64(t.Size())
	s.Perplexity = math.Exp2(s.EntropyBits)
	if values := float64(s.Frames * Mels); values > 0 {
		s.QuantMSE /= values
		s.QuantNormMSE /= values
		s.VocoderMSE /= values
		s.ResynthMSE /= values
	}
	s.QuantDB = dBPerLog * math.Sqrt(s.QuantMSE)
	s.VocoderDB = dBPerLog * math.Sqrt(s.VocoderMSE)
	s.ResynthDB = dBPerLog * math.Sqrt(s.ResynthMSE)
	return s, nil
}

func (t *Tokenizer) evalClip(a *media.Audio, fft *fourier.FFT) (clipEval, error) {
	x, err := samples16k(a)
	if err != nil {
		return clipEval{}, err
	}
	orig := logMel(fft, x)
	frames := len(orig) / Mels
	e := clipEval{samples: len(x), frames: frames}
	if frames == 0 {
		return e, nil
	}
	z := append([]float32(nil), orig...)
	codes, dNorm, err := t.frameCodes(z)
	if err != nil {
		return e, err
	}
	e.quantNorm = dNorm * float64(frames)
	e.quant = sqDiff(t.centroidFrames(codes), orig)
	for i := range codes {
		if i == 0 || codes[i] != codes[i-1] {
			e.runs++
		}
	}
	e.tokens = toTokens(codes, t.collapse)

	voc := logMel(fft, toFloat64(logMelToAudio(orig, frames)))
	e.vocoder = sqDiff(voc, orig)

	dec, err := t.Decode(e.tokens)
	if err != nil {
		return e, err
	}
	re := logMel(fft, toFloat64(dec.Samples))
	if !t.collapse {
		e.resynth = sqDiff(re, orig)
	} else {
		e.resynth = dtwMeanSq(orig, re) * float64(frames*Mels)
	}
	return e, nil
}

func toFloat64(x []float32) []float64 {
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = float64(v)
	}
	return out
}

// sqDiff is the sum of squared differences of two equally long slices.
func sqDiff(a, b []float32) float64 {
	s := 0.0
	for i := range a {
		d := float64(a[i] - b[i])
		s += d * d
	}
	return s
}

// dtwMeanSq aligns the frames of a and b (each (n, Mels)) by dynamic time
// warping (steps (1,0), (0,1), (1,1); squared Euclidean frame distance)
// and returns the mean squared difference per value along the cheapest
// path. It keeps two rows, so memory is linear in len(b).
func dtwMeanSq(a, b []float32) float64 {
	n, m := len(a)/Mels, len(b)/Mels
	if n == 0 || m == 0 {
		return 0
	}
	type cell struct {
		cost float64
		len  int
	}
	prev, cur := make([]cell, m), make([]cell, m)
	dist := func(i, j int) float64 { return sqDiff(a[i*Mels:(i+1)*Mels], b[j*Mels:(j+1)*Mels]) }
	for i := range n {
		for j := range m {
			d := dist(i, j)
			switch {
			case i == 0 && j == 0:
				cur[j] = cell{d, 1}
			case i == 0:
				cur[j] = cell{cur[j-1].cost + d, cur[j-1].len + 1}
			case j == 0:
				cur[j] = cell{prev[j].cost + d, prev[j].len + 1}
			default:
				best := prev[j-1]
				if prev[j].cost < best.cost {
					best = prev[j]
				}
				if cur[j-1].cost < best.cost {
					best = cur[j-1]
				}
				cur[j] = cell{best.cost + d, best.len + 1}
			}
		}
		prev, cur = cur, prev
	}
	end := prev[m-1]
	return end.cost / float64(end.len*Mels)
}
