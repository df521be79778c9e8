package data

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"

	"mom/trainer/atomicfile"
)

// The token file format holds one split of a dataset: the token ids, the
// modality of every token and, for continuous modalities, one patch vector
// per continuous position. All numbers are little-endian.
//
// Version 2 (written):
//
//	offset  size   field
//	0       8      magic "MOMTOKEN"
//	8       4      version, uint32 (2)
//	12      4      H, header length in bytes, uint32, a multiple of 4
//	16      8      N, number of tokens, uint64
//	24      8      M, number of continuous positions (patch rows), uint64
//	32      H      header: a JSON object padded with spaces to H bytes:
//	                 {"names": ["text", "image"],
//	                  "ranges": [[0, 4096], [4096, 4128]],
//	                  "continuous": [false, true],            (optional)
//	                  "patch": {"dim": 16, "dtype": "u8",     (with continuous)
//	                            "scale": 0.00784, "offset": -1},
//	                  "meta": {"tokenizer": "...", ...}}       (optional)
//	32+H    4N     the ids, uint32
//	        N      the modality of each token, uint8, then zero bytes up to
//	               a multiple of 4
//	        M·dim·s the patches, one row per continuous position in token
//	               order; dtype "f32" (s = 4, IEEE float32) or "u8" (s = 1,
//	               value = byte·scale + offset)
//
// "ranges" is the unified vocabulary (Vocab: per modality, in modality
// order, tiling [0, size)) and "names" names the modalities. Every id lies
// in the range of its token's modality; a continuous position's id is the
// first id of its modality's range (a placeholder: the trainer replaces it
// with the noise level's token). The file size is exactly what the
// preamble and header promise. Documents are concatenated; their markers
// are tokens of the first modality's range.
//
// Version 1 (still read): a 24-byte preamble (magic, version 1, H, N), a
// header {"ranges": ..., "modalities": [names], "meta": ...} and the ids;
// each token's modality is the range its id falls in, and nothing is
// continuous.
const (
	tokMagic     = "MOMTOKEN"
	tokVersion   = 2
	tokMaxHeader = 16 << 20
)

// PatchFormat says how a token file stores continuous patches.
type PatchFormat struct {
	Dim    int     `json:"dim"`
	DType  string  `json:"dtype"`            // "f32" or "u8"
	Scale  float32 `json:"scale,omitempty"`  // u8: value = byte*scale + offset
	Offset float32 `json:"offset,omitempty"` // u8
}

func (p PatchFormat) elemSize() int {
	if p.DType == "u8" {
		return 1
	}
	return 4
}

func (p PatchFormat) validate() error {
	switch {
	case p.Dim <= 0 || p.Dim > 1<<16:
		return fmt.Errorf("patch dim %d, want 1 to 65536", p.Dim)
	case p.DType == "f32":
		return nil
	case p.DType != "u8":
		return fmt.Errorf("patch dtype %.16q, want \"f32\" or \"u8\"", p.DType)
	case !(p.Scale > 0) || math.IsInf(float64(p.Scale), 0) || math.IsNaN(float64(p.Offset)) || math.IsInf(float64(p.Offset), 0):
		return fmt.Errorf("u8 patches need a positive finite scale and a finite offset, have %v and %v", p.Scale, p.Offset)
	}
	return nil
}

// tokHeader is the JSON header (both versions).
type tokHeader struct {
	Names      []string          `json:"names,omitempty"`      // v2
	Modalities []string          `json:"modalities,omitempty"` // v1
	Ranges     [][2]uint32       `json:"ranges"`
	Continuous []bool            `json:"continuous,omitempty"`
	Patch      *PatchFormat      `json:"patch,omitempty"`
	Meta       map[string]string `json:"meta,omitempty"`
}

// TokFileOptions describe what a token file holds besides its vocabulary.
type TokFileOptions struct {
	// Continuous[m] marks modality m as continuous: its positions carry a
	// patch each. Empty: nothing is continuous.
	Continuous []bool
	Patch      PatchFormat // with a continuous modality
	Meta       map[string]string
}

