package torchpickle

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"strings"
	"testing"

	"mom/trainer/safetensors"
)

// values decodes a tensor's elements as float64, whatever its dtype.
func values(t *testing.T, x safetensors.Tensor) []float64 {
	t.Helper()
	size, _ := safetensors.DTypeSize(x.DType)
	n := len(x.Data) / size
	out := make([]float64, n)
	for i := range out {
		b := x.Data[i*size : (i+1)*size]
		switch x.DType {
		case "F32":
			out[i] = float64(math.Float32frombits(binary.LittleEndian.Uint32(b)))
		case "F64":
			out[i] = math.Float64frombits(binary.LittleEndian.Uint64(b))
		case "BF16":
			out[i] = float64(math.Float32frombits(uint32(binary.LittleEndian.Uint16(b)) << 16))
		case "F16":
			h := binary.LittleEndian.Uint16(b)
			e, m := int(h>>10&0x1f), float64(h&0x3ff)
			v := math.Ldexp(1+m/1024, e-15)
			if e == 0 {
				v = math.Ldexp(m/1024, -14)
			}
			if h&0x8000 != 0 {
				v = -v
			}
			out[i] = v
		case "I64":
			out[i] = float64(int64(binary.LittleEndian.Uint64(b)))
		default:
			t.Fatalf("tensor %s: dtype %s not handled by the test", x.Name, x.DType)
		}
	}
	return out
}

