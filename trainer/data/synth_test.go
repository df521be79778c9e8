package data

import (
	"encoding/json"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"
)

var gens3 = []string{GenMarkov, GenGrid, GenPeriodic}

// Modality ids of the three-modality stream.
const (
	text = iota
	image
	speech
)

func synthCfg(split string) SynthConfig {
	return SynthConfig{Generators: gens3, Vocab: testVocab(64, 32, 16), Seed: 42, Split: split}
}

// continuousCfg is synthCfg with continuous image patches of size p.
func continuousCfg(split string, p int) SynthConfig {
	return SynthConfig{Generators: []string{GenMarkov, GenField, GenPeriodic}, Vocab: testVocab(64, 1, 16), Seed: 42, Split: split, P: p}
}

func mustSynth(t testing.TB, c SynthConfig) Stream {
	t.Helper()
	s, err := NewSynthetic(c)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustBatch(t testing.TB, b, l, p int) *Batch {
	t.Helper()
	x, err := NewBatch(b, l, p)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

func nextBatch(t testing.TB, s Stream, b, l, p int) *Batch {
	t.Helper()
	x := mustBatch(t, b, l, p)
	if err := s.Next(x); err != nil {
		t.Fatal(err)
	}
	return x
}

func TestSynthDeterministic(t *testing.T) {
	for _, cont := range []bool{false, true} {
		c := synthCfg("train")
		if cont {
			c = continuousCfg("train", 6)
		}
		p := c.P
		a, b := mustSynth(t, c), mustSynth(t, c)
		// Same seed, same position: same batches. Rows are indexed over the
		// whole stream, so 3 batches of 4 rows are one batch of 12.
		big := nextBatch(t, b, 12, 33, p)
		for i := 0; i < 3; i++ {
			x := nextBatch(t, a, 4, 33, p)
			o := i * 4 * 33
			if !slices.Equal(x.Inputs, big.Inputs[o:o+4*33]) || !slices.Equal(x.Targets, big.Targets[o:o+4*33]) ||
				!slices.Equal(x.Modality, big.Modality[o:o+4*33]) || !slices.Equal(x.Patches, big.Patches[o*p:(o+4*33)*p]) {
				t.Errorf("continuous=%v: batch %d of 4 rows differs from rows %d.. of one batch of 12", cont, i, 4*i)
			}
		}
		// State / Restore round trip.
		st, err := a.State()
		if err != nil {
			t.Fatal(err)
		}
		want := []*Batch{nextBatch(t, a, 4, 33, p), nextBatch(t, a, 4, 33, p)}
		r := mustSynth(t, c)
		if err := r.Restore(st); err != nil {
			t.Fatal(err)
		}
		for i, w := range want {
			if got := nextBatch(t, r, 4, 33, p); !reflect.DeepEqual(got, w) {
				t.Errorf("continuous=%v: batch %d after Restore differs", cont, i)
			}
		}
		st2, _ := r.State()
		st3, _ := a.State()
		if string(st2) != string(st3) {
			t.Errorf("states differ after the same batches: %s vs %s", st2, st3)
		}
		// Another seed gives other data.
		c.Seed++
		if x := nextBatch(t, mustSynth(t, c), 12, 33, p); slices.Equal(x.Inputs, big.Inputs) && slices.Equal(x.Patches, big.Patches) {
			t.Errorf("continuous=%v: seeds 42 and 43 give the same batch", cont)
		}
	}
}

func TestSynthRestoreRejects(t *testing.T) {
	a := mustSynth(t, synthCfg("train"))
	nextBatch(t, a, 2, 16, 0)
	st, _ := a.State()
	other := []struct {
		name string
		c    SynthConfig
		want string
	}{
		{"split", synthCfg("eval"), "split train"},
		{"seed", func() SynthConfig { c := synthCfg("train"); c.Seed = 1; return c }(), "seed 42"},
		{"vocab", func() SynthConfig { c := synthCfg("train"); c.Vocab = testVocab(65, 32, 16); return c }(), "other modalities"},
		{"modalities", func() SynthConfig {
			return SynthConfig{Generators: gens3[:2], Vocab: testVocab(64, 32), Seed: 42, Split: "train"}
		}(), "other modalities"},
	}
	for _, o := range other {
		s := mustSynth(t, o.c)
		before, _ := s.State()
		if err := s.Restore(st); err == nil || !strings.Contains(err.Error(), o.want) {
			t.Errorf("%s: Restore = %v, want %q", o.name, err, o.want)
		}
		if after, _ := s.State(); string(after) != string(before) {
			t.Errorf("%s: failed Restore moved the stream", o.name)
		}
	}
	s := mustSynth(t, synthCfg("train"))
	for _, bad := range []string{`{`, `{"kind":"tokfile"}`, `null`} {
		if err := s.Restore(json.RawMessage(bad)); err == nil {
			t.Errorf("Restore(%s) succeeded", bad)
		}
	}
}

func TestSynthSplitsDisjoint(t *testing.T) {
	tr, ev := mustSynth(t, synthCfg("train")), mustSynth(t, synthCfg("eval"))
	const B, L = 16, 64
	seen := map[string]bool{}
	for i := 0; i < 8; i++ {
		x := nextBatch(t, tr, B, L, 0)
		for b := 0; b < B; b++ {
			seen[rowKey(x.Inputs[b*L:(b+1)*L])] = true
		}
	}
	if len(seen) != 8*B {
		t.Errorf("train repeats rows: %d distinct of %d", len(seen), 8*B)
	}
	for i := 0; i < 8; i++ {
		x := nextBatch(t, ev, B, L, 0)
		for b := 0; b < B; b++ {
			if seen[rowKey(x.Inputs[b*L:(b+1)*L])] {
				t.Fatalf("eval row %d of batch %d is also a train row", b, i)
			}
		}
	}
	if _, err := NewSynthetic(synthCfg("test")); err == nil {
		t.Error(`split "test" accepted`)
	}
	// "" means train.
	a, b := nextBatch(t, mustSynth(t, synthCfg("")), 2, 8, 0), nextBatch(t, mustSynth(t, synthCfg("train")), 2, 8, 0)
	if !reflect.DeepEqual(a, b) {
		t.Error(`split "" differs from "train"`)
	}
}

func rowKey(v []uint32) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// segment is a maximal run of one modality inside a row.
type segment struct {
	m        int
	ids      []uint32 // relative to the modality's range start
	complete bool     // bounded by other modalities on both sides
	patches  []float32
}

// segments splits the rows of a batch into runs of one modality (by the
// batch's Modality).
func segments(t *testing.T, v Vocab, x *Batch) []segment {
	t.Helper()
	var out []segment
	for b := 0; b < x.B; b++ {
		o := b * x.L
		start := 0
		for i := 1; i <= x.L; i++ {
			m := x.Modality[o+i-1]
			if i < x.L && x.Modality[o+i] == m {
				continue
			}
			s := segment{m: int(m), complete: start > 0 && i < x.L}
			lo, _ := v.Range(int(m))
			for _, id := range x.Inputs[o+start : o+i] {
				s.ids = append(s.ids, id-lo)
			}
			if x.P > 0 {
				s.patches = x.Patches[(o+start)*x.P : (o+i)*x.P]
			}
			out = append(out, s)
			start = i
		}
	}
	return out
}

func TestSynthStructure(t *testing.T) {
	c := synthCfg("train")
	v := c.Vocab
	x := nextBatch(t, mustSynth(t, c), 64, 512, 0)
	// Targets are the next inputs, modalities follow the vocabulary.
	count := map[int]int{}
	for b := 0; b < x.B; b++ {
		for i := 0; i < x.L; i++ {
			k := b*x.L + i
			m, err := v.ModalityOf(x.Inputs[k])
			if err != nil || uint32(m) != x.Modality[k] {
				t.Fatalf("position %d: id %d has modality %d, batch says %d (%v)", k, x.Inputs[k], m, x.Modality[k], err)
			}
			count[m]++
			if i+1 < x.L && x.Targets[k] != x.Inputs[k+1] {
				t.Fatalf("position %d: target %d, next input %d", k, x.Targets[k], x.Inputs[k+1])
			}
			if _, err := v.ModalityOf(x.Targets[k]); err != nil {
				t.Fatalf("position %d: target: %v", k, err)
			}
		}
	}
	n := float64(x.B * x.L)
	for m := range 3 {
		if f := float64(count[m]) / n; f < 0.15 || f > 0.7 {
			t.Errorf("%s is %.2f of the tokens", v.Name(m), f)
		}
	}
	t.Logf("token shares: text %.2f image %.2f speech %.2f", float64(count[text])/n, float64(count[image])/n, float64(count[speech])/n)

	segs := segments(t, v, x)
	// Text and image: a bigram model fit on the train stream predicts the
	// eval stream far better than uniform. (Speech's structure is periodic,
	// which a bigram model does not see; it is checked below.)
	ev := segments(t, v, nextBatch(t, mustSynth(t, synthCfg("eval")), 64, 512, 0))
	for _, m := range []int{text, image} {
		lo, hi := v.Range(m)
		h := bigramCrossEntropy(segs, ev, m, int(hi-lo))
		u := math.Log(float64(hi - lo))
		t.Logf("%s: bigram cross-entropy %.3f nats, uniform %.3f", v.Name(m), h, u)
		limit := 0.75
		if m == text {
			limit = 0.6
		}
		if h > limit*u {
			t.Errorf("%s: bigram cross-entropy %.3f is not below %.2f x uniform %.3f", v.Name(m), h, limit, u)
		}
	}
	// Image: every cell is within 2 of the rounded mean of its left and
	// upper neighbours (complete 8x8 images only).
	nImg := 0
	for _, s := range segs {
		if s.m != image || !s.complete {
			continue
		}
		if len(s.ids) != 64 {
			t.Fatalf("complete image segment of %d tokens", len(s.ids))
		}
		nImg++
		for cell := 1; cell < 64; cell++ {
			r, col := cell/8, cell%8
			var pred int
			switch {
			case r == 0:
				pred = int(s.ids[cell-1])
			case col == 0:
				pred = int(s.ids[cell-8])
			default:
				pred = (int(s.ids[cell-1]) + int(s.ids[cell-8]) + 1) / 2
			}
			if d := int(s.ids[cell]) - pred; d < -2 || d > 2 {
				t.Fatalf("image cell %d: %d, neighbours predict %d", cell, s.ids[cell], pred)
			}
		}
	}
	// Speech: complete segments repeat with some period in 3..8.
	nSp, match := 0, 0.0
	for _, s := range segs {
		if s.m != speech || !s.complete {
			continue
		}
		if len(s.ids) != 48 {
			t.Fatalf("complete speech segment of %d tokens", len(s.ids))
		}
		nSp++
		best := 0.0
		for p := 3; p <= 8; p++ {
			same := 0
			for i := p; i < len(s.ids); i++ {
				if s.ids[i] == s.ids[i-p] {
					same++
				}
			}
			best = max(best, float64(same)/float64(len(s.ids)-p))
		}
		match += best
	}
	if nImg < 20 || nSp < 20 {
		t.Fatalf("only %d complete images and %d speech segments", nImg, nSp)
	}
	if match /= float64(nSp); match < 0.6 {
		t.Errorf("speech segments repeat their period only %.2f of the time", match)
	}
	t.Logf("%d images, %d speech segments, speech period match %.2f", nImg, nSp, match)
}

// bigramCrossEntropy fits add-0.1 bigram counts of modality m on train and
// returns the cross-entropy (nats per token) on eval, within segments.
func bigramCrossEntropy(train, eval []segment, m int, n int) float64 {
	counts := make([]float64, n*n)
	rows := make([]float64, n)
	for _, s := range train {
		if s.m != m {
			continue
		}
		for i := 1; i < len(s.ids); i++ {
			counts[int(s.ids[i-1])*n+int(s.ids[i])]++
			rows[s.ids[i-1]]++
		}
	}
	const alpha = 0.1
	h, k := 0.0, 0
	for _, s := range eval {
		if s.m != m {
			continue
		}
		for i := 1; i < len(s.ids); i++ {
			a, b := int(s.ids[i-1]), int(s.ids[i])
			h -= math.Log((counts[a*n+b] + alpha) / (rows[a] + alpha*float64(n)))
			k++
		}
	}
	return h / float64(k)
}

func TestSynthContinuous(t *testing.T) {
	const P = 12
	c := continuousCfg("train", P)
	c.Seed = 7
	v := c.Vocab
	x := nextBatch(t, mustSynth(t, c), 16, 256, P)
	placeholder, _ := v.Range(image)
	sum2, nImgPos := 0.0, 0
	for b := 0; b < x.B; b++ {
		for i := 0; i < x.L; i++ {
			k := b*x.L + i
			patch := x.Patches[k*P : (k+1)*P]
			img := x.Modality[k] == image
			nextImg := false
			if i+1 < x.L {
				nextImg = x.Modality[k+1] == image
			}
			if img {
				nImgPos++
				if x.Inputs[k] != placeholder {
					t.Fatalf("image position %d has id %d, want the placeholder %d", k, x.Inputs[k], placeholder)
				}
				for _, p := range patch {
					sum2 += float64(p) * float64(p)
				}
			} else {
				for _, p := range patch {
					if p != 0 {
						t.Fatalf("non-image position %d has a patch", k)
					}
				}
			}
			if (img || nextImg) && x.Targets[k] != IgnoreIndex {
				t.Fatalf("position %d (image %v, next image %v) has target %d", k, img, nextImg, x.Targets[k])
			}
			if !img && !nextImg && i+1 < x.L && x.Targets[k] != x.Inputs[k+1] {
				t.Fatalf("text position %d: target %d, next input %d", k, x.Targets[k], x.Inputs[k+1])
			}
		}
	}
	if rms := math.Sqrt(sum2 / float64(nImgPos*P)); rms < 0.3 || rms > 3 {
		t.Errorf("patch RMS %.3f, want about 1", rms)
	}
	// Each complete image is a rank <= 4 field, smooth across neighbours.
	nImg, near, far := 0, 0.0, 0.0
	for _, s := range segments(t, v, x) {
		if s.m != image || !s.complete {
			continue
		}
		if len(s.patches) != 64*P {
			t.Fatalf("complete image of %d patch values", len(s.patches))
		}
		nImg++
		m := mat.NewDense(64, P, nil)
		for i := 0; i < 64; i++ {
			for j := 0; j < P; j++ {
				m.Set(i, j, float64(s.patches[i*P+j]))
			}
		}
		var svd mat.SVD
		if !svd.Factorize(m, mat.SVDNone) {
			t.Fatal("SVD failed")
		}
		sv := svd.Values(nil)
		if sv[4] > 1e-4*sv[0] {
			t.Errorf("image patch matrix has rank > 4: singular values %v", sv)
		}
		dist := func(a, b int) float64 {
			d := 0.0
			for j := 0; j < P; j++ {
				e := float64(s.patches[a*P+j] - s.patches[b*P+j])
				d += e * e
			}
			return d
		}
		for cell := 0; cell < 63; cell++ {
			if cell%8 != 7 {
				near += dist(cell, cell+1)
			}
			far += dist(cell, 63-cell)
		}
	}
	if nImg < 5 {
		t.Fatalf("only %d complete images", nImg)
	}
	if near/56 > 0.7*far/63 {
		t.Errorf("patches are not smooth: neighbour distance %.3f vs far %.3f", near/56, far/63)
	}
}

func TestSynthTextOnly(t *testing.T) {
	c := SynthConfig{Generators: []string{GenMarkov}, Vocab: testVocab(50), Seed: 1}
	x := nextBatch(t, mustSynth(t, c), 4, 100, 0)
	for k, m := range x.Modality {
		if m != 0 || x.Inputs[k] >= 50 {
			t.Fatalf("position %d: id %d modality %d", k, x.Inputs[k], m)
		}
	}
}

func TestSynthRejects(t *testing.T) {
	v3 := testVocab(64, 32, 16)
	cases := []struct {
		name string
		c    SynthConfig
		want string
	}{
		{"no image ids", SynthConfig{Generators: gens3, Vocab: testVocab(64, 0, 16)}, "image is enabled but the vocabulary has no image ids"},
		{"bad vocab", SynthConfig{Vocab: Vocab{[]string{"a", "b"}, [][2]uint32{{0, 5}, {3, 9}}}}, "overlap"},
		{"unknown generator", SynthConfig{Generators: []string{GenMarkov, "waves", GenGrid}, Vocab: v3}, `modality 1 has the unknown generator "waves"`},
		{"no generators", SynthConfig{Vocab: v3}, "no modalities"},
		{"generator count", SynthConfig{Generators: gens3[:2], Vocab: v3}, "2 generators for a vocabulary of 3"},
		{"first not markov", SynthConfig{Generators: []string{GenGrid, GenGrid, GenPeriodic}, Vocab: v3}, `modality 0 uses "grid"`},
		{"continuous without P", SynthConfig{Generators: []string{GenMarkov, GenField, GenPeriodic}, Vocab: v3}, "need P > 0"},
		{"negative P", SynthConfig{Generators: gens3, Vocab: v3, P: -1}, "P = -1"},
	}
	for _, c := range cases {
		if _, err := NewSynthetic(c.c); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
	s := mustSynth(t, continuousCfg("train", 4))
	for _, b := range []*Batch{nil, {B: 2, L: 2}, mustBatch(t, 2, 2, 0), mustBatch(t, 2, 2, 3)} {
		if err := s.Next(b); err == nil {
			t.Errorf("Next(%+v) succeeded", b)
		}
	}
	// A discrete stream zeroes a batch's patches.
	x := mustBatch(t, 1, 4, 2)
	for i := range x.Patches {
		x.Patches[i] = 1
	}
	if err := mustSynth(t, synthCfg("train")).Next(x); err != nil {
		t.Fatal(err)
	}
	for _, p := range x.Patches {
		if p != 0 {
			t.Fatal("patches not zeroed")
		}
	}
}

func BenchmarkSynthNext(b *testing.B) {
	for _, cont := range []bool{false, true} {
		c := synthCfg("train")
		p := 0
		name := "discrete"
		if cont {
			c, p, name = continuousCfg("train", 16), 16, "continuous"
		}
		s := mustSynth(b, c)
		x := mustBatch(b, 8, 1024, p)
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(x.B * x.L * 4))
			for b.Loop() {
				if err := s.Next(x); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*x.B*x.L)/b.Elapsed().Seconds(), "tokens/s")
		})
	}
}
