package nn

import (
	"fmt"
	"math"

	"mom/gpu"
	"mom/shaders"
)

// elemSpan is a range of a flat tensor, in elements, bound as one storage
// binding.
type elemSpan struct{ off, n int }

// elemSpans cuts n elements into ranges that each fit the device's
// maxStorageBufferBindingSize, every range starting at a multiple of 256
// bytes (which satisfies any minStorageBufferOffsetAlignment) and every
// range but the last a multiple of 64 elements.
func elemSpans(d *gpu.Device, n int) []elemSpan {
	most := int(d.Limits.MaxStorageBufferBindingSize/256) * 64
	if most <= 0 || n <= most {
		return []elemSpan{{0, n}}
	}
	var out []elemSpan
	for off := 0; off < n; off += most {
		out = append(out, elemSpan{off, min(most, n-off)})
	}
	return out
}

// spanBinding binds elements [s.off, s.off+s.n) of t.
func spanBinding(t *Tensor, s elemSpan) gpu.Binding {
	return gpu.Binding{Buffer: t.Buf, Offset: int64(4 * s.off), Size: int64(4 * s.n)}
}

// shareBuffer reports whether two tensors share device memory.
func shareBuffer(a, b *Tensor) bool { return a != nil && b != nil && a.Buf == b.Buf }

// elemDispatch is one dispatch of an elementwise-style kernel over a span.
type elemDispatch struct {
	g    *gpu.BindGroup
	x, y int
}

// Elementwise is a flat elementwise op (Add, AXPY, Scale) over tensors of
// one shape, recorded as one dispatch per binding-sized range.
type Elementwise struct {
	ds []elemDispatch
}

// NewAdd prepares y = a + b. The three tensors must have one shape; y may
// alias neither input.
func NewAdd(d *gpu.Device, y, a, b *Tensor) (*Elementwise, error) {
	if err := elemCheck("add", y, a, b); err != nil {
		return nil, err
	}
	if shareBuffer(y, a) || shareBuffer(y, b) {
		return nil, fmt.Errorf("nn: add: output %s aliases an input (%s, %s); use AXPY for y += x", y.Name, a.Name, b.Name)
	}
	return newElementwise(d, "add", shaders.Add, shaders.Add4, nil, a, b, y)
}

// NewAXPY prepares y += alpha*x (x and y of one shape, distinct).
func NewAXPY(d *gpu.Device, y, x *Tensor, alpha float32) (*Elementwise, error) {
	if err := elemCheck("axpy", y, x); err != nil {
		return nil, err
	}
	if shareBuffer(y, x) {
		return nil, fmt.Errorf("nn: axpy: y %s and x %s are the same buffer; use Scale", y.Name, x.Name)
	}
	if !finiteF32(alpha) {
		return nil, fmt.Errorf("nn: axpy: alpha %g is not finite", alpha)
	}
	return newElementwise(d, "axpy", shaders.AXPY, shaders.AXPY4, gpu.Constants{"ALPHA": float64(alpha)}, x, y)
}

// NewScale prepares y *= s.
func NewScale(d *gpu.Device, y *Tensor, s float32) (*Elementwise, error) {
	if err := elemCheck("scale", y); err != nil {
		return nil, err
	}
	if !finiteF32(s) {
		return nil, fmt.Errorf("nn: scale: factor %g is not finite", s)
	}
	return newElementwise(d, "scale", shaders.Scale, shaders.Scale4, gpu.Constants{"ALPHA": float64(s)}, y)
}

// elemCheck requires every tensor present and of the first one's shape.
func elemCheck(op string, ts ...*Tensor) error {
	for i, t := range ts {
		if t == nil {
			return fmt.Errorf("nn: %s: tensor %d is nil", op, i)
		}
	}
	for _, t := range ts[1:] {
		if err := CheckShape(op, t, ts[0].Shape...); err != nil {
			return fmt.Errorf("%w (the shape of %s)", err, ts[0].Name)
		}
	}
	return nil
}

func newElementwise(d *gpu.Device, op string, k1, k4 shaders.Kernel, c gpu.Constants, ts ...*Tensor) (*Elementwise, error) {
	n := ts[0].Len()
	k, per := k1, 1
	if n%4 == 0 {
		k, per = k4, 4
	}
	p, err := Pipeline(d, k, c)
	if err != nil {
		return nil, fmt.Errorf("nn: %s: %w", op, err)
	}
	e := &Elementwise{}
	for _, s := range elemSpans(d, n) {
		bs := make([]gpu.Binding, len(ts))
		for i, t := range ts {
			bs[i] = spanBinding(t, s)
		}
		g, err := d.BindGroup(p, bs...)
		if err != nil {
			return nil, fmt.Errorf("nn: %s of %s %v: %w", op, ts[0].Name, ts[0].Shape, err)
		}
		x, y := Grid(d, CeilDiv(s.n/per, 256))
		e.ds = append(e.ds, elemDispatch{g, x, y})
	}
	return e, nil
}

// Record records the op.
func (e *Elementwise) Record(r *gpu.Recorder) {
	for _, x := range e.ds {
		r.Dispatch(x.g, x.x, x.y, 1)
	}
}

// overrideBool is a WGSL bool override constant's value.
func overrideBool(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func finiteF32(v float32) bool {
	return !math.IsNaN(float64(v)) && !math.IsInf(float64(v), 0)
}

// releaseDispatches frees the bind groups of elementwise dispatches.
func releaseDispatches(ds []elemDispatch) {
	for _, x := range ds {
		x.g.Release()
	}
}

// Release frees the op's bind groups (not its tensors).
func (e *Elementwise) Release() {
	releaseDispatches(e.ds)
	e.ds = nil
}

func releaseTensors(ts []*Tensor) {
	for _, t := range ts {
		if t != nil {
			t.Release()
		}
	}
}