// TokWriter writes a token file; the file appears at its path only when
// Close succeeds (atomically). Ids stream to disk; modalities and patches
// are kept in memory until Close.
type TokWriter struct {
	path  string
	p     *atomicfile.Pending
	bw    *bufio.Writer
	vocab Vocab
	o     TokFileOptions
	n     uint64
	mods  []byte
	patch []byte
	rows  uint64
	buf   []byte
	err   error
}

// CreateTokFile starts a token file of vocabulary vocab.
func CreateTokFile(path string, vocab Vocab, o TokFileOptions) (*TokWriter, error) {
	fail := func(err error) (*TokWriter, error) { return nil, fmt.Errorf("trainer: token file %s: %w", path, err) }
	if err := vocab.Validate(); err != nil {
		return fail(err)
	}
	h := tokHeader{Names: vocab.Names, Ranges: vocab.Ranges, Meta: o.Meta}
	anyCont := false
	if len(o.Continuous) > 0 {
		if len(o.Continuous) != len(vocab.Ranges) {
			return fail(fmt.Errorf("%d continuous flags for %d modalities", len(o.Continuous), len(vocab.Ranges)))
		}
		for _, c := range o.Continuous {
			anyCont = anyCont || c
		}
		h.Continuous = o.Continuous
	}
	if anyCont {
		if o.Continuous[0] {
			return fail(fmt.Errorf("modality 0 (%s) cannot be continuous", vocab.Name(0)))
		}
		if err := o.Patch.validate(); err != nil {
			return fail(err)
		}
		pf := o.Patch
		h.Patch = &pf
	}
	js, err := json.Marshal(h)
	if err != nil {
		return fail(fmt.Errorf("header: %w", err))
	}
	js = append(js, bytes.Repeat([]byte{' '}, (4-len(js)%4)%4)...)
	p, err := atomicfile.Create(path, 0o644)
	if err != nil {
		return nil, err
	}
	w := &TokWriter{path: path, p: p, bw: bufio.NewWriterSize(p.File(), 1<<20), vocab: vocab, o: o}
	var pre [32]byte
	copy(pre[:], tokMagic)
	binary.LittleEndian.PutUint32(pre[8:], tokVersion)
	binary.LittleEndian.PutUint32(pre[12:], uint32(len(js)))
	// N and M are written by Close.
	w.bw.Write(pre[:])
	w.bw.Write(js)
	return w, nil
}

// Write appends tokens: ids, their modalities (nil: each id's range), and
// one patch of Patch.Dim values for every token of a continuous modality,
// in order. Everything is checked first: if anything is wrong, nothing of
// this call is written and the writer stays usable.
func (w *TokWriter) Write(ids []uint32, mods []uint8, patches []float32) error {
	if w.err != nil {
		return w.err
	}
	fail := func(format string, a ...any) error {
		return fmt.Errorf("trainer: token file %s: "+format, append([]any{w.path}, a...)...)
	}
	if mods != nil && len(mods) != len(ids) {
		return fail("%d modalities for %d ids", len(mods), len(ids))
	}
	cont := func(m int) bool { return m < len(w.o.Continuous) && w.o.Continuous[m] }
	rows := 0
	for i, id := range ids {
		m, err := w.vocab.ModalityOf(id)
		if err != nil {
			return fail("token %d: %v", w.n+uint64(i), err)
		}
		if mods != nil {
			if int(mods[i]) != m {
				return fail("token %d: id %d lies in %s's range, but its modality is %d (%s)", w.n+uint64(i), id, w.vocab.Name(m), mods[i], w.vocab.Name(int(mods[i])))
			}
		}
		if cont(m) {
			if lo, _ := w.vocab.Range(m); id != lo {
				return fail("token %d: a continuous %s position must hold the placeholder id %d, not %d", w.n+uint64(i), w.vocab.Name(m), lo, id)
			}
			rows++
		}
	}
	dim := w.o.Patch.Dim
	if len(patches) != rows*dim {
		return fail("%d continuous positions need %d patch values, got %d", rows, rows*dim, len(patches))
	}
	start := len(w.patch)
	if w.o.Patch.DType == "u8" {
		for i, v := range patches {
			q := math.Round(float64((v - w.o.Patch.Offset) / w.o.Patch.Scale))
			if !(q >= 0 && q <= 255) {
				w.patch = w.patch[:start]
				return fail("patch value %v (row %d) is outside the u8 range [%v, %v]", v, w.rows+uint64(i/dim), w.o.Patch.Offset, w.o.Patch.Offset+255*w.o.Patch.Scale)
			}
			w.patch = append(w.patch, byte(q))
		}
	} else {
		for i, v := range patches {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				w.patch = w.patch[:start]
				return fail("patch value %v (row %d)", v, w.rows+uint64(i/dim))
			}
			w.patch = binary.LittleEndian.AppendUint32(w.patch, math.Float32bits(v))
		}
	}
	if cap(w.buf) < 4*len(ids) {
		w.buf = make([]byte, 4*len(ids))
	}
	b := w.buf[:4*len(ids)]
	for i, id := range ids {
		binary.LittleEndian.PutUint32(b[4*i:], id)
		m, _ := w.vocab.ModalityOf(id)
		w.mods = append(w.mods, byte(m))
	}
	if _, err := w.bw.Write(b); err != nil {
		w.err = fail("%v", err)
		w.p.Abort()
		return w.err
	}
	w.n += uint64(len(ids))
	w.rows += uint64(rows)
	return nil
}

