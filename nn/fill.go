package nn

import (
	"mom/gpu"
	"mom/shaders"
)

// Fill sets every element of a tensor to one value. It is the smallest op and
// the pattern the others follow: build once, record many times.
type Fill struct {
	g    *gpu.BindGroup
	x, y int
}

// NewFill prepares x[:] = v.
func NewFill(d *gpu.Device, x *Tensor, v float32) (*Fill, error) {
	g, err := Bind(d, shaders.Fill, gpu.Constants{"VALUE": float64(v)}, x)
	if err != nil {
		return nil, err
	}
	gx, gy := Grid(d, CeilDiv(x.Len(), 256))
	return &Fill{g: g, x: gx, y: gy}, nil
}

// Release frees the op's bind group (not the tensor).
func (f *Fill) Release() { f.g.Release() }

// Record records the fill.
func (f *Fill) Record(r *gpu.Recorder) { r.Dispatch(f.g, f.x, f.y, 1) }
