package nn

import (
	"fmt"

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

func init() {
	RegisterBench(func(size BenchSize) []BenchCase {
		n := 1 << 22
		if size == BenchLarge {
			n = 1 << 28
		}
		return []BenchCase{{
			Name: fmt.Sprintf("fill/n=%d", n),
			Setup: func(d *gpu.Device) (*BenchRun, error) {
				x, err := NewTensor(d, "x", n)
				if err != nil {
					return nil, err
				}
				f, err := NewFill(d, x, 1)
				if err != nil {
					x.Release()
					return nil, err
				}
				return &BenchRun{Record: f.Record, Bytes: float64(4 * n), Cleanup: x.Release}, nil
			},
		}}
	})
}