// Tokens is the number of tokens written so far.
func (w *TokWriter) Tokens() uint64 { return w.n }

// Close completes the file: it writes the modalities and patches and the
// counts, syncs and renames the file into place. After a failed Write,
// Close returns that error and writes nothing.
func (w *TokWriter) Close() error {
	if w.err != nil {
		return w.err
	}
	w.err = fmt.Errorf("trainer: token file %s: already closed", w.path)
	w.bw.Write(w.mods)
	w.bw.Write(make([]byte, (4-len(w.mods)%4)%4))
	w.bw.Write(w.patch)
	if err := w.bw.Flush(); err != nil {
		w.p.Abort()
		return fmt.Errorf("trainer: token file %s: %w", w.path, err)
	}
	var n [16]byte
	binary.LittleEndian.PutUint64(n[:], w.n)
	binary.LittleEndian.PutUint64(n[8:], w.rows)
	if _, err := w.p.File().WriteAt(n[:], 16); err != nil {
		w.p.Abort()
		return fmt.Errorf("trainer: token file %s: %w", w.path, err)
	}
	return w.p.Commit()
}

// Abort discards the file being written; anything at the path before is
// untouched.
func (w *TokWriter) Abort() {
	w.err = fmt.Errorf("trainer: token file %s: aborted", w.path)
	w.p.Abort()
}

// WriteTokFile writes a whole token file of discrete tokens at once.
func WriteTokFile(path string, vocab Vocab, ids []uint32, meta map[string]string) error {
	w, err := CreateTokFile(path, vocab, TokFileOptions{Meta: meta})
	if err != nil {
		return err
	}
	if err := w.Write(ids, nil, nil); err != nil {
		w.Abort()
		return err
	}
	return w.Close()
}

// TokFile is a token file read into memory and checked whole: every id
// against its modality's range, every modality id, every patch value. As a
// Stream it yields, batch after batch, the next B*L+1 tokens (wrapping
// around at the end of the file) as B rows of L inputs, each target the
// token after its input (the rows are consecutive pieces of the token
// sequence), with each position's modality and, for continuous positions,
// its patch. Targets at or before a continuous position are IgnoreIndex
// (those positions are trained by the diffusion loss).
type TokFile struct {
	path    string
	version int
	vocab   Vocab
	cont    []bool
	patch   PatchFormat
	meta    map[string]string
	ids     []uint32
	mods    []uint8
	rowOf   []int32 // per token: its patch row, or -1
	patches []float32
	hdrHash uint64 // identity of the file, for Restore
	pos     int64  // first token of the next batch
}

