package dataset

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"mom/trainer/media"
	"mom/trainer/tokenizer/bpe"
	"mom/trainer/tokenizer/speech"
	"mom/trainer/tokenizer/vq"
)

// Tokenizers are a dataset's tokenizers, loaded.
type Tokenizers struct {
	Text   *bpe.Tokenizer
	Image  *vq.Tokenizer     // nil without discrete images
	Speech *speech.Tokenizer // nil without speech
}

// LoadTokenizers loads the tokenizers the manifest names.
func (d *Dataset) LoadTokenizers() (*Tokenizers, error) {
	t := &Tokenizers{}
	var err error
	if p := d.TokenizerPath("text"); p != "" {
		if t.Text, err = bpe.Load(p); err != nil {
			return nil, fmt.Errorf("dataset %s: %w", d.Dir, err)
		}
	} else {
		return nil, fmt.Errorf("dataset %s has no text tokenizer", d.Dir)
	}
	if p := d.TokenizerPath("image"); p != "" {
		if t.Image, err = vq.Load(p); err != nil {
			return nil, fmt.Errorf("dataset %s: %w", d.Dir, err)
		}
	}
	if p := d.TokenizerPath("speech"); p != "" {
		if t.Speech, err = speech.Load(p); err != nil {
			return nil, fmt.Errorf("dataset %s: %w", d.Dir, err)
		}
	}
	for mod, info := range d.Manifest.TokenizerInfo {
		var size int
		switch mod {
		case "text":
			size = t.Text.Size()
		case "image":
			size = t.Image.Size()
		case "speech":
			size = t.Speech.Size()
		default:
			continue
		}
		if i := slicesIndex(d.Manifest.Modalities, mod); i >= 0 {
			r := d.Manifest.VocabRanges[i]
			if size != info.Size || size != r[1]-r[0] {
				return nil, fmt.Errorf("dataset %s: the %s tokenizer makes %d ids, the manifest records %d and the vocabulary range %d", d.Dir, mod, size, info.Size, r[1]-r[0])
			}
		}
	}
	return t, nil
}