// TestReadsTorchSave reads a file torch.save wrote (testdata/make_fixtures.py)
// and checks every tensor against the values the script stored as JSON:
// several dtypes, a transposed view sharing a storage, a scalar, an empty
// tensor.
func TestReadsTorchSave(t *testing.T) {
	ts, err := Read("../testdata/torch_small.pt")
	if err != nil {
		t.Fatal(err)
	}
	js, err := os.ReadFile("../testdata/torch_small.json")
	if err != nil {
		t.Fatal(err)
	}
	var want map[string]struct {
		Shape  []int     `json:"shape"`
		Values []float64 `json:"values"`
	}
	if err := json.Unmarshal(js, &want); err != nil {
		t.Fatal(err)
	}
	order := []string{"a", "a_t", "h", "bf", "d", "i", "s", "e"}
	dtypes := map[string]string{"a": "F32", "a_t": "F32", "h": "F16", "bf": "BF16", "d": "F64", "i": "I64", "s": "F32", "e": "F32"}
	if len(ts) != len(order) {
		t.Fatalf("%d tensors, want %d", len(ts), len(order))
	}
	for i, x := range ts {
		if x.Name != order[i] {
			t.Errorf("tensor %d is %s, want %s (dict order)", i, x.Name, order[i])
			continue
		}
		w := want[x.Name]
		if x.DType != dtypes[x.Name] || !equalInts(x.Shape, w.Shape) {
			t.Errorf("%s: %s %v, want %s %v", x.Name, x.DType, x.Shape, dtypes[x.Name], w.Shape)
			continue
		}
		got := values(t, x)
		if len(got) != len(w.Values) {
			t.Errorf("%s: %d values, want %d", x.Name, len(got), len(w.Values))
			continue
		}
		for k := range got {
			if got[k] != w.Values[k] {
				t.Errorf("%s[%d] = %v, want %v", x.Name, k, got[k], w.Values[k])
			}
		}
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// archive builds a torch.save-like zip: data.pkl and storage records.
func archive(t testing.TB, pkl []byte, records map[string][]byte, method uint16) []byte {
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	add := func(name string, b []byte) {
		f, err := w.CreateHeader(&zip.FileHeader{Name: name, Method: method})
		if err != nil {
			t.Fatal(err)
		}
		f.Write(b)
	}
	add("archive/data.pkl", pkl)
	for k, v := range records {
		add("archive/"+k, v)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// pickle helpers: protocol-2 opcodes as torch.save writes them.
func pstr(s string) []byte {
	b := []byte{'X', 0, 0, 0, 0}
	binary.LittleEndian.PutUint32(b[1:], uint32(len(s)))
	return append(b, s...)
}
func pint(n int) []byte {
	b := []byte{'J', 0, 0, 0, 0}
	binary.LittleEndian.PutUint32(b[1:], uint32(n))
	return b
}
func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// tensorPickle is {"w": tensor of shape shape (strides stride) over a
// FloatStorage "0" of numel elements}.
func tensorPickle(shape, stride []int, numel, offset int) []byte {
	tup := func(v []int) []byte {
		p := []byte{'('}
		for _, x := range v {
			p = append(p, pint(x)...)
		}
		return append(p, 't')
	}
	return cat([]byte{0x80, 2, '}', '('}, pstr("w"),
		[]byte("ctorch._utils\n_rebuild_tensor_v2\n"), []byte{'('},
		[]byte{'('}, pstr("storage"), []byte("ctorch\nFloatStorage\n"), pstr("0"), pstr("cpu"), pint(numel), []byte{'t', 'Q'},
		pint(offset), tup(shape), tup(stride), []byte{0x89},
		[]byte("ccollections\nOrderedDict\n"), []byte{')', 'R', 't', 'R', 'u', '.'})
}

func floats(v ...float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

func TestHandMadeArchive(t *testing.T) {
	b := archive(t, tensorPickle([]int{2, 2}, []int{1, 2}, 4, 0), map[string][]byte{"data/0": floats(1, 2, 3, 4)}, zip.Store)
	ts, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 1 || ts[0].Name != "w" || !equalInts(ts[0].Shape, []int{2, 2}) {
		t.Fatalf("got %+v", ts)
	}
	if got, want := values(t, ts[0]), []float64{1, 3, 2, 4}; !equalFloats(got, want) {
		t.Fatalf("transposed view gathered as %v, want %v", got, want)
	}
}

func equalFloats(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestRefuses: every kind of file outside a plain state dict of tensors is
// an error that says what was wrong.
func TestRefuses(t *testing.T) {
	good := tensorPickle([]int{2}, []int{1}, 2, 0)
	data := map[string][]byte{"data/0": floats(1, 2)}
	evil := cat([]byte{0x80, 2}, []byte("cos\nsystem\n"), pstr("echo hi"), []byte{0x85, 'R', '.'})
	list := cat([]byte{0x80, 2, ']', '.'})
	nonTensor := cat([]byte{0x80, 2, '}'}, pstr("x"), pint(3), []byte{'s', '.'})
	cases := []struct {
		name string
		file []byte
		want string
	}{
		{"empty", nil, "not a torch.save zip"},
		{"legacy", []byte{0x80, 2, '.'}, "legacy"},
		{"no data.pkl", func() []byte {
			var buf bytes.Buffer
			w := zip.NewWriter(&buf)
			w.Create("x/other")
			w.Close()
			return buf.Bytes()
		}(), "no <name>/data.pkl"},
		{"code", archive(t, evil, nil, zip.Store), "refusing global os.system"},
		{"list", archive(t, list, nil, zip.Store), "want a dict of tensors"},
		{"non-tensor value", archive(t, nonTensor, nil, zip.Store), "not a tensor"},
		{"missing storage", archive(t, good, nil, zip.Store), "has no record archive/data/0"},
		{"short storage", archive(t, good, map[string][]byte{"data/0": floats(1)}, zip.Store), "needs 8"},
		{"view past storage", archive(t, tensorPickle([]int{3}, []int{1}, 2, 0), data, zip.Store), "beyond its storage"},
		{"offset past storage", archive(t, tensorPickle([]int{2}, []int{1}, 2, 1), data, zip.Store), "beyond its storage"},
		{"huge storage", archive(t, tensorPickle([]int{2}, []int{1}, 1<<30, 0), data, zip.Store), "claims"},
		{"compressed", archive(t, good, data, zip.Deflate), "compressed"},
		{"truncated pickle", archive(t, good[:len(good)/2], data, zip.Store), "truncated pickle"},
		{"bad opcode", archive(t, []byte{0x80, 2, 'i', '.'}, nil, zip.Store), "not accepted"},
	}
	for _, c := range cases {
		_, err := Decode(c.file)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.want)
		}
	}
}

// FuzzDecode: no input makes the reader panic or allocate beyond the
// file's size; whatever it accepts is consistent. The seeds (run in the
// normal suite) are real torch.save files and hand-made archives.
func FuzzDecode(f *testing.F) {
	for _, p := range []string{"../testdata/torch_small.pt"} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add(archive(f, tensorPickle([]int{2, 2}, []int{1, 2}, 4, 0), map[string][]byte{"data/0": floats(1, 2, 3, 4)}, zip.Store))
	f.Add(archive(f, tensorPickle([]int{3}, []int{1}, 2, 0), map[string][]byte{"data/0": floats(1, 2)}, zip.Store))
	f.Add([]byte{0x80, 2, '.'})
	f.Add([]byte("PK\x03\x04"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ts, err := Decode(b)
		if err != nil {
			return
		}
		for _, x := range ts {
			size, ok := safetensors.DTypeSize(x.DType)
			n := 1
			for _, s := range x.Shape {
				n *= s
			}
			if !ok || len(x.Data) != n*size || len(x.Data) > len(b) {
				t.Fatalf("tensor %s: %s %v with %d bytes from a %d-byte file", x.Name, x.DType, x.Shape, len(x.Data), len(b))
			}
		}
	})
}
