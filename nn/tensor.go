package nn

import (
	"fmt"

	"mom/gpu"
)

// Tensor is a row-major float32 (or uint32) array on the device.
type Tensor struct {
	Name  string
	Shape []int
	Buf   *gpu.Buffer
	view  bool // shares another tensor's buffer (Reshape); Release is a no-op
}

// Reshape returns a view of t with another shape of the same length; it
// shares t's memory and is released with t.
func (t *Tensor) Reshape(shape ...int) (*Tensor, error) {
	n := 1
	for _, s := range shape {
		if s <= 0 {
			return nil, fmt.Errorf("nn: reshape %s %v to %v: bad shape", t.Name, t.Shape, shape)
		}
		n *= s
	}
	if n != t.Len() {
		return nil, fmt.Errorf("nn: reshape %s %v to %v: %d elements, want %d", t.Name, t.Shape, shape, n, t.Len())
	}
	return &Tensor{Name: t.Name, Shape: append([]int(nil), shape...), Buf: t.Buf, view: true}, nil
}

// NewTensor allocates a tensor of the given shape, counted as scratch in the
// device's memory accounting (an op's own workspace). Its contents are
// undefined until written.
func NewTensor(d *gpu.Device, name string, shape ...int) (*Tensor, error) {
	return NewTensorIn(d, gpu.MemScratch, name, shape...)
}

// NewTensorIn is NewTensor with the memory counted under cat (parameters,
// gradients, optimizer state, activations).
func NewTensorIn(d *gpu.Device, cat gpu.MemCategory, name string, shape ...int) (*Tensor, error) {
	n := 1
	for _, s := range shape {
		if s <= 0 {
			return nil, fmt.Errorf("nn: tensor %s: bad shape %v", name, shape)
		}
		n *= s
	}
	b, err := d.NewBufferIn(cat, name, int64(4*n), gpu.UsageTensor)
	if err != nil {
		return nil, fmt.Errorf("nn: tensor %s %v: %w", name, shape, err)
	}
	return &Tensor{Name: name, Shape: append([]int(nil), shape...), Buf: b}, nil
}

// Len is the number of elements.
func (t *Tensor) Len() int {
	n := 1
	for _, s := range t.Shape {
		n *= s
	}
	return n
}

// Bytes is the size in bytes.
func (t *Tensor) Bytes() int64 { return int64(4 * t.Len()) }

// Upload writes v, which must have Len elements.
func (t *Tensor) Upload(v []float32) error {
	if len(v) != t.Len() {
		return fmt.Errorf("nn: upload to %s %v: %d values, want %d", t.Name, t.Shape, len(v), t.Len())
	}
	return t.Buf.WriteFloat32(0, v)
}

// UploadU32 writes uint32 values (ids, routing tables).
func (t *Tensor) UploadU32(v []uint32) error {
	if len(v) > t.Len() {
		return fmt.Errorf("nn: upload to %s %v: %d values, want at most %d", t.Name, t.Shape, len(v), t.Len())
	}
	return t.Buf.WriteUint32(0, v)
}

// Download reads the tensor back.
func (t *Tensor) Download() ([]float32, error) { return t.Buf.ReadFloat32(0, t.Len()) }

// DownloadU32 reads the tensor back as uint32.
func (t *Tensor) DownloadU32() ([]uint32, error) { return t.Buf.ReadUint32(0, t.Len()) }

// Release frees the device memory (a view leaves it to its tensor).
func (t *Tensor) Release() {
	if !t.view {
		t.Buf.Release()
	}
}

// CheckShape returns an error unless t has the given shape.
func CheckShape(op string, t *Tensor, shape ...int) error {
	if t == nil {
		return fmt.Errorf("nn: %s: missing tensor of shape %v", op, shape)
	}
	if len(t.Shape) != len(shape) {
		return fmt.Errorf("nn: %s: %s has shape %v, want %v", op, t.Name, t.Shape, shape)
	}
	for i := range shape {
		if t.Shape[i] != shape[i] {
			return fmt.Errorf("nn: %s: %s has shape %v, want %v", op, t.Name, t.Shape, shape)
		}
	}
	return nil
}
