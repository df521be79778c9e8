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
	Targets        []uint32 // (t) next-token targets; IgnoreIndex where none (image positions in Transfusion)
	TargetModality []uint32 // (t) modality the loss of each position counts toward
	// Transfusion only:
	NoisyPatches []float32 // (t, p) x_t at image positions, zeros elsewhere
	Noise        []float32 // (t, p) the noise to predict at image positions
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
			return fmt.Errorf("mom: position %d has modality id %d, but the model has %d modalities (%v)", i, b.Modality[i], G, c.Modalities)
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
	if c.Setting == Transfusion {
		P := c.PatchDim
		if len(b.NoisyPatches) != t*P || len(b.Noise) != t*P {
			return fmt.Errorf("mom: a transfusion batch needs %d x %d patches and noise, got %d and %d values", t, P, len(b.NoisyPatches), len(b.Noise))
		}
	}
	return nil
}

// LossWeights returns the per-modality weights of the positions' losses in
// the total, for the cross-entropy and (Transfusion) the diffusion loss. The
// total is the mean over all valid positions (Chameleon, three modalities),
// or in Transfusion the mean text loss plus lambda times the mean image
// loss. accum divides for gradient accumulation over micro-batches.
func (c Config) LossWeights(b *Batch, accum int) (ce, mse []float32, err error) {
	G := c.Groups()
	counts := make([]int, G)
	for i, t := range b.Targets {
		if t != IgnoreIndex && int(b.TargetModality[i]) < G {
			counts[b.TargetModality[i]]++
		}
	}
	ce, mse = make([]float32, G), make([]float32, G)
	if c.Setting == Transfusion {
		if counts[0] > 0 {
			ce[0] = 1 / float32(counts[0]*accum)
		}
		img := 0
		for _, mod := range b.Modality {
			if mod == 1 {
				img++
			}
		}
		if img > 0 {
			mse[1] = float32(c.ImageLossWeight) / float32(img*accum)
		}
		if counts[0] == 0 && img == 0 {
			return nil, nil, errors.New("mom: the batch has neither text targets nor image positions")
		}
		return ce, mse, nil
	}
	total := 0
	for _, n := range counts {
		total += n
	}
	if total == 0 {
		return nil, nil, errors.New("mom: the batch has no positions with a target")
	}
	for g := range ce {
		ce[g] = 1 / float32(total*accum)
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

// DecodeLosses turns a loss record (LossSlots values) into losses. It fails
// on a NaN or infinite loss.
func (c Config) DecodeLosses(v []float32) (Losses, error) {
	G := c.Groups()
	if len(v) != 4*G {
		return Losses{}, fmt.Errorf("mom: %d loss values, want %d", len(v), 4*G)
	}
	out := Losses{PerModality: map[string]float64{}}
	var sum, cnt float64
	for g := 0; g < G; g++ {
		s, n := float64(v[g]), float64(v[G+g])
		if n > 0 {
			out.PerModality[c.Modalities[g]] = s / n
			sum += s
			cnt += n
		}
	}
	if c.Setting == Transfusion {
		out.Total = 0
		delete(out.PerModality, "image")
		if l, ok := out.PerModality["text"]; ok {
			out.Total += l
		}
		if s, n := float64(v[2*G+1]), float64(v[3*G+1]); n > 0 {
			out.PerModality["image"] = s / n
			out.Total += c.ImageLossWeight * s / n
		}
	} else if cnt > 0 {
		out.Total = sum / cnt
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
