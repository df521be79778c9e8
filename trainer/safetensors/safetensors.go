package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sort"

	"mom/trainer/atomicfile"
)

// Tensor is one named tensor of a safetensors file.
type Tensor struct {
	Name  string
	DType string // "F32", "F64", "I32", "U32", "I64", "U8" (see DTypeSize for the others read)
	Shape []int
	Data  []byte // little-endian, row-major; len = product(Shape) * size of DType
}

// stMaxHeader bounds the header length a reader accepts (as the reference
// implementation does, 100 MB), so that a corrupt length cannot make it
// allocate absurd amounts of memory.
const stMaxHeader = 100 << 20

// stDTypes maps every dtype name of the safetensors format to its element
// size in bytes.
var stDTypes = map[string]int{
	"BOOL": 1, "U8": 1, "I8": 1,
	"F16": 2, "BF16": 2, "I16": 2, "U16": 2,
	"F32": 4, "I32": 4, "U32": 4,
	"F64": 8, "I64": 8, "U64": 8,
}

// DTypeSize is the element size in bytes of a safetensors dtype, and
// whether the dtype is known. The trainer itself writes F32 and U32; the
// reader also accepts the format's other dtypes (F64, I32, I64, U8, F16,
// BF16, I8, I16, U16, U64, BOOL) so that foreign files load.
func DTypeSize(dtype string) (int, bool) {
	s, ok := stDTypes[dtype]
	return s, ok
}

// F32 makes an F32 tensor from float32 values. A shape that does not
// match len(v) is reported by Write.
func F32(name string, shape []int, v []float32) Tensor {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return Tensor{Name: name, DType: "F32", Shape: cloneShape(shape), Data: b}
}

// U32 makes a U32 tensor from uint32 values. A shape that does not
// match len(v) is reported by Write.
func U32(name string, shape []int, v []uint32) Tensor {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], x)
	}
	return Tensor{Name: name, DType: "U32", Shape: cloneShape(shape), Data: b}
}

// cloneShape copies a shape; a scalar's shape is an empty, non-nil slice,
// as the reader returns it.
func cloneShape(s []int) []int {
	return append(make([]int, 0, len(s)), s...)
}

// Float32s decodes an F32 tensor's data. It fails for any other dtype or
// for data whose length is not a multiple of 4.
func (t Tensor) Float32s() ([]float32, error) {
	if t.DType != "F32" {
		return nil, fmt.Errorf("safetensors: tensor %s is %s, not F32", t.Name, t.DType)
	}
	if len(t.Data)%4 != 0 {
		return nil, fmt.Errorf("safetensors: tensor %s: %d data bytes is not a whole number of F32", t.Name, len(t.Data))
	}
	v := make([]float32, len(t.Data)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(t.Data[4*i:]))
	}
	return v, nil
}

// Uint32s decodes a U32 tensor's data. It fails for any other dtype.
func (t Tensor) Uint32s() ([]uint32, error) {
	if t.DType != "U32" {
		return nil, fmt.Errorf("safetensors: tensor %s is %s, not U32", t.Name, t.DType)
	}
	if len(t.Data)%4 != 0 {
		return nil, fmt.Errorf("safetensors: tensor %s: %d data bytes is not a whole number of U32", t.Name, len(t.Data))
	}
	v := make([]uint32, len(t.Data)/4)
	for i := range v {
		v[i] = binary.LittleEndian.Uint32(t.Data[4*i:])
	}
	return v, nil
}

// Len is the number of elements, the product of Shape (1 for a scalar).
func (t Tensor) Len() int {
	n, _ := numel(t.Shape)
	return n
}

// numel is the product of shape, or an error for a negative dimension or an
// element count that does not fit in an int (or that would overflow a
// byte count).
func numel(shape []int) (int, error) {
	n := 1
	for _, s := range shape {
		if s < 0 {
			return 0, fmt.Errorf("negative dimension in shape %v", shape)
		}
		if s != 0 && n > (math.MaxInt64/8)/s {
			return 0, fmt.Errorf("shape %v is too large", shape)
		}
		n *= s
	}
	return n, nil
}

// checkTensor validates a tensor before writing.
func (t Tensor) check() error {
	if t.Name == "" {
		return errors.New("a tensor has an empty name")
	}
	if t.Name == "__metadata__" {
		return errors.New(`"__metadata__" is reserved and cannot name a tensor`)
	}
	size, ok := stDTypes[t.DType]
	if !ok {
		return fmt.Errorf("tensor %s: unknown dtype %q", t.Name, t.DType)
	}
	n, err := numel(t.Shape)
	if err != nil {
		return fmt.Errorf("tensor %s: %v", t.Name, err)
	}
	if len(t.Data) != n*size {
		return fmt.Errorf("tensor %s: shape %v of %s needs %d bytes, data has %d", t.Name, t.Shape, t.DType, n*size, len(t.Data))
	}
	return nil
}

