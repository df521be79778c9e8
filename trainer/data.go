package trainer

import (
	"encoding/json"
	"errors"
	"fmt"
)

// Modality is a token's modality; it selects the per-modality weights of a
// Mixture-of-Mamba layer.
type Modality uint32

// The modalities, numbered as the model's weight sets are.
const (
	Text   Modality = 0
	Image  Modality = 1
	Speech Modality = 2
)

// ModalityNames names the modalities by number.
var ModalityNames = []string{"text", "image", "speech"}

// String is the modality's name, or "modality(N)" for an unknown one.
func (m Modality) String() string {
	if int(m) < len(ModalityNames) {
		return ModalityNames[m]
	}
	return fmt.Sprintf("modality(%d)", uint32(m))
}

// ParseModality returns the modality named s (as in ModalityNames).
func ParseModality(s string) (Modality, error) {
	for i, n := range ModalityNames {
		if n == s {
			return Modality(i), nil
		}
	}
	return 0, fmt.Errorf("trainer: unknown modality %q (want one of %v)", s, ModalityNames)
}

// IgnoreIndex marks a position without a target. It is never a token id
// (a Vocab ends at or below it).
const IgnoreIndex uint32 = 0xFFFFFFFF

// Vocab is the unified vocabulary: Ranges[m] = [start, end) are the ids of
// modality m. The ranges tile [0, Size()) in modality order: Ranges[0]
// starts at 0 and each range starts where the previous ends. A modality a
// model does not use has an empty range; there are at most
// len(ModalityNames) ranges, and text's is never empty.
type Vocab struct{ Ranges [][2]uint32 }

// Size is the number of ids, the end of the last range.
func (v Vocab) Size() int {
	n := 0
	for _, r := range v.Ranges {
		n = max(n, int(r[1]))
	}
	return n
}

// Range returns modality m's [start, end); empty (0, 0) when v has no
// range for it.
func (v Vocab) Range(m Modality) (start, end uint32) {
	if int(m) >= len(v.Ranges) {
		return 0, 0
	}
	return v.Ranges[m][0], v.Ranges[m][1]
}

// Has reports whether modality m has ids in v.
func (v Vocab) Has(m Modality) bool {
	s, e := v.Range(m)
	return e > s
}

// ModalityOf returns the modality of token id, or an error if id is
// outside the vocabulary.
func (v Vocab) ModalityOf(id uint32) (Modality, error) {
	for m, r := range v.Ranges {
		if id >= r[0] && id < r[1] {
			return Modality(m), nil
		}
	}
	return 0, fmt.Errorf("token id %d is outside the vocabulary [0, %d)", id, v.Size())
}

// Validate checks the layout described at Vocab.
func (v Vocab) Validate() error {
	if len(v.Ranges) == 0 {
		return errors.New("vocabulary has no ranges")
	}
	if len(v.Ranges) > len(ModalityNames) {
		return fmt.Errorf("vocabulary has %d ranges, there are %d modalities", len(v.Ranges), len(ModalityNames))
	}
	for m, r := range v.Ranges {
		name := Modality(m).String()
		if r[1] < r[0] {
			return fmt.Errorf("vocabulary range of %s [%d, %d) ends before it starts", name, r[0], r[1])
		}
		if m == 0 {
			if r[0] != 0 {
				return fmt.Errorf("vocabulary range of text [%d, %d) must start at 0", r[0], r[1])
			}
			if r[1] == 0 {
				return errors.New("vocabulary range of text is empty")
			}
			continue
		}
		prev := v.Ranges[m-1]
		switch {
		case r[0] < prev[1]:
			return fmt.Errorf("vocabulary ranges overlap: %s [%d, %d) and %s [%d, %d)", Modality(m-1), prev[0], prev[1], name, r[0], r[1])
		case r[0] > prev[1]:
			return fmt.Errorf("vocabulary ranges leave a gap: %s ends at %d, %s starts at %d", Modality(m-1), prev[1], name, r[0])
		}
	}
	return nil
}

