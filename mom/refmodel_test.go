package mom

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// randomBatch draws a valid batch of t positions for c: modalities in runs,
// token ids from each modality's range.
func randomBatch(c Config, B, L int, rng *rand.Rand) *Batch {
	T := B * L
	b := &Batch{Inputs: make([]uint32, T), Modality: make([]uint32, T), Targets: make([]uint32, T), TargetModality: make([]uint32, T)}
	G := c.Groups()
	for s := 0; s < B; s++ {
		mod := 0
		for l := 0; l < L; l++ {
			i := s*L + l
			if rng.IntN(3) == 0 {
				mod = rng.IntN(G)
			}
			r := c.VocabRanges[mod]
			b.Modality[i] = uint32(mod)
			b.Inputs[i] = uint32(r[0] + rng.IntN(r[1]-r[0]))
		}
		for l := 0; l < L; l++ {
			i := s*L + l
			if l == L-1 {
				b.Targets[i] = IgnoreIndex
				continue
			}
			b.Targets[i] = b.Inputs[i+1]
			b.TargetModality[i] = b.Modality[i+1]
			if c.Continuous() && c.Modalities[b.Modality[i+1]].Continuous {
				b.Targets[i] = IgnoreIndex
			}
		}
	}
	if c.Continuous() {
		P := c.PatchDim
		b.NoisyPatches, b.Noise = make([]float32, T*P), make([]float32, T*P)
		for i := 0; i < T; i++ {
			if c.Modalities[b.Modality[i]].Continuous {
				for k := 0; k < P; k++ {
					b.NoisyPatches[i*P+k] = float32(rng.NormFloat64())
					b.Noise[i*P+k] = float32(rng.NormFloat64())
				}
			}
		}
	}
	return b
}

// microConfig is a model small enough for finite differences.
func microConfig(setting Setting, splits Splits) Config {
	c, err := Preset("tiny", setting, splits)
	if err != nil {
		panic(err)
	}
	c.DModel, c.Layers, c.DState, c.DConv, c.Expand, c.DtRank = 6, 2, 3, 3, 2, 2
	if c.Continuous() {
		c.PatchDim = 4
	}
	return c
}

func randomParams(c Config, rng *rand.Rand) map[string][]float64 {
	ps := map[string][]float64{}
	r32 := rand.New(rand.NewPCG(rng.Uint64(), rng.Uint64()))
	for _, s := range c.ParamSpecs() {
		v := InitParam(s, r32)
		w := make([]float64, len(v))
		for i := range v {
			// Perturb so that ones and zeros do not hide wrong gradients.
			w[i] = float64(v[i]) + 0.05*rng.NormFloat64()
		}
		ps[s.Name] = w
	}
	return ps
}

// TestRefStepFiniteDifferences checks the whole reference model's gradient
// (the composition of the nn/ref twins in the GPU model's order) against
// central differences of its loss, for every setting, dense and split.
func TestRefStepFiniteDifferences(t *testing.T) {
	for _, setting := range []Setting{Chameleon, Transfusion, ThreeModal} {
		for _, splits := range []Splits{{}, AllSplits, {In: true, Dt: true}} {
			t.Run(fmt.Sprintf("%s/%s", setting, splits), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(7, uint64(len(setting))))
				c := microConfig(setting, splits)
				const B, L = 2, 5
				b := randomBatch(c, B, L, rng)
				params := randomParams(c, rng)
				losses, grads, err := RefStep(c, params, b, B, L, 1)
				if err != nil {
					t.Fatal(err)
				}
				lossAt := func() float64 {
					l, _, err := RefStep(c, params, b, B, L, 1)
					if err != nil {
						t.Fatal(err)
					}
					return RefLoss(c, b, l)
				}
				if base := RefLoss(c, b, losses); !(base > 0) {
					t.Fatalf("loss %g", base)
				}
				const h = 1e-5
				worst := 0.0
				for _, s := range c.ParamSpecs() {
					p := params[s.Name]
					for trial := 0; trial < 4; trial++ {
						i := rng.IntN(len(p))
						old := p[i]
						p[i] = old + h
						up := lossAt()
						p[i] = old - h
						down := lossAt()
						p[i] = old
						fd := (up - down) / (2 * h)
						got := grads[s.Name][i]
						err := math.Abs(got-fd) / (1e-6 + math.Abs(fd))
						if math.Abs(got-fd) > 1e-6+1e-4*math.Abs(fd) {
							t.Errorf("%s[%d]: gradient %.8g, finite difference %.8g", s.Name, i, got, fd)
						}
						worst = math.Max(worst, err)
					}
				}
				t.Logf("worst relative gradient error %.2g", worst)
			})
		}
	}
}

// A batch without some modality leaves that modality's split weights with
// exactly zero gradient.
func TestRefStepAbsentModalityZeroGrad(t *testing.T) {
	c := microConfig(ThreeModal, AllSplits)
	rng := rand.New(rand.NewPCG(3, 4))
	b := randomBatch(c, 2, 6, rng)
	for i := range b.Inputs { // text only
		b.Modality[i], b.TargetModality[i] = 0, 0
		b.Inputs[i] %= uint32(c.VocabRanges[0][1])
		if b.Targets[i] != IgnoreIndex {
			b.Targets[i] %= uint32(c.VocabRanges[0][1])
		}
	}
	_, grads, err := RefStep(c, randomParams(c, rng), b, 2, 6, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range c.ParamSpecs() {
		if s.Groups == 1 {
			continue
		}
		per := s.Len() / s.Groups
		g := grads[s.Name]
		for i := per; i < len(g); i++ { // groups 1 (image) and 2 (speech)
			if g[i] != 0 {
				t.Fatalf("%s: gradient of modality %d is %g, want exactly 0", s.Name, i/per, g[i])
			}
		}
		nonzero := false
		for _, x := range g[:per] {
			nonzero = nonzero || x != 0
		}
		if !nonzero {
			t.Errorf("%s: text gradient is all zero", s.Name)
		}
	}
}
