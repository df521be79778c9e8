package mom

import (
	"errors"
	"fmt"
)

// IgnoreIndex marks a position without a next-token target.
const IgnoreIndex = 0xFFFFFFFF

// Batch is one batch in model-ready form: t = b·l positions.
type Batch struct {
	Inputs         []uint32 // (t) token ids
	Modality       []uint32 // (t) modality of each input position (routes the split projections)
	Targets        []uint32 // (t) next-token targets; IgnoreIndex where none (targets at continuous positions)
	TargetModality []uint32 // (t) modality the loss of each position counts toward
	// With a continuous modality (Transfusion) only:
	NoisyPatches []float32 // (t, p) x_t at continuous positions, zeros elsewhere
	Noise        []float32 // (t, p) the noise to predict at continuous positions
}

// Validate checks a batch of t positions against the config.
func (c Config) ValidateBatch(b *Batch, t int) error {
	if len(b.Inputs) != t || len(b.Modality) != t || len(b.Targets) != t || len(b.TargetModality) != t {
		return fmt.Errorf("mom: batch has %d inputs, %d modalities, %d targets, %d target modalities; want %d each",
			len(b.Inputs), len(b.Modality), len(b.Targets), len(b.TargetModality), t)
	}
	G := uint32(c.Groups())
	for i := 0; i < t; i++ {
		if b.Inputs[i] >= uint32(c.Vocab) {
			return fmt.Errorf("mom: position %d has token id %d outside the vocabulary of %d", i, b.Inputs[i], c.Vocab)
		}
		if b.Modality[i] >= G {
			return fmt.Errorf("mom: position %d has modality id %d, but the model has %d modalities (%v)", i, b.Modality[i], G, c.ModalityNames())
		}
		if b.Targets[i] != IgnoreIndex {
			if b.Targets[i] >= uint32(c.Vocab) {
				return fmt.Errorf("mom: position %d has target id %d outside the vocabulary of %d", i, b.Targets[i], c.Vocab)
			}
			if b.TargetModality[i] >= G {
				return fmt.Errorf("mom: position %d has target modality %d, but the model has %d modalities", i, b.TargetModality[i], G)
			}
		}
	}
	if c.Continuous() {
		P := c.PatchDim
		if len(b.NoisyPatches) != t*P || len(b.Noise) != t*P {
			return fmt.Errorf("mom: a batch with continuous patches needs %d x %d patches and noise, got %d and %d values", t, P, len(b.NoisyPatches), len(b.Noise))
		}
	}
	return nil
}

// LossWeights returns the per-modality weights of the positions' losses in
// the total, for the cross-entropy and the diffusion loss. The total is the
// mean next-token loss over all positions with a target plus, where the
// config has a continuous modality, lambda (DiffusionWeight) times the mean
// diffusion loss over its positions: in Chameleon and the three-modality
// setting the mean over all targets, in Transfusion the mean text loss plus
// lambda times the mean image loss. accum divides for gradient accumulation
// over micro-batches.
func (c Config) LossWeights(b *Batch, accum int) (ce, mse []float32, err error) {
	G := c.Groups()
	targets, continuous := 0, 0
	for i, t := range b.Targets {
		if t != IgnoreIndex && int(b.TargetModality[i]) < G {
			targets++
		}
	}
	for _, m := range b.Modality {
		if int(m) < G && c.Modalities[m].Continuous {
			continuous++
		}
	}
	if targets == 0 && continuous == 0 {
		return nil, nil, errors.New("mom: the batch has no positions with a target")
	}
	ce, mse = make([]float32, G), make([]float32, G)
	for g, m := range c.Modalities {
		if targets > 0 {
			ce[g] = 1 / float32(targets*accum)
		}
		if m.Continuous && continuous > 0 {
			mse[g] = float32(c.DiffusionWeight) / float32(continuous*accum)
		}
	}
	return ce, mse, nil
}

// Losses are one batch's losses.
type Losses struct {
	Total       float64
	PerModality map[string]float64 // modalities with positions in the batch
}

// LossSlots is the number of float32 values of a batch's loss record: the
// cross-entropy sums and counts and the diffusion-loss sums and counts,
// each per modality.
func (c Config) LossSlots() int { return 4 * c.Groups() }

// DecodeLosses turns a loss record (LossSlots values) into losses: per
// modality, its mean next-token loss (over the positions whose target lies
// in its range) or, for a continuous modality, its mean diffusion loss; the
// total as LossWeights describes. It fails on a NaN or infinite loss.
func (c Config) DecodeLosses(v []float32) (Losses, error) {
	G := c.Groups()
	if len(v) != 4*G {
		return Losses{}, fmt.Errorf("mom: %d loss values, want %d", len(v), 4*G)
	}
	out := Losses{PerModality: map[string]float64{}}
	var ceSum, ceCnt, mseSum, mseCnt float64
	for g, m := range c.Modalities {
		s, n := float64(v[g]), float64(v[G+g])
		if n > 0 {
			out.PerModality[m.Name] = s / n
			ceSum += s
			ceCnt += n
		}
		if !m.Continuous {
			continue
		}
		if s, n := float64(v[2*G+g]), float64(v[3*G+g]); n > 0 {
			out.PerModality[m.Name] = s / n
			mseSum += s
			mseCnt += n
		}
	}
	if ceCnt > 0 {
		out.Total = ceSum / ceCnt
	}
	if mseCnt > 0 {
		out.Total += c.DiffusionWeight * mseSum / mseCnt
	}
	if bad(out.Total) {
		return out, fmt.Errorf("mom: the loss is %v", out.Total)
	}
	for k, l := range out.PerModality {
		if bad(l) {
			return out, fmt.Errorf("mom: the %s loss is %v", k, l)
		}
	}
	return out, nil
}

func bad(x float64) bool { return x != x || x > 1e308 || x < -1e308 }
