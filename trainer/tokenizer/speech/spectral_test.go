package speech

import (
	"math"
	"math/cmplx"
	"math/rand/v2"
	"strings"
	"testing"

	"gonum.org/v1/gonum/dsp/fourier"

	"mom/trainer/media"
)

func toneAudio(rate int, freq, amp, seconds float64) *media.Audio {
	a := &media.Audio{Rate: rate, Samples: make([]float32, int(seconds*float64(rate)))}
	for i := range a.Samples {
		a.Samples[i] = float32(amp * math.Sin(2*math.Pi*freq*float64(i)/float64(rate)))
	}
	return a
}

func TestMelScale(t *testing.T) {
	for _, c := range []struct{ hz, mel float64 }{{0, 0}, {200, 3}, {1000, 15}, {6400, 42}} {
		if got := slaneyMel(c.hz); math.Abs(got-c.mel) > 1e-9 {
			t.Errorf("mel(%v Hz) = %v, want %v", c.hz, got, c.mel)
		}
		if got := slaneyHz(c.mel); math.Abs(got-c.hz) > 1e-6 {
			t.Errorf("hz(%v mel) = %v, want %v", c.mel, got, c.hz)
		}
	}
	e := melEdges()
	if e[0] != 0 || math.Abs(e[Mels+1]-Rate/2) > 1e-6 {
		t.Errorf("edges span %v to %v Hz, want 0 to %d", e[0], e[Mels+1], Rate/2)
	}
	fb := filterbank()
	for m := range Mels {
		s := 0.0
		for _, w := range fb[m*Bins : (m+1)*Bins] {
			s += w
		}
		if s == 0 {
			t.Errorf("mel filter %d (%.0f-%.0f Hz) covers no FFT bin", m, e[m], e[m+2])
		}
		if e[m+1] <= e[m] {
			t.Errorf("edges not increasing at %d", m)
		}
	}
	// The pseudo-inverse is a right inverse: filterbank x pinv = identity.
	p := pseudoInverse()
	for i := range Mels {
		for j := range Mels {
			s := 0.0
			for k := range Bins {
				s += fb[i*Bins+k] * p[k*Mels+j]
			}
			want := 0.0
			if i == j {
				want = 1
			}
			if math.Abs(s-want) > 1e-8 {
				t.Fatalf("(filterbank x pinv)[%d][%d] = %v, want %v", i, j, s, want)
			}
		}
	}
}

func TestLogMelTonePeaks(t *testing.T) {
	e := melEdges()
	for _, c := range []struct {
		rate int
		freq float64
	}{{16000, 150}, {16000, 440}, {16000, 1000}, {16000, 2500}, {16000, 6000}, {22050, 3000}, {44100, 7000}} {
		a := toneAudio(c.rate, c.freq, 0.5, 0.5)
		lm, err := LogMel(a)
		if err != nil {
			t.Fatal(err)
		}
		frames := numFrames(int(math.Ceil(float64(len(a.Samples)) * Rate / float64(c.rate))))
		if len(lm) != frames*Mels {
			t.Fatalf("%d values, want %d frames of %d", len(lm), frames, Mels)
		}
		// The band whose peak is nearest the tone is the loudest (in a
		// middle frame), or a neighbour when the tone falls between two.
		want, best := 0, math.Inf(1)
		for m := range Mels {
			if d := math.Abs(e[m+1] - c.freq); d < best {
				want, best = m, d
			}
		}
		row := lm[(frames/2)*Mels : (frames/2+1)*Mels]
		got := 0
		for m := range row {
			if row[m] > row[got] {
				got = m
			}
		}
		if got < want-1 || got > want+1 {
			t.Errorf("%v Hz at %d Hz: loudest band %d (peak %.0f Hz), want %d (peak %.0f Hz)", c.freq, c.rate, got, e[got+1], want, e[want+1])
		}
		// Far from the tone, the bands are near the floor.
		far := (got + Mels/2) % Mels
		if row[far] > row[got]-8 {
			t.Errorf("%v Hz: band %d at %.1f, only %.1f below the peak", c.freq, far, row[far], row[got]-row[far])
		}
	}
	// Silence is exactly the floor.
	lm, _ := LogMel(&media.Audio{Rate: Rate, Samples: make([]float32, 1000)})
	for i, v := range lm {
		if v != float32(math.Log(LogEps)) {
			t.Fatalf("silence value %d = %v, want log(%g)", i, v, LogEps)
		}
	}
}

