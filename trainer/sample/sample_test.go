package sample_test

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"mom/gpu"
	"mom/gpu/gputest"
	"mom/mom"
	"mom/trainer/media"
	"mom/trainer/sample"
)

// greedyTol bounds how far below the best logit of its id set a greedy
// step's choice may lie in the parallel forward's logits, in units of the
// row's RMS: the step mode and the parallel forward agree to a few 1e-6
// of the logits' scale (mom's step test), so only a near-tie can flip a
// choice, and 1e-4 is far below any real disagreement.
const greedyTol = 1e-4

// parallelLogits runs the trained model's parallel forward over one
// sequence and returns its logits (len, V).
func parallelLogits(t *testing.T, d *gpu.Device, f *fixture, seq []uint32) []float32 {
	t.Helper()
	c := f.tr.Config
	L := len(seq)
	m, err := f.tr.NewModel(d, 1, L)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Release()
	b := &mom.Batch{Inputs: seq, Modality: make([]uint32, L), Targets: make([]uint32, L), TargetModality: make([]uint32, L)}
	for i, id := range seq {
		g, ok := c.ModalityOf(id)
		if !ok {
			t.Fatalf("id %d outside the vocabulary", id)
		}
		b.Modality[i] = uint32(g)
		b.Targets[i] = mom.IgnoreIndex
		if i+1 < L {
			b.Targets[i] = seq[i+1]
			tg, _ := c.ModalityOf(seq[i+1])
			b.TargetModality[i] = uint32(tg)
		}
	}
	if err := m.SetBatch(b, 1); err != nil {
		t.Fatal(err)
	}
	logits, err := m.Logits()
	if err != nil {
		t.Fatal(err)
	}
	return logits
}

// checkGreedy checks that id, drawn greedily from set after the row of
// logits, is the set's argmax within greedyTol.
func checkGreedy(t *testing.T, what string, row []float32, set mom.IDSet, id uint32) {
	t.Helper()
	best, ss := math.Inf(-1), 0.0
	for i, v := range row {
		ss += float64(v) * float64(v)
		if set.Contains(i) {
			best = math.Max(best, float64(v))
		}
	}
	rms := math.Sqrt(ss / float64(len(row)))
	if !set.Contains(int(id)) {
		t.Fatalf("%s: greedy id %d outside its set %v", what, id, set)
	}
	if gap := best - float64(row[id]); gap > greedyTol*rms {
		t.Errorf("%s: greedy id %d has logit %.6g, %.3g below the set's best (tolerance %.3g)", what, id, row[id], gap, greedyTol*rms)
	}
}

