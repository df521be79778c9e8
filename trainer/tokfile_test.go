package trainer

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"mom/trainer/internal/fstest"
)

func TestTokFileRoundTrip(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "train.tok")
	v := DefaultVocab(all3, 10, 5, 3)
	ids := make([]uint32, 0, 101)
	for i := range 101 {
		ids = append(ids, uint32(i*7)%uint32(v.Size()))
	}
	// Stream it in pieces.
	w, err := CreateTokFile(p, v, map[string]string{"tokenizer": "test"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err == nil {
		t.Error("token file visible before Close")
	}
	for i := 0; i < len(ids); i += 30 {
		if err := w.Write(ids[i:min(i+30, len(ids))]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Write([]uint32{1, 18}); err == nil || !strings.Contains(err.Error(), "token 102 (id 18) is outside the vocabulary [0, 18)") {
		t.Errorf("bad id: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	gv, gids, meta, err := ReadTokFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(gv, v) || !slices.Equal(gids, ids) || meta["tokenizer"] != "test" {
		t.Errorf("read back %v %v %v", gv, gids, meta)
	}
	b, _ := os.ReadFile(p)
	if string(b[:8]) != "MOMTOKEN" || (len(b)-24)%4 != 0 || binary.LittleEndian.Uint64(b[16:]) != 101 {
		t.Errorf("layout: magic %q, size %d, count %d", b[:8], len(b), binary.LittleEndian.Uint64(b[16:]))
	}

	// As a stream: windows of B*L+1 ids, wrapping around.
	f, err := OpenTokFile(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Len() != 101 || f.Validate() != nil {
		t.Fatalf("Len %d, Validate %v", f.Len(), f.Validate())
	}
	const B, L = 3, 10
	x := mustBatch(t, B, L, 0)
	var states [][]byte
	var batches []*Batch
	for k := 0; k < 8; k++ { // 8*30 = 240 ids: wraps twice
		st, _ := f.State()
		states = append(states, st)
		if err := f.Next(x); err != nil {
			t.Fatal(err)
		}
		batches = append(batches, cloneBatch(x))
		for i := 0; i < B*L; i++ {
			pos := (k*B*L + i) % 101
			if x.Inputs[i] != ids[pos] || x.Targets[i] != ids[(pos+1)%101] {
				t.Fatalf("batch %d position %d: input %d target %d, want %d %d", k, i, x.Inputs[i], x.Targets[i], ids[pos], ids[(pos+1)%101])
			}
			if m, _ := v.ModalityOf(x.Inputs[i]); uint32(m) != x.Modality[i] {
				t.Fatalf("batch %d position %d: modality %d, want %d", k, i, x.Modality[i], m)
			}
		}
	}
	// Restore replays.
	g, err := OpenTokFile(p)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if err := g.Restore(states[5]); err != nil {
		t.Fatal(err)
	}
	for k := 5; k < 8; k++ {
		if err := g.Next(x); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(x, batches[k]) {
			t.Errorf("batch %d after Restore differs", k)
		}
	}
	// A batch larger than the file wraps several times.
	big := mustBatch(t, 5, 50, 0)
	if err := g.Next(big); err != nil {
		t.Fatal(err)
	}
	// Restore refuses another file's position, and synthetic positions.
	q := filepath.Join(dir, "other.tok")
	if err := WriteTokFile(q, v, ids[:50], nil); err != nil {
		t.Fatal(err)
	}
	h, err := OpenTokFile(q)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if err := h.Restore(states[1]); err == nil || !strings.Contains(err.Error(), "another file") {
		t.Errorf("Restore of another file's position: %v", err)
	}
	sy, _ := mustSynth(t, synthCfg("train")).State()
	if err := h.Restore(sy); err == nil {
		t.Error("Restore of a synthetic position succeeded")
	}
	// Patches are refused.
	if err := h.Next(mustBatch(t, 1, 4, 2)); err == nil || !strings.Contains(err.Error(), "no continuous patches") {
		t.Errorf("batch with patches: %v", err)
	}
}

func cloneBatch(b *Batch) *Batch {
	c := *b
	c.Inputs, c.Targets, c.Modality = slices.Clone(b.Inputs), slices.Clone(b.Targets), slices.Clone(b.Modality)
	c.Patches = slices.Clone(b.Patches)
	return &c
}

// tokBytes builds a token file from parts, for malformed cases.
func tokBytes(magic string, version uint32, header string, n uint64, ids []uint32) []byte {
	b := []byte(magic)
	b = binary.LittleEndian.AppendUint32(b, version)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(header)))
	b = binary.LittleEndian.AppendUint64(b, n)
	b = append(b, header...)
	for _, id := range ids {
		b = binary.LittleEndian.AppendUint32(b, id)
	}
	return b
}

const goodHdr = `{"ranges":[[0,4],[4,6]],"modalities":["text","image"]}  ` // 56 bytes, padded

func TestTokFileMalformed(t *testing.T) {
	if len(goodHdr)%4 != 0 {
		t.Fatal("fix goodHdr's padding")
	}
	good := tokBytes("MOMTOKEN", 1, goodHdr, 3, []uint32{0, 5, 2})
	pad := func(s string) string { return s + strings.Repeat(" ", (4-len(s)%4)%4) }
	cases := []struct {
		name string
		file []byte
		want string
	}{
		{"empty", nil, "truncated: 0 bytes"},
		{"short", []byte("MOMTOK"), "truncated: 6 bytes"},
		{"bad magic", tokBytes("SAFETENS", 1, goodHdr, 0, nil), `bad magic "SAFETENS"`},
		{"bad magic short", []byte("GARBAGE!xyz"), `bad magic "GARBAGE!"`},
		{"version", tokBytes("MOMTOKEN", 2, goodHdr, 0, nil), "version 2"},
		{"truncated header", good[:40], "truncated header: the header needs 56 bytes, the file has 16"},
		{"truncated body", good[:len(good)-2], "truncated body: 3 ids need 92 bytes, the file has 90"},
		{"huge count", tokBytes("MOMTOKEN", 1, goodHdr, 1<<62, nil), "truncated body: the header promises 4611686018427387904 ids"},
		{"trailing", append(slices.Clone(good), 0), "1 trailing bytes"},
		{"unaligned header", tokBytes("MOMTOKEN", 1, goodHdr+" ", 0, nil), "not a multiple of 4"},
		{"huge header", func() []byte { b := slices.Clone(good); binary.LittleEndian.PutUint32(b[12:], 1<<30); return b }(), "exceeds the 16777216-byte limit"},
		{"not json", tokBytes("MOMTOKEN", 1, "abcd", 0, nil), "bad JSON header"},
		{"trailing json", tokBytes("MOMTOKEN", 1, pad(goodHdr+"{}"), 0, nil), "trailing data"},
		{"unknown field", tokBytes("MOMTOKEN", 1, pad(`{"ranges":[[0,4]],"modalities":["text"],"x":1}`), 0, nil), "bad JSON header"},
		{"overlapping", tokBytes("MOMTOKEN", 1, pad(`{"ranges":[[0,4],[3,6]],"modalities":["text","image"]}`), 0, nil), "vocabulary ranges overlap: text [0, 4) and image [3, 6)"},
		{"gap", tokBytes("MOMTOKEN", 1, pad(`{"ranges":[[0,4],[5,6]],"modalities":["text","image"]}`), 0, nil), "gap"},
		{"no ranges", tokBytes("MOMTOKEN", 1, pad(`{"modalities":[]}`), 0, nil), "no ranges"},
		{"names", tokBytes("MOMTOKEN", 1, pad(`{"ranges":[[0,4],[4,6]],"modalities":["text","speech"]}`), 0, nil), `range 1 "speech", want "image"`},
		{"name count", tokBytes("MOMTOKEN", 1, pad(`{"ranges":[[0,4],[4,6]],"modalities":["text"]}`), 0, nil), "1 modalities for 2 ranges"},
	}
	dir := t.TempDir()
	for _, c := range cases {
		p := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_")+".tok")
		os.WriteFile(p, c.file, 0o644)
		_, _, _, err := ReadTokFile(p)
		if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want one naming the file and containing %q", c.name, err, c.want)
		}
	}
	// Ids outside the vocabulary: Open succeeds (it does not read the ids),
	// Validate and Next report the token.
	p := filepath.Join(dir, "badid.tok")
	os.WriteFile(p, tokBytes("MOMTOKEN", 1, goodHdr, 4, []uint32{0, 1, 6, 2}), 0o644)
	f, err := OpenTokFile(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want := p + ": token 2 (id 6) is outside the vocabulary [0, 6)"
	if err := f.Validate(); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Validate: %v, want %q", err, want)
	}
	if err := f.Next(mustBatch(t, 1, 3, 0)); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Next: %v, want %q", err, want)
	}
	if _, _, _, err := ReadTokFile(p); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("ReadTokFile: %v", err)
	}
	// Too few ids for a batch.
	p = filepath.Join(dir, "one.tok")
	if err := WriteTokFile(p, Vocab{[][2]uint32{{0, 4}}}, []uint32{1}, nil); err != nil {
		t.Fatal(err)
	}
	g, err := OpenTokFile(p)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if err := g.Next(mustBatch(t, 1, 1, 0)); err == nil || !strings.Contains(err.Error(), "holds 1 ids") {
		t.Errorf("Next on a 1-id file: %v", err)
	}
	// The writer refuses a bad vocabulary, and a missing file is an error.
	if _, err := CreateTokFile(filepath.Join(dir, "x.tok"), Vocab{[][2]uint32{{0, 4}, {2, 5}}}, nil); err == nil {
		t.Error("CreateTokFile with overlapping ranges succeeded")
	}
	if _, err := OpenTokFile(filepath.Join(dir, "missing.tok")); err == nil {
		t.Error("opened a missing file")
	}
	// The good base of the corruptions is readable.
	os.WriteFile(p, good, 0o644)
	if _, ids, _, err := ReadTokFile(p); err != nil || !slices.Equal(ids, []uint32{0, 5, 2}) {
		t.Errorf("good file: %v %v", ids, err)
	}
}

