package speech

import (
	"errors"
	"fmt"
	"math"
	"math/cmplx"
	"math/rand/v2"
	"sync"

	"gonum.org/v1/gonum/dsp/fourier"
	"gonum.org/v1/gonum/mat"

	"mom/trainer/media"
)

// The features' settings; a tokenizer file records them and Parse refuses
// a file made with others.
const (
	Rate         = 16000 // samples per second of the audio the units describe
	WindowLength = 400   // 25 ms analysis window (periodic Hann)
	Hop          = 160   // 10 ms between frames
	NFFT         = 512   // FFT length (the window is zero-padded)
	Mels         = 80    // mel bands, 0 to Rate/2 on the Slaney scale
	Bins         = NFFT/2 + 1
	// LogEps is added to the mel power before the log: 60 dB below the
	// loudest 1% of mel values of espeak-ng's speech (which peaks near full
	// scale), and far above the noise floor of 16-bit audio, so that
	// inaudible differences in near-silence do not dominate distances.
	LogEps = 1e-4
	// MelScale names the mel formula, for the file's metadata.
	MelScale = "slaney"
	// GriffinLimIters is the number of phase-reconstruction iterations of
	// Decode, and GriffinLimMomentum the fast Griffin-Lim's momentum
	// (Perraudin, Balazs and Sondergaard, 2013).
	GriffinLimIters    = 32
	GriffinLimMomentum = 0.99
	// griffinLimSeed seeds the initial random phases, so that decoding is
	// deterministic.
	griffinLimSeed = 0x6d6f6d2d676c
)

// slaneyMel is the Slaney (Auditory Toolbox) mel scale, as librosa uses by
// default: linear below 1 kHz (3 mels per 200 Hz), logarithmic above (27
// mels per factor 6.4).
func slaneyMel(hz float64) float64 {
	if hz < 1000 {
		return hz * 3 / 200
	}
	return 15 + math.Log(hz/1000)*27/math.Log(6.4)
}

// slaneyHz inverts slaneyMel.
func slaneyHz(mel float64) float64 {
	if mel < 15 {
		return mel * 200 / 3
	}
	return 1000 * math.Exp((mel-15)*math.Log(6.4)/27)
}

// melEdges returns the Mels+2 band edges in Hz: band m rises from edge m,
// peaks at edge m+1 and falls to edge m+2.
func melEdges() []float64 {
	lo, hi := slaneyMel(0), slaneyMel(Rate/2)
	e := make([]float64, Mels+2)
	for i := range e {
		e[i] = slaneyHz(lo + (hi-lo)*float64(i)/float64(Mels+1))
	}
	return e
}

// filterbank is the (Mels, Bins) matrix of triangular mel filters, each
// with peak 1, evaluated at the FFT bins' frequencies.
var filterbank = sync.OnceValue(func() []float64 {
	e := melEdges()
	w := make([]float64, Mels*Bins)
	for m := range Mels {
		for k := range Bins {
			f := float64(k) * Rate / NFFT
			up := (f - e[m]) / (e[m+1] - e[m])
			down := (e[m+2] - f) / (e[m+2] - e[m+1])
			w[m*Bins+k] = max(0, min(up, down))
		}
	}
	return w
})

// pseudoInverse is the (Bins, Mels) Moore-Penrose pseudo-inverse of the
// filterbank, by SVD: the least-norm linear power spectrum with the given
// mel powers.
var pseudoInverse = sync.OnceValue(func() []float64 {
	fb := mat.NewDense(Mels, Bins, append([]float64(nil), filterbank()...))
	var svd mat.SVD
	if !svd.Factorize(fb, mat.SVDThin) {
		// The filterbank is a fixed, well-conditioned matrix; a failure
		// here is a broken build, found by the tests.
		return nil
	}
	var p mat.Dense
	svd.SolveTo(&p, eye(Mels), svd.Rank(1e-10))
	return p.RawMatrix().Data
})

func eye(n int) *mat.Dense {
	d := mat.NewDense(n, n, nil)
	for i := range n {
		d.Set(i, i, 1)
	}
	return d
}

// hann is the periodic Hann window of WindowLength samples.
var hann = sync.OnceValue(func() []float64 {
	w := make([]float64, WindowLength)
	for i := range w {
		w[i] = 0.5 - 0.5*math.Cos(2*math.Pi*float64(i)/WindowLength)
	}
	return w
})

// numFrames is the number of frames of n samples: frame t is centred on
// sample t*Hop.
func numFrames(n int) int { return (n + Hop - 1) / Hop }

// stft computes the (frames, Bins) short-time spectrum of x into dst
// (allocated if short). Frame t windows samples [t*Hop - WindowLength/2,
// t*Hop + WindowLength/2), zero outside x, into the first WindowLength
// places of the FFT buffer.
func stft(fft *fourier.FFT, x []float64, frames int, dst []complex128) []complex128 {
	if len(dst) < frames*Bins {
		dst = make([]complex128, frames*Bins)
	}
	w := hann()
	buf := make([]float64, NFFT)
	for t := range frames {
		start := t*Hop - WindowLength/2
		for i := range WindowLength {
			j := start + i
			if j >= 0 && j < len(x) {
				buf[i] = x[j] * w[i]
			} else {
				buf[i] = 0
			}
		}
		fft.Coefficients(dst[t*Bins:(t+1)*Bins], buf)
	}
	return dst[:frames*Bins]
}

