package speech

import (
	"bytes"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"mom/trainer/media"
	"mom/trainer/tokenizer/kmeans"
)

// vowels are formant pairs (Hz) of the synthetic speech.
var vowels = [][2]float64{{300, 2300}, {700, 1200}, {500, 1800}, {350, 800}, {600, 2500}, {800, 1500}}

// synthClip makes speech-like audio: segments of 60-250 ms that are
// silence, a voiced sound (harmonics of a pitch between 100 and 220 Hz
// shaped by one of the formant pairs) or a fricative (high-passed noise),
// with 10 ms fades.
func synthClip(rng *rand.Rand, rate int, seconds float64) *media.Audio {
	n := int(seconds * float64(rate))
	a := &media.Audio{Rate: rate, Samples: make([]float32, n)}
	for start := 0; start < n; {
		seg := min(n-start, int((0.06+0.19*rng.Float64())*float64(rate)))
		kind := rng.IntN(len(vowels) + 2)
		fade := rate / 100
		f0 := 100 + 120*rng.Float64()
		v := vowels[kind%len(vowels)]
		prev := 0.0
		for i := range seg {
			env := 1.0
			if i < fade {
				env = float64(i) / float64(fade)
			} else if seg-i < fade {
				env = float64(seg-i) / float64(fade)
			}
			tt := float64(start+i) / float64(rate)
			s := 0.0
			switch {
			case kind < len(vowels): // voiced
				for h := 1; float64(h)*f0 < 3500; h++ {
					f := float64(h) * f0
					g := math.Exp(-sq((f-v[0])/120)) + 0.6*math.Exp(-sq((f-v[1])/180)) + 0.01
					s += 0.08 * g * math.Sin(2*math.Pi*f*tt)
				}
			case kind == len(vowels): // fricative
				w := rng.Float64()*2 - 1
				s = 0.15 * (w - prev)
				prev = w
			}
			a.Samples[start+i] = float32(env * s)
		}
		start += seg
	}
	return a
}

func sq(x float64) float64 { return x * x }

func synthClips(seed uint64, n int, seconds float64) []*media.Audio {
	rng := rand.New(rand.NewPCG(seed, 7))
	out := make([]*media.Audio, n)
	for i := range out {
		rate := Rate
		if i%5 == 4 {
			rate = 22050 // some clips need resampling
		}
		out[i] = synthClip(rng, rate, seconds)
	}
	return out
}

var testConfig = Config{Units: 24, Steps: 40, BatchSize: 512, Seed: 1}

// baselineMSE is the log-mel MSE of predicting every frame by the mean
// frame: the per-band variance of the training data, averaged.
func baselineMSE(t *Tokenizer) float64 {
	s := 0.0
	for _, sd := range t.std {
		s += float64(sd) * float64(sd)
	}
	return s / Mels
}

