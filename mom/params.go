package mom

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// InitKind says how a parameter is initialised (as in the paper's code,
// mamba_ssm's MambaLMHeadModel).
type InitKind int

const (
	InitOnes    InitKind = iota // norm weights, D
	InitNormal                  // N(0, Scale²): embeddings (0.02)
	InitUniform                 // U(-Scale, Scale): Linear (1/sqrt(fan_in)), dt_proj weight (dt_rank^-0.5)
	InitALog                    // S4D-real: A_log[e, i] = log(i+1)
	InitDtBias                  // inverse softplus of dt ~ log-uniform [1e-3, 1e-1]
	InitZeros
)

// ParamSpec describes one parameter tensor.
type ParamSpec struct {
	Name  string
	Shape []int // (G, out, in) for a split projection, (out, in) otherwise
	Init  InitKind
	Scale float64
	Decay bool // weight decay applies
	// Groups > 1 marks a per-modality tensor whose leading dim is the modality.
	Groups int
	Layer  int // -1 for embeddings, final norm and heads
}

// Len is the number of elements.
func (p ParamSpec) Len() int {
	n := 1
	for _, s := range p.Shape {
		n *= s
	}
	return n
}

// Parameter names used by the model and in checkpoints. in_proj is stored
// as its x and z halves and x_proj as its dt, B and C parts (the same
// numbers as mamba_ssm's in_proj.weight and x_proj.weight, split by rows).
const (
	NameEmbed    = "embedding.weight"
	NameNormF    = "norm_f.weight"
	NameHead     = "lm_head.weight" // only when embeddings are not tied
	NamePatchIn  = "patch_in.weight"
	NamePatchOut = "patch_out.weight"
)

// LayerParam names a parameter of layer i.
func LayerParam(i int, name string) string { return fmt.Sprintf("layers.%d.%s", i, name) }

// ParamSpecs lists every parameter of the model, in a fixed order.
func (c Config) ParamSpecs() []ParamSpec {
	D, E, N, R, K := c.DModel, c.ED(), c.DState, c.DtRank, c.DConv
	var ps []ParamSpec
	proj := func(layer int, name string, split bool, out, in int, kind InitKind, scale float64) ParamSpec {
		g := c.groupsFor(split)
		shape := []int{out, in}
		if split {
			shape = []int{g, out, in}
		}
		return ParamSpec{Name: LayerParam(layer, name), Shape: shape, Init: kind, Scale: scale, Decay: true, Groups: g, Layer: layer}
	}
	ps = append(ps, ParamSpec{Name: NameEmbed, Shape: []int{c.Vocab, D}, Init: InitNormal, Scale: 0.02, Decay: true, Groups: 1, Layer: -1})
	if c.Continuous() {
		ps = append(ps, ParamSpec{Name: NamePatchIn, Shape: []int{D, c.PatchDim}, Init: InitUniform, Scale: 1 / math.Sqrt(float64(c.PatchDim)), Decay: true, Groups: 1, Layer: -1})
	}
	lin := func(fanIn int) float64 { return 1 / math.Sqrt(float64(fanIn)) }
	for i := 0; i < c.Layers; i++ {
		ps = append(ps,
			ParamSpec{Name: LayerParam(i, "norm.weight"), Shape: []int{D}, Init: InitOnes, Groups: 1, Layer: i},
			proj(i, "mixer.in_proj_x.weight", c.Splits.In, E, D, InitUniform, lin(D)),
			proj(i, "mixer.in_proj_z.weight", c.Splits.In, E, D, InitUniform, lin(D)),
			ParamSpec{Name: LayerParam(i, "mixer.conv1d.weight"), Shape: []int{E, K}, Init: InitUniform, Scale: lin(K), Decay: true, Groups: 1, Layer: i},
			ParamSpec{Name: LayerParam(i, "mixer.conv1d.bias"), Shape: []int{E}, Init: InitUniform, Scale: lin(K), Groups: 1, Layer: i},
			proj(i, "mixer.x_proj_dt.weight", c.Splits.X, R, E, InitUniform, lin(E)),
			proj(i, "mixer.x_proj_B.weight", c.Splits.X, N, E, InitUniform, lin(E)),
			proj(i, "mixer.x_proj_C.weight", c.Splits.X, N, E, InitUniform, lin(E)),
			proj(i, "mixer.dt_proj.weight", c.Splits.Dt, E, R, InitUniform, math.Pow(float64(R), -0.5)),
		)
		dtBias := ParamSpec{Name: LayerParam(i, "mixer.dt_proj.bias"), Shape: []int{E}, Init: InitDtBias, Groups: 1, Layer: i}
		if c.Splits.Dt {
			dtBias.Shape = []int{c.Groups(), E}
			dtBias.Groups = c.Groups()
		}
		// out_proj is rescaled by 1/sqrt(n_layer) (the GPT-2 style
		// prenorm-residual rescaling of mamba_ssm's _init_weights).
		out := proj(i, "mixer.out_proj.weight", c.Splits.Out, D, E, InitUniform, lin(E)/math.Sqrt(float64(c.Layers)))
		ps = append(ps, dtBias,
			ParamSpec{Name: LayerParam(i, "mixer.A_log"), Shape: []int{E, N}, Init: InitALog, Groups: 1, Layer: i},
			ParamSpec{Name: LayerParam(i, "mixer.D"), Shape: []int{E}, Init: InitOnes, Groups: 1, Layer: i},
			out)
	}
	ps = append(ps, ParamSpec{Name: NameNormF, Shape: []int{D}, Init: InitOnes, Groups: 1, Layer: -1})
	if !c.TieEmbeddings {
		ps = append(ps, ParamSpec{Name: NameHead, Shape: []int{c.Vocab, D}, Init: InitNormal, Scale: 0.02, Decay: true, Groups: 1, Layer: -1})
	}
	if c.Continuous() {
		ps = append(ps, ParamSpec{Name: NamePatchOut, Shape: []int{c.PatchDim, D}, Init: InitUniform, Scale: lin(D), Decay: true, Groups: 1, Layer: -1})
	}
	return ps
}

