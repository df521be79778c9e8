package safetensors

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"mom/trainer/atomicfile"
)

func TestSafetensorsRoundTrip(t *testing.T) {
	p := filepath.Join(t.TempDir(), "m.safetensors")
	f := []float32{1, -2.5, float32(math.Inf(1)), 3e-38, 0, 7}
	in := []Tensor{
		F32("z.weight", []int{2, 3}, f),
		U32("a.ids", []int{4}, []uint32{0, 1, 0xFFFFFFFF, 42}),
		F32("scalar", []int{}, []float32{0.5}),
		F32("empty", []int{0, 3}, nil),
		{Name: "bytes", DType: "U8", Shape: []int{3}, Data: []byte{1, 2, 3}},
		{Name: "f64", DType: "F64", Shape: []int{1}, Data: binary.LittleEndian.AppendUint64(nil, math.Float64bits(math.Pi))},
	}
	meta := map[string]string{"step": "12", "format": "pt"}
	if err := Write(p, in, meta); err != nil {
		t.Fatal(err)
	}
	out, gotMeta, err := Read(p)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(gotMeta, meta) {
		t.Errorf("metadata %v, want %v", gotMeta, meta)
	}
	want := map[string]Tensor{}
	for _, x := range in {
		want[x.Name] = x
	}
	if len(out) != len(in) {
		t.Fatalf("%d tensors, want %d", len(out), len(in))
	}
	for i, o := range out {
		if i > 0 && out[i-1].Name >= o.Name {
			t.Errorf("tensors not sorted: %s before %s", out[i-1].Name, o.Name)
		}
		w := want[o.Name]
		if o.DType != w.DType || !reflect.DeepEqual(o.Shape, w.Shape) || !bytes.Equal(o.Data, w.Data) {
			t.Errorf("tensor %s: got %s %v %v, want %s %v %v", o.Name, o.DType, o.Shape, o.Data, w.DType, w.Shape, w.Data)
		}
	}
	zs, err := out[len(out)-1].Float32s()
	if err != nil || !reflect.DeepEqual(zs, f) {
		t.Errorf("z.weight decodes to %v, %v", zs, err)
	}
	if _, err := out[0].Float32s(); err == nil {
		t.Errorf("Float32s of %s (%s) succeeded", out[0].Name, out[0].DType)
	}
	ids, err := out[0].Uint32s()
	if err != nil || !reflect.DeepEqual(ids, []uint32{0, 1, 0xFFFFFFFF, 42}) {
		t.Errorf("a.ids decodes to %v, %v", ids, err)
	}
	// The header is padded so that the data section is 8-byte aligned.
	b, _ := os.ReadFile(p)
	if hl := binary.LittleEndian.Uint64(b); hl%8 != 0 {
		t.Errorf("header length %d is not a multiple of 8", hl)
	}
	// No metadata: none written, nil read.
	if err := Write(p, in[:1], nil); err != nil {
		t.Fatal(err)
	}
	if _, m, err := Read(p); err != nil || m != nil {
		t.Errorf("metadata %v, %v; want nil", m, err)
	}
}

func TestWriteSafetensorsRejects(t *testing.T) {
	p := filepath.Join(t.TempDir(), "m.safetensors")
	if err := atomicfile.WriteFile(p, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		ts   []Tensor
		want string
	}{
		{"shape mismatch", []Tensor{F32("w", []int{2, 2}, []float32{1, 2, 3})}, "tensor w: shape [2 2] of F32 needs 16 bytes, data has 12"},
		{"duplicate", []Tensor{F32("w", []int{1}, []float32{1}), F32("w", []int{1}, []float32{2})}, "duplicate tensor name w"},
		{"dtype", []Tensor{{Name: "w", DType: "F8", Shape: []int{1}, Data: []byte{1}}}, `tensor w: unknown dtype "F8"`},
		{"empty name", []Tensor{F32("", []int{1}, []float32{1})}, "empty name"},
		{"reserved", []Tensor{F32("__metadata__", []int{1}, []float32{1})}, "reserved"},
		{"negative", []Tensor{{Name: "w", DType: "U8", Shape: []int{-1}}}, "negative dimension"},
	}
	for _, c := range cases {
		err := Write(p, c.ts, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: err = %v, want one naming %s and containing %q", c.name, err, p, c.want)
		}
	}
	if b, _ := os.ReadFile(p); string(b) != "old" {
		t.Errorf("failed writes damaged the old file: %q", b)
	}
}

// rawST builds a safetensors file from a literal header and data section.
func rawST(header string, data []byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	b = append(b, header...)
	return append(b, data...)
}