// TestSampleText: free text continues the prompt within the text range
// (no document or end-of-span markers drawn); seeds reproduce; greedy
// samples are the parallel forward's argmax at every position.
func TestSampleText(t *testing.T) {
	gputest.ForEachDevice(t, func(t *testing.T, d *gpu.Device) {
		f := openFixture(t, d, mom.ThreeModal, 3)
		c := f.tr.Config
		o := sample.Options{Prompt: "the quick brown", MaxTokens: 40, Params: mom.SampleParams{Temperature: 1, TopK: 40, Seed: 11}}
		a, err := f.s.Sample(o)
		if err != nil {
			t.Fatal(err)
		}
		b, err := f.s.Sample(o)
		if err != nil {
			t.Fatal(err)
		}
		o.Params.Seed = 12
		other, err := f.s.Sample(o)
		if err != nil {
			t.Fatal(err)
		}
		differ := false
		for i, smp := range a.Samples {
			if !slices.Equal(smp.IDs, b.Samples[i].IDs) {
				t.Errorf("sample %d: the same seed gave %v and %v", i, smp.IDs, b.Samples[i].IDs)
			}
			differ = differ || !slices.Equal(smp.IDs, other.Samples[i].IDs)
			if !strings.HasPrefix(smp.Text, o.Prompt) {
				t.Errorf("sample %d text %q does not start with the prompt", i, smp.Text)
			}
			if smp.Stop != "end" && smp.Stop != "max-tokens" {
				t.Errorf("sample %d stopped by %q", i, smp.Stop)
			}
			if smp.Stop == "max-tokens" && len(smp.IDs) != o.MaxTokens {
				t.Errorf("sample %d: %d ids, stopped by the cap of %d", i, len(smp.IDs), o.MaxTokens)
			}
			span := 0 // the modality of the span we are in
			for _, id := range smp.IDs {
				g, _ := c.ModalityOf(id)
				switch {
				case id == f.v.Doc:
					t.Errorf("sample %d drew the document marker", i)
				case span == 0 && g != 0:
					t.Errorf("sample %d drew %s id %d outside a span", i, c.Modalities[g].Name, id)
				case span == 0 && slices.Contains(f.v.Begin[1:], id):
					span = slices.Index(f.v.Begin, id)
				case span == 0 && slices.Contains(f.v.Finish[1:], id):
					t.Errorf("sample %d drew an end marker outside a span", i)
				case span > 0 && id == f.v.Finish[span]:
					span = 0
				case span > 0 && g != span:
					t.Errorf("sample %d drew id %d inside a %s span", i, id, c.Modalities[span].Name)
				}
			}
			t.Logf("sample %d (%s): %q", i, smp.Stop, smp.Text)
		}
		if !differ {
			t.Error("another seed gave the same samples")
		}
		// Chunks of steps in one submit (inside images) draw what single
		// steps draw.
		f.s.SetChunk(1)
		o.Params.Seed = 11
		single, err := f.s.Sample(o)
		f.s.SetChunk(32)
		if err != nil {
			t.Fatal(err)
		}
		for i := range single.Samples {
			if !slices.Equal(single.Samples[i].IDs, a.Samples[i].IDs) {
				t.Errorf("sample %d: single steps drew %v, chunks %v", i, single.Samples[i].IDs, a.Samples[i].IDs)
			}
		}
		if a.Tokens == 0 || a.Seconds <= 0 {
			t.Errorf("%d tokens in %g s", a.Tokens, a.Seconds)
		}
		t.Logf("%d tokens over %d streams in %.3f s: %.0f tokens/s", a.Tokens, f.s.N, a.Seconds, float64(a.Tokens)/a.Seconds)

		// Greedy: every stream alike, each id the argmax of the parallel
		// forward's logits at the position before (while in free text).
		o.Params = mom.SampleParams{}
		g, err := f.s.Sample(o)
		if err != nil {
			t.Fatal(err)
		}
		for i := range g.Samples {
			if !slices.Equal(g.Samples[i].IDs, g.Samples[0].IDs) {
				t.Errorf("greedy stream %d differs from stream 0", i)
			}
		}
		prompt := f.v.Prompt(o.Prompt)
		seq := append(slices.Clone(prompt), g.Samples[0].IDs...)
		logits := parallelLogits(t, d, f, seq)
		V := c.Vocab
		textSet := freeTextSet(f.v)
		for j, id := range g.Samples[0].IDs {
			if slices.Contains(f.v.Begin[1:], id) || j == len(g.Samples[0].IDs)-1 && id == f.v.End {
				checkGreedy(t, fmt.Sprintf("greedy position %d", j), logits[(len(prompt)-1+j)*V:(len(prompt)+j)*V], textSet, id)
				break
			}
			checkGreedy(t, fmt.Sprintf("greedy position %d", j), logits[(len(prompt)-1+j)*V:(len(prompt)+j)*V], textSet, id)
		}
	})
}

// freeTextSet is the text range without the markers only the sampler
// places (the document marker, the end markers of spans, the begin markers
// of continuous modalities).
func freeTextSet(v *sample.Vocab) mom.IDSet {
	c := v.Cfg
	banned := map[int]bool{int(v.Doc): true}
	for g, row := range c.Modalities[1:] {
		banned[int(v.Finish[g+1])] = true
		if row.Continuous {
			banned[int(v.Begin[g+1])] = true
		}
	}
	var set mom.IDSet
	for i := c.VocabRanges[0][0]; i < c.VocabRanges[0][1]; i++ {
		if !banned[i] {
			set = append(set, [2]int{i, i + 1})
		}
	}
	return set
}

