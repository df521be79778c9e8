package nn

import (
	"fmt"

	"mom/gpu"
	"mom/shaders"
)

// Checksum computes on the device a checksum of the exact bits of many
// tensors (ref.Checksum: the sum of bits(x_i)·(2i+1) modulo 2^32): one read
// of each tensor, exact and independent of the order the GPU sums in, so
// two devices holding the same bits give the same numbers. A tensor larger
// than one storage binding gets one checksum per binding-sized range (a
// Slot each). Data-parallel ranks compare their parameters' checksums.
type Checksum struct {
	ds    []elemDispatch
	out   *Tensor // one u32 per slot, each at a 256-byte boundary
	slots []ChecksumSlot
}

// ChecksumSlot is the range of one checksum: elements [Off, Off+N) of
// Tensor.
type ChecksumSlot struct {
	Tensor *Tensor
	Off, N int
}

// checksumStride is the distance in u32s between two slots' sums (256
// bytes: any minStorageBufferOffsetAlignment).
const checksumStride = 64

// NewChecksum prepares the checksums of ts.
func NewChecksum(d *gpu.Device, ts []*Tensor) (*Checksum, error) {
	if len(ts) == 0 {
		return nil, fmt.Errorf("nn: checksum: no tensors")
	}
	c := &Checksum{}
	for i, t := range ts {
		if t == nil {
			return nil, fmt.Errorf("nn: checksum: tensor %d is nil", i)
		}
		for _, s := range elemSpans(d, t.Len()) {
			c.slots = append(c.slots, ChecksumSlot{t, s.off, s.n})
		}
	}
	var err error
	if c.out, err = NewTensor(d, "checksum.sums", checksumStride*len(c.slots)); err != nil {
		return nil, err
	}
	p, err := Pipeline(d, shaders.Checksum, nil)
	if err != nil {
		c.Release()
		return nil, fmt.Errorf("nn: checksum: %w", err)
	}
	for k, s := range c.slots {
		g, err := d.BindGroup(p, spanBinding(s.Tensor, elemSpan{s.Off, s.N}),
			gpu.Binding{Buffer: c.out.Buf, Offset: int64(4 * checksumStride * k), Size: 4})
		if err != nil {
			c.Release()
			return nil, fmt.Errorf("nn: checksum of %s %v: %w", s.Tensor.Name, s.Tensor.Shape, err)
		}
		c.ds = append(c.ds, elemDispatch{g, min(max(CeilDiv(s.N, 256*8), 1), 1024), 1})
	}
	return c, nil
}

// Record records clearing the sums and computing them.
func (c *Checksum) Record(r *gpu.Recorder) {
	r.Clear(c.out.Buf, 0, c.out.Bytes())
	for _, x := range c.ds {
		r.Dispatch(x.g, x.x, x.y, 1)
	}
}

// Slots lists the ranges, in the order of Read's checksums.
func (c *Checksum) Slots() []ChecksumSlot { return c.slots }

// Read waits for the work submitted so far and returns one checksum per
// slot.
func (c *Checksum) Read() ([]uint32, error) {
	raw, err := c.out.Buf.ReadUint32(0, c.out.Len())
	if err != nil {
		return nil, fmt.Errorf("nn: checksum: %w", err)
	}
	out := make([]uint32, len(c.slots))
	for k := range out {
		out[k] = raw[checksumStride*k]
	}
	return out, nil
}

// Release frees the op's own buffers (not the tensors).
func (c *Checksum) Release() {
	releaseDispatches(c.ds)
	c.ds = nil
	if c.out != nil {
		c.out.Release()
		c.out = nil
	}
}
