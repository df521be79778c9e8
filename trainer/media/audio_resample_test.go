package media

import (
	"math"
	"math/cmplx"
	"testing"
)

// tone is amp*sin(2*pi*freq*t) at rate for the given seconds.
func tone(rate int, freq, amp, seconds float64) *Audio {
	a := &Audio{Rate: rate, Samples: make([]float32, int(seconds*float64(rate)))}
	for i := range a.Samples {
		a.Samples[i] = float32(amp * math.Sin(2*math.Pi*freq*float64(i)/float64(rate)))
	}
	return a
}

// amplitudeAt measures the amplitude of the component at freq in the middle
// half of a (a Hann-windowed projection, so the edges do not count).
func amplitudeAt(a *Audio, freq float64) float64 {
	n := len(a.Samples)
	lo, hi := n/4, 3*n/4
	var sum complex128
	var wsum float64
	for i := lo; i < hi; i++ {
		w := 0.5 - 0.5*math.Cos(2*math.Pi*float64(i-lo)/float64(hi-lo))
		sum += complex(w*float64(a.Samples[i]), 0) * cmplx.Exp(complex(0, -2*math.Pi*freq*float64(i)/float64(a.Rate)))
		wsum += w
	}
	return 2 * cmplx.Abs(sum) / wsum
}

// rmsMiddle is the RMS of the middle half of a.
func rmsMiddle(a *Audio) float64 {
	n := len(a.Samples)
	s := 0.0
	for _, v := range a.Samples[n/4 : 3*n/4] {
		s += float64(v) * float64(v)
	}
	return math.Sqrt(s / float64(n/2))
}

func TestResampleKeepsPassband(t *testing.T) {
	for _, c := range []struct {
		from, to int
		freq     float64
	}{
		{44100, 16000, 1000},
		{44100, 16000, 7000}, // 87.5% of the new Nyquist
		{22050, 16000, 440},
		{22050, 16000, 7100},
		{48000, 16000, 5000},
		{8000, 16000, 1000},
		{8000, 16000, 3500},
		{16000, 22050, 6000},
		{11025, 16000, 4900}, // 89% of the old Nyquist
		{44101, 16000, 3000}, // coprime rates: coefficients computed per output sample
	} {
		const amp = 0.5
		out := Resample(tone(c.from, c.freq, amp, 0.5), c.to)
		if out.Rate != c.to {
			t.Fatalf("rate %d, want %d", out.Rate, c.to)
		}
		got := amplitudeAt(out, c.freq)
		db := 20 * math.Log10(got/amp)
		if math.Abs(db) > 0.05 {
			t.Errorf("%d -> %d Hz, %.0f Hz tone: gain %.3f dB, want 0", c.from, c.to, c.freq, db)
		}
		// Nothing else: the residual after removing the tone is tiny.
		res := rmsMiddle(out)
		if want := amp / math.Sqrt2; math.Abs(res-want)/want > 0.01 {
			t.Errorf("%d -> %d Hz, %.0f Hz tone: RMS %.4f, want %.4f", c.from, c.to, c.freq, res, want)
		}
	}
}

func TestResampleSuppressesAliasing(t *testing.T) {
	for _, c := range []struct {
		from, to int
		freq     float64
	}{
		{44100, 16000, 12000}, // would fold to 4 kHz
		{44100, 16000, 8100},  // just above the new Nyquist
		{22050, 16000, 9000},  // would fold to 7 kHz
		{48000, 16000, 20000},
		{44101, 16000, 10000},
	} {
		const amp = 0.9
		out := Resample(tone(c.from, c.freq, amp, 0.5), c.to)
		// Whatever is left, at any frequency, is at least 80 dB down (the design is 90 dB).
		if db := 20 * math.Log10(rmsMiddle(out)/(amp/math.Sqrt2)); db > -80 {
			t.Errorf("%d -> %d Hz, %.0f Hz tone: %.1f dB left, want below -80 dB", c.from, c.to, c.freq, db)
		}
	}
	// Upsampling makes no images: a 1 kHz tone at 8 kHz has its first image
	// at 7 kHz, which must be absent from the 16 kHz output.
	out := Resample(tone(8000, 1000, 0.5, 0.5), 16000)
	if db := 20 * math.Log10(amplitudeAt(out, 7000)/0.5); db > -60 {
		t.Errorf("8 -> 16 kHz: image at 7 kHz is %.1f dB, want below -60", db)
	}
	// The same 7 kHz content is what linear interpolation would leave:
	// check that the measure can see it.
	lin := &Audio{Rate: 16000, Samples: make([]float32, 2*4000)}
	src := tone(8000, 1000, 0.5, 0.5)
	for i := range lin.Samples {
		j := i / 2
		if i%2 == 0 || j+1 >= len(src.Samples) {
			lin.Samples[i] = src.Samples[j]
		} else {
			lin.Samples[i] = (src.Samples[j] + src.Samples[j+1]) / 2
		}
	}
	if db := 20 * math.Log10(amplitudeAt(lin, 7000)/0.5); db < -40 {
		t.Errorf("linear interpolation's image measured at %.1f dB: the measure is blind", db)
	}
}

func TestResampleEdges(t *testing.T) {
	a := tone(22050, 300, 0.5, 0.2)
	for _, c := range []struct {
		in, rate, want int
	}{
		{2205, 16000, 1600}, {2206, 16000, 1601}, {0, 16000, 0}, {1, 16000, 1}, {7, 44100, 14},
	} {
		out := Resample(&Audio{Rate: 22050, Samples: a.Samples[:c.in]}, c.rate)
		if len(out.Samples) != c.want {
			t.Errorf("%d samples -> %d, want %d", c.in, len(out.Samples), c.want)
		}
	}
	same := Resample(a, 22050)
	same.Samples[0] = 9
	if a.Samples[0] == 9 || len(same.Samples) != len(a.Samples) {
		t.Error("the same rate must return a copy")
	}
	if Resample(nil, 16000) != nil || Resample(a, 0) != nil || Resample(&Audio{Rate: -1}, 16000) != nil {
		t.Error("bad input must give nil")
	}
	// A full-scale square wave rings past 1 after filtering: the output stays
	// in [-1, 1].
	sq := &Audio{Rate: 44100, Samples: make([]float32, 4410)}
	for i := range sq.Samples {
		sq.Samples[i] = 1
		if (i/50)%2 == 1 {
			sq.Samples[i] = -1
		}
	}
	for i, v := range Resample(sq, 16000).Samples {
		if v > 1 || v < -1 {
			t.Fatalf("sample %d = %v", i, v)
		}
	}
}
