package interop

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"mom/mom"
	"mom/trainer/safetensors"
)

// MaxVocab is the largest vocabulary mom's fused cross-entropy kernel
// takes (nn's CrossEntropy limit).
const MaxVocab = 65536

// Model is a model's config and parameters under mom's names.
type Model struct {
	// Config describes the model. A text-only model read from the
	// ecosystem has Modalities ["text"], one vocabulary range and no
	// setting: it becomes a mom model through Upcycle.
	Config mom.Config
	Params map[string][]float32 // mom names -> values, in ParamSpecs' layouts
	// Tokenizer is the text tokenizer's tokenizer.json, nil if none.
	Tokenizer []byte
	// Source says where the model came from, for messages and records.
	Source string
	// Notes are things a user should know (conversions, defaults taken).
	Notes []string
}

// Check verifies that Params holds exactly the parameters of Config with
// the right sizes and only finite values, and that the vocabulary fits
// the cross-entropy. It lists every missing, unexpected and mis-sized
// tensor.
func (m *Model) Check() error {
	c := m.Config
	if c.Vocab > MaxVocab {
		return fmt.Errorf("interop: %s: vocabulary of %d ids exceeds the cross-entropy's limit of %d", m.Source, c.Vocab, MaxVocab)
	}
	var missing, wrong, bad []string
	want := map[string]bool{}
	for _, s := range c.ParamSpecs() {
		want[s.Name] = true
		v, ok := m.Params[s.Name]
		if !ok {
			missing = append(missing, s.Name)
			continue
		}
		if len(v) != s.Len() {
			wrong = append(wrong, fmt.Sprintf("%s has %d values, shape %s needs %d", s.Name, len(v), shapeString(s.Shape), s.Len()))
			continue
		}
		for _, x := range v {
			if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
				bad = append(bad, s.Name)
				break
			}
		}
	}
	var extra []string
	for k := range m.Params {
		if !want[k] {
			extra = append(extra, k)
		}
	}
	sort.Strings(extra)
	var msgs []string
	if len(missing) > 0 {
		msgs = append(msgs, "missing: "+strings.Join(missing, ", "))
	}
	if len(extra) > 0 {
		msgs = append(msgs, "unexpected: "+strings.Join(extra, ", "))
	}
	if len(wrong) > 0 {
		msgs = append(msgs, "wrong size: "+strings.Join(wrong, "; "))
	}
	if len(bad) > 0 {
		msgs = append(msgs, "NaN or infinite values in: "+strings.Join(bad, ", "))
	}
	if len(msgs) > 0 {
		return fmt.Errorf("interop: %s does not fit its config (d_model %d, %d layers, vocabulary %d, splits %s): %s",
			m.Source, c.DModel, c.Layers, c.Vocab, c.Splits, strings.Join(msgs, "; "))
	}
	return nil
}

// Tensors returns the parameters as F32 tensors with their specs' shapes,
// in ParamSpecs order (as mom's checkpoints hold them).
func (m *Model) Tensors() []safetensors.Tensor {
	var out []safetensors.Tensor
	for _, s := range m.Config.ParamSpecs() {
		out = append(out, safetensors.F32(s.Name, s.Shape, m.Params[s.Name]))
	}
	return out
}

// FileTensors lays the parameters out in format f (see Layout).
func (m *Model) FileTensors(f Format) ([]safetensors.Tensor, error) {
	lay, err := Layout(m.Config, f)
	if err != nil {
		return nil, err
	}
	specs := specsByName(m.Config)
	var out []safetensors.Tensor
	for _, ft := range lay {
		var v []float32
		for _, p := range ft.Pieces {
			lo, hi, err := pieceRange(specs[p.Param], p)
			if err != nil {
				return nil, err
			}
			src := m.Params[p.Param]
			if hi > len(src) {
				return nil, fmt.Errorf("interop: %s: parameter %s has %d values, want %d", ft.Name, p.Param, len(src), specs[p.Param].Len())
			}
			v = append(v, src[lo:hi]...)
		}
		out = append(out, safetensors.F32(ft.Name, ft.Shape, v))
	}
	return out, nil
}

func specsByName(c mom.Config) map[string]mom.ParamSpec {
	out := map[string]mom.ParamSpec{}
	for _, s := range c.ParamSpecs() {
		out[s.Name] = s
	}
	return out
}

