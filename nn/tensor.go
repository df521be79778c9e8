package nn

import (
	"fmt"
	"unsafe"

	"mom/gpu"
)

// Tensor is a row-major float32 (or uint32) array on the device, or a
// float16 one (DType F16: the GEMM inputs of mixed precision).
type Tensor struct {
	Name  string
	Shape []int
	Buf   *gpu.Buffer
	DType DType
	view  bool // shares another tensor's buffer (Reshape); Release is a no-op
}

// DType is a tensor's element type.
type DType uint8

const (
	// F32 is float32 (and uint32: four bytes), the default.
	F32 DType = iota
	// F16 is IEEE half precision; kernels that take it need the device's
	// shader-f16 feature.
	F16
)

// Size is the element size in bytes.
func (t DType) Size() int {
	if t == F16 {
		return 2
	}
	return 4
}

func (t DType) String() string {
	if t == F16 {
		return "float16"
	}
	return "float32"
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
	return &Tensor{Name: t.Name, Shape: append([]int(nil), shape...), Buf: t.Buf, DType: t.DType, view: true}, nil
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
	return NewTensorOf(d, cat, F32, name, shape...)
}

// NewTensorOf is NewTensorIn with the element type dt.
func NewTensorOf(d *gpu.Device, cat gpu.MemCategory, dt DType, name string, shape ...int) (*Tensor, error) {
	n := 1
	for _, s := range shape {
		if s <= 0 {
			return nil, fmt.Errorf("nn: tensor %s: bad shape %v", name, shape)
		}
		n *= s
	}
	b, err := d.NewBufferIn(cat, name, int64(dt.Size()*n), gpu.UsageTensor)
	if err != nil {
		return nil, fmt.Errorf("nn: tensor %s %v: %w", name, shape, err)
	}
	return &Tensor{Name: name, Shape: append([]int(nil), shape...), Buf: b, DType: dt}, nil
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
func (t *Tensor) Bytes() int64 { return int64(t.DType.Size() * t.Len()) }

// Upload writes v, which must have Len elements (rounded to the nearest
// float16, ties to even, for an F16 tensor).
func (t *Tensor) Upload(v []float32) error {
	if len(v) != t.Len() {
		return fmt.Errorf("nn: upload to %s %v: %d values, want %d", t.Name, t.Shape, len(v), t.Len())
	}
	if t.DType == F16 {
		h := make([]uint16, len(v)+len(v)%2)
		for i, x := range v {
			h[i] = F16Bits(x)
		}
		return t.Buf.Write(0, unsafe.Slice((*byte)(unsafe.Pointer(&h[0])), 2*len(h)))
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

// Download reads the tensor back (an F16 tensor's values widened).
func (t *Tensor) Download() ([]float32, error) {
	if t.DType == F16 {
		n := t.Len()
		raw, err := t.Buf.Read(0, int64(2*(n+n%2)))
		if err != nil {
			return nil, err
		}
		out := make([]float32, n)
		for i := range out {
			out[i] = F16Value(uint16(raw[2*i]) | uint16(raw[2*i+1])<<8)
		}
		return out, nil
	}
	return t.Buf.ReadFloat32(0, t.Len())
}

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