// istft is the least-squares inverse of stft (Griffin and Lim, 1984): each
// frame's inverse FFT, windowed again, overlap-added and divided by the
// sum of the squared windows. It writes frames*Hop samples to dst.
func istft(fft *fourier.FFT, spec []complex128, frames int, dst []float64) []float64 {
	n := frames * Hop
	if len(dst) < n {
		dst = make([]float64, n)
	}
	dst = dst[:n]
	clear(dst)
	norm := make([]float64, n)
	w := hann()
	buf := make([]float64, NFFT)
	for t := range frames {
		fft.Sequence(buf, spec[t*Bins:(t+1)*Bins])
		start := t*Hop - WindowLength/2
		for i := range WindowLength {
			j := start + i
			if j >= 0 && j < n {
				dst[j] += buf[i] / NFFT * w[i]
				norm[j] += w[i] * w[i]
			}
		}
	}
	for j := range dst {
		if norm[j] > 1e-8 {
			dst[j] /= norm[j]
		}
	}
	return dst
}

// griffinLim finds a signal of frames*Hop samples whose STFT magnitude is
// close to mag (frames, Bins), by the fast Griffin-Lim algorithm: starting
// from random phases (seeded, so deterministic), it alternates projecting
// onto consistent spectra (istft then stft) and onto the target magnitude,
// with momentum on the consistent spectra.
func griffinLim(mag []float64, frames, iters int, momentum float64) []float64 {
	fft := fourier.NewFFT(NFFT)
	rng := rand.New(rand.NewPCG(griffinLimSeed, 1))
	c := make([]complex128, frames*Bins)
	for i := range c {
		c[i] = cmplx.Rect(mag[i], 2*math.Pi*rng.Float64())
	}
	x := make([]float64, frames*Hop)
	var t, tPrev []complex128
	for it := range iters {
		x = istft(fft, c, frames, x)
		t = stft(fft, x, frames, t)
		if it == 0 {
			tPrev = append(tPrev[:0], t...)
		}
		for i := range c {
			ci := t[i] + complex(momentum, 0)*(t[i]-tPrev[i])
			tPrev[i] = t[i]
			if a := cmplx.Abs(ci); a > 0 {
				c[i] = ci * complex(mag[i]/a, 0)
			} else {
				c[i] = complex(mag[i], 0)
			}
		}
	}
	return istft(fft, c, frames, x)
}

// LogMel returns the (T, Mels) log-mel frames of a, row-major, with T =
// ceil(samples/Hop) at 16 kHz: audio at another rate is resampled first
// (media.Resample). Empty audio has no frames.
func LogMel(a *media.Audio) ([]float32, error) {
	x, err := samples16k(a)
	if err != nil {
		return nil, err
	}
	return logMel(fourier.NewFFT(NFFT), x), nil
}

// samples16k checks a and returns its samples at Rate as float64.
func samples16k(a *media.Audio) ([]float64, error) {
	if a == nil {
		return nil, errors.New("speech: no audio")
	}
	if a.Rate <= 0 {
		return nil, fmt.Errorf("speech: audio at %d Hz: the rate must be positive", a.Rate)
	}
	for i, v := range a.Samples {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return nil, fmt.Errorf("speech: audio sample %d is %v", i, v)
		}
	}
	if a.Rate != Rate {
		a = media.Resample(a, Rate)
	}
	x := make([]float64, len(a.Samples))
	for i, v := range a.Samples {
		x[i] = float64(v)
	}
	return x, nil
}

// logMel computes the log-mel frames of 16 kHz samples.
func logMel(fft *fourier.FFT, x []float64) []float32 {
	frames := numFrames(len(x))
	spec := stft(fft, x, frames, nil)
	return powerToLogMel(spec, frames)
}

// powerToLogMel maps (frames, Bins) spectra to (frames, Mels) log-mel
// frames.
func powerToLogMel(spec []complex128, frames int) []float32 {
	fb := filterbank()
	out := make([]float32, frames*Mels)
	pow := make([]float64, Bins)
	for t := range frames {
		for k, c := range spec[t*Bins : (t+1)*Bins] {
			pow[k] = real(c)*real(c) + imag(c)*imag(c)
		}
		for m := range Mels {
			row := fb[m*Bins : (m+1)*Bins]
			s := 0.0
			for k, w := range row {
				if w != 0 {
					s += w * pow[k]
				}
			}
			out[t*Mels+m] = float32(math.Log(s + LogEps))
		}
	}
	return out
}

// maxLogMel bounds the log-mel values that logMelToAudio turns into power
// (far above full scale), so that no file can make it overflow.
const maxLogMel = 30

// logMelToAudio turns (frames, Mels) log-mel frames back into 16 kHz
// audio: mel power exp(v) - LogEps, the filterbank's pseudo-inverse
// (clipped at zero) for a linear power spectrum, its square root as the
// magnitude, and Griffin-Lim for the phases. Samples are clipped to
// [-1, 1].
func logMelToAudio(lm []float32, frames int) []float32 {
	pinv := pseudoInverse()
	mag := make([]float64, frames*Bins)
	mel := make([]float64, Mels)
	for t := range frames {
		for m := range Mels {
			mel[m] = max(0, math.Exp(min(maxLogMel, float64(lm[t*Mels+m])))-LogEps)
		}
		for k := range Bins {
			row := pinv[k*Mels : (k+1)*Mels]
			p := 0.0
			for m, w := range row {
				p += w * mel[m]
			}
			mag[t*Bins+k] = math.Sqrt(max(0, p))
		}
	}
	x := griffinLim(mag, frames, GriffinLimIters, GriffinLimMomentum)
	out := make([]float32, len(x))
	for i, v := range x {
		out[i] = float32(max(-1, min(1, v)))
	}
	return out
}
