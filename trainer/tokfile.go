package trainer

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"mom/trainer/atomicfile"
)

// The token file format (version 1), for real, pre-tokenized data:
//
//	offset  size  field
//	0       8     magic "MOMTOKEN"
//	8       4     version, uint32 little-endian (1)
//	12      4     H, header length in bytes, uint32 little-endian
//	16      8     N, number of token ids, uint64 little-endian
//	24      H     header: a JSON object, padded with spaces so that H is a
//	              multiple of 4 (the ids start 4-byte aligned):
//	                {"ranges": [[0, 32000], [32000, 40192]],
//	                 "modalities": ["text", "image"],
//	                 "meta": {"tokenizer": "...", ...}}        (meta optional)
//	24+H    4N    the ids, uint32 little-endian
//
// "ranges" is the unified vocabulary (Vocab.Ranges: per modality, in
// modality order, tiling [0, size)); "modalities" names them and must match
// ModalityNames. The file size is exactly 24 + H + 4N. Documents are simply
// concatenated; a model that wants boundaries reserves an id for them.
const (
	tokMagic     = "MOMTOKEN"
	tokVersion   = 1
	tokPreamble  = 24
	tokMaxHeader = 16 << 20
)

// tokHeader is the JSON header.
type tokHeader struct {
	Ranges     [][2]uint32       `json:"ranges"`
	Modalities []string          `json:"modalities"`
	Meta       map[string]string `json:"meta,omitempty"`
}

// TokWriter writes a token file, streaming; the file appears at its path
// only when Close succeeds (atomically, like WriteAtomic).
type TokWriter struct {
	path  string
	p     *atomicfile.Pending
	bw    *bufio.Writer
	vocab Vocab
	n     uint64
	buf   []byte
	err   error
}

// CreateTokFile starts a token file of vocabulary vocab with optional
// metadata.
func CreateTokFile(path string, vocab Vocab, meta map[string]string) (*TokWriter, error) {
	if err := vocab.Validate(); err != nil {
		return nil, fmt.Errorf("trainer: token file %s: %w", path, err)
	}
	h := tokHeader{Ranges: vocab.Ranges, Modalities: ModalityNames[:len(vocab.Ranges)], Meta: meta}
	js, err := json.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("trainer: token file %s: header: %w", path, err)
	}
	if pad := (4 - len(js)%4) % 4; pad > 0 {
		js = append(js, bytes.Repeat([]byte{' '}, pad)...)
	}
	p, err := atomicfile.Create(path, 0o644)
	if err != nil {
		return nil, err
	}
	w := &TokWriter{path: path, p: p, bw: bufio.NewWriterSize(p.File(), 1<<20), vocab: vocab}
	var pre [tokPreamble]byte
	copy(pre[:], tokMagic)
	binary.LittleEndian.PutUint32(pre[8:], tokVersion)
	binary.LittleEndian.PutUint32(pre[12:], uint32(len(js)))
	// N is written by Close.
	w.bw.Write(pre[:])
	if _, err := w.bw.Write(js); err != nil {
		p.Abort()
		return nil, fmt.Errorf("trainer: token file %s: %w", path, err)
	}
	return w, nil
}

// Write appends ids; every id must lie in the vocabulary (if one does not,
// nothing of this call is written and the writer stays usable).
func (w *TokWriter) Write(ids []uint32) error {
	if w.err != nil {
		return w.err
	}
	size := uint32(w.vocab.Size())
	if cap(w.buf) < 4*len(ids) {
		w.buf = make([]byte, 4*len(ids))
	}
	b := w.buf[:4*len(ids)]
	for i, id := range ids {
		if id >= size {
			return fmt.Errorf("trainer: token file %s: token %d (id %d) is outside the vocabulary [0, %d)", w.path, w.n+uint64(i), id, size)
		}
		binary.LittleEndian.PutUint32(b[4*i:], id)
	}
	if _, err := w.bw.Write(b); err != nil {
		w.err = fmt.Errorf("trainer: token file %s: %w", w.path, err)
		w.p.Abort()
		return w.err
	}
	w.n += uint64(len(ids))
	return nil
}

// Close completes the file: it records the count, syncs and renames the
// file into place. After a failed Write, Close returns that error and
// writes nothing.
func (w *TokWriter) Close() error {
	if w.err != nil {
		return w.err
	}
	w.err = fmt.Errorf("trainer: token file %s: already closed", w.path)
	if err := w.bw.Flush(); err != nil {
		w.p.Abort()
		return fmt.Errorf("trainer: token file %s: %w", w.path, err)
	}
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], w.n)
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