// validST is a small well-formed file used as a base for corruptions.
func validST(t testing.TB) []byte {
	var buf bytes.Buffer
	err := Encode(&buf, []Tensor{
		F32("a", []int{2}, []float32{1, 2}),
		F32("b", []int{1, 3}, []float32{3, 4, 5}),
	}, map[string]string{"k": "v"})
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestReadSafetensorsCorrupt(t *testing.T) {
	good := validST(t)
	d8 := make([]byte, 8)
	cases := []struct {
		name string
		file []byte
		want string
	}{
		{"empty file", nil, "truncated: 0 bytes"},
		{"short length", []byte{1, 2, 3}, "truncated: 3 bytes"},
		{"header past end", binary.LittleEndian.AppendUint64(nil, 1000), "header length 1000 exceeds the 0 bytes after it"},
		{"huge header length", binary.LittleEndian.AppendUint64(nil, math.MaxUint64), "exceeds"},
		{"truncated file", good[:len(good)-3], "run past the"},
		{"truncated header", good[:20], "exceeds the 12 bytes after it"},
		{"not json", rawST("hello world!", nil), "does not start with '{'"},
		{"bad json", rawST(`{"a": {"dtype": "F32",`, nil), "header JSON"},
		{"json array", rawST(`[1,2]`, nil), "does not start with '{'"},
		{"trailing json", rawST(`{} {}`, nil), "trailing data"},
		{"unknown dtype", rawST(`{"w":{"dtype":"Q4","shape":[2],"data_offsets":[0,8]}}`, d8), `tensor w: unknown dtype "Q4"`},
		{"missing shape", rawST(`{"w":{"dtype":"F32","data_offsets":[0,8]}}`, d8), "tensor w: header entry lacks"},
		{"unknown field", rawST(`{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":1}}`, d8), "tensor w: bad header entry"},
		{"float shape", rawST(`{"w":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}}`, d8), "tensor w: bad header entry"},
		{"negative shape", rawST(`{"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}`, d8), "tensor w: negative dimension"},
		{"huge shape", rawST(`{"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}}`, d8), "tensor w: shape [4294967296 4294967296] is too large"},
		{"size mismatch", rawST(`{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}`, d8), "tensor w: shape [3] of F32 needs 12 bytes, data_offsets [0 8] span 8"},
		{"offsets reversed", rawST(`{"w":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}}`, d8), "tensor w: data_offsets [8 0] are not an ordered pair"},
		{"offsets three", rawST(`{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8,8]}}`, d8), "tensor w: data_offsets [0 8 8] must be [begin, end]"},
		{"offsets out of range", rawST(`{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}`, d8), "tensor w: data_offsets [0 16] run past the 8-byte data section"},
		{"overlap", rawST(`{"v":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, d8), "tensor w: data_offsets [4 8] overlap tensor v"},
		{"hole", rawST(`{"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, d8), "tensor w: data_offsets [4 8] leave a hole at bytes [0, 4)"},
		{"trailing bytes", rawST(`{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, d8), "data section holds 8 bytes, the tensors account for 4"},
		{"duplicate", rawST(`{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, d8), "tensor w: duplicate name"},
		{"duplicate escaped", rawST(`{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"\u0077":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, d8), "tensor w: duplicate name"},
		{"bad metadata", rawST(`{"__metadata__":{"a":1}}`, nil), "__metadata__ must map strings to strings"},
		{"two metadata", rawST(`{"__metadata__":{},"__metadata__":{}}`, nil), "two __metadata__"},
		{"null entry", rawST(`{"w":null}`, nil), "tensor w: header entry lacks"},
	}
	dir := t.TempDir()
	for _, c := range cases {
		p := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_")+".safetensors")
		if err := os.WriteFile(p, c.file, 0o644); err != nil {
			t.Fatal(err)
		}
		_, _, err := Read(p)
		if err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		if !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %q, want it to name the file and contain %q", c.name, err, c.want)
		}
	}
	if _, _, err := Read(filepath.Join(dir, "missing")); err == nil || !os.IsNotExist(unwrapAll(err)) {
		t.Errorf("missing file: err = %v", err)
	}
	// Sanity: the base of the corruptions is itself valid, and an empty
	// header object is a valid empty file.
	for name, f := range map[string][]byte{"good": good, "empty object": rawST(`{}      `, nil)} {
		if _, _, err := Decode(f); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok || u.Unwrap() == nil {
			return err
		}
		err = u.Unwrap()
	}
}

func FuzzDecodeSafetensors(f *testing.F) {
	good := validST(f)
	f.Add(good)
	f.Add(good[:len(good)-1])
	f.Add(rawST(`{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, make([]byte, 4)))
	f.Add(rawST(`{"__metadata__":{"a":"b"}}`, nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		ts, _, err := Decode(b)
		if err != nil {
			return
		}
		// Whatever decodes must encode to something that decodes the same.
		var buf bytes.Buffer
		if err := Encode(&buf, ts, nil); err != nil {
			t.Fatalf("re-encoding a decoded file: %v", err)
		}
		ts2, _, err := Decode(buf.Bytes())
		if err != nil || len(ts2) != len(ts) {
			t.Fatalf("round trip: %v", err)
		}
		for i := range ts {
			if ts[i].Name != ts2[i].Name || !bytes.Equal(ts[i].Data, ts2[i].Data) {
				t.Fatalf("round trip changed tensor %s", ts[i].Name)
			}
		}
	})
}
