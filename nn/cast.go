package nn

import (
	"fmt"

	"mom/gpu"
	"mom/shaders"
)

// CastArgs are the tensors of a float16 cast: parallel lists of float32
// sources and float16 destinations of the same lengths, and optionally the
// loss scale and the overflow flag.
type CastArgs struct {
	Src []*Tensor // float32
	Dst []*Tensor // float16, Dst[i].Len() == Src[i].Len(); no buffer twice
	// Scale, if set, is a float32 tensor whose element 0 multiplies every
	// source before it is rounded (the loss scale: LossScale.State).
	Scale *Tensor
	// Overflow, if set, is a (1) uint32 flag that the cast sets to non-zero
	// when some result is not finite (LossScale.Overflow); the cast never
	// clears it.
	Overflow *Tensor
}

// Cast rounds float32 tensors to float16 (shaders/cast.wgsl): to the
// nearest half, ties to even, on the bits, so that it equals
// ref.CastHalf bit for bit on every adapter, shader-f16 or not; beyond
// the largest half a result is infinite (and raises the overflow flag, if
// one is given). It makes the float16 copies of mixed precision: the
// weights from the float32 masters, the activations that feed the GEMMs and
// the conv, and the gradients that enter a GEMM's backward (the loss
// gradient multiplied by the loss scale). One dispatch per tensor (per
// binding-sized range of a large one).
type Cast struct {
	ds    []elemDispatch
	dummy []*Tensor // stand-ins bound where there is no scale or flag
	n     int64     // elements cast per Record
}

// castSpan is the longest range one cast dispatch binds: a multiple of 128
// elements (256 bytes of halves) whose float32 source fits the binding
// limit.
func castSpan(d *gpu.Device) int {
	return max(int(d.Limits.MaxStorageBufferBindingSize/4)/128*128, 128)
}

// NewCast checks the lists, compiles the kernels and binds every range.
func NewCast(d *gpu.Device, a CastArgs) (*Cast, error) {
	if len(a.Src) == 0 || len(a.Src) != len(a.Dst) {
		return nil, fmt.Errorf("nn: cast: %d sources and %d destinations (want the same positive number)", len(a.Src), len(a.Dst))
	}
	seen := map[*gpu.Buffer]string{}
	for i := range a.Src {
		s, t := a.Src[i], a.Dst[i]
		if s == nil || t == nil {
			return nil, fmt.Errorf("nn: cast: pair %d has a nil tensor", i)
		}
		if s.DType != F32 || t.DType != F16 {
			return nil, fmt.Errorf("nn: cast %s %v to %s: want a float32 source and a float16 destination, got %s and %s", s.Name, s.Shape, t.Name, s.DType, t.DType)
		}
		if s.Len() != t.Len() {
			return nil, fmt.Errorf("nn: cast %s %v to %s %v: %d elements into %d", s.Name, s.Shape, t.Name, t.Shape, s.Len(), t.Len())
		}
		if prev, ok := seen[t.Buf]; ok {
			return nil, fmt.Errorf("nn: cast: destination %s shares its buffer with %s", t.Name, prev)
		}
		seen[t.Buf] = t.Name
	}
	if a.Scale != nil && (a.Scale.DType != F32 || a.Scale.Len() < 1) {
		return nil, fmt.Errorf("nn: cast: the scale %s must be a float32 tensor of at least one element", a.Scale.Name)
	}
	if a.Overflow != nil && (a.Overflow.DType != F32 || a.Overflow.Len() != 1) {
		return nil, fmt.Errorf("nn: cast: the overflow flag %s must be one 32-bit word", a.Overflow.Name)
	}
	c := &Cast{}
	fail := func(err error) (*Cast, error) {
		c.Release()
		return nil, err
	}
	stand := func(name string) (*Tensor, error) {
		t, err := NewTensor(d, name, 1)
		if err == nil {
			c.dummy = append(c.dummy, t)
		}
		return t, err
	}
	scale, flag := a.Scale, a.Overflow
	var err error
	if scale == nil {
		if scale, err = stand("cast.noscale"); err != nil {
			return fail(err)
		}
	}
	if flag == nil {
		if flag, err = stand("cast.noflag"); err != nil {
			return fail(err)
		}
	}
	consts := gpu.Constants{"SCALED": b2f(a.Scale != nil), "FLAG": b2f(a.Overflow != nil)}
	p1, err := Pipeline(d, shaders.Cast, consts)
	if err != nil {
		return fail(fmt.Errorf("nn: cast: %w", err))
	}
	p4, err := Pipeline(d, shaders.Cast4, consts)
	if err != nil {
		return fail(fmt.Errorf("nn: cast: %w", err))
	}
	most := castSpan(d)
	for i, s := range a.Src {
		t := a.Dst[i]
		n := s.Len()
		c.n += int64(n)
		for off := 0; off < n; off += most {
			k := min(most, n-off)
			p, per := p1, 2
			if k%4 == 0 {
				p, per = p4, 4
			}
			g, err := d.BindGroup(p,
				gpu.Binding{Buffer: s.Buf, Offset: int64(4 * off), Size: int64(4 * k)},
				gpu.Binding{Buffer: t.Buf, Offset: int64(2 * off), Size: int64(4 * CeilDiv(k, 2))},
				gpu.Buf(scale.Buf), gpu.Buf(flag.Buf))
			if err != nil {
				return fail(fmt.Errorf("nn: cast %s %v to float16 (elements %d..%d): %w", s.Name, s.Shape, off, off+k, err))
			}
			x, y := Grid(d, CeilDiv(CeilDiv(k, per), 256))
			c.ds = append(c.ds, elemDispatch{g, x, y})
		}
	}
	return c, nil
}

// Record records the casts.
func (c *Cast) Record(r *gpu.Recorder) {
	for _, x := range c.ds {
		r.Dispatch(x.g, x.x, x.y, 1)
	}
}

// Elements is the number of elements one Record casts.
func (c *Cast) Elements() int64 { return c.n }

// Release frees the op's bind groups and stand-ins (not its tensors). A
// nil Cast is fine.
func (c *Cast) Release() {
	if c == nil {
		return
	}
	releaseDispatches(c.ds)
	releaseTensors(c.dummy)
	c.ds, c.dummy = nil, nil
}