// TestSampleImage: a discrete image is exactly one image's worth of image
// ids (the VQ tokenizer's tokens per image) between its markers, decoded
// to a PNG, with a grid; greedy image tokens are the parallel forward's
// argmax over the image range.
func TestSampleImage(t *testing.T) {
	gputest.ForEachDevice(t, func(t *testing.T, d *gpu.Device) {
		f := openFixture(t, d, mom.ThreeModal, 2)
		c := f.tr.Config
		img := c.ModalityIndex("image")
		per := f.v.ItemLen(img)
		if per != 49 {
			t.Fatalf("tokens per image %d, want 49 (28x28 images of 4x4 patches)", per)
		}
		for _, p := range []mom.SampleParams{{Temperature: 1, Seed: 3}, {}} {
			o := sample.Options{Prompt: "a round spot", Modality: "image", MaxTokens: 64, Params: p}
			res, err := f.s.Sample(o)
			if err != nil {
				t.Fatal(err)
			}
			for i, smp := range res.Samples {
				if len(smp.IDs) != per+1 || smp.IDs[per] != f.v.Finish[img] || smp.Stop != "item" {
					t.Fatalf("sample %d: %d ids ending %v (stop %q), want %d image ids and the end marker", i, len(smp.IDs), smp.IDs[len(smp.IDs)-1:], smp.Stop, per)
				}
				for k, id := range smp.IDs[:per] {
					if g, _ := c.ModalityOf(id); g != img {
						t.Errorf("sample %d token %d: id %d outside the image range %v", i, k, id, c.VocabRanges[img])
					}
				}
				if len(smp.Items) != 1 || smp.Items[0].Err != nil {
					t.Fatalf("sample %d items %+v", i, smp.Items)
				}
				im, ok := smp.Items[0].Value.(*media.Image)
				if !ok || im.W != 28 || im.H != 28 {
					t.Fatalf("sample %d decoded to %T %+v", i, smp.Items[0].Value, im)
				}
			}
			if p.Temperature > 0 {
				dir := t.TempDir()
				files, err := res.Write(dir)
				if err != nil {
					t.Fatal(err)
				}
				for _, name := range []string{sample.GridFile, "sample_00_image_1.png", "sample_01_image_1.png", sample.TextFile, sample.JSONFile} {
					if !slices.Contains(files, filepath.Join(dir, name)) {
						t.Errorf("%s not written (%v)", name, files)
					}
				}
				grid, err := media.ReadImage(filepath.Join(dir, sample.GridFile))
				if err != nil || grid.W < 2*28*4 {
					t.Errorf("grid: %v, %+v", err, grid)
				}
				var js struct {
					Samples []struct {
						IDs  []uint32 `json:"ids"`
						Stop string   `json:"stop"`
					} `json:"samples"`
				}
				b, _ := os.ReadFile(filepath.Join(dir, sample.JSONFile))
				if err := json.Unmarshal(b, &js); err != nil || len(js.Samples) != 2 || !slices.Equal(js.Samples[1].IDs, res.Samples[1].IDs) {
					t.Errorf("samples.json: %v %s", err, b)
				}
				continue
			}
			// Greedy: the parallel forward's argmax over the image range.
			prompt := f.v.Prompt(o.Prompt)
			prompt = append(prompt, f.v.Begin[img])
			seq := append(slices.Clone(prompt), res.Samples[0].IDs[:per]...)
			logits := parallelLogits(t, d, f, seq)
			V := c.Vocab
			for j, id := range res.Samples[0].IDs[:per] {
				checkGreedy(t, fmt.Sprintf("greedy image token %d", j), logits[(len(prompt)-1+j)*V:(len(prompt)+j)*V], mom.IDSet{c.VocabRanges[img]}, id)
			}
		}
	})
}