func TestTokenizerRoundTrip(t *testing.T) {
	train := synthClips(1, 30, 1.5)
	held := synthClips(2, 6, 1.5)
	for _, collapse := range []bool{false, true} {
		cfg := testConfig
		cfg.Collapse = collapse
		tok, err := Train(train, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if tok.Size() != cfg.Units || tok.Collapse() != collapse {
			t.Fatalf("size %d collapse %v", tok.Size(), tok.Collapse())
		}
		st, err := tok.Evaluate(held)
		if err != nil {
			t.Fatal(err)
		}
		base := baselineMSE(tok)
		t.Logf("collapse %v: %v; mean-frame baseline MSE %.3f (%.2f dB)", collapse, st, base, dBPerLog*math.Sqrt(base))

		if math.Abs(st.FramesPerSecond-100) > 1 {
			t.Errorf("%.2f frames/s, want 100", st.FramesPerSecond)
		}
		if !collapse && st.Tokens != st.Frames {
			t.Errorf("%d tokens for %d frames without collapsing", st.Tokens, st.Frames)
		}
		if collapse && (st.Tokens >= st.Frames || math.Abs(st.TokensPerSecond*st.MeanRunLength-st.FramesPerSecond) > 1e-6*st.FramesPerSecond) {
			t.Errorf("collapsed: %.2f tokens/s x mean run %.3f should be %.2f frames/s", st.TokensPerSecond, st.MeanRunLength, st.FramesPerSecond)
		}
		if st.UnitsUsedFraction < 0.5 || st.UnitsUsedFraction > 1 {
			t.Errorf("%.2f of the units used", st.UnitsUsedFraction)
		}
		if st.EntropyBits <= 1 || st.EntropyBits > math.Log2(float64(cfg.Units)) || math.Abs(st.Perplexity-math.Exp2(st.EntropyBits)) > 1e-9 {
			t.Errorf("entropy %.3f bits, perplexity %.3f", st.EntropyBits, st.Perplexity)
		}
		// Units must explain most of the variance, and decoding must beat
		// the trivial decoder (the mean frame) by far.
		if st.QuantNormMSE > 0.5 || st.QuantMSE > base/3 {
			t.Errorf("quantisation MSE %.3f (normalised %.3f), baseline %.3f", st.QuantMSE, st.QuantNormMSE, base)
		}
		if st.VocoderMSE > st.ResynthMSE || st.ResynthMSE > base/2 {
			t.Errorf("vocoder MSE %.3f, round trip %.3f, baseline %.3f", st.VocoderMSE, st.ResynthMSE, base)
		}

		// The round trip through the public API is within the reported
		// error: each clip measured alone (frame by frame without
		// collapse, time-warped with it) matches its share of the figure.
		total, frames := 0.0, 0
		for i, c := range held {
			units, err := tok.Encode(c)
			if err != nil {
				t.Fatal(err)
			}
			dec, err := tok.Decode(units)
			if err != nil {
				t.Fatal(err)
			}
			orig, _ := LogMel(c)
			re, _ := LogMel(dec)
			var mse float64
			if collapse {
				mse = dtwMeanSq(orig, re)
			} else {
				if len(re) != len(orig) {
					t.Fatalf("clip %d: %d frames decoded from %d", i, len(re)/Mels, len(orig)/Mels)
				}
				mse = sqDiff(orig, re) / float64(len(orig))
			}
			if mse > base/2 {
				t.Errorf("clip %d: round-trip MSE %.3f, baseline %.3f", i, mse, base)
			}
			total += mse * float64(len(orig)/Mels)
			frames += len(orig) / Mels
		}
		if got := total / float64(frames); math.Abs(got-st.ResynthMSE) > 1e-6*st.ResynthMSE {
			t.Errorf("round trip clip by clip %.6f, Evaluate reported %.6f", got, st.ResynthMSE)
		}
	}
}

func TestDeterminism(t *testing.T) {
	clips := synthClips(3, 12, 1)
	dir := t.TempDir()
	save := func(seed uint64, name string) ([]byte, *Tokenizer) {
		cfg := testConfig
		cfg.Seed = seed
		tok, err := Train(clips, cfg)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		if err := tok.Save(p); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(p)
		return b, tok
	}
	a, tok := save(5, "a")
	b, _ := save(5, "b")
	c, _ := save(6, "c")
	if !bytes.Equal(a, b) {
		t.Error("the same seed gave different tokenizer files")
	}
	if bytes.Equal(a, c) {
		t.Error("different seeds gave the same tokenizer file")
	}
	units, _ := tok.Encode(clips[0])
	d1, _ := tok.Decode(units)
	d2, _ := tok.Decode(units)
	if !slices.Equal(d1.Samples, d2.Samples) {
		t.Error("decoding twice gave different audio")
	}
}

func TestSaveLoad(t *testing.T) {
	clips := synthClips(4, 10, 1)
	cfg := testConfig
	cfg.Collapse = true
	cfg.Seed = 77
	tok, err := Train(clips, cfg)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "speech.safetensors")
	if err := tok.Save(p); err != nil {
		t.Fatal(err)
	}
	back, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if back.Size() != tok.Size() || back.Collapse() != tok.Collapse() || back.seed != 77 {
		t.Fatalf("loaded size %d collapse %v seed %d", back.Size(), back.Collapse(), back.seed)
	}
	for _, c := range clips[:3] {
		u1, _ := tok.Encode(c)
		u2, _ := back.Encode(c)
		if !slices.Equal(u1, u2) {
			t.Fatal("the loaded tokenizer encodes differently")
		}
		d1, _ := tok.Decode(u1)
		d2, _ := back.Decode(u1)
		if !slices.Equal(d1.Samples, d2.Samples) {
			t.Fatal("the loaded tokenizer decodes differently")
		}
	}
	if _, err := Load(filepath.Join(t.TempDir(), "none")); err == nil || !strings.Contains(err.Error(), "none") {
		t.Errorf("error %v, want one naming the file", err)
	}
}