// stEntry is a tensor's header entry.
type stEntry struct {
	DType       *string `json:"dtype"`
	Shape       *[]int  `json:"shape"`
	DataOffsets *[]int  `json:"data_offsets"`
}

// Encode writes the safetensors encoding of tensors (sorted by
// name; the slice itself is not reordered) and metadata to w.
func Encode(w io.Writer, tensors []Tensor, metadata map[string]string) error {
	sorted := append([]Tensor(nil), tensors...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	for i, t := range sorted {
		if err := t.check(); err != nil {
			return err
		}
		if i > 0 && sorted[i-1].Name == t.Name {
			return fmt.Errorf("duplicate tensor name %s", t.Name)
		}
	}
	header := make(map[string]any, len(sorted)+1)
	off := 0
	for _, t := range sorted {
		shape := t.Shape
		if shape == nil {
			shape = []int{}
		}
		header[t.Name] = map[string]any{
			"dtype":        t.DType,
			"shape":        shape,
			"data_offsets": []int{off, off + len(t.Data)},
		}
		off += len(t.Data)
	}
	if len(metadata) > 0 {
		header["__metadata__"] = metadata
	}
	js, err := json.Marshal(header) // map keys come out sorted
	if err != nil {
		return fmt.Errorf("encoding header: %w", err)
	}
	if pad := (8 - len(js)%8) % 8; pad > 0 {
		js = append(js, bytes.Repeat([]byte{' '}, pad)...)
	}
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(len(js)))
	if _, err := w.Write(n[:]); err != nil {
		return err
	}
	if _, err := w.Write(js); err != nil {
		return err
	}
	for _, t := range sorted {
		if _, err := w.Write(t.Data); err != nil {
			return err
		}
	}
	return nil
}

// Write writes tensors and metadata to path in the safetensors
// format, atomically (WriteAtomic): a failure leaves any previous file
// intact. Tensor names must be unique and non-empty, dtypes known, and
// every tensor's data exactly product(shape) elements long.
func Write(path string, tensors []Tensor, metadata map[string]string) error {
	return atomicfile.Write(path, 0o644, func(w io.Writer) error {
		return Encode(w, tensors, metadata)
	})
}

// Read reads a safetensors file: its tensors in name order (their
// Data slices share one buffer holding the file) and its metadata (nil when
// the file has none). It validates everything: the header length against
// the file size, the JSON, the dtypes, each shape's byte size against its
// offsets, offsets out of range, overlapping or leaving holes, and duplicate
// names; every error names the file, and the tensor where there is one.
func Read(path string) ([]Tensor, map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("safetensors: reading safetensors: %w", err)
	}
	ts, meta, err := Decode(b)
	if err != nil {
		return nil, nil, fmt.Errorf("safetensors: safetensors file %s: %w", path, err)
	}
	return ts, meta, nil
}

