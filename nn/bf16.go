package nn

import (
	"fmt"

	"mom/gpu"
	"mom/shaders"
)

// BF16Align is the alignment, in values, of every tensor's place in a
// packed bfloat16 buffer: 256 bytes, the largest storage binding offset
// alignment WebGPU allows a device to ask for.
const BF16Align = 128

// BF16Args place float32 tensors in a buffer of bfloat16 values.
type BF16Args struct {
	F32 []*Tensor // float32 tensors, no buffer twice
	// Packed holds the bfloat16 values two per 32-bit word (element 2i in
	// the low half of word i): a float32 tensor used as words, of at least
	// ceil(max(Offs[i]+F32[i].Len())/2) elements.
	Packed *Tensor
	// Offs[i] is the place of F32[i]'s first value in Packed, in values: a
	// multiple of BF16Align; the tensors' places do not overlap.
	Offs []int
	// From and Count, when given, convert only values From[i] ..
	// From[i]+Count[i] of F32[i] (From[i] a multiple of BF16Align), placed
	// at Offs[i]; nil: every value.
	From, Count []int
}

// BF16 converts between float32 tensors and their places in a packed
// bfloat16 buffer (shaders/bf16.wgsl): NewBF16Pack rounds to the nearest
// bfloat16, ties to even, on the bits (bit for bit ref.PackBF16; what
// rounds beyond the largest bfloat16 is infinite, a NaN stays NaN),
// NewBF16Unpack widens back (ref.UnpackBF16). Data-parallel ranks use it to
// exchange gradients in half the bytes. One dispatch per tensor (per
// binding-sized range of a large one). The words of Packed outside the
// tensors' places are not touched.
type BF16 struct {
	ds []elemDispatch
	n  int64
}

// NewBF16Pack binds the rounding of every F32[i] into its place in Packed.
func NewBF16Pack(d *gpu.Device, a BF16Args) (*BF16, error) { return newBF16(d, a, true) }

// NewBF16Unpack binds the widening of every place in Packed into F32[i].
func NewBF16Unpack(d *gpu.Device, a BF16Args) (*BF16, error) { return newBF16(d, a, false) }

func newBF16(d *gpu.Device, a BF16Args, pack bool) (*BF16, error) {
	if len(a.F32) == 0 || len(a.F32) != len(a.Offs) {
		return nil, fmt.Errorf("nn: bf16: %d tensors and %d places (want the same positive number)", len(a.F32), len(a.Offs))
	}
	if a.Packed == nil || a.Packed.DType != F32 {
		return nil, fmt.Errorf("nn: bf16: the packed buffer must be a float32 tensor used as 32-bit words")
	}
	if (a.From == nil) != (a.Count == nil) || a.From != nil && (len(a.From) != len(a.F32) || len(a.Count) != len(a.F32)) {
		return nil, fmt.Errorf("nn: bf16: %d tensors, %d starts and %d counts (want starts and counts for every tensor, or neither)",
			len(a.F32), len(a.From), len(a.Count))
	}
	// span is the range of F32[i] converted.
	span := func(i int) (from, count int) {
		if a.From == nil {
			return 0, a.F32[i].Len()
		}
		return a.From[i], a.Count[i]
	}
	seen := map[*gpu.Buffer]string{a.Packed.Buf: a.Packed.Name}
	end := 0
	for i, t := range a.F32 {
		if t == nil || t.DType != F32 {
			return nil, fmt.Errorf("nn: bf16: tensor %d must be a float32 tensor", i)
		}
		if prev, ok := seen[t.Buf]; ok {
			return nil, fmt.Errorf("nn: bf16: %s shares its buffer with %s", t.Name, prev)
		}
		seen[t.Buf] = t.Name
		from, count := span(i)
		if from < 0 || count <= 0 || from+count > t.Len() || from%BF16Align != 0 {
			return nil, fmt.Errorf("nn: bf16: %s: values %d..%d: want a start that is a multiple of %d and a range within its %d values",
				t.Name, from, from+count, BF16Align, t.Len())
		}
		o := a.Offs[i]
		if o < end || o%BF16Align != 0 {
			return nil, fmt.Errorf("nn: bf16: %s at value %d: places must be multiples of %d, in order, not overlapping (the previous ends at %d)", t.Name, o, BF16Align, end)
		}
		end = o + count
		if CeilDiv(end, 2) > a.Packed.Len() {
			return nil, fmt.Errorf("nn: bf16: %s at values %d..%d does not fit %s (%d words)", t.Name, o, end, a.Packed.Name, a.Packed.Len())
		}
	}
	if al := int(d.Limits.MinStorageBufferOffsetAlignment); al > 2*BF16Align {
		return nil, fmt.Errorf("nn: bf16: %s aligns storage bindings to %d bytes, more than the %d of a place", d, al, 2*BF16Align)
	}
	k, dir := shaders.ToBF16, "to"
	if !pack {
		k, dir = shaders.FromBF16, "from"
	}
	p, err := Pipeline(d, k, nil)
	if err != nil {
		return nil, fmt.Errorf("nn: bf16: %w", err)
	}
	c := &BF16{}
	most := castSpan(d)
	for i, t := range a.F32 {
		from, n := span(i)
		c.n += int64(n)
		for off := 0; off < n; off += most {
			k := min(most, n-off)
			f := gpu.Binding{Buffer: t.Buf, Offset: int64(4 * (from + off)), Size: int64(4 * k)}
			h := gpu.Binding{Buffer: a.Packed.Buf, Offset: int64(2 * (a.Offs[i] + off)), Size: int64(4 * CeilDiv(k, 2))}
			bs := []gpu.Binding{f, h}
			if !pack {
				bs = []gpu.Binding{h, f}
			}
			g, err := d.BindGroup(p, bs...)
			if err != nil {
				c.Release()
				return nil, fmt.Errorf("nn: bf16: %s %s bfloat16 (elements %d..%d): %w", t.Name, dir, from+off, from+off+k, err)
			}
			x, y := Grid(d, CeilDiv(CeilDiv(k, 2), 256))
			c.ds = append(c.ds, elemDispatch{g, x, y})
		}
	}
	return c, nil
}

// Record records the conversions.
func (c *BF16) Record(r *gpu.Recorder) {
	for _, x := range c.ds {
		r.Dispatch(x.g, x.x, x.y, 1)
	}
}

// Elements is the number of values one Record converts.
func (c *BF16) Elements() int64 { return c.n }

// Release frees the op's bind groups (not its tensors). A nil BF16 is fine.
func (c *BF16) Release() {
	if c == nil {
		return
	}
	releaseDispatches(c.ds)
	c.ds = nil
}