// TestSampleSpeech: a speech span holds speech units only and ends at its
// end marker or at the token cap; units decode to a WAV.
func TestSampleSpeech(t *testing.T) {
	gputest.ForEachDevice(t, func(t *testing.T, d *gpu.Device) {
		f := openFixture(t, d, mom.ThreeModal, 3)
		c := f.tr.Config
		sp := c.ModalityIndex("speech")
		o := sample.Options{Prompt: "seven small birds", Modality: "speech", MaxTokens: 30, Params: mom.SampleParams{Temperature: 1, Seed: 5}}
		res, err := f.s.Sample(o)
		if err != nil {
			t.Fatal(err)
		}
		wavs := 0
		for i, smp := range res.Samples {
			units := smp.IDs
			switch smp.Stop {
			case "item":
				if units[len(units)-1] != f.v.Finish[sp] {
					t.Errorf("sample %d ended as an item without its end marker: %v", i, units)
				}
				units = units[:len(units)-1]
			case "max-tokens":
				if len(units) != o.MaxTokens {
					t.Errorf("sample %d: %d ids at the cap of %d", i, len(units), o.MaxTokens)
				}
			default:
				t.Errorf("sample %d stopped by %q", i, smp.Stop)
			}
			for k, id := range units {
				if g, _ := c.ModalityOf(id); g != sp {
					t.Errorf("sample %d token %d: id %d outside the speech range %v", i, k, id, c.VocabRanges[sp])
				}
			}
			if len(smp.Items) != 1 {
				t.Fatalf("sample %d: %d items", i, len(smp.Items))
			}
			if len(units) > 0 {
				a, ok := smp.Items[0].Value.(*media.Audio)
				if !ok || smp.Items[0].Err != nil || len(a.Samples) == 0 {
					t.Errorf("sample %d: %d units decoded to %T (%v)", i, len(units), smp.Items[0].Value, smp.Items[0].Err)
				} else {
					wavs++
				}
			}
			t.Logf("sample %d: %d units, %s", i, len(units), smp.Stop)
		}
		dir := t.TempDir()
		files, err := res.Write(dir)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, p := range files {
			if strings.HasSuffix(p, ".wav") {
				if _, err := media.ReadWAV(p); err != nil {
					t.Error(err)
				}
				n++
			}
		}
		if n != wavs {
			t.Errorf("%d WAV files for %d decoded spans", n, wavs)
		}
	})
}

// TestSampleDiffusion: the Transfusion samplers (DDPM and DDIM) denoise an
// image's patches conditioned on the prompt: the patches come back finite
// and in the data range, decode to PNGs and a grid; the same seed gives
// the same patches bit for bit, another seed others; DDIM at 4 levels and
// DDPM at 3 run 4 and 3 passes over the span.
func TestSampleDiffusion(t *testing.T) {
	gputest.ForEachDevice(t, func(t *testing.T, d *gpu.Device) {
		f := openFixture(t, d, mom.Transfusion, 2)
		img := f.tr.Config.ModalityIndex("image")
		per := f.v.ItemLen(img)
		if per != 49 {
			t.Fatalf("%d patches per image, want 49", per)
		}
		// The first pass's predicted noise equals single steps' of the same
		// prompt and noisy patches (the conditioning, the state at the span's
		// start and the layout of streams and positions).
		const prompt = "a round spot"
		type pass struct{ x, eps []float32 }
		first := map[int]pass{}
		sample.SetTestHookPred(func(level, stream int, x, eps []float32) {
			if _, ok := first[stream]; !ok && level == mom.TimestepBuckets-1 {
				first[stream] = pass{slices.Clone(x), slices.Clone(eps)}
			}
		})
		_, err := f.s.Sample(sample.Options{Prompt: prompt, Modality: "image", Diffusion: "ddim", Steps: 2})
		sample.SetTestHookPred(nil)
		if err != nil {
			t.Fatal(err)
		}
		checkFirstPass(t, f, prompt, first[1].x, first[1].eps)

		for _, o := range []sample.Options{
			{Prompt: prompt, Modality: "image", Diffusion: "ddim", Steps: 4, Params: mom.SampleParams{Seed: 1}},
			{Prompt: prompt, Modality: "image", Diffusion: "ddpm", Steps: 3, Params: mom.SampleParams{Seed: 1}},
		} {
			res, err := f.s.Sample(o)
			if err != nil {
				t.Fatal(err)
			}
			if res.Steps != o.Steps*per {
				t.Errorf("%s: %d steps per stream, want %d passes of %d", o.Diffusion, res.Steps, o.Steps, per)
			}
			again, err := f.s.Sample(o)
			if err != nil {
				t.Fatal(err)
			}
			o2 := o
			o2.Params.Seed = 2
			other, err := f.s.Sample(o2)
			if err != nil {
				t.Fatal(err)
			}
			for i, smp := range res.Samples {
				if len(smp.Items) != 1 || smp.Items[0].Err != nil {
					t.Fatalf("%s sample %d items %+v", o.Diffusion, i, smp.Items)
				}
				p := smp.Items[0].Patches
				if len(p) != per*f.tr.Config.PatchDim {
					t.Fatalf("%d patch values", len(p))
				}
				for k, x := range p {
					if math.IsNaN(float64(x)) || x < -1 || x > 1 {
						t.Fatalf("%s sample %d value %d: %v, want finite in [-1, 1]", o.Diffusion, i, k, x)
					}
				}
				if !slices.Equal(p, again.Samples[i].Items[0].Patches) {
					t.Errorf("%s sample %d: the same seed gave other patches", o.Diffusion, i)
				}
				if slices.Equal(p, other.Samples[i].Items[0].Patches) {
					t.Errorf("%s sample %d: another seed gave the same patches", o.Diffusion, i)
				}
				if im, ok := smp.Items[0].Value.(*media.Image); !ok || im.W != 28 || im.H != 28 || im.C != 1 {
					t.Errorf("%s sample %d decoded to %T", o.Diffusion, i, smp.Items[0].Value)
				}
			}
			if slices.Equal(res.Samples[0].Items[0].Patches, res.Samples[1].Items[0].Patches) {
				t.Errorf("%s: both streams gave the same image", o.Diffusion)
			}
			dir := t.TempDir()
			if _, err := res.Write(dir); err != nil {
				t.Fatal(err)
			}
			if _, err := media.ReadImage(filepath.Join(dir, sample.GridFile)); err != nil {
				t.Error(err)
			}
			t.Logf("%s, %d levels: %d forced steps per stream in %.3f s", o.Diffusion, o.Steps, res.Steps, res.Seconds)
		}
	})
}

