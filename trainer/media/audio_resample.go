package media

import "math"

// The resampler's low-pass filter: a Kaiser-windowed sinc designed for
// resampleAtten dB of stopband attenuation, with its passband up to 90% and
// its stopband from 100% of the lower of the two Nyquist frequencies, so
// that nothing above the new Nyquist folds back into the band (aliasing on
// the way down, images on the way up).
const (
	resampleAtten    = 90.0 // dB
	resamplePassband = 0.90 // passband edge, as a fraction of the lower Nyquist
	// resampleMaxTable bounds the precomputed coefficient table (phases x
	// taps); rates whose ratio needs more phases compute the coefficients of
	// each output sample instead.
	resampleMaxTable = 1 << 21
	// resampleMaxHalf bounds the filter's half-length in input samples; only
	// ratios beyond about 1000:1 need more, and get a shorter filter (less
	// attenuation) rather than an unbounded allocation.
	resampleMaxHalf = 1 << 17
)

// Resample converts a to another sample rate with a band-limited
// polyphase FIR filter (a Kaiser-windowed sinc, about 90 dB of stopband
// attenuation): the rate ratio is reduced to up/down, and output sample i
// sits at input position i*down/up, filtered by the coefficients of its
// phase. Content up to 90% of the lower Nyquist frequency passes (within
// about 0.01 dB); content above the lower Nyquist is removed, so that
// downsampling does not alias. The output has ceil(len*rate/a.Rate)
// samples, clipped to [-1, 1]. The same rate returns a copy; a nil audio
// or a non-positive rate (of a or the target) returns nil.
func Resample(a *Audio, rate int) *Audio {
	if a == nil || rate <= 0 || a.Rate <= 0 {
		return nil
	}
	if rate == a.Rate {
		return &Audio{Rate: rate, Samples: append([]float32(nil), a.Samples...)}
	}
	g := gcd(a.Rate, rate)
	up, down := rate/g, a.Rate/g
	// Frequencies in cycles per input sample: the lower Nyquist is 0.5*r.
	r := math.Min(1, float64(rate)/float64(a.Rate))
	width := 0.5 * r * (1 - resamplePassband) // transition band
	cutoff := 0.5*r - width/2                 // its middle
	// Kaiser's estimates of the length and beta for the attenuation.
	taps := (resampleAtten - 7.95) / (14.36 * width)
	half := int(math.Ceil(math.Min(taps/2, resampleMaxHalf)))
	beta := 0.1102 * (resampleAtten - 8.7)

	coef := func(phase int, dst []float64) {
		frac := float64(phase) / float64(up)
		sum := 0.0
		for j := range dst {
			d := frac + float64(half-1-j) // distance from the output position to input tap j
			dst[j] = 2 * cutoff * sinc(2*cutoff*d) * kaiser(d/float64(half), beta)
			sum += dst[j]
		}
		for j := range dst {
			dst[j] /= sum // unit gain at DC for every phase
		}
	}
	var table []float64
	if up*2*half <= resampleMaxTable {
		table = make([]float64, up*2*half)
		for p := range up {
			coef(p, table[p*2*half:(p+1)*2*half])
		}
	}
	n := len(a.Samples)
	outLen := int((int64(n)*int64(up) + int64(down) - 1) / int64(down))
	out := &Audio{Rate: rate, Samples: make([]float32, outLen)}
	scratch := make([]float64, 2*half)
	x := a.Samples
	for i := range out.Samples {
		pos := int64(i) * int64(down)
		base, phase := int(pos/int64(up)), int(pos%int64(up))
		h := scratch
		if table != nil {
			h = table[phase*2*half : (phase+1)*2*half]
		} else {
			coef(phase, h)
		}
		first := base - half + 1
		j0, j1 := max(0, -first), min(2*half, n-first)
		s := 0.0
		for j := j0; j < j1; j++ {
			s += h[j] * float64(x[first+j])
		}
		out.Samples[i] = float32(max(-1, min(1, s)))
	}
	return out
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

func sinc(x float64) float64 {
	if x == 0 {
		return 1
	}
	return math.Sin(math.Pi*x) / (math.Pi * x)
}

// kaiser is the Kaiser window at x in [-1, 1] (0 outside).
func kaiser(x, beta float64) float64 {
	if x <= -1 || x >= 1 {
		return 0
	}
	return besselI0(beta*math.Sqrt(1-x*x)) / besselI0(beta)
}

// besselI0 is the modified Bessel function of the first kind of order 0,
// by its power series sum((x/2)^(2k) / (k!)^2).
func besselI0(x float64) float64 {
	sum, term := 1.0, 1.0
	q := x * x / 4
	for k := 1; k < 200; k++ {
		term *= q / float64(k*k)
		sum += term
		if term < sum*1e-17 {
			break
		}
	}
	return sum
}