// OpenTokFile reads and checks a whole token file (version 1 or 2). Every
// problem is an error naming the file and, where it applies, the offset or
// token index.
func OpenTokFile(path string) (*TokFile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("trainer: token file: %w", err)
	}
	t, err := parseTok(b)
	if err != nil {
		return nil, fmt.Errorf("trainer: token file %s: %w", path, err)
	}
	t.path = path
	return t, nil
}

func parseTok(b []byte) (*TokFile, error) {
	size := int64(len(b))
	if size < 8 || string(b[:8]) != tokMagic {
		return nil, fmt.Errorf("bad magic %.8q at offset 0 (not a token file)", b[:min(8, len(b))])
	}
	if size < 24 {
		return nil, fmt.Errorf("truncated: %d bytes, shorter than the preamble", size)
	}
	version := int(binary.LittleEndian.Uint32(b[8:]))
	pre := int64(0)
	switch version {
	case 1:
		pre = 24
	case 2:
		pre = 32
	default:
		return nil, fmt.Errorf("version %d at offset 8, this build reads versions 1 and 2", version)
	}
	if size < pre {
		return nil, fmt.Errorf("truncated: %d bytes, shorter than the %d-byte preamble", size, pre)
	}
	h := int64(binary.LittleEndian.Uint32(b[12:]))
	n := binary.LittleEndian.Uint64(b[16:])
	var m uint64
	if version == 2 {
		m = binary.LittleEndian.Uint64(b[24:])
	}
	switch {
	case h > tokMaxHeader:
		return nil, fmt.Errorf("header length %d (offset 12) exceeds the %d-byte limit", h, tokMaxHeader)
	case h%4 != 0:
		return nil, fmt.Errorf("header length %d (offset 12) is not a multiple of 4", h)
	case pre+h > size:
		return nil, fmt.Errorf("truncated header: it needs %d bytes at offset %d, the file has %d", h, pre, size-pre)
	case n > uint64(size) || m > uint64(size): // guards the sizes below
		return nil, fmt.Errorf("truncated body: the preamble promises %d tokens and %d patches, the file has %d bytes", n, m, size)
	}
	js := b[pre : pre+h]
	var hdr tokHeader
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&hdr); err != nil {
		return nil, fmt.Errorf("bad JSON header at offset %d: %w", pre, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("bad JSON header at offset %d: trailing data after the object", pre)
	}
	t := &TokFile{version: version, meta: hdr.Meta, hdrHash: hashBytes(js)}
	if version == 1 {
		if hdr.Names != nil || hdr.Continuous != nil || hdr.Patch != nil {
			return nil, errors.New("a version 1 header has only ranges, modalities and meta")
		}
		hdr.Names = hdr.Modalities
	} else if hdr.Modalities != nil {
		return nil, errors.New(`a version 2 header names its modalities in "names"`)
	}
	t.vocab = Vocab{Names: hdr.Names, Ranges: hdr.Ranges}
	if err := t.vocab.Validate(); err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	G := len(hdr.Ranges)
	t.cont = make([]bool, G)
	anyCont := false
	if hdr.Continuous != nil {
		if len(hdr.Continuous) != G {
			return nil, fmt.Errorf("header: %d continuous flags for %d modalities", len(hdr.Continuous), G)
		}
		copy(t.cont, hdr.Continuous)
		for _, c := range t.cont {
			anyCont = anyCont || c
		}
	}
	if t.cont[0] {
		return nil, fmt.Errorf("header: modality 0 (%s) cannot be continuous", t.vocab.Name(0))
	}
	switch {
	case anyCont && hdr.Patch == nil:
		return nil, errors.New(`header: continuous modalities need a "patch" format`)
	case !anyCont && hdr.Patch != nil:
		return nil, errors.New(`header: a "patch" format without a continuous modality`)
	case anyCont:
		if err := hdr.Patch.validate(); err != nil {
			return nil, fmt.Errorf("header: %w", err)
		}
		t.patch = *hdr.Patch
	}
	if !anyCont && m != 0 {
		return nil, fmt.Errorf("the preamble promises %d patches, but no modality is continuous", m)
	}
	idOff := pre + h
	modOff := idOff + 4*int64(n)
	patchOff := modOff
	if version == 2 {
		patchOff = modOff + int64(n) + (4-int64(n)%4)%4
	}
	want := patchOff + int64(m)*int64(t.patch.Dim)*int64(t.patch.elemSize())
	if m > 0 && (want-patchOff)/int64(m) != int64(t.patch.Dim*t.patch.elemSize()) {
		return nil, fmt.Errorf("%d patches of %d values overflow", m, t.patch.Dim)
	}
	if size != want {
		if size < want {
			return nil, fmt.Errorf("truncated body: %d tokens and %d patches need %d bytes, the file has %d", n, m, want, size)
		}
		return nil, fmt.Errorf("%d trailing bytes at offset %d", size-want, want)
	}
	t.ids = make([]uint32, n)
	t.mods = make([]uint8, n)
	t.rowOf = make([]int32, n)
	rows := int64(0)
	for i := range t.ids {
		id := binary.LittleEndian.Uint32(b[idOff+4*int64(i):])
		var mod int
		if version == 1 {
			g, err := t.vocab.ModalityOf(id)
			if err != nil {
				return nil, fmt.Errorf("token %d (offset %d): %w", i, idOff+4*int64(i), err)
			}
			mod = g
		} else {
			mod = int(b[modOff+int64(i)])
			if mod >= G {
				return nil, fmt.Errorf("token %d (offset %d): modality %d, the file has %d", i, modOff+int64(i), mod, G)
			}
			lo, hi := t.vocab.Range(mod)
			if id < lo || id >= hi {
				return nil, fmt.Errorf("token %d (offset %d): id %d is outside %s's range [%d, %d)", i, idOff+4*int64(i), id, t.vocab.Name(mod), lo, hi)
			}
		}
		t.ids[i], t.mods[i], t.rowOf[i] = id, uint8(mod), -1
		if t.cont[mod] {
			if lo, _ := t.vocab.Range(mod); id != lo {
				return nil, fmt.Errorf("token %d (offset %d): a continuous %s position holds id %d, not the placeholder %d", i, idOff+4*int64(i), t.vocab.Name(mod), id, lo)
			}
			if rows >= int64(m) {
				return nil, fmt.Errorf("token %d: more continuous positions than the %d patches the preamble promises", i, m)
			}
			t.rowOf[i] = int32(rows)
			rows++
		}
	}
	if rows != int64(m) {
		return nil, fmt.Errorf("%d continuous positions, but the preamble promises %d patches", rows, m)
	}
	if version == 2 {
		for o := modOff + int64(n); o < patchOff; o++ {
			if b[o] != 0 {
				return nil, fmt.Errorf("padding byte at offset %d is %d, want 0", o, b[o])
			}
		}
	}
	if rows > math.MaxInt32 {
		return nil, fmt.Errorf("%d patches are more than this reader indexes", rows)
	}
	t.patches = make([]float32, int64(m)*int64(t.patch.Dim))
	for i := range t.patches {
		if t.patch.DType == "u8" {
			t.patches[i] = float32(b[patchOff+int64(i)])*t.patch.Scale + t.patch.Offset
			continue
		}
		v := math.Float32frombits(binary.LittleEndian.Uint32(b[patchOff+4*int64(i):]))
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return nil, fmt.Errorf("patch %d value %d (offset %d) is %v", i/t.patch.Dim, i%t.patch.Dim, patchOff+4*int64(i), v)
		}
		t.patches[i] = v
	}
	return t, nil
}

