package dataset

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"

	"mom/mom"
	"mom/trainer/data"
	"mom/trainer/dataset/source"
	"mom/trainer/tokenizer/vq"
)

// Marker tokens (specials of the text tokenizer, ids in the text range):
// a document is <|doc|> ... <|end|>, and a span of modality M inside it
// <|M|> ... <|/M|>.
const (
	SpecialDoc = "<|doc|>"
	SpecialEnd = "<|end|>"
)

// BeginMarker and EndMarker are the special tokens around a span of
// modality mod.
func BeginMarker(mod string) string { return "<|" + mod + "|>" }
func EndMarker(mod string) string   { return "<|/" + mod + "|>" }

// The tokenizer files of a dataset folder.
const (
	textTokenizerFile   = "tokenizer.json"
	imageTokenizerFile  = "image_vq.safetensors"
	speechTokenizerFile = "speech_units.safetensors"
	trainFile           = "train.momtok"
	evalFile            = "eval.momtok"
)

// Document kinds, as counted in the manifest.
const (
	DocText          = "text"
	DocCaptionImage  = "caption-image"
	DocImageCaption  = "image-caption"
	DocCaptionSpeech = "caption-speech"
	DocSpeechCaption = "speech-caption"
)

// doc is one document's tokens.
type doc struct {
	kind    string
	eval    bool
	ids     []uint32
	mods    []uint8
	patches []float32
}

// itemRNG is a generator for one item, independent of the others.
func (b *builder) itemRNG(id, salt string) *rand.Rand {
	return rand.New(rand.NewPCG(b.o.Seed, hashString(salt+"\x00"+id)))
}

func (b *builder) writeDocuments(ctx context.Context) error {
	b.countSources()
	// The unified vocabulary: text (with the markers), then each other
	// modality's codes.
	sizes := make([]int, len(b.spec.Modalities))
	for i, m := range b.spec.Modalities {
		switch {
		case m.Name == "text":
			sizes[i] = b.textTok.Size()
		case m.Continuous:
			sizes[i] = mom.TimestepBuckets
		case m.Name == "image":
			sizes[i] = b.imageTok.Size()
		case m.Name == "speech":
			sizes[i] = b.speechTok.Size()
		default:
			return fmt.Errorf("dataset: no tokenizer for the %s modality", m.Name)
		}
	}
	b.vocab = data.Vocab{}
	next := 0
	for i, m := range b.spec.Modalities {
		b.vocab.Names = append(b.vocab.Names, m.Name)
		b.vocab.Ranges = append(b.vocab.Ranges, [2]uint32{uint32(next), uint32(next + sizes[i])})
		b.man.VocabRanges = append(b.man.VocabRanges, [2]int{next, next + sizes[i]})
		next += sizes[i]
	}
	b.man.Modalities = b.vocab.Names
	if next > 65536 {
		return fmt.Errorf("dataset: the vocabulary has %d ids, more than the cross-entropy's 65,536 (lower --text-vocab, --image-codes or --speech-units)", next)
	}

	var docs []doc
	for _, t := range b.texts {
		d := b.newDoc(DocText, t.ID)
		b.text(&d, t.Text)
		docs = append(docs, b.endDoc(d))
	}
	for _, im := range b.images {
		kind := DocCaptionImage
		if b.itemRNG(im.ID, "order").IntN(2) == 1 {
			kind = DocImageCaption
		}
		d := b.newDoc(kind, im.ID)
		if kind == DocCaptionImage {
			b.text(&d, im.Caption)
		}
		if err := b.image(&d, im); err != nil {
			return err
		}
		if kind == DocImageCaption {
			b.text(&d, im.Caption)
		}
		docs = append(docs, b.endDoc(d))
	}
	for i, u := range b.utts {
		kind := DocCaptionSpeech
		if b.itemRNG(u.ID, "order-speech").IntN(2) == 1 {
			kind = DocSpeechCaption
		}
		d := b.newDoc(kind, u.ID)
		if kind == DocCaptionSpeech {
			b.text(&d, u.Transcript)
		}
		if err := b.speech(&d, u); err != nil {
			return fmt.Errorf("dataset: utterance %d (%s): %w", i, u.ID, err)
		}
		if kind == DocSpeechCaption {
			b.text(&d, u.Transcript)
		}
		docs = append(docs, b.endDoc(d))
		if i%256 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
	}
	for _, d := range docs {
		b.man.Documents[d.kind]++
	}
	// Each split's documents in a seeded random order.
	rng := rand.New(rand.NewPCG(b.o.Seed, hashString("shuffle")))
	rng.Shuffle(len(docs), func(i, j int) { docs[i], docs[j] = docs[j], docs[i] })
	opts := data.TokFileOptions{Meta: map[string]string{"setting": string(b.o.Setting), "tokenizer": textTokenizerFile}}
	for _, m := range b.spec.Modalities {
		opts.Continuous = append(opts.Continuous, m.Continuous)
	}
	if b.man.PatchDim > 0 {
		// Patches are 8-bit pixels normalised to [-1, 1]: stored exactly as
		// bytes (value = byte * 2/255 - 1).
		opts.Patch = data.PatchFormat{Dim: b.man.PatchDim, DType: "u8", Scale: 2.0 / 255, Offset: -1}
	} else {
		opts.Continuous = nil
	}
	for _, split := range SplitNames {
		file := map[string]string{"train": trainFile, "eval": evalFile}[split]
		path := filepath.Join(b.tmp, file)
		w, err := data.CreateTokFile(path, b.vocab, opts)
		if err != nil {
			return fmt.Errorf("dataset: %w", err)
		}
		sp := Split{File: file, PerModal: map[string]int64{}}
		for _, d := range docs {
			if d.eval != (split == "eval") {
				continue
			}
			if err := w.Write(d.ids, d.mods, d.patches); err != nil {
				w.Abort()
				return fmt.Errorf("dataset: %w", err)
			}
			sp.Documents++
			for _, m := range d.mods {
				sp.PerModal[b.vocab.Names[m]]++
			}
		}
		sp.Tokens = int64(w.Tokens())
		if sp.Tokens < 2 {
			w.Abort()
			return fmt.Errorf("dataset: the %s split would hold %d tokens: too little data (raise --limit)", split, sp.Tokens)
		}
		if err := w.Close(); err != nil {
			return fmt.Errorf("dataset: %w", err)
		}
		if sp.SHA256, sp.Bytes, err = fileSHA256(path); err != nil {
			return fmt.Errorf("dataset: %w", err)
		}
		b.man.Splits[split] = sp
		b.logf("      %s: %d documents, %d tokens (%s)", split, sp.Documents, sp.Tokens, perModality(sp.PerModal, b.vocab.Names))
	}
	return nil
}