func TestLogMelErrors(t *testing.T) {
	if lm, err := LogMel(&media.Audio{Rate: Rate}); err != nil || len(lm) != 0 {
		t.Errorf("empty audio: %d values, %v", len(lm), err)
	}
	for _, c := range []struct {
		a    *media.Audio
		want string
	}{
		{nil, "no audio"},
		{&media.Audio{Rate: 0, Samples: []float32{0}}, "at 0 Hz"},
		{&media.Audio{Rate: Rate, Samples: []float32{0, float32(math.Inf(1))}}, "sample 1 is +Inf"},
	} {
		if _, err := LogMel(c.a); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("error %v, want %q", err, c.want)
		}
	}
}

func TestISTFTInvertsSTFT(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	fft := fourier.NewFFT(NFFT)
	for _, n := range []int{1, 159, 160, 161, 1000, 4800} {
		frames := numFrames(n)
		x := make([]float64, frames*Hop)
		for i := range n {
			x[i] = rng.Float64()*2 - 1
		}
		y := istft(fft, stft(fft, x, frames, nil), frames, nil)
		for i := range x {
			if math.Abs(x[i]-y[i]) > 1e-9 {
				t.Fatalf("n=%d: sample %d %v came back as %v", n, i, x[i], y[i])
			}
		}
	}
}

// spectralConvergence is ||mag - |STFT(x)||| / ||mag||.
func spectralConvergence(mag, x []float64, frames int) float64 {
	s := stft(fourier.NewFFT(NFFT), x, frames, nil)
	num, den := 0.0, 0.0
	for i, c := range s {
		d := mag[i] - cmplx.Abs(c)
		num += d * d
		den += mag[i] * mag[i]
	}
	return math.Sqrt(num / den)
}

func TestGriffinLimConverges(t *testing.T) {
	// A known consistent magnitude: harmonics with a gliding pitch and an
	// amplitude envelope, plus a noise burst.
	rng := rand.New(rand.NewPCG(2, 2))
	n := 8000
	x := make([]float64, n)
	phase := 0.0
	for i := range x {
		f0 := 120 + 60*float64(i)/float64(n)
		phase += 2 * math.Pi * f0 / Rate
		env := math.Sin(math.Pi * float64(i) / float64(n))
		for h := 1; h <= 10; h++ {
			x[i] += env * 0.3 / float64(h) * math.Sin(float64(h)*phase)
		}
		if i > 5000 && i < 6000 {
			x[i] += 0.1 * (rng.Float64()*2 - 1)
		}
	}
	frames := numFrames(n)
	mag := make([]float64, frames*Bins)
	for i, c := range stft(fourier.NewFFT(NFFT), x, frames, nil) {
		mag[i] = cmplx.Abs(c)
	}
	sc1 := spectralConvergence(mag, griffinLim(mag, frames, 1, GriffinLimMomentum), frames)
	sc := spectralConvergence(mag, griffinLim(mag, frames, GriffinLimIters, GriffinLimMomentum), frames)
	scPlain := spectralConvergence(mag, griffinLim(mag, frames, GriffinLimIters, 0), frames)
	t.Logf("spectral convergence: 1 iteration %.3f, %d iterations %.3f (without momentum %.3f)", sc1, GriffinLimIters, sc, scPlain)
	if sc > 0.1 || sc > sc1/4 {
		t.Errorf("spectral convergence %.3f after %d iterations (%.3f after 1): want below 0.1 and a quarter of the first", sc, GriffinLimIters, sc1)
	}
	if sc > scPlain {
		t.Errorf("momentum made it worse: %.3f against %.3f", sc, scPlain)
	}
	// Deterministic.
	a, b := griffinLim(mag, frames, 4, GriffinLimMomentum), griffinLim(mag, frames, 4, GriffinLimMomentum)
	for i := range a {
		if a[i] != b[i] {
			t.Fatal("two runs differ")
		}
	}
}
