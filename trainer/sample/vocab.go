package sample

import (
	"fmt"
	"math"
	"slices"

	"mom/mom"
	"mom/trainer/dataset"
	"mom/trainer/media"
	"mom/trainer/tokenizer/bpe"
	"mom/trainer/tokenizer/vq"
)

// Vocab is what sampling needs to know about a model's unified
// vocabulary: the modality table's rows, their id ranges, the document
// and span markers, and per modality how its spans are decoded. It is
// built from a dataset's manifest and tokenizers (NewVocab) and holds no
// device resources.
type Vocab struct {
	Cfg      mom.Config
	Text     *bpe.Tokenizer
	Doc, End uint32 // <|doc|>, <|end|>
	// HasDoc tells whether the dataset marks documents' starts (<|doc|>):
	// a prompt then starts with it, and an empty prompt starts a document.
	HasDoc bool
	// Begin[m] and Finish[m] are the markers around a span of modality m
	// (unused for modality 0, the text that holds the markers).
	Begin, Finish []uint32
	codecs        []codec // per modality; nil for modality 0
	specials      map[uint32]bool
}

// codec decodes one modality's spans.
type codec interface {
	// span is the number of tokens of one item (an image) or 0 when a
	// span's length is the model's choice (it ends at its end marker).
	span() int
	// kind is "image" or "audio": what decode makes.
	kind() string
	// decode turns a span's ids (relative to the range's start) into an
	// item; continuous spans pass their patches instead.
	decode(ids []uint32, patches []float32) (any, error)
}

// vqCodec decodes discrete image codes.
type vqCodec struct{ t *vq.Tokenizer }

func (c vqCodec) span() int    { return c.t.TokensPerImage() }
func (c vqCodec) kind() string { return "image" }
func (c vqCodec) decode(ids []uint32, _ []float32) (any, error) {
	return c.t.Decode(ids)
}

// unitCodec decodes speech units.
type unitCodec struct {
	dec func([]uint32) (*media.Audio, error)
}

func (c unitCodec) span() int    { return 0 }
func (c unitCodec) kind() string { return "audio" }
func (c unitCodec) decode(ids []uint32, _ []float32) (any, error) {
	return c.dec(ids)
}

// patchCodec lays continuous patches (normalised to [-1, 1]) out as a
// square grey image of side x side patches of p x p pixels.
type patchCodec struct{ side, p int }

func (c patchCodec) span() int    { return c.side * c.side }
func (c patchCodec) kind() string { return "image" }
func (c patchCodec) decode(_ []uint32, patches []float32) (any, error) {
	return vq.Unpatchify(patches, c.side*c.p, c.side*c.p, 1, c.p)
}