// handTokenizer is a tokenizer of 3 units built by hand.
func handTokenizer(t testing.TB, collapse bool, runLen []float32) *Tokenizer {
	cents := make([]float32, 3*Mels)
	for i := range cents {
		cents[i] = float32(i/Mels) - 1
	}
	book, err := kmeans.New(3, Mels, cents)
	if err != nil {
		t.Fatal(err)
	}
	mean, std := make([]float32, Mels), make([]float32, Mels)
	for m := range Mels {
		mean[m], std[m] = -4, 2
	}
	return &Tokenizer{collapse: collapse, mean: mean, std: std, runLen: runLen, book: book}
}

func TestExpandRuns(t *testing.T) {
	tok := handTokenizer(t, true, []float32{1, 2.5, 1.4})
	for _, c := range []struct {
		units []uint32
		want  []int32
	}{
		{nil, nil},
		{[]uint32{0}, []int32{0}},
		{[]uint32{1}, []int32{1, 1, 1}},             // 2.5 rounds to 3
		{[]uint32{1, 1}, []int32{1, 1, 1, 1, 1}},    // 5
		{[]uint32{2, 2, 2}, []int32{2, 2, 2, 2}},    // 1.4, 2.8, 4.2
		{[]uint32{2, 0, 1}, []int32{2, 0, 1, 1, 1}}, // 1.4, 2.4, 4.9
	} {
		got, err := tok.expand(c.units)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("expand(%v) = %v, %v; want %v", c.units, got, err, c.want)
		}
	}
	a, err := tok.Decode([]uint32{0, 1, 2})
	if err != nil || len(a.Samples) != 5*Hop || a.Rate != Rate {
		t.Errorf("decoded %v samples at %v Hz (%v), want %d at %d", len(a.Samples), a.Rate, err, 5*Hop, Rate)
	}
	plain := handTokenizer(t, false, []float32{1, 2.5, 1.4})
	if a, _ := plain.Decode([]uint32{1, 1}); len(a.Samples) != 2*Hop {
		t.Errorf("without collapse, 2 units decoded to %d samples", len(a.Samples))
	}
	if _, err := plain.Decode([]uint32{0, 3}); err == nil || !strings.Contains(err.Error(), "unit 3 at position 1 is out of range") {
		t.Errorf("error %v", err)
	}
	if a, err := plain.Decode(nil); err != nil || len(a.Samples) != 0 {
		t.Errorf("empty: %v samples, %v", len(a.Samples), err)
	}
}

func TestTrainErrors(t *testing.T) {
	clips := synthClips(5, 2, 0.5)
	for _, c := range []struct {
		name  string
		clips []*media.Audio
		cfg   Config
		want  string
	}{
		{"no clips", nil, Config{}, "0 frames from 0 clips cannot train 512 units"},
		{"few frames", clips, Config{Units: 200}, "frames from 2 clips cannot train 200 units"},
		{"nil clip", []*media.Audio{clips[0], nil}, Config{Units: 2}, "clip 1: speech: no audio"},
		{"bad rate", []*media.Audio{{Rate: -5, Samples: []float32{0}}}, Config{Units: 2}, "clip 0: speech: audio at -5 Hz"},
		{"nan", []*media.Audio{clips[0], {Rate: Rate, Samples: []float32{float32(math.NaN())}}}, Config{Units: 2}, "clip 1: speech: audio sample 0 is NaN"},
		{"units", clips, Config{Units: -1}, "-1 units"},
	} {
		if _, err := Train(c.clips, c.cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", c.name, err, c.want)
		}
	}
	tok := handTokenizer(t, false, []float32{1, 1, 1})
	if _, err := tok.Encode(nil); err == nil {
		t.Error("encoding nil audio: no error")
	}
	if _, err := tok.Evaluate([]*media.Audio{nil}); err == nil || !strings.Contains(err.Error(), "clip 0") {
		t.Errorf("evaluating nil audio: %v", err)
	}
}