func slicesIndex(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

// Span is one modality span of a document (its markers left out).
type Span struct {
	Modality string
	IDs      []uint32  // ids relative to the modality's range start (text: the text ids)
	Patches  []float32 // continuous spans: the patches
}

// Document is one document of a split, cut into spans at its markers.
type Document struct {
	Spans []Span
}

// Documents cuts a split's tokens into documents (at most n; n <= 0: all).
func (d *Dataset) Documents(split string, n int) ([]Document, error) {
	f, err := d.OpenSplit(split)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ids, mods, patches := f.Tokens()
	m := d.Manifest
	docID, endID := uint32(m.Specials[SpecialDoc]), uint32(m.Specials[SpecialEnd])
	marker := map[uint32]bool{}
	for _, id := range m.Specials {
		marker[uint32(id)] = true
	}
	P := f.Patch().Dim
	row := 0
	var out []Document
	var cur *Document
	for i, id := range ids {
		mod := int(mods[i])
		switch {
		case mod == 0 && id == docID:
			out = append(out, Document{})
			cur = &out[len(out)-1]
			continue
		case mod == 0 && id == endID:
			if n > 0 && len(out) >= n {
				return out, nil
			}
			cur = nil
			continue
		}
		var pt []float32
		if f.Continuous()[mod] {
			pt = patches[row*P : (row+1)*P]
			row++
		}
		if cur == nil || (mod == 0 && marker[id]) {
			continue // span markers, and tokens outside a document (none in a built dataset)
		}
		name := m.Modalities[mod]
		if k := len(cur.Spans); k == 0 || cur.Spans[k-1].Modality != name {
			cur.Spans = append(cur.Spans, Span{Modality: name})
		}
		s := &cur.Spans[len(cur.Spans)-1]
		s.IDs = append(s.IDs, id-uint32(m.VocabRanges[mod][0]))
		s.Patches = append(s.Patches, pt...)
	}
	return out, nil
}

// Show prints a dataset's statistics and writes decoded examples of its
// held-out split into out: the text of n documents, a PNG grid of their
// images with captions, and their speech as WAV files.
func Show(dir string, w io.Writer, out string, n int) error {
	d, err := Open(dir)
	if err != nil {
		return err
	}
	m := d.Manifest
	fmt.Fprintf(w, "dataset %s: %s setting, built in %.0f s on %s (seed %d", dir, m.Setting, m.BuildSeconds, m.Created, m.Seed)
	if m.Limit > 0 {
		fmt.Fprintf(w, ", limit %d", m.Limit)
	}
	fmt.Fprintln(w, ")")
	fmt.Fprintln(w, "vocabulary:")
	for i, name := range m.Modalities {
		r := m.VocabRanges[i]
		info := m.TokenizerInfo[name]
		tok := "noise levels of continuous patches"
		if f := m.Tokenizers[name]; f != "" {
			tok = fmt.Sprintf("%s tokenizer %s", info.Kind, f)
		}
		fmt.Fprintf(w, "  %-7s [%d, %d)  %d ids, %s\n", name, r[0], r[1], r[1]-r[0], tok)
	}
	if m.PatchDim > 0 {
		fmt.Fprintf(w, "  continuous patches of %d values\n", m.PatchDim)
	}
	fmt.Fprintln(w, "sources:")
	for _, s := range m.Sources {
		fmt.Fprintf(w, "  %-14s %7d of %7d items (%d train, %d held out)  %s\n", s.Name, s.Items, s.Available, s.Train, s.Eval, s.Path)
	}
	fmt.Fprintln(w, "documents:")
	for _, k := range sortedKeys(m.Documents) {
		fmt.Fprintf(w, "  %-15s %7d\n", k, m.Documents[k])
	}
	fmt.Fprintln(w, "splits:")
	for _, s := range SplitNames {
		sp := m.Splits[s]
		fmt.Fprintf(w, "  %-5s %-13s %9d tokens, %6d documents, %s  (%s)\n", s, sp.File, sp.Tokens, sp.Documents, humanBytes(sp.Bytes), perModality(sp.PerModal, m.Modalities))
	}
	if len(m.Figures) > 0 {
		fmt.Fprintln(w, "figures:")
		for _, k := range sortedKeys(m.Figures) {
			fmt.Fprintf(w, "  %-28s %g\n", k, m.Figures[k])
		}
	}
	if out == "" || n <= 0 {
		return nil
	}
	toks, err := d.LoadTokenizers()
	if err != nil {
		return err
	}
	docs, err := d.Documents("eval", 0)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return fmt.Errorf("dataset: %w", err)
	}
	// Up to n documents of each kind of span: text, images, speech.
	var images []*media.Image
	var captions []string
	var texts []string
	speechN := 0
	for _, doc := range docs {
		text := ""
		for _, s := range doc.Spans {
			if s.Modality == "text" {
				t, err := toks.Text.Decode(s.IDs)
				if err != nil {
					return fmt.Errorf("dataset: decoding text: %w", err)
				}
				text += t
			}
		}
		text = strings.TrimSpace(text)
		for _, s := range doc.Spans {
			switch {
			case s.Modality == "image" && len(images) < n:
				im, err := decodeImage(toks, m, s)
				if err != nil {
					return err
				}
				images = append(images, im)
				captions = append(captions, text)
			case s.Modality == "speech" && speechN < n && toks.Speech != nil:
				a, err := toks.Speech.Decode(s.IDs)
				if err != nil {
					return fmt.Errorf("dataset: decoding speech: %w", err)
				}
				p := filepath.Join(out, fmt.Sprintf("speech_%02d.wav", speechN))
				if err := media.WriteWAV(p, a); err != nil {
					return err
				}
				fmt.Fprintf(w, "speech %s (%.1f s, %d units): %q\n", p, a.Seconds(), len(s.IDs), text)
				speechN++
			}
		}
		if len(doc.Spans) == 1 && doc.Spans[0].Modality == "text" && len(texts) < n {
			texts = append(texts, text)
		}
	}
	for i, t := range texts {
		fmt.Fprintf(w, "text %d: %s\n", i, clipText(t, 240))
	}
	if len(images) > 0 {
		g, err := media.Grid(images, captions, 4, 4)
		if err != nil {
			return err
		}
		p := filepath.Join(out, "images.png")
		if err := media.WritePNG(p, g); err != nil {
			return err
		}
		fmt.Fprintf(w, "images: %s (%d decoded held-out images with their captions)\n", p, len(images))
	}
	if err := os.WriteFile(filepath.Join(out, "texts.txt"), []byte(strings.Join(texts, "\n\n")+"\n"), 0o644); err != nil {
		return fmt.Errorf("dataset: %w", err)
	}
	return nil
}

func decodeImage(toks *Tokenizers, m *Manifest, s Span) (*media.Image, error) {
	if m.PatchDim > 0 {
		side := 1
		for side*side*m.PatchDim < len(s.Patches) {
			side++
		}
		p := 1
		for p*p < m.PatchDim {
			p++
		}
		im, err := vq.Unpatchify(s.Patches, side*p, side*p, 1, p)
		if err != nil {
			return nil, fmt.Errorf("dataset: decoding image patches: %w", err)
		}
		return im, nil
	}
	im, err := toks.Image.Decode(s.IDs)
	if err != nil {
		return nil, fmt.Errorf("dataset: decoding image: %w", err)
	}
	return im, nil
}

func clipText(s string, n int) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "..."
	}
	return s
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
