package nn

import (
	"fmt"
	"math"

	"mom/gpu"
	"mom/shaders"
)

// SamplerArgs are the tensors of a Sampler.
type SamplerArgs struct {
	// Logits (S, V); IDs (S) u32, where the chosen ids are written;
	// Allowed (S, 2) u32, each stream's allowed ids [lo, hi) (an empty
	// range allows the whole vocabulary); Pos (S) u32, each stream's step
	// counter, which seeds its draw and counts up by one per step.
	Logits, IDs, Allowed, Pos *Tensor
}

// SampleParams choose how the next token is drawn.
type SampleParams struct {
	// Temperature 0 takes the argmax (the lowest id on ties); otherwise
	// logits are divided by it.
	Temperature float64
	// TopK > 0 keeps the ids whose logit is at least the TopK-th largest.
	TopK int
	// TopP in (0, 1) keeps the smallest set of most probable ids that
	// holds TopP of the mass (ties kept together); 0 or 1 keeps all.
	TopP float64
	// Seed, with the stream and its step counter, determines the draw.
	Seed uint64
}

// Validate checks the parameters.
func (p SampleParams) Validate() error {
	if math.IsNaN(p.Temperature) || p.Temperature < 0 || math.IsInf(p.Temperature, 0) || p.Temperature > math.MaxFloat32 {
		return fmt.Errorf("nn: sampling: temperature %g must be finite and not negative", p.Temperature)
	}
	if p.Temperature > 0 && float32(p.Temperature) == 0 {
		return fmt.Errorf("nn: sampling: temperature %g is below float32's range", p.Temperature)
	}
	if p.TopK < 0 || p.TopK > math.MaxUint32 {
		return fmt.Errorf("nn: sampling: top-k %d must be 0 (off) or positive", p.TopK)
	}
	if math.IsNaN(p.TopP) || p.TopP < 0 || p.TopP > 1 {
		return fmt.Errorf("nn: sampling: top-p %g must be in [0, 1] (0 or 1: off)", p.TopP)
	}
	return nil
}

// Sampler chooses every stream's next token from its logits on the GPU
// (shaders/sample.wgsl): greedy at temperature 0, otherwise a draw from the
// softmax at the temperature over the allowed ids, after top-k and top-p,
// with a counter-based random number of (seed, stream, step) that
// nn/ref.Sample reproduces. Only the chosen ids need to be read back.
type Sampler struct {
	s, v  int
	prm   *Tensor
	words []uint32
	g     *gpu.BindGroup
	x, y  int
	owned []*Tensor
}

// sampleWG is the threads per stream.
const sampleWG = 256

// NewSampler validates the shapes, allocates the (S, V) scratch and the
// parameters (temperature 1, no top-k or top-p, seed 0) and binds the
// kernel.
func NewSampler(d *gpu.Device, a SamplerArgs) (*Sampler, error) {
	const op = "Sampler"
	if a.Logits == nil || len(a.Logits.Shape) != 2 {
		return nil, fmt.Errorf("nn: %s: Logits must be (S, V), got %v", op, scanShapeOf(a.Logits))
	}
	s, v := a.Logits.Shape[0], a.Logits.Shape[1]
	for _, c := range []struct {
		t     *Tensor
		shape []int
	}{{a.IDs, []int{s}}, {a.Allowed, []int{s, 2}}, {a.Pos, []int{s}}} {
		if err := CheckShape(op, c.t, c.shape...); err != nil {
			return nil, err
		}
	}
	if err := scanCheckAliases(op, []*Tensor{a.Logits, a.Allowed}, []*Tensor{a.IDs, a.Pos}); err != nil {
		return nil, err
	}
	if err := checkU32(s * v); err != nil {
		return nil, fmt.Errorf("nn: %s: %w", op, err)
	}
	sm := &Sampler{s: s, v: v, words: make([]uint32, shaders.SampleParamsWords)}
	wrap := func(err error) error {
		sm.Release()
		return fmt.Errorf("nn: %s (S=%d V=%d): %w", op, s, v, err)
	}
	ex, err := NewTensor(d, "sample.scratch", s, v)
	if err != nil {
		return nil, wrap(err)
	}
	sm.owned = append(sm.owned, ex)
	buf, err := d.NewBuffer("sample.params", 4*shaders.SampleParamsWords, gpu.UsageUniform|gpu.UsageCopyDst)
	if err != nil {
		return nil, wrap(err)
	}
	sm.prm = &Tensor{Name: "sample.params", Shape: []int{shaders.SampleParamsWords}, Buf: buf}
	sm.owned = append(sm.owned, sm.prm)
	if err := sm.SetParams(SampleParams{Temperature: 1}); err != nil {
		return nil, wrap(err)
	}
	if sm.g, err = Bind(d, shaders.Sample, gpu.Constants{"WG": sampleWG}, a.Logits, ex, a.Allowed, a.Pos, a.IDs, sm.prm); err != nil {
		return nil, wrap(err)
	}
	sm.x, sm.y = Grid(d, s)
	return sm, nil
}

// SetParams validates and uploads the parameters; they apply to the steps
// of later submits (the upload is ordered before them).
func (sm *Sampler) SetParams(p SampleParams) error {
	if err := p.Validate(); err != nil {
		return err
	}
	topP := float32(p.TopP)
	w := sm.words
	w[0], w[1], w[2], w[3] = uint32(sm.s), uint32(sm.v), uint32(p.TopK), 0
	w[4], w[5] = math.Float32bits(float32(p.Temperature)), math.Float32bits(topP)
	w[6], w[7] = uint32(p.Seed), uint32(p.Seed>>32)
	if err := sm.prm.UploadU32(w); err != nil {
		return fmt.Errorf("nn: Sampler: %w", err)
	}
	return nil
}

// Record records the choice of every stream's next id.
func (sm *Sampler) Record(r *gpu.Recorder) { r.Dispatch(sm.g, sm.x, sm.y, 1) }

// Release frees the scratch, the parameters and the bind group.
func (sm *Sampler) Release() {
	sm.g.Release()
	releaseTensors(sm.owned)
	sm.owned = nil
}
