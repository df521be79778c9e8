package data

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"mom/mom"
)

// IgnoreIndex marks a position without a target. It is never a token id
// (a Vocab ends at or below it).
const IgnoreIndex uint32 = 0xFFFFFFFF

// Vocab is the unified vocabulary: Ranges[m] = [start, end) are the ids of
// modality m, called Names[m]. The ranges tile [0, Size()) in modality
// order: Ranges[0] starts at 0 and each range starts where the previous
// ends. Range 0 (text, which also holds the document and span markers) is
// never empty; token files of version 1 may hold empty ranges for
// modalities they do not use.
type Vocab struct {
	Names  []string
	Ranges [][2]uint32
}

// VocabOf returns the vocabulary of a model config.
func VocabOf(c mom.Config) Vocab {
	v := Vocab{Names: c.ModalityNames()}
	for _, r := range c.VocabRanges {
		v.Ranges = append(v.Ranges, [2]uint32{uint32(r[0]), uint32(r[1])})
	}
	return v
}

// Size is the number of ids, the end of the last range.
func (v Vocab) Size() int {
	n := 0
	for _, r := range v.Ranges {
		n = max(n, int(r[1]))
	}
	return n
}

// Name is modality m's name ("modality(m)" when v has none).
func (v Vocab) Name(m int) string {
	if m >= 0 && m < len(v.Names) {
		return v.Names[m]
	}
	return fmt.Sprintf("modality(%d)", m)
}

// Range returns modality m's [start, end); empty (0, 0) when v has no
// range for it.
func (v Vocab) Range(m int) (start, end uint32) {
	if m < 0 || m >= len(v.Ranges) {
		return 0, 0
	}
	return v.Ranges[m][0], v.Ranges[m][1]
}

// Has reports whether modality m has ids in v.
func (v Vocab) Has(m int) bool {
	s, e := v.Range(m)
	return e > s
}

// ModalityOf returns the modality of token id, or an error if id is
// outside the vocabulary.
func (v Vocab) ModalityOf(id uint32) (int, error) {
	for m, r := range v.Ranges {
		if id >= r[0] && id < r[1] {
			return m, nil
		}
	}
	return 0, fmt.Errorf("token id %d is outside the vocabulary [0, %d)", id, v.Size())
}

// Equal reports whether v and w have the same names and ranges.
func (v Vocab) Equal(w Vocab) bool {
	return slices.Equal(v.Names, w.Names) && slices.Equal(v.Ranges, w.Ranges)
}

// String shows the vocabulary as "text [0, 96), image [96, 144)".
func (v Vocab) String() string {
	parts := make([]string, len(v.Ranges))
	for m, r := range v.Ranges {
		parts[m] = fmt.Sprintf("%s [%d, %d)", v.Name(m), r[0], r[1])
	}
	return strings.Join(parts, ", ")
}

// Validate checks the layout described at Vocab.
func (v Vocab) Validate() error {
	if len(v.Ranges) == 0 {
		return errors.New("vocabulary has no ranges")
	}
	if len(v.Ranges) > mom.MaxModalities {
		return fmt.Errorf("vocabulary has %d ranges, at most %d modalities are supported", len(v.Ranges), mom.MaxModalities)
	}
	if len(v.Names) != len(v.Ranges) {
		return fmt.Errorf("vocabulary has %d ranges but %d names", len(v.Ranges), len(v.Names))
	}
	for m, r := range v.Ranges {
		name := v.Name(m)
		if name == "" || slices.Contains(v.Names[:m], name) {
			return fmt.Errorf("vocabulary modality %d has the name %q, which is empty or taken", m, name)
		}
		if r[1] < r[0] {
			return fmt.Errorf("vocabulary range of %s [%d, %d) ends before it starts", name, r[0], r[1])
		}
		if m == 0 {
			if r[0] != 0 {
				return fmt.Errorf("vocabulary range of %s [%d, %d) must start at 0", name, r[0], r[1])
			}
			if r[1] == 0 {
				return fmt.Errorf("vocabulary range of %s is empty", name)
			}
			continue
		}
		prev := v.Ranges[m-1]
		switch {
		case r[0] < prev[1]:
			return fmt.Errorf("vocabulary ranges overlap: %s [%d, %d) and %s [%d, %d)", v.Name(m-1), prev[0], prev[1], name, r[0], r[1])
		case r[0] > prev[1]:
			return fmt.Errorf("vocabulary ranges leave a gap: %s ends at %d, %s starts at %d", v.Name(m-1), prev[1], name, r[0])
		}
	}
	return nil
}

// Batch is one training batch of B sequences of L positions, flattened
// row-major (position t of row b is index b*L+t).
type Batch struct {
	B, L     int
	Inputs   []uint32 // (B*L) token ids
	Targets  []uint32 // (B*L) next-token ids; IgnoreIndex where there is no target
	Modality []uint32 // (B*L) modality of each input position
	// With a continuous modality (Transfusion), nil otherwise:
	Patches []float32 // (B*L, P) the clean patch at continuous positions (zeros elsewhere)
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