// Version is the file's format version.
func (t *TokFile) Version() int { return t.version }

// Vocab is the file's vocabulary.
func (t *TokFile) Vocab() Vocab { return t.vocab }

// Continuous reports which modalities carry patches.
func (t *TokFile) Continuous() []bool { return t.cont }

// Patch is the patch format (Dim 0 when nothing is continuous).
func (t *TokFile) Patch() PatchFormat { return t.patch }

// Meta is the file's metadata (nil if none).
func (t *TokFile) Meta() map[string]string { return t.meta }

// Len is the number of tokens in the file.
func (t *TokFile) Len() int64 { return int64(len(t.ids)) }

// Tokens returns the ids, modalities and patches (P values per continuous
// position, in order); not copies.
func (t *TokFile) Tokens() (ids []uint32, mods []uint8, patches []float32) {
	return t.ids, t.mods, t.patches
}

// Close releases the file's memory.
func (t *TokFile) Close() error {
	t.ids, t.mods, t.rowOf, t.patches = nil, nil, nil, nil
	return nil
}

// Next fills b with the next B*L+1 tokens (wrapping around at the end of
// the file) and advances by B*L. A file with continuous modalities needs a
// batch with patches of its dim; a discrete one zeroes a batch's patches.
func (t *TokFile) Next(b *Batch) error {
	P := t.patch.Dim
	if err := b.check(P); err != nil {
		return fmt.Errorf("trainer: token file %s: %w", t.path, err)
	}
	n := int64(len(t.ids))
	if n < 2 {
		return fmt.Errorf("trainer: token file %s holds %d tokens; a batch needs at least 2", t.path, n)
	}
	if P == 0 && b.P > 0 {
		clear(b.Patches)
	}
	T := b.B * b.L
	for i := 0; i < T; i++ {
		k := (t.pos + int64(i)) % n
		next := (k + 1) % n
		mod := t.mods[k]
		b.Inputs[i] = t.ids[k]
		b.Modality[i] = uint32(mod)
		b.Targets[i] = t.ids[next]
		if t.cont[mod] || t.cont[t.mods[next]] {
			b.Targets[i] = IgnoreIndex
		}
		if P > 0 {
			dst := b.Patches[i*P : (i+1)*P]
			if r := t.rowOf[k]; r >= 0 {
				copy(dst, t.patches[int(r)*P:(int(r)+1)*P])
			} else {
				clear(dst)
			}
		}
	}
	t.pos = (t.pos + int64(T)) % n
	return nil
}

