package speech

import (
	"bytes"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"mom/trainer/safetensors"
)

// tokenizerFile is the saved form of a hand-made tokenizer, its tensors and
// metadata passed through edit first.
func tokenizerFile(t testing.TB, edit func(ts []safetensors.Tensor, meta map[string]string) []safetensors.Tensor) []byte {
	tok := handTokenizer(t, true, []float32{1, 2.5, 1.4})
	p := filepath.Join(t.TempDir(), "tok.safetensors")
	if err := tok.Save(p); err != nil {
		t.Fatal(err)
	}
	ts, meta, err := safetensors.Read(p)
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		ts = edit(ts, meta)
	}
	var buf bytes.Buffer
	if err := safetensors.Encode(&buf, ts, meta); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// replace swaps the tensor named like r for r.
func replace(ts []safetensors.Tensor, r safetensors.Tensor) []safetensors.Tensor {
	for i := range ts {
		if ts[i].Name == r.Name {
			ts[i] = r
		}
	}
	return ts
}

func TestParse(t *testing.T) {
	good := tokenizerFile(t, nil)
	tok, err := Parse(good)
	if err != nil {
		t.Fatal(err)
	}
	if tok.Size() != 3 || !tok.Collapse() || !slices.Equal(tok.runLen, []float32{1, 2.5, 1.4}) {
		t.Fatalf("parsed size %d collapse %v run lengths %v", tok.Size(), tok.Collapse(), tok.runLen)
	}
	nan := float32(math.NaN())
	meta := func(key, val string) func([]safetensors.Tensor, map[string]string) []safetensors.Tensor {
		return func(ts []safetensors.Tensor, m map[string]string) []safetensors.Tensor {
			if val == "" {
				delete(m, key)
			} else {
				m[key] = val
			}
			return ts
		}
	}
	tensor := func(r safetensors.Tensor) func([]safetensors.Tensor, map[string]string) []safetensors.Tensor {
		return func(ts []safetensors.Tensor, _ map[string]string) []safetensors.Tensor { return replace(ts, r) }
	}
	for _, c := range []struct {
		name string
		b    []byte
		want string
	}{
		{"garbage", []byte("not a file"), "speech: tokenizer file: header length"},
		{"truncated", good[:len(good)-3], "speech: tokenizer file:"},
		{"format", tokenizerFile(t, meta("format", "mom-image-vq")), `format "mom-image-vq", want "mom-speech-units"`},
		{"no format", tokenizerFile(t, meta("format", "")), `format ""`},
		{"version", tokenizerFile(t, meta("version", "2")), `version "2" is not supported (this build reads version 1)`},
		{"n_fft", tokenizerFile(t, meta("n_fft", "1024")), "made with n_fft = 1024; this build computes 512"},
		{"mel scale", tokenizerFile(t, meta("mel_scale", "htk")), "made with mel_scale = htk"},
		{"missing hop", tokenizerFile(t, meta("hop", "")), `metadata lacks "hop"`},
		{"units", tokenizerFile(t, meta("units", "x")), `units "x"`},
		{"zero units", tokenizerFile(t, meta("units", "0")), `units "0"`},
		{"units vs shape", tokenizerFile(t, meta("units", "4")), "tensor centroids has shape [3 80], want [4 80]"},
		{"collapse", tokenizerFile(t, meta("collapse", "maybe")), `collapse "maybe"`},
		{"seed", tokenizerFile(t, meta("seed", "-1")), `seed "-1"`},
		{"nan centroid", tokenizerFile(t, tensor(safetensors.F32("centroids", []int{3, Mels}, append(make([]float32, 3*Mels-1), nan)))), "tensor centroids value 239 is NaN"},
		{"mean shape", tokenizerFile(t, tensor(safetensors.F32("mel_mean", []int{Mels - 1}, make([]float32, Mels-1)))), "tensor mel_mean has shape [79], want [80]"},
		{"zero std", tokenizerFile(t, tensor(safetensors.F32("mel_std", []int{Mels}, make([]float32, Mels)))), "mel_std value 0 is 0, not positive"},
		{"short run", tokenizerFile(t, tensor(safetensors.F32("run_length", []int{3}, []float32{1, 0.5, 1}))), "run_length value 1 is 0.5"},
		{"long run", tokenizerFile(t, tensor(safetensors.F32("run_length", []int{3}, []float32{1, 1, 1e9}))), "run_length value 2 is 1e+09"},
		{"u32", tokenizerFile(t, tensor(safetensors.U32("run_length", []int{3}, []uint32{1, 1, 1}))), "tensor run_length is U32, not F32"},
		{"extra", tokenizerFile(t, func(ts []safetensors.Tensor, _ map[string]string) []safetensors.Tensor {
			return append(ts, safetensors.F32("extra", []int{1}, []float32{0}))
		}), `unexpected tensor "extra"`},
		{"missing", tokenizerFile(t, func(ts []safetensors.Tensor, _ map[string]string) []safetensors.Tensor {
			return slices.DeleteFunc(ts, func(x safetensors.Tensor) bool { return x.Name == "mel_std" })
		}), `missing tensor "mel_std"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := Parse(c.b); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	good := tokenizerFile(f, nil)
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add(tokenizerFile(f, func(ts []safetensors.Tensor, m map[string]string) []safetensors.Tensor {
		m["collapse"] = "false"
		return replace(ts, safetensors.F32("centroids", []int{3, Mels}, make([]float32, 3*Mels)))
	}))
	f.Add(tokenizerFile(f, func(ts []safetensors.Tensor, m map[string]string) []safetensors.Tensor {
		m["units"] = "2"
		return ts
	}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		tok, err := Parse(b)
		if err != nil {
			return
		}
		// Whatever parses is a working tokenizer that saves to a file that
		// parses the same.
		if tok.Size() < 1 {
			t.Fatalf("size %d", tok.Size())
		}
		a, err := tok.Decode([]uint32{0, uint32(tok.Size() - 1)})
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range a.Samples {
			if !(v >= -1 && v <= 1) {
				t.Fatalf("decoded sample %d = %v", i, v)
			}
		}
		p := filepath.Join(t.TempDir(), "t")
		if err := tok.Save(p); err != nil {
			t.Fatal(err)
		}
		back, err := Load(p)
		if err != nil || back.Size() != tok.Size() || back.Collapse() != tok.Collapse() || !slices.Equal(back.book.Centroids, tok.book.Centroids) {
			t.Fatalf("save and load changed the tokenizer: %v", err)
		}
	})
}