// ParamCount returns the total number of parameters and the number a token
// uses (one weight set of each split projection).
func (c Config) ParamCount() (total, active int64) {
	for _, p := range c.ParamSpecs() {
		n := int64(p.Len())
		total += n
		active += n / int64(p.Groups)
	}
	return total, active
}

// InitParam fills a parameter as the paper's code does. Each modality's
// weight set of a split projection is drawn independently.
func InitParam(p ParamSpec, rng *rand.Rand) []float32 {
	v := make([]float32, p.Len())
	fillParam(p, v, 0, rng)
	return v
}

// fillParam draws the elements first .. first+len(v) of parameter p into v
// from rng, in order.
func fillParam(p ParamSpec, v []float32, first int, rng *rand.Rand) {
	switch p.Init {
	case InitOnes:
		for i := range v {
			v[i] = 1
		}
	case InitNormal:
		for i := range v {
			v[i] = float32(rng.NormFloat64() * p.Scale)
		}
	case InitUniform:
		for i := range v {
			v[i] = float32((2*rng.Float64() - 1) * p.Scale)
		}
	case InitALog:
		n := p.Shape[len(p.Shape)-1]
		for i := range v {
			v[i] = float32(math.Log(float64((first+i)%n + 1)))
		}
	case InitDtBias:
		const dtMin, dtMax, floor = 1e-3, 1e-1, 1e-4
		for i := range v {
			dt := math.Exp(rng.Float64()*(math.Log(dtMax)-math.Log(dtMin)) + math.Log(dtMin))
			dt = math.Max(dt, floor)
			// inverse of softplus: dt + log(1 - exp(-dt))
			v[i] = float32(dt + math.Log(-math.Expm1(-dt)))
		}
	case InitZeros:
		clear(v)
	}
}

// InitBlock is the number of values of a parameter drawn from one generator
// by InitParamBlocks: blocks are drawn in parallel.
const InitBlock = 1 << 20

// InitParamBlock draws block k (values k*InitBlock .. (k+1)*InitBlock, or
// to the end) of parameter number index of the model into v, from a
// generator of its own seeded by seed, index and k: the same numbers
// whichever order or goroutine draws the blocks.
func InitParamBlock(p ParamSpec, index, k int, seed uint64, v []float32) {
	rng := rand.New(rand.NewPCG(seed^0x6d6f6d696e6974, uint64(index)<<32|uint64(k)))
	fillParam(p, v, k*InitBlock, rng)
}