// Decode parses a whole safetensors file held in b, with the
// validation of Read. The tensors' Data alias b.
func Decode(b []byte) ([]Tensor, map[string]string, error) {
	if len(b) < 8 {
		return nil, nil, fmt.Errorf("truncated: %d bytes, shorter than the 8-byte header length", len(b))
	}
	hl := binary.LittleEndian.Uint64(b[:8])
	if hl > uint64(len(b)-8) {
		return nil, nil, fmt.Errorf("header length %d exceeds the %d bytes after it (truncated or not a safetensors file)", hl, len(b)-8)
	}
	if hl > stMaxHeader {
		return nil, nil, fmt.Errorf("header length %d exceeds the %d-byte limit", hl, stMaxHeader)
	}
	if hl < 2 {
		return nil, nil, fmt.Errorf("header length %d is too short for a JSON object", hl)
	}
	hdr := b[8 : 8+hl]
	data := b[8+hl:]
	if hdr[0] != '{' {
		return nil, nil, errors.New("header does not start with '{' (not a safetensors file)")
	}

	// Walk the top-level object by hand: encoding/json into a map would
	// silently keep the last of two duplicate names.
	dec := json.NewDecoder(bytes.NewReader(hdr))
	dec.UseNumber()
	if _, err := dec.Token(); err != nil {
		return nil, nil, fmt.Errorf("header JSON: %w", err)
	}
	var (
		tensors []Tensor
		offs    [][2]int
		meta    map[string]string
		seen    = map[string]bool{}
	)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, fmt.Errorf("header JSON: %w", err)
		}
		name, ok := tok.(string)
		if !ok {
			return nil, nil, fmt.Errorf("header JSON: unexpected %v where a name belongs", tok)
		}
		if seen[name] {
			if name == "__metadata__" {
				return nil, nil, errors.New("header has two __metadata__ entries")
			}
			return nil, nil, fmt.Errorf("tensor %s: duplicate name in header", name)
		}
		seen[name] = true
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, nil, fmt.Errorf("header JSON at %q: %w", name, err)
		}
		if name == "__metadata__" {
			if err := strictUnmarshal(raw, &meta); err != nil {
				return nil, nil, fmt.Errorf("__metadata__ must map strings to strings: %w", err)
			}
			continue
		}
		if name == "" {
			return nil, nil, errors.New("header names a tensor with the empty string")
		}
		var e stEntry
		if err := strictUnmarshal(raw, &e); err != nil {
			return nil, nil, fmt.Errorf("tensor %s: bad header entry: %w", name, err)
		}
		if e.DType == nil || e.Shape == nil || e.DataOffsets == nil {
			return nil, nil, fmt.Errorf("tensor %s: header entry lacks dtype, shape or data_offsets", name)
		}
		size, ok := stDTypes[*e.DType]
		if !ok {
			return nil, nil, fmt.Errorf("tensor %s: unknown dtype %q", name, *e.DType)
		}
		n, err := numel(*e.Shape)
		if err != nil {
			return nil, nil, fmt.Errorf("tensor %s: %v", name, err)
		}
		o := *e.DataOffsets
		if len(o) != 2 {
			return nil, nil, fmt.Errorf("tensor %s: data_offsets %v must be [begin, end]", name, o)
		}
		if o[0] < 0 || o[1] < o[0] {
			return nil, nil, fmt.Errorf("tensor %s: data_offsets %v are not an ordered pair of non-negative offsets", name, o)
		}
		if uint64(o[1]) > uint64(len(data)) {
			return nil, nil, fmt.Errorf("tensor %s: data_offsets %v run past the %d-byte data section (truncated file?)", name, o, len(data))
		}
		if o[1]-o[0] != n*size {
			return nil, nil, fmt.Errorf("tensor %s: shape %v of %s needs %d bytes, data_offsets %v span %d", name, *e.Shape, *e.DType, n*size, o, o[1]-o[0])
		}
		tensors = append(tensors, Tensor{Name: name, DType: *e.DType, Shape: *e.Shape, Data: data[o[0]:o[1]:o[1]]})
		offs = append(offs, [2]int{o[0], o[1]})
	}
	if _, err := dec.Token(); err != nil {
		return nil, nil, fmt.Errorf("header JSON: %w", err)
	}
	// Only padding (white space) may follow the object.
	if extra, err := dec.Token(); err != io.EOF {
		if err != nil {
			return nil, nil, fmt.Errorf("header JSON: trailing data after the object: %w", err)
		}
		return nil, nil, fmt.Errorf("header JSON: trailing data after the object (%v)", extra)
	}

	// The tensors must tile the data section: sorted by begin, each starts
	// where the previous one ended.
	idx := make([]int, len(tensors))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool {
		oa, ob := offs[idx[a]], offs[idx[b]]
		if oa[0] != ob[0] {
			return oa[0] < ob[0]
		}
		return oa[1] < ob[1]
	})
	end := 0
	for k, i := range idx {
		o := offs[i]
		switch {
		case o[0] < end:
			return nil, nil, fmt.Errorf("tensor %s: data_offsets %v overlap tensor %s", tensors[i].Name, o[:], tensors[idx[k-1]].Name)
		case o[0] > end:
			return nil, nil, fmt.Errorf("tensor %s: data_offsets %v leave a hole at bytes [%d, %d) of the data section", tensors[i].Name, o[:], end, o[0])
		}
		end = o[1]
	}
	if end != len(data) {
		return nil, nil, fmt.Errorf("data section holds %d bytes, the tensors account for %d (trailing bytes)", len(data), end)
	}
	sort.Slice(tensors, func(a, b int) bool { return tensors[a].Name < tensors[b].Name })
	return tensors, meta, nil
}

// strictUnmarshal decodes one JSON value, refusing unknown fields.
func strictUnmarshal(raw []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.DisallowUnknownFields()
	return d.Decode(v)
}