// checkFirstPass steps a one-stream step model through the prompt, the
// image's begin marker and the noisy patches x at the noisiest level, and
// compares its predicted noise with eps.
func checkFirstPass(t *testing.T, f *fixture, prompt string, x, eps []float32) {
	t.Helper()
	c := f.tr.Config
	img := c.ModalityIndex("image")
	P := c.PatchDim
	if len(x) == 0 || len(x) != len(eps) {
		t.Fatalf("the hook saw %d patch values and %d predictions", len(x), len(eps))
	}
	st, err := mom.NewStepModel(f.m, 1, mom.StepOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Release()
	step := func(id uint32, patch []float32) []float32 {
		if err := st.SetInputs([]uint32{id}); err != nil {
			t.Fatal(err)
		}
		if err := st.SetPatches(patch); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Step(); err != nil {
			t.Fatal(err)
		}
		p, err := st.Pred()
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	zero := make([]float32, P)
	for _, id := range append(f.v.Prompt(prompt), f.v.Begin[img]) {
		step(id, zero)
	}
	level := uint32(c.VocabRanges[img][0] + mom.TimestepBuckets - 1)
	worst, scale := 0.0, 0.0
	for q := 0; q < len(x)/P; q++ {
		got := step(level, x[q*P:(q+1)*P])
		for k, v := range got {
			worst = math.Max(worst, math.Abs(float64(v-eps[q*P+k])))
			scale = math.Max(scale, math.Abs(float64(v)))
		}
	}
	if worst > 1e-4*scale {
		t.Errorf("the sampler's predicted noise differs from single steps' by %.3g (scale %.3g)", worst, scale)
	}
}

// TestSampleErrors: options the vocabulary refuses, before any sampling.
func TestSampleErrors(t *testing.T) {
	gputest.ForEachDevice(t, func(t *testing.T, d *gpu.Device) {
		three := openFixture(t, d, mom.ThreeModal, 1)
		tf := openFixture(t, d, mom.Transfusion, 1)
		cases := []struct {
			f    *fixture
			o    sample.Options
			want string
		}{
			{three, sample.Options{Modality: "video"}, `no "video" modality`},
			{tf, sample.Options{Modality: "speech"}, `no "speech" modality`},
			{three, sample.Options{Modality: "image", Steps: 4}, "not denoised"},
			{three, sample.Options{Diffusion: "ddim"}, "not denoised"},
			{tf, sample.Options{Modality: "image", Diffusion: "euler"}, "unknown diffusion sampler"},
			{tf, sample.Options{Modality: "image", Steps: 33}, "diffusion steps"},
			{three, sample.Options{MaxTokens: -1}, "max-tokens"},
			{three, sample.Options{Modality: "image", MaxTokens: 20}, "more than --max-tokens"},
			{three, sample.Options{Params: mom.SampleParams{Temperature: -1}}, "temperature"},
			{three, sample.Options{Params: mom.SampleParams{TopP: 2}}, "top-p"},
		}
		// An empty prompt starts a document; without a document marker
		// the text has nothing to start from, but an item its begin marker.
		if res, err := three.s.Sample(sample.Options{MaxTokens: 5}); err != nil || len(res.Samples[0].IDs) == 0 {
			t.Errorf("an empty prompt: %v", err)
		}
		noDoc := *three.v
		noDoc.HasDoc = false
		o := sample.Options{}
		if err := o.Check(&noDoc); err == nil || !strings.Contains(err.Error(), "empty prompt") {
			t.Errorf("an empty prompt without a document marker: %v", err)
		}
		o = sample.Options{Modality: "speech"}
		if err := o.Check(&noDoc); err != nil {
			t.Errorf("an empty prompt for speech without a document marker: %v", err)
		}
		for _, c := range cases {
			o := c.o
			if err := o.Check(c.f.v); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%+v: %v, want an error with %q", c.o, err, c.want)
			}
			if _, err := c.f.s.Sample(c.o); err == nil {
				t.Errorf("%+v: sampled", c.o)
			}
		}
	})
}

// TestSamplerRelease: samplers made, used and released many times leave
// the live object counts where they started.
func TestSamplerRelease(t *testing.T) {
	gputest.ForEachDevice(t, func(t *testing.T, d *gpu.Device) {
		for _, setting := range []mom.Setting{mom.ThreeModal, mom.Transfusion} {
			f := openFixture(t, d, setting, 1)
			o := sample.Options{Prompt: "a", Modality: "image", MaxTokens: 60, Steps: 1}
			if !f.tr.Config.Continuous() {
				o.Steps = 0
			}
			cycle := func() {
				s, err := sample.New(f.m, f.v, 2)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := s.Sample(o); err != nil {
					t.Fatal(err)
				}
				s.Release()
			}
			cycle()
			if err := d.Sync(); err != nil {
				t.Fatal(err)
			}
			before := d.LiveObjects()
			for i := 0; i < 5; i++ {
				cycle()
			}
			if err := d.Sync(); err != nil {
				t.Fatal(err)
			}
			if after := d.LiveObjects(); fmt.Sprint(before) != fmt.Sprint(after) {
				t.Errorf("%s: live objects changed over 5 cycles: %v -> %v", setting, before, after)
			}
		}
	})
}

// TestGenerateThenDecode: Generate leaves the samples undecoded; Decode
// (or Write) gives exactly what Sample gives, once.
func TestGenerateThenDecode(t *testing.T) {
	gputest.ForEachDevice(t, func(t *testing.T, d *gpu.Device) {
		f := openFixture(t, d, mom.ThreeModal, 2)
		for _, m := range []string{"text", "speech"} {
			o := sample.Options{Prompt: "the", Modality: m, MaxTokens: 60, Params: mom.SampleParams{Temperature: 1, Seed: 3}}
			want, err := f.s.Sample(o)
			if err != nil {
				t.Fatal(err)
			}
			got, err := f.s.Generate(o)
			if err != nil {
				t.Fatal(err)
			}
			for i, s := range got.Samples {
				if s.Text != "" || len(s.Items) != 0 || !slices.Equal(s.IDs, want.Samples[i].IDs) {
					t.Fatalf("%s sample %d from Generate: text %q, %d items, ids %v; want none, none, %v", m, i, s.Text, len(s.Items), s.IDs, want.Samples[i].IDs)
				}
			}
			got.Decode()
			got.Decode()
			for i, s := range got.Samples {
				w := want.Samples[i]
				if s.Text != w.Text || len(s.Items) != len(w.Items) {
					t.Errorf("%s sample %d decoded: %q with %d items; Sample gave %q with %d", m, i, s.Text, len(s.Items), w.Text, len(w.Items))
				}
			}
			if m == "speech" && len(got.Samples[0].Items) == 0 {
				t.Errorf("no speech item decoded")
			}
		}
	})
}