// WriteTokFile writes a whole token file at once.
func WriteTokFile(path string, vocab Vocab, ids []uint32, meta map[string]string) error {
	w, err := CreateTokFile(path, vocab, meta)
	if err != nil {
		return err
	}
	if err := w.Write(ids); err != nil {
		w.Abort()
		return err
	}
	return w.Close()
}

// TokFile reads a token file as a Stream: batch after batch, it takes the
// next B*L+1 ids (wrapping around at the end of the file) as B rows of L
// inputs, each target the id after its input (the rows are consecutive
// pieces of the token sequence), and each position's modality from the
// vocabulary ranges. Ids are checked against the vocabulary as they are
// read. Token files are discrete: a batch with patches (P > 0) is refused.
// A TokFile holds the file open until Close.
type TokFile struct {
	path    string
	f       *os.File
	vocab   Vocab
	meta    map[string]string
	n       int64 // ids
	dataOff int64
	hdrHash uint64 // identity of the file, for Restore
	pos     int64  // first id of the next batch
	buf     []byte
	ids     []uint32
}

// OpenTokFile opens a token file and validates its preamble, header and
// size (not every id: see Validate).
func OpenTokFile(path string) (*TokFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("trainer: token file: %w", err)
	}
	t, err := openTok(f, path)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("trainer: token file %s: %w", path, err)
	}
	return t, nil
}

func openTok(f *os.File, path string) (*TokFile, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	size := fi.Size()
	var pre [tokPreamble]byte
	if k, err := f.ReadAt(pre[:], 0); k < len(pre) {
		if k >= 8 && string(pre[:8]) != tokMagic {
			return nil, fmt.Errorf("bad magic %q (not a token file)", pre[:8])
		}
		return nil, fmt.Errorf("truncated: %d bytes, shorter than the %d-byte preamble (%v)", size, tokPreamble, err)
	}
	if string(pre[:8]) != tokMagic {
		return nil, fmt.Errorf("bad magic %q (not a token file)", pre[:8])
	}
	if v := binary.LittleEndian.Uint32(pre[8:]); v != tokVersion {
		return nil, fmt.Errorf("version %d, this build reads version %d", v, tokVersion)
	}
	h := int64(binary.LittleEndian.Uint32(pre[12:]))
	n := binary.LittleEndian.Uint64(pre[16:])
	if h > tokMaxHeader {
		return nil, fmt.Errorf("header length %d exceeds the %d-byte limit", h, tokMaxHeader)
	}
	if h%4 != 0 {
		return nil, fmt.Errorf("header length %d is not a multiple of 4", h)
	}
	if tokPreamble+h > size {
		return nil, fmt.Errorf("truncated header: the header needs %d bytes, the file has %d after the preamble", h, size-tokPreamble)
	}
	if n > uint64(size) { // guards the multiplication below
		return nil, fmt.Errorf("truncated body: the header promises %d ids, the file has %d bytes", n, size)
	}
	if want := tokPreamble + h + 4*int64(n); size != want {
		if size < want {
			return nil, fmt.Errorf("truncated body: %d ids need %d bytes, the file has %d", n, want, size)
		}
		return nil, fmt.Errorf("%d trailing bytes after the %d ids", size-want, n)
	}
	js := make([]byte, h)
	if _, err := f.ReadAt(js, tokPreamble); err != nil {
		return nil, fmt.Errorf("reading the header: %w", err)
	}
	var hdr tokHeader
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&hdr); err != nil {
		return nil, fmt.Errorf("bad JSON header: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("bad JSON header: trailing data after the object")
	}
	v := Vocab{Ranges: hdr.Ranges}
	if err := v.Validate(); err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	if len(hdr.Modalities) != len(hdr.Ranges) {
		return nil, fmt.Errorf("header names %d modalities for %d ranges", len(hdr.Modalities), len(hdr.Ranges))
	}
	for i, m := range hdr.Modalities {
		if m != ModalityNames[i] {
			return nil, fmt.Errorf("header names range %d %q, want %q", i, truncate(m, 32), ModalityNames[i])
		}
	}
	return &TokFile{
		path: path, f: f, vocab: v, meta: hdr.Meta, n: int64(n),
		dataOff: tokPreamble + h, hdrHash: hashBytes(js),
	}, nil
}

// Vocab is the file's vocabulary.
func (t *TokFile) Vocab() Vocab { return t.vocab }

// Meta is the file's metadata (nil if none).
func (t *TokFile) Meta() map[string]string { return t.meta }

// Len is the number of ids in the file.
func (t *TokFile) Len() int64 { return t.n }

// Close closes the file.
func (t *TokFile) Close() error { return t.f.Close() }

