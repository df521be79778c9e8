package interop

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"

	"mom/mom"
)

// Target describes the model Upcycle makes.
type Target struct {
	// Setting: "" keeps the source's; a text-only source needs one.
	Setting mom.Setting
	// Splits: nil keeps the source's.
	Splits *mom.Splits
	// Sizes of the vocabulary ranges of modalities the source lacks
	// (without a Dataset), and Transfusion's patch size.
	ImageVocab, SpeechVocab, PatchDim int
	// Dataset, when set, gives the setting (if Setting is "") and the new
	// modalities' vocabulary ranges; its ranges of the source's modalities
	// must be the source's.
	Dataset *Dataset
	// Seed draws the new embedding rows (and new Transfusion patch
	// projections).
	Seed uint64
}

// Upcycle makes a mom model from src: it places src in the target setting
// (adding the modalities src lacks, with fresh embedding rows) and splits
// the projections the target splits, every modality's expert starting as a
// copy of src's weights (src's own experts where it already has them;
// modalities new to a split projection copy the text expert). src is not
// changed.
func Upcycle(src *Model, t Target) (*Model, error) {
	sc := src.Config
	var notes []string
	setting := t.Setting
	if setting == "" && t.Dataset != nil {
		setting = t.Dataset.Setting
	}
	if setting == "" {
		setting = sc.Setting
	}
	if setting == "" {
		return nil, fmt.Errorf("interop: %s is a text-only model: choose a setting (chameleon, transfusion or three)", src.Source)
	}
	spec, err := mom.LookupSetting(setting)
	if err != nil {
		return nil, fmt.Errorf("interop: %w", err)
	}
	rows := spec.Modalities
	n := len(rows)
	if len(sc.Modalities) > n {
		return nil, fmt.Errorf("interop: %s has modalities %v; the %s setting has only %v", src.Source, sc.ModalityNames(), setting, (mom.Config{Modalities: rows}).ModalityNames())
	}
	for m, r := range sc.Modalities {
		if r.Name != rows[m].Name || r.Continuous != rows[m].Continuous {
			return nil, fmt.Errorf("interop: %s's modality %d is %s (continuous %v); the %s setting's is %s (continuous %v): its ids would mean other things",
				src.Source, m, r.Name, r.Continuous, setting, rows[m].Name, rows[m].Continuous)
		}
	}
	splits := sc.Splits
	if t.Splits != nil {
		splits = *t.Splits
	}
	if (sc.Splits.In && !splits.In) || (sc.Splits.X && !splits.X) || (sc.Splits.Dt && !splits.Dt) || (sc.Splits.Out && !splits.Out) {
		return nil, fmt.Errorf("interop: %s splits %s per modality; the target splits %s, and experts cannot be merged back", src.Source, sc.Splits, splits)
	}
	c := sc
	c.Setting, c.Splits = setting, splits
	c.Modalities = rows
	c.VocabRanges = append([][2]int(nil), sc.VocabRanges...)
	next := sc.Vocab
	for m := len(sc.Modalities); m < n; m++ {
		size := 0
		switch {
		case rows[m].Continuous:
			size = mom.TimestepBuckets
		case t.Dataset != nil && m < len(t.Dataset.VocabRanges):
			size = t.Dataset.VocabRanges[m][1] - t.Dataset.VocabRanges[m][0]
		case rows[m].Tokenizer == mom.ImageTokens.Tokenizer:
			size = t.ImageVocab
		case rows[m].Tokenizer == mom.SpeechUnits.Tokenizer:
			size = t.SpeechVocab
		}
		if size <= 0 {
			return nil, fmt.Errorf("interop: the new %s modality needs a vocabulary size (give a dataset)", rows[m].Name)
		}
		c.VocabRanges = append(c.VocabRanges, [2]int{next, next + size})
		next += size
	}
	c.Vocab = next
	if c.Continuous() && !sc.Continuous() {
		c.PatchDim, c.DiffusionWeight = t.PatchDim, 1
		if t.Dataset != nil && t.Dataset.PatchDim > 0 {
			c.PatchDim = t.Dataset.PatchDim
		}
	}
	if !c.Continuous() {
		c.PatchDim, c.DiffusionWeight = 0, 0
	}
	if d := t.Dataset; d != nil {
		if d.Setting != setting {
			return nil, fmt.Errorf("interop: dataset %s is of the %s setting, the model is of %s", d.Dir, d.Setting, setting)
		}
		if strings.Join(d.Modalities, ",") != strings.Join(c.ModalityNames(), ",") {
			return nil, fmt.Errorf("interop: dataset %s has modalities %v, the model %v", d.Dir, d.Modalities, c.ModalityNames())
		}
		for m := range c.VocabRanges {
			if d.VocabRanges[m] != c.VocabRanges[m] {
				what := "the checkpoint's"
				if m >= len(sc.Modalities) {
					what = "laid out after the checkpoint's"
				}
				return nil, fmt.Errorf("interop: dataset %s gives %s the ids [%d, %d), the model's range (%s) is [%d, %d): the dataset's token ids would mean other things to this model; build the dataset with the checkpoint's text vocabulary of %d ids",
					d.Dir, c.Modalities[m].Name, d.VocabRanges[m][0], d.VocabRanges[m][1], what, c.VocabRanges[m][0], c.VocabRanges[m][1], sc.VocabRanges[0][1])
			}
		}
	}
	if c.Vocab > MaxVocab {
		return nil, fmt.Errorf("interop: the vocabulary would have %d ids (text %d + the new modalities'), above the cross-entropy's limit of %d", c.Vocab, sc.Vocab, MaxVocab)
	}
	if c.Name == "" || c.Name == "imported" {
		c.Name = "imported"
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("interop: %w", err)
	}

	rng := rand.New(rand.NewPCG(t.Seed, 0x75706379))
	out := &Model{Config: c, Params: map[string][]float32{}, Tokenizer: src.Tokenizer, Source: src.Source}
	srcSpecs := specsByName(sc)
	var copied []string
	for _, s := range c.ParamSpecs() {
		old, hasOld := srcSpecs[s.Name]
		v := src.Params[s.Name]
		switch {
		case s.Name == mom.NameEmbed || s.Name == mom.NameHead:
			w := make([]float32, s.Len())
			copy(w, v)
			if rows := c.Vocab - sc.Vocab; rows > 0 {
				fresh := mom.InitParam(mom.ParamSpec{Name: s.Name, Shape: []int{rows, c.DModel}, Init: s.Init, Scale: s.Scale, Groups: 1}, rng)
				copy(w[len(v):], fresh)
			}
			out.Params[s.Name] = w
		case !hasOld:
			out.Params[s.Name] = mom.InitParam(s, rng)
			notes = append(notes, fmt.Sprintf("%s is new: drawn fresh", s.Name))
		case s.Groups > 1 && old.Groups != s.Groups:
			per := s.Len() / s.Groups
			w := make([]float32, 0, s.Len())
			for g := 0; g < s.Groups; g++ {
				from := 0 // the dense weights, or the text expert for a new modality
				if old.Groups > 1 && g < old.Groups {
					from = g
				}
				w = append(w, v[from*per:(from+1)*per]...)
			}
			out.Params[s.Name] = w
			if s.Layer == 0 {
				copied = append(copied, strings.TrimPrefix(s.Name, "layers.0.mixer."))
			}
		default:
			out.Params[s.Name] = append([]float32(nil), v...)
		}
	}
	if len(copied) > 0 {
		notes = append(notes, fmt.Sprintf("split per modality (%s): each of the %d experts of %s starts as a copy of the %s",
			c.Splits, c.Groups(), strings.Join(copied, ", "), map[bool]string{true: "dense weights", false: "existing experts (new modalities copy the text expert)"}[sc.Splits.Dense()]))
	}
	for m := len(sc.Modalities); m < n; m++ {
		r := c.VocabRanges[m]
		notes = append(notes, fmt.Sprintf("%s ids [%d, %d): embedding rows drawn fresh (normal, std 0.02)", c.Modalities[m].Name, r[0], r[1]))
	}
	if d := t.Dataset; d != nil {
		tok, path, err := d.TextTokenizer()
		if err != nil {
			return nil, err
		}
		switch {
		case tok == nil:
		case src.Tokenizer == nil:
			out.Tokenizer = tok
			notes = append(notes, fmt.Sprintf("the checkpoint has no tokenizer.json: the dataset's text tokenizer %s is used; it must be the one the checkpoint was trained with", path))
		case sameJSON(tok, src.Tokenizer):
			out.Tokenizer = tok
			notes = append(notes, fmt.Sprintf("the dataset's text tokenizer %s equals the checkpoint's tokenizer.json: it is used", path))
		default:
			return nil, fmt.Errorf("interop: the dataset's text tokenizer %s differs from the checkpoint's tokenizer.json: the text ids would mean other things; build the dataset with the checkpoint's tokenizer", path)
		}
	}
	out.Notes = append(append([]string(nil), src.Notes...), notes...)
	if err := out.Check(); err != nil {
		return nil, err
	}
	return out, nil
}

// sameJSON reports whether two JSON documents hold the same value (or,
// when either is not JSON, the same bytes).
func sameJSON(a, b []byte) bool {
	if bytes.Equal(a, b) {
		return true
	}
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	xa, err1 := json.Marshal(x)
	yb, err2 := json.Marshal(y)
	return err1 == nil && err2 == nil && bytes.Equal(xa, yb)
}