func TestTokWriterAbort(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "t.tok")
	v := Vocab{[][2]uint32{{0, 4}}}
	if err := WriteTokFile(p, v, []uint32{1, 2, 3}, nil); err != nil {
		t.Fatal(err)
	}
	old, _ := os.ReadFile(p)
	w, err := CreateTokFile(p, v, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]uint32{0, 0})
	w.Abort()
	if err := w.Close(); err == nil {
		t.Error("Close after Abort succeeded")
	}
	if b, _ := os.ReadFile(p); !bytes.Equal(b, old) {
		t.Error("Abort damaged the old file")
	}
	fstest.AssertOnlyFiles(t, dir, "t.tok")
}

func FuzzTokFile(f *testing.F) {
	f.Add(tokBytes("MOMTOKEN", 1, goodHdr, 3, []uint32{0, 5, 2}))
	f.Add(tokBytes("MOMTOKEN", 1, goodHdr, 3, []uint32{0, 9, 2}))
	f.Add(tokBytes("MOMTOKEN", 1, `{"ranges":[[0,4]],"modalities":["text"]}        `, 2, []uint32{3, 1}))
	f.Add(tokBytes("MOMTOKEN", 1, goodHdr, 0, nil))
	f.Add([]byte("MOMTOKEN"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(dir, "fuzz.tok")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		tf, err := OpenTokFile(p)
		if err != nil {
			if !strings.Contains(err.Error(), p) {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		defer tf.Close()
		if err := tf.Vocab().Validate(); err != nil {
			t.Fatalf("opened with an invalid vocabulary: %v", err)
		}
		verr := tf.Validate()
		x, _ := NewBatch(2, 3, 0)
		nerr := tf.Next(x)
		if verr == nil && tf.Len() >= 2 && nerr != nil {
			t.Fatalf("valid file, Next failed: %v", nerr)
		}
		if nerr == nil {
			for i, id := range x.Inputs {
				if m, err := tf.Vocab().ModalityOf(id); err != nil || uint32(m) != x.Modality[i] {
					t.Fatalf("position %d: id %d modality %d (%v)", i, id, x.Modality[i], err)
				}
			}
		}
	})
}

func BenchmarkTokFileNext(b *testing.B) {
	p := filepath.Join(b.TempDir(), "b.tok")
	v := DefaultVocab(all3, 32000, 8192, 1024)
	ids := make([]uint32, 1<<20)
	for i := range ids {
		ids[i] = uint32(i*7919) % uint32(v.Size())
	}
	if err := WriteTokFile(p, v, ids, nil); err != nil {
		b.Fatal(err)
	}
	f, err := OpenTokFile(p)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	x := mustBatch(b, 8, 1024, 0)
	b.ReportAllocs()
	b.SetBytes(int64(4 * x.B * x.L))
	for b.Loop() {
		if err := f.Next(x); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*x.B*x.L)/b.Elapsed().Seconds(), "tokens/s")
}