// DefaultVocab lays out a vocabulary for the given modalities (text is
// always included): text ids first, then image, then speech, each of the
// given size; modalities not listed get empty ranges (and their sizes are
// ignored). It has as many ranges as the highest modality listed needs.
// Sizes must be positive for the modalities listed (Validate reports an
// empty text range; an empty image or speech range makes NewSynthetic
// fail).
func DefaultVocab(modalities []Modality, textSize, imageSize, speechSize int) Vocab {
	on := [3]bool{true, false, false}
	n := 1
	for _, m := range modalities {
		if int(m) < len(on) {
			on[m] = true
			n = max(n, int(m)+1)
		}
	}
	sizes := [3]int{textSize, imageSize, speechSize}
	v := Vocab{Ranges: make([][2]uint32, n)}
	next := uint32(0)
	for m := 0; m < n; m++ {
		s := uint32(0)
		if on[m] && sizes[m] > 0 {
			s = uint32(sizes[m])
		}
		v.Ranges[m] = [2]uint32{next, next + s}
		next += s
	}
	return v
}

// Batch is one training batch of B sequences of L positions, flattened
// row-major (position t of row b is index b*L+t).
type Batch struct {
	B, L     int
	Inputs   []uint32 // (B*L) token ids
	Targets  []uint32 // (B*L) next-token ids; IgnoreIndex where there is no target
	Modality []uint32 // (B*L) modality of each input position
	// Transfusion (continuous image patches), nil otherwise:
	Patches []float32 // (B*L, P) the clean patch at image positions (zeros elsewhere)
	P       int
}

// NewBatch allocates a batch; p > 0 adds the (B*L, p) patch array.
func NewBatch(b, l, p int) (*Batch, error) {
	if b <= 0 || l <= 0 || p < 0 {
		return nil, fmt.Errorf("trainer: batch B=%d L=%d P=%d: B and L must be positive, P not negative", b, l, p)
	}
	n := b * l
	x := &Batch{B: b, L: l, Inputs: make([]uint32, n), Targets: make([]uint32, n), Modality: make([]uint32, n), P: p}
	if p > 0 {
		x.Patches = make([]float32, n*p)
	}
	return x, nil
}

// check validates a batch's sizes; wantP > 0 requires patches of that
// width.
func (b *Batch) check(wantP int) error {
	if b == nil {
		return errors.New("nil batch")
	}
	if b.B <= 0 || b.L <= 0 {
		return fmt.Errorf("batch B=%d L=%d: both must be positive", b.B, b.L)
	}
	n := b.B * b.L
	if len(b.Inputs) != n || len(b.Targets) != n || len(b.Modality) != n {
		return fmt.Errorf("batch B=%d L=%d needs %d inputs, targets and modalities; has %d, %d, %d", b.B, b.L, n, len(b.Inputs), len(b.Targets), len(b.Modality))
	}
	if wantP > 0 && (b.P != wantP || len(b.Patches) != n*wantP) {
		return fmt.Errorf("batch needs (B*L, P) = (%d, %d) patches; has P=%d and %d values", n, wantP, b.P, len(b.Patches))
	}
	if b.P > 0 && len(b.Patches) != n*b.P {
		return fmt.Errorf("batch P=%d needs %d patch values; has %d", b.P, n*b.P, len(b.Patches))
	}
	return nil
}

// Stream is a source of batches.
type Stream interface {
	// Next fills a preallocated batch (its B, L and, for continuous
	// streams, P and Patches set) and advances the position. The result
	// depends only on the stream's identity (seed, split, file) and
	// position.
	Next(b *Batch) error
	// State is the position, for checkpoints.
	State() (json.RawMessage, error)
	// Restore returns to a position State gave, by a stream of the same
	// identity; otherwise it fails and the stream is unchanged.
	Restore(json.RawMessage) error
}