// readIDs reads count ids starting at id index start (no wrapping) into
// dst, checking each against the vocabulary.
func (t *TokFile) readIDs(dst []uint32, start int64) error {
	const chunk = 1 << 16
	size := uint32(t.vocab.Size())
	for len(dst) > 0 {
		k := min(len(dst), chunk)
		if cap(t.buf) < 4*k {
			t.buf = make([]byte, 4*k)
		}
		b := t.buf[:4*k]
		if _, err := t.f.ReadAt(b, t.dataOff+4*start); err != nil {
			if errors.Is(err, io.EOF) {
				return fmt.Errorf("trainer: token file %s: truncated while reading ids %d..%d (changed since it was opened?)", t.path, start, start+int64(k))
			}
			return fmt.Errorf("trainer: token file %s: %w", t.path, err)
		}
		for i := range k {
			id := binary.LittleEndian.Uint32(b[4*i:])
			if id >= size {
				return fmt.Errorf("trainer: token file %s: token %d (id %d) is outside the vocabulary [0, %d)", t.path, start+int64(i), id, size)
			}
			dst[i] = id
		}
		dst, start = dst[k:], start+int64(k)
	}
	return nil
}

// Validate reads every id and checks it against the vocabulary.
func (t *TokFile) Validate() error {
	var buf [1 << 14]uint32
	for s := int64(0); s < t.n; s += int64(len(buf)) {
		k := min(int64(len(buf)), t.n-s)
		if err := t.readIDs(buf[:k], s); err != nil {
			return err
		}
	}
	return nil
}

// Next fills b with the next B*L+1 ids (wrapping around at the end of the
// file) and advances by B*L.
func (t *TokFile) Next(b *Batch) error {
	if err := b.check(0); err != nil {
		return fmt.Errorf("trainer: token file %s: %w", t.path, err)
	}
	if b.P > 0 || b.Patches != nil {
		return fmt.Errorf("trainer: token file %s: token files carry no continuous patches (the batch has P=%d)", t.path, b.P)
	}
	if t.n < 2 {
		return fmt.Errorf("trainer: token file %s holds %d ids; a batch needs at least 2", t.path, t.n)
	}
	need := b.B*b.L + 1
	if cap(t.ids) < need {
		t.ids = make([]uint32, need)
	}
	ids := t.ids[:need]
	for got, pos := 0, t.pos; got < need; {
		k := int(min(int64(need-got), t.n-pos))
		if err := t.readIDs(ids[got:got+k], pos); err != nil {
			return err
		}
		got += k
		pos = (pos + int64(k)) % t.n
	}
	for i := 0; i < need-1; i++ {
		m, err := t.vocab.ModalityOf(ids[i])
		if err != nil { // readIDs checked already
			return fmt.Errorf("trainer: token file %s: %w", t.path, err)
		}
		b.Inputs[i] = ids[i]
		b.Targets[i] = ids[i+1]
		b.Modality[i] = uint32(m)
	}
	t.pos = (t.pos + int64(need-1)) % t.n
	return nil
}

// tokState is the position State returns.
type tokState struct {
	Kind   string `json:"kind"`
	Tokens int64  `json:"tokens"`
	Header string `json:"header"` // hash of the JSON header
	Pos    int64  `json:"pos"`
}

// State returns the position (the index of the next batch's first id) and
// the file's identity (its length and a hash of its header).
func (t *TokFile) State() (json.RawMessage, error) {
	return json.Marshal(tokState{"tokfile", t.n, fmt.Sprintf("%016x", t.hdrHash), t.pos})
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
		return fmt.Errorf("trainer: token file %s: cannot restore a %q position", t.path, st.Kind)
	case st.Tokens != t.n || st.Header != fmt.Sprintf("%016x", t.hdrHash):
		return fmt.Errorf("trainer: token file %s: the position is of another file (%d ids, header %s; this one has %d ids, header %016x)", t.path, st.Tokens, truncate(st.Header, 16), t.n, t.hdrHash)
	case st.Pos < 0 || st.Pos >= max(t.n, 1):
		return fmt.Errorf("trainer: token file %s: position %d is outside [0, %d)", t.path, st.Pos, t.n)
	}
	t.pos = st.Pos
	return nil
}

// ReadTokFile reads a whole token file: vocabulary, ids (all checked) and
// metadata.
func ReadTokFile(path string) (Vocab, []uint32, map[string]string, error) {
	t, err := OpenTokFile(path)
	if err != nil {
		return Vocab{}, nil, nil, err
	}
	defer t.Close()
	if t.n > int64(^uint(0)>>3) {
		return Vocab{}, nil, nil, fmt.Errorf("trainer: token file %s: %d ids do not fit in memory", path, t.n)
	}
	ids := make([]uint32, t.n)
	if err := t.readIDs(ids, 0); err != nil {
		return Vocab{}, nil, nil, err
	}
	return t.vocab, ids, t.meta, nil
}
