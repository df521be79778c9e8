package nn

import (
	"fmt"

	"mom/gpu"
	"mom/shaders"
)

// MaskLogitsArgs are the tensors of a MaskLogits.
type MaskLogitsArgs struct {
	// Logits (S, V), masked in place; Mask (G, ceil(V/32)) u32, one bit per
	// id per set (MaskWords lays sets out); Sel (S) u32, each stream's set
	// (MaskNone: none); Allowed (S, 2) u32, the sampler's window [lo, hi)
	// (an empty window is the whole vocabulary).
	Logits, Mask, Sel, Allowed *Tensor
}

// MaskNone is the set index of a stream whose logits MaskLogits leaves
// alone.
const MaskNone = 0xFFFFFFFF

// MaskLogits restricts each stream's logits to an id set before the
// Sampler reads them: within the stream's window, every id outside its set
// gets a NaN logit, which the sampler ignores (shaders/mask_logits.wgsl;
// nn/ref.MaskLogits is its twin). A window plus a set is any set of ids:
// a modality's range and its end marker, say.
type MaskLogits struct {
	g    *gpu.BindGroup
	x, y int
}

// maskWG is the threads per stream.
const maskWG = 256

// NewMaskLogits validates the shapes and binds the kernel.
func NewMaskLogits(d *gpu.Device, a MaskLogitsArgs) (*MaskLogits, error) {
	const op = "MaskLogits"
	if a.Logits == nil || len(a.Logits.Shape) != 2 {
		return nil, fmt.Errorf("nn: %s: Logits must be (S, V), got %v", op, scanShapeOf(a.Logits))
	}
	s, v := a.Logits.Shape[0], a.Logits.Shape[1]
	if a.Mask == nil || len(a.Mask.Shape) != 2 || a.Mask.Shape[1] != CeilDiv(v, 32) {
		return nil, fmt.Errorf("nn: %s: Mask must be (G, %d) for V=%d, got %v", op, CeilDiv(v, 32), v, scanShapeOf(a.Mask))
	}
	if err := CheckShape(op, a.Sel, s); err != nil {
		return nil, err
	}
	if err := CheckShape(op, a.Allowed, s, 2); err != nil {
		return nil, err
	}
	if err := scanCheckAliases(op, []*Tensor{a.Mask, a.Sel, a.Allowed}, []*Tensor{a.Logits}); err != nil {
		return nil, err
	}
	if err := checkU32(s * v); err != nil {
		return nil, fmt.Errorf("nn: %s: %w", op, err)
	}
	g, err := Bind(d, shaders.MaskLogits, gpu.Constants{"WG": maskWG, "V": float64(v), "G": float64(a.Mask.Shape[0])},
		a.Logits, a.Mask, a.Sel, a.Allowed)
	if err != nil {
		return nil, fmt.Errorf("nn: %s (S=%d V=%d): %w", op, s, v, err)
	}
	m := &MaskLogits{g: g}
	m.x, m.y = Grid(d, s)
	return m, nil
}

// Record records the masking.
func (m *MaskLogits) Record(r *gpu.Recorder) { r.Dispatch(m.g, m.x, m.y, 1) }

// Release frees the bind group.
func (m *MaskLogits) Release() { m.g.Release() }

// MaskWords lays out id sets as MaskLogits's bit mask: row g, of
// ceil(v/32) words, has bit i set when id i lies in one of sets[g]'s
// half-open ranges. It fails on a range that is empty or leaves [0, v).
func MaskWords(sets [][][2]int, v int) ([]uint32, error) {
	w := CeilDiv(v, 32)
	out := make([]uint32, len(sets)*w)
	for g, set := range sets {
		row := out[g*w : (g+1)*w]
		for _, r := range set {
			if r[0] < 0 || r[1] <= r[0] || r[1] > v {
				return nil, fmt.Errorf("nn: id set %d: range [%d, %d) is empty or outside [0, %d)", g, r[0], r[1], v)
			}
			for i := r[0]; i < r[1]; i++ {
				row[i/32] |= 1 << (i % 32)
			}
		}
	}
	return out, nil
}