// fromFileTensors fills a model of config c from file tensors laid out as
// format f (names normalised by normalizeName). It checks every shape and
// lists every missing and unexpected tensor in one error.
func fromFileTensors(c mom.Config, f Format, convBias bool, ts []safetensors.Tensor, source string) (*Model, error) {
	lay, err := Layout(c, f)
	if err != nil {
		return nil, err
	}
	byName := map[string]safetensors.Tensor{}
	for _, t := range ts {
		n := normalizeName(t.Name)
		if _, dup := byName[n]; dup {
			return nil, fmt.Errorf("interop: %s holds %s twice (as %s and %s)", source, n, ssmEmbed, hfEmbed)
		}
		byName[n] = t
	}
	specs := specsByName(c)
	m := &Model{Config: c, Params: map[string][]float32{}, Source: source}
	for _, s := range c.ParamSpecs() {
		m.Params[s.Name] = make([]float32, s.Len())
	}
	var missing, wrong []string
	used := map[string]bool{}
	converted := map[string]bool{}
	var tied []FileTensor
	noBias := false
	for _, ft := range lay {
		name := normalizeName(ft.Name)
		t, ok := byName[name]
		if ft.ConvBias && !convBias {
			if ok {
				continue // left unused: listed as unexpected
			}
			noBias = true
			continue
		}
		if !ok {
			if !ft.TiedHead {
				missing = append(missing, ft.Name)
			}
			continue
		}
		used[name] = true
		if !sameShape(t.Shape, ft.Shape) {
			wrong = append(wrong, fmt.Sprintf("%s is %s, the config needs %s", t.Name, shapeString(t.Shape), shapeString(ft.Shape)))
			continue
		}
		if ft.TiedHead {
			tied = append(tied, ft)
			continue
		}
		v, err := toFloat32(t)
		if err != nil {
			return nil, fmt.Errorf("interop: %s: %w", source, err)
		}
		if t.DType != "F32" {
			converted[t.DType] = true
		}
		off := 0
		for _, p := range ft.Pieces {
			lo, hi, err := pieceRange(specs[p.Param], p)
			if err != nil {
				return nil, err
			}
			copy(m.Params[p.Param][lo:hi], v[off:off+hi-lo])
			off += hi - lo
		}
	}
	var extra []string
	for n := range byName {
		if !used[n] {
			extra = append(extra, byName[n].Name)
		}
	}
	sort.Strings(extra)
	var msgs []string
	if len(missing) > 0 {
		msgs = append(msgs, "missing: "+strings.Join(missing, ", "))
	}
	if len(extra) > 0 {
		msgs = append(msgs, "unexpected: "+strings.Join(extra, ", "))
	}
	if len(wrong) > 0 {
		msgs = append(msgs, "wrong shape: "+strings.Join(wrong, "; "))
	}
	if len(msgs) > 0 {
		return nil, fmt.Errorf("interop: %s does not match its config.json (d_model %d, %d layers, d_state %d, expand %d, dt_rank %d, d_conv %d, vocabulary %d): %s",
			source, c.DModel, c.Layers, c.DState, c.Expand, c.DtRank, c.DConv, c.Vocab, strings.Join(msgs, "; "))
	}
	// A tied head stored beside the embedding must be the embedding.
	for _, ft := range tied {
		v, err := toFloat32(byName[normalizeName(ft.Name)])
		if err != nil {
			return nil, fmt.Errorf("interop: %s: %w", source, err)
		}
		emb := m.Params[mom.NameEmbed]
		for i := range v {
			if math.Float32bits(v[i]) != math.Float32bits(emb[i]) {
				return nil, fmt.Errorf("interop: %s: %s differs from the embedding (first at element %d: %g vs %g), but the config ties them (set tie_embeddings / tie_word_embeddings to false to keep a separate head)",
					source, ft.Name, i, v[i], emb[i])
			}
		}
	}
	if noBias {
		m.Notes = append(m.Notes, "the model has no conv1d bias: mom's conv bias starts at zero")
	}
	for _, dt := range sortedKeys(converted) {
		m.Notes = append(m.Notes, fmt.Sprintf("tensors stored as %s were widened to float32", dt))
	}
	return m, nil
}

func sameShape(a, b []int) bool {
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

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