// NewVocab checks that a dataset fits the model config (setting and
// vocabulary ranges), finds the markers in its manifest (the end of a
// document and each modality's span markers; the start of a document if
// it has one) and a decoder for
// every modality, asked by the row's tokenizer kind: "bpe" text, "vq"
// image codes, "units" speech units, "patches" continuous image patches
// (their image shape is read from the dataset's held-out split).
func NewVocab(c mom.Config, ds *dataset.Dataset, toks *dataset.Tokenizers) (*Vocab, error) {
	man := ds.Manifest
	if man.Setting != string(c.Setting) || !slices.Equal(man.VocabRanges, c.VocabRanges) {
		return nil, fmt.Errorf("sample: dataset %s (%s, vocabulary %v) does not fit the model (%s, vocabulary %v)",
			ds.Dir, man.Setting, man.VocabRanges, c.Setting, c.VocabRanges)
	}
	if toks == nil || toks.Text == nil {
		return nil, fmt.Errorf("sample: dataset %s has no text tokenizer", ds.Dir)
	}
	v := &Vocab{Cfg: c, Text: toks.Text, specials: map[uint32]bool{}}
	marker := func(name string) (uint32, error) {
		id, ok := man.Specials[name]
		if !ok {
			return 0, fmt.Errorf("sample: dataset %s has no %s marker", ds.Dir, name)
		}
		return uint32(id), nil
	}
	var err error
	if id, ok := man.Specials[dataset.SpecialDoc]; ok {
		v.Doc, v.HasDoc = uint32(id), true
	}
	if v.End, err = marker(dataset.SpecialEnd); err != nil {
		return nil, err
	}
	for _, name := range toks.Text.Specials() {
		if id, ok := toks.Text.Special(name); ok {
			v.specials[id] = true
		}
	}
	G := c.Groups()
	v.Begin, v.Finish, v.codecs = make([]uint32, G), make([]uint32, G), make([]codec, G)
	for m, row := range c.Modalities {
		if m == 0 {
			if row.Tokenizer != "bpe" {
				return nil, fmt.Errorf("sample: modality 0 (%s) has %s tokens; sampling writes text with a byte-level BPE tokenizer", row.Name, row.Tokenizer)
			}
			continue
		}
		if v.Begin[m], err = marker(dataset.BeginMarker(row.Name)); err != nil {
			return nil, err
		}
		if v.Finish[m], err = marker(dataset.EndMarker(row.Name)); err != nil {
			return nil, err
		}
		switch row.Tokenizer {
		case "vq":
			if toks.Image == nil {
				return nil, fmt.Errorf("sample: dataset %s has no image tokenizer for the %s modality", ds.Dir, row.Name)
			}
			v.codecs[m] = vqCodec{toks.Image}
		case "units":
			if toks.Speech == nil {
				return nil, fmt.Errorf("sample: dataset %s has no speech tokenizer for the %s modality", ds.Dir, row.Name)
			}
			v.codecs[m] = unitCodec{toks.Speech.Decode}
		case "patches":
			n, err := continuousSpan(ds, m)
			if err != nil {
				return nil, err
			}
			side, p := isqrt(n), isqrt(c.PatchDim)
			if side*side != n || p*p != c.PatchDim {
				return nil, fmt.Errorf("sample: dataset %s: images of %d patches of %d values are not square grey images", ds.Dir, n, c.PatchDim)
			}
			v.codecs[m] = patchCodec{side, p}
		default:
			return nil, fmt.Errorf("sample: no decoder for the %s modality's %s tokens", row.Name, row.Tokenizer)
		}
	}
	return v, nil
}

func isqrt(n int) int { return int(math.Round(math.Sqrt(float64(n)))) }

// continuousSpan is the length of the first span of modality m in the
// dataset's held-out split: the patches of one image (all images of a
// dataset have one size).
func continuousSpan(ds *dataset.Dataset, m int) (int, error) {
	f, err := ds.OpenSplit("eval")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	_, mods, _ := f.Tokens()
	n := 0
	for _, g := range mods {
		switch {
		case int(g) == m:
			n++
		case n > 0:
			return n, nil
		}
	}
	if n > 0 {
		return n, nil
	}
	return 0, fmt.Errorf("sample: dataset %s has no %s span in its held-out split to take the image size from", ds.Dir, ds.Manifest.Modalities[m])
}

// Modality returns the id of the modality called name, or an error that
// lists the setting's modalities.
func (v *Vocab) Modality(name string) (int, error) {
	if m := v.Cfg.ModalityIndex(name); m >= 0 {
		return m, nil
	}
	return 0, fmt.Errorf("sample: the %s setting has no %q modality (it has %v)", v.Cfg.Setting, name, v.Cfg.ModalityNames())
}

// ItemLen is the number of tokens of one item of modality m (an image's
// codes or patches), 0 for spans of the model's chosen length (speech) and
// for text.
func (v *Vocab) ItemLen(m int) int {
	if v.codecs[m] == nil {
		return 0
	}
	return v.codecs[m].span()
}

// isSpecial reports whether id is a marker (an added token of the text
// tokenizer).
func (v *Vocab) isSpecial(id uint32) bool { return v.specials[id] }
