package data

import (
	"bytes"
	"encoding/binary"
	"math"
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
	v := testVocab(10, 5, 3)
	ids := make([]uint32, 0, 101)
	for i := range 101 {
		ids = append(ids, uint32(i*7)%uint32(v.Size()))
	}
	// Stream it in pieces.
	w, err := CreateTokFile(p, v, TokFileOptions{Meta: map[string]string{"tokenizer": "test"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err == nil {
		t.Error("token file visible before Close")
	}
	for i := 0; i < len(ids); i += 30 {
		if err := w.Write(ids[i:min(i+30, len(ids))], nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Write([]uint32{1, 18}, nil, nil); err == nil || !strings.Contains(err.Error(), "token 102: token id 18 is outside the vocabulary [0, 18)") {
		t.Errorf("bad id: %v", err)
	}
	if err := w.Write([]uint32{1, 12}, []uint8{0, 2}, nil); err == nil || !strings.Contains(err.Error(), "id 12 lies in image's range, but its modality is 2 (speech)") {
		t.Errorf("bad modality: %v", err)
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
	if string(b[:8]) != "MOMTOKEN" || len(b)%4 != 0 || binary.LittleEndian.Uint32(b[8:]) != 2 || binary.LittleEndian.Uint64(b[16:]) != 101 {
		t.Errorf("layout: magic %q, size %d, version %d, count %d", b[:8], len(b), binary.LittleEndian.Uint32(b[8:]), binary.LittleEndian.Uint64(b[16:]))
	}

	// As a stream: windows of B*L+1 ids, wrapping around.
	f, err := OpenTokFile(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Len() != 101 || f.Version() != 2 {
		t.Fatalf("Len %d, version %d", f.Len(), f.Version())
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
	if err := g.Next(mustBatch(t, 5, 50, 0)); err != nil {
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
	if err := h.Restore(states[1]); err == nil || !strings.Contains(err.Error(), "another file") {
		t.Errorf("Restore of another file's position: %v", err)
	}
	sy, _ := mustSynth(t, synthCfg("train")).State()
	if err := h.Restore(sy); err == nil {
		t.Error("Restore of a synthetic position succeeded")
	}
	// A discrete file zeroes a batch's patches.
	xp := mustBatch(t, 1, 4, 2)
	for i := range xp.Patches {
		xp.Patches[i] = 1
	}
	if err := h.Next(xp); err != nil || slices.ContainsFunc(xp.Patches, func(v float32) bool { return v != 0 }) {
		t.Errorf("batch with patches: %v %v", err, xp.Patches)
	}
}

// continuousFile writes a file with text and a continuous image modality:
// documents "t t [img img img] t" with 2-value patches, as u8 or f32.
func continuousFile(t *testing.T, path, dtype string) (ids []uint32, mods []uint8, patches []float32) {
	t.Helper()
	v := Vocab{Names: []string{"text", "image"}, Ranges: [][2]uint32{{0, 8}, {8, 40}}}
	pf := PatchFormat{Dim: 2, DType: dtype, Scale: 2.0 / 255, Offset: -1}
	w, err := CreateTokFile(path, v, TokFileOptions{Continuous: []bool{false, true}, Patch: pf})
	if err != nil {
		t.Fatal(err)
	}
	for d := range 5 {
		di := []uint32{uint32(d % 8), 1, 8, 8, 8, 2}
		dm := []uint8{0, 0, 1, 1, 1, 0}
		var dp []float32
		for r := range 3 {
			for k := range 2 {
				q := (d*31 + r*7 + k*3) % 256
				dp = append(dp, float32(q)*pf.Scale+pf.Offset)
			}
		}
		if err := w.Write(di, dm, dp); err != nil {
			t.Fatal(err)
		}
		ids, mods, patches = append(ids, di...), append(mods, dm...), append(patches, dp...)
	}
	if err := w.Write([]uint32{8}, nil, []float32{0.5}); err == nil || !strings.Contains(err.Error(), "1 continuous positions need 2 patch values, got 1") {
		t.Errorf("short patch: %v", err)
	}
	if err := w.Write([]uint32{9}, nil, []float32{0, 0}); err == nil || !strings.Contains(err.Error(), "placeholder id 8, not 9") {
		t.Errorf("continuous id: %v", err)
	}
	if dtype == "u8" {
		if err := w.Write([]uint32{8}, nil, []float32{0, 1.5}); err == nil || !strings.Contains(err.Error(), "outside the u8 range") {
			t.Errorf("u8 range: %v", err)
		}
	} else if err := w.Write([]uint32{8}, nil, []float32{0, float32(math.NaN())}); err == nil || !strings.Contains(err.Error(), "patch value NaN") {
		t.Errorf("NaN patch: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return ids, mods, patches
}

func TestTokFileContinuous(t *testing.T) {
	for _, dtype := range []string{"u8", "f32"} {
		t.Run(dtype, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "c.tok")
			ids, mods, patches := continuousFile(t, p, dtype)
			f, err := OpenTokFile(p)
			if err != nil {
				t.Fatal(err)
			}
			gi, gm, gp := f.Tokens()
			if !slices.Equal(gi, ids) || !slices.Equal(gm, mods) || !slices.Equal(gp, patches) {
				t.Fatalf("read back:\n%v %v %v\nwant\n%v %v %v", gi, gm, gp, ids, mods, patches)
			}
			if !slices.Equal(f.Continuous(), []bool{false, true}) || f.Patch().Dim != 2 {
				t.Errorf("continuous %v patch %+v", f.Continuous(), f.Patch())
			}
			// The stream: patches at image positions, zeros elsewhere;
			// targets ignored at and before image positions.
			x := mustBatch(t, 2, 7, 2)
			if err := f.Next(x); err != nil {
				t.Fatal(err)
			}
			row := 0
			for i := range 14 {
				k := i % len(ids)
				if x.Inputs[i] != ids[k] || x.Modality[i] != uint32(mods[k]) {
					t.Fatalf("position %d: id %d modality %d, want %d %d", i, x.Inputs[i], x.Modality[i], ids[k], mods[k])
				}
				wantT := ids[(k+1)%len(ids)]
				if mods[k] == 1 || mods[(k+1)%len(ids)] == 1 {
					wantT = IgnoreIndex
				}
				if x.Targets[i] != wantT {
					t.Errorf("position %d: target %d, want %d", i, x.Targets[i], wantT)
				}
				got := x.Patches[2*i : 2*i+2]
				if mods[k] == 1 {
					if !slices.Equal(got, patches[2*row:2*row+2]) {
						t.Errorf("position %d: patch %v, want %v", i, got, patches[2*row:2*row+2])
					}
					row++
				} else if got[0] != 0 || got[1] != 0 {
					t.Errorf("position %d: patch %v at a text position", i, got)
				}
			}
			if err := f.Next(mustBatch(t, 1, 4, 0)); err == nil || !strings.Contains(err.Error(), "patches") {
				t.Errorf("a batch without patches: %v", err)
			}
		})
	}
}

func cloneBatch(b *Batch) *Batch {
	c := *b
	c.Inputs, c.Targets, c.Modality = slices.Clone(b.Inputs), slices.Clone(b.Targets), slices.Clone(b.Modality)
	c.Patches = slices.Clone(b.Patches)
	return &c
}

// tokV1 builds a version 1 token file from parts, for malformed cases.
func tokV1(magic string, version uint32, header string, n uint64, ids []uint32) []byte {
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

// tokV2 builds a version 2 file: ids, modality bytes (padded) and raw
// patch bytes.
func tokV2(header string, n, m uint64, ids []uint32, mods []byte, patch []byte) []byte {
	b := []byte("MOMTOKEN")
	b = binary.LittleEndian.AppendUint32(b, 2)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(header)))
	b = binary.LittleEndian.AppendUint64(b, n)
	b = binary.LittleEndian.AppendUint64(b, m)
	b = append(b, header...)
	for _, id := range ids {
		b = binary.LittleEndian.AppendUint32(b, id)
	}
	b = append(b, mods...)
	b = append(b, make([]byte, (4-len(mods)%4)%4)...)
	return append(b, patch...)
}

const (
	goodHdr   = `{"ranges":[[0,4],[4,6]],"modalities":["text","image"]}  ` // 56 bytes, padded
	goodHdrV2 = `{"names":["text","image"],"ranges":[[0,4],[4,6]],"continuous":[false,true],"patch":{"dim":2,"dtype":"u8","scale":0.5,"offset":-1}}`
)

func pad4(s string) string { return s + strings.Repeat(" ", (4-len(s)%4)%4) }

func TestTokFileMalformed(t *testing.T) {
	good := tokV1("MOMTOKEN", 1, goodHdr, 3, []uint32{0, 5, 2})
	h2 := pad4(goodHdrV2)
	good2 := tokV2(h2, 3, 1, []uint32{0, 4, 2}, []byte{0, 1, 0}, []byte{3, 4})
	cases := []struct {
		name string
		file []byte
		want string
	}{
		{"empty", nil, "bad magic"},
		{"short", []byte("MOMTOK"), "bad magic"},
		{"preamble", []byte("MOMTOKEN1234"), "truncated: 12 bytes"},
		{"bad magic", tokV1("SAFETENS", 1, goodHdr, 0, nil), `bad magic "SAFETENS"`},
		{"version", tokV1("MOMTOKEN", 3, goodHdr, 0, nil), "version 3 at offset 8"},
		{"truncated header", good[:40], "truncated header: it needs 56 bytes at offset 24, the file has 16"},
		{"truncated body", good[:len(good)-2], "truncated body: 3 tokens and 0 patches need 92 bytes, the file has 90"},
		{"huge count", tokV1("MOMTOKEN", 1, goodHdr, 1<<62, nil), "the preamble promises 4611686018427387904 tokens"},
		{"trailing", append(slices.Clone(good), 0), "1 trailing bytes at offset 92"},
		{"unaligned header", tokV1("MOMTOKEN", 1, goodHdr+" ", 0, nil), "not a multiple of 4"},
		{"huge header", func() []byte { b := slices.Clone(good); binary.LittleEndian.PutUint32(b[12:], 1<<30); return b }(), "exceeds the 16777216-byte limit"},
		{"not json", tokV1("MOMTOKEN", 1, "abcd", 0, nil), "bad JSON header at offset 24"},
		{"trailing json", tokV1("MOMTOKEN", 1, pad4(goodHdr+"{}"), 0, nil), "trailing data"},
		{"unknown field", tokV1("MOMTOKEN", 1, pad4(`{"ranges":[[0,4]],"modalities":["text"],"x":1}`), 0, nil), "bad JSON header"},
		{"overlapping", tokV1("MOMTOKEN", 1, pad4(`{"ranges":[[0,4],[3,6]],"modalities":["text","image"]}`), 0, nil), "vocabulary ranges overlap: text [0, 4) and image [3, 6)"},
		{"gap", tokV1("MOMTOKEN", 1, pad4(`{"ranges":[[0,4],[5,6]],"modalities":["text","image"]}`), 0, nil), "gap"},
		{"no ranges", tokV1("MOMTOKEN", 1, pad4(`{"modalities":[]}`), 0, nil), "no ranges"},
		{"name count", tokV1("MOMTOKEN", 1, pad4(`{"ranges":[[0,4],[4,6]],"modalities":["text"]}`), 0, nil), "2 ranges but 1 names"},
		{"v1 id", tokV1("MOMTOKEN", 1, goodHdr, 4, []uint32{0, 1, 6, 2}), "token 2 (offset 88): token id 6 is outside the vocabulary [0, 6)"},
		{"v1 with names", tokV1("MOMTOKEN", 1, pad4(`{"names":["text"],"ranges":[[0,4]]}`), 0, nil), "version 1 header has only"},
		{"v2 with modalities", tokV2(pad4(`{"modalities":["text"],"ranges":[[0,4]]}`), 0, 0, nil, nil, nil), `"names"`},
		{"v2 modality", tokV2(h2, 3, 1, []uint32{0, 4, 2}, []byte{0, 7, 0}, []byte{3, 4}), "token 1 (offset "},
		{"v2 id range", tokV2(h2, 3, 1, []uint32{0, 4, 2}, []byte{0, 0, 0}, []byte{3, 4}), "id 4 is outside text's range [0, 4)"},
		{"v2 placeholder", tokV2(h2, 3, 1, []uint32{0, 5, 2}, []byte{0, 1, 0}, []byte{3, 4}), "holds id 5, not the placeholder 4"},
		{"v2 patch count", tokV2(h2, 3, 2, []uint32{0, 4, 2}, []byte{0, 1, 0}, []byte{3, 4, 5, 6}), "1 continuous positions, but the preamble promises 2 patches"},
		{"v2 too many", tokV2(h2, 3, 1, []uint32{4, 4, 2}, []byte{1, 1, 0}, []byte{3, 4}), "token 1: more continuous positions than the 1 patches"},
		{"v2 padding", func() []byte { b := slices.Clone(good2); b[len(b)-3] = 9; return b }(), "padding byte at offset"},
		{"v2 truncated", good2[:len(good2)-1], "truncated body"},
		{"v2 patches without continuous", tokV2(pad4(`{"names":["text"],"ranges":[[0,4]]}`), 1, 1, []uint32{0}, []byte{0}, nil), "promises 1 patches, but no modality is continuous"},
		{"v2 no patch format", tokV2(pad4(`{"names":["text","image"],"ranges":[[0,4],[4,6]],"continuous":[false,true]}`), 0, 0, nil, nil, nil), `need a "patch" format`},
		{"v2 stray patch format", tokV2(pad4(`{"names":["text"],"ranges":[[0,4]],"patch":{"dim":2,"dtype":"f32"}}`), 0, 0, nil, nil, nil), `without a continuous modality`},
		{"v2 first continuous", tokV2(pad4(`{"names":["text"],"ranges":[[0,4]],"continuous":[true],"patch":{"dim":2,"dtype":"f32"}}`), 0, 0, nil, nil, nil), "modality 0 (text) cannot be continuous"},
		{"v2 dtype", tokV2(pad4(`{"names":["text","image"],"ranges":[[0,4],[4,6]],"continuous":[false,true],"patch":{"dim":2,"dtype":"f64"}}`), 0, 0, nil, nil, nil), `patch dtype "f64"`},
		{"v2 scale", tokV2(pad4(`{"names":["text","image"],"ranges":[[0,4],[4,6]],"continuous":[false,true],"patch":{"dim":2,"dtype":"u8"}}`), 0, 0, nil, nil, nil), "positive finite scale"},
		{"v2 flags", tokV2(pad4(`{"names":["text","image"],"ranges":[[0,4],[4,6]],"continuous":[false],"patch":{"dim":2,"dtype":"f32"}}`), 0, 0, nil, nil, nil), "1 continuous flags for 2 modalities"},
		{"v2 NaN patch", tokV2(pad4(`{"names":["text","image"],"ranges":[[0,4],[4,6]],"continuous":[false,true],"patch":{"dim":1,"dtype":"f32"}}`), 1, 1, []uint32{4}, []byte{1},
			binary.LittleEndian.AppendUint32(nil, math.Float32bits(float32(math.NaN())))), "patch 0 value 0 (offset"},
	}
	dir := t.TempDir()
	for _, c := range cases {
		p := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_")+".tok")
		os.WriteFile(p, c.file, 0o644)
		_, err := OpenTokFile(p)
		if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want one naming the file and containing %q", c.name, err, c.want)
		}
	}
	// Too few ids for a batch.
	p := filepath.Join(dir, "one.tok")
	if err := WriteTokFile(p, testVocab(4), []uint32{1}, nil); err != nil {
		t.Fatal(err)
	}
	g, err := OpenTokFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Next(mustBatch(t, 1, 1, 0)); err == nil || !strings.Contains(err.Error(), "holds 1 tokens") {
		t.Errorf("Next on a 1-token file: %v", err)
	}
	// The writer refuses a bad vocabulary, and a missing file is an error.
	if _, err := CreateTokFile(filepath.Join(dir, "x.tok"), Vocab{[]string{"a", "b"}, [][2]uint32{{0, 4}, {2, 5}}}, TokFileOptions{}); err == nil {
		t.Error("CreateTokFile with overlapping ranges succeeded")
	}
	if _, err := OpenTokFile(filepath.Join(dir, "missing.tok")); err == nil {
		t.Error("opened a missing file")
	}
	// The good bases of the corruptions are readable, version 1 included.
	for _, b := range [][]byte{good, good2} {
		os.WriteFile(p, b, 0o644)
		f, err := OpenTokFile(p)
		if err != nil {
			t.Fatalf("good file: %v", err)
		}
		if ids, _, _ := f.Tokens(); len(ids) != 3 {
			t.Errorf("good file: %v", ids)
		}
	}
	f, _ := OpenTokFile(p)
	if _, _, pt := f.Tokens(); !slices.Equal(pt, []float32{0.5, 1}) {
		t.Errorf("u8 patches decode to %v, want [0.5 1]", pt)
	}
}

func TestTokWriterAbort(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "t.tok")
	v := testVocab(4)
	if err := WriteTokFile(p, v, []uint32{1, 2, 3}, nil); err != nil {
		t.Fatal(err)
	}
	old, _ := os.ReadFile(p)
	w, err := CreateTokFile(p, v, TokFileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]uint32{0, 0}, nil, nil)
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
	f.Add(tokV1("MOMTOKEN", 1, goodHdr, 3, []uint32{0, 5, 2}))
	f.Add(tokV1("MOMTOKEN", 1, goodHdr, 3, []uint32{0, 9, 2}))
	f.Add(tokV1("MOMTOKEN", 1, pad4(`{"ranges":[[0,4]],"modalities":["text"]}`), 2, []uint32{3, 1}))
	f.Add(tokV1("MOMTOKEN", 1, goodHdr, 0, nil))
	f.Add(tokV2(pad4(goodHdrV2), 3, 1, []uint32{0, 4, 2}, []byte{0, 1, 0}, []byte{3, 4}))
	f.Add(tokV2(pad4(goodHdrV2), 4, 2, []uint32{4, 4, 1, 2}, []byte{1, 1, 0, 0}, []byte{3, 4, 0, 255}))
	f.Add(tokV2(pad4(`{"names":["text","image"],"ranges":[[0,4],[4,6]],"continuous":[false,true],"patch":{"dim":1,"dtype":"f32"}}`), 2, 1, []uint32{4, 0}, []byte{1, 0}, []byte{0, 0, 128, 63}))
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
		if err := tf.Vocab().Validate(); err != nil {
			t.Fatalf("opened with an invalid vocabulary: %v", err)
		}
		x, _ := NewBatch(2, 3, tf.Patch().Dim)
		err = tf.Next(x)
		if tf.Len() >= 2 && err != nil {
			t.Fatalf("valid file, Next failed: %v", err)
		}
		if err != nil {
			return
		}
		for i, id := range x.Inputs {
			lo, hi := tf.Vocab().Range(int(x.Modality[i]))
			if id < lo || id >= hi {
				t.Fatalf("position %d: id %d outside its modality %d's range", i, id, x.Modality[i])
			}
		}
		for _, v := range x.Patches {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				t.Fatalf("patch value %v", v)
			}
		}
	})
}

func BenchmarkTokFileNext(b *testing.B) {
	p := filepath.Join(b.TempDir(), "b.tok")
	v := testVocab(32000, 8192, 1024)
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
	x := mustBatch(b, 8, 1024, 0)
	b.ReportAllocs()
	b.SetBytes(int64(4 * x.B * x.L))
	for b.Loop() {
		if err := f.Next(x); err != nil {
			b.Fatal(err)
		}
	}
}