func perModality(n map[string]int64, names []string) string {
	var parts []string
	for _, m := range names {
		parts = append(parts, fmt.Sprintf("%s %d", m, n[m]))
	}
	return strings.Join(parts, ", ")
}

func (b *builder) newDoc(kind, id string) doc {
	d := doc{kind: kind, eval: b.isEval(id)}
	b.marker(&d, SpecialDoc)
	return d
}

func (b *builder) endDoc(d doc) doc {
	b.marker(&d, SpecialEnd)
	return d
}

func (b *builder) marker(d *doc, name string) {
	d.ids = append(d.ids, uint32(b.man.Specials[name]))
	d.mods = append(d.mods, 0)
}

func (b *builder) text(d *doc, s string) {
	for _, id := range b.textTok.Encode(s) {
		d.ids = append(d.ids, id)
		d.mods = append(d.mods, 0)
	}
}

func (b *builder) image(d *doc, im source.Image) error {
	m := b.mod["image"]
	base := b.vocab.Ranges[m][0]
	b.marker(d, BeginMarker("image"))
	if b.spec.Modalities[m].Continuous {
		p, err := vq.Patchify(im.Image, b.o.ImagePatch)
		if err != nil {
			return fmt.Errorf("dataset: image %s: %w", im.ID, err)
		}
		for k := 0; k < len(p)/b.man.PatchDim; k++ {
			d.ids = append(d.ids, base)
			d.mods = append(d.mods, uint8(m))
		}
		d.patches = append(d.patches, p...)
	} else {
		codes, err := b.imageTok.Encode(im.Image)
		if err != nil {
			return fmt.Errorf("dataset: image %s: %w", im.ID, err)
		}
		for _, c := range codes {
			d.ids = append(d.ids, base+c)
			d.mods = append(d.mods, uint8(m))
		}
	}
	b.marker(d, EndMarker("image"))
	return nil
}

func (b *builder) speech(d *doc, u source.Utterance) error {
	m := b.mod["speech"]
	base := b.vocab.Ranges[m][0]
	units, err := b.speechTok.Encode(u.Audio)
	if err != nil {
		return err
	}
	b.marker(d, BeginMarker("speech"))
	for _, c := range units {
		d.ids = append(d.ids, base+c)
		d.mods = append(d.mods, uint8(m))
	}
	b.marker(d, EndMarker("speech"))
	return nil
}

// caption writes a caption for a labelled image from the WordNet glosses of
// its class noun and attributes measured on the image, in one of several
// forms, chosen per image from the seed.
func caption(im source.Image, gloss map[string][]string, seed uint64) string {
	rng := rand.New(rand.NewPCG(seed, hashString("caption\x00"+im.ID)))
	label := im.Label
	if label == "" {
		label = "picture"
	}
	// Single words are adjectives (before the noun); phrases follow it.
	var adj, phrases []string
	for _, w := range vq.Attributes(im.Image).Words(rng) {
		if strings.Contains(w, " ") {
			phrases = append(phrases, w)
		} else {
			adj = append(adj, w)
		}
	}
	a := func(i int) string {
		if len(adj) == 0 {
			return "plain"
		}
		return adj[i%len(adj)]
	}
	g := ""
	for _, key := range []string{label, lastWord(label)} {
		if gs := gloss[key]; len(gs) > 0 {
			g = gs[0] // the most frequent sense: the garment, not the informer
			break
		}
	}
	forms := []string{
		"a %[1]s %[3]s",
		"a %[1]s, %[2]s %[3]s",
		"this %[3]s is %[1]s and %[2]s",
		"a picture of a %[3]s, %[1]s",
		"%[3]s, %[2]s",
	}
	if g != "" {
		forms = append(forms,
			"a %[1]s %[3]s: %[4]s",
			"%[3]s: %[4]s; this one is %[2]s",
			"%[4]s (a %[1]s %[3]s)",
			"an image of a %[3]s, which is %[4]s",
		)
	}
	s := fmt.Sprintf(forms[rng.IntN(len(forms))], a(0), a(1), label, g)
	if len(phrases) > 0 && rng.IntN(2) == 0 {
		s += ", " + phrases[rng.IntN(len(phrases))]
	}
	return strings.TrimSpace(s)
}

func lastWord(s string) string {
	f := strings.Fields(s)
	if len(f) == 0 {
		return s
	}
	return f[len(f)-1]
}

// sortedKeys lists a map's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