// tokState is the position State returns.
type tokState struct {
	Kind   string `json:"kind"`
	Tokens int64  `json:"tokens"`
	Header string `json:"header"` // hash of the JSON header
	Pos    int64  `json:"pos"`
}

// State returns the position (the index of the next batch's first token)
// and the file's identity (its length and a hash of its header).
func (t *TokFile) State() (json.RawMessage, error) {
	return json.Marshal(tokState{"tokfile", t.Len(), fmt.Sprintf("%016x", t.hdrHash), t.pos})
}

// Restore moves to a position State gave for the same file (same length
// and header).
func (t *TokFile) Restore(raw json.RawMessage) error {
	var st tokState
	if err := json.Unmarshal(raw, &st); err != nil {
		return fmt.Errorf("trainer: token file %s: restoring position: %w", t.path, err)
	}
	switch {
	case st.Kind != "tokfile":
		return fmt.Errorf("trainer: token file %s: cannot restore a %.32q position", t.path, st.Kind)
	case st.Tokens != t.Len() || st.Header != fmt.Sprintf("%016x", t.hdrHash):
		return fmt.Errorf("trainer: token file %s: the position is of another file (%d tokens, header %.16q; this one has %d tokens, header %016x)", t.path, st.Tokens, st.Header, t.Len(), t.hdrHash)
	case st.Pos < 0 || st.Pos >= max(t.Len(), 1):
		return fmt.Errorf("trainer: token file %s: position %d is outside [0, %d)", t.path, st.Pos, t.Len())
	}
	t.pos = st.Pos
	return nil
}

// ReadTokFile reads a whole token file of discrete tokens: vocabulary, ids
// (all checked) and metadata.
func ReadTokFile(path string) (Vocab, []uint32, map[string]string, error) {
	t, err := OpenTokFile(path)
	if err != nil {
		return Vocab{}, nil, nil, err
	}
	return t.vocab, t.ids, t.meta, nil
}
