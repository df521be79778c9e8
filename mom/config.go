package mom

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// Setting is one of the paper's three training settings.
type Setting string

const (
	// Chameleon: text and discrete image tokens, one next-token loss.
	Chameleon Setting = "chameleon"
	// Transfusion: text tokens (next-token loss) and continuous image patches
	// (diffusion noise-prediction loss), total = text + lambda*image.
	Transfusion Setting = "transfusion"
	// ThreeModal: Chameleon plus discrete speech tokens.
	ThreeModal Setting = "three"
	// TextOnly: a plain language model (text alone), e.g. the dense model
	// that upcycling turns into Mixture-of-Mamba.
	TextOnly Setting = "text"
)

// Splits are the four per-modality switches of Mixture-of-Mamba. No splits
// at all is the dense Mamba baseline.
type Splits struct {
	In  bool `json:"in_proj"`
	X   bool `json:"x_proj"`
	Dt  bool `json:"dt_proj"`
	Out bool `json:"out_proj"`
}

// AllSplits is full Mixture-of-Mamba.
var AllSplits = Splits{true, true, true, true}

// Dense reports whether no projection is split.
func (s Splits) Dense() bool { return !s.In && !s.X && !s.Dt && !s.Out }

// ParseSplits reads "in,x,dt,out" (any subset), "all", or "" / "none" (dense).
func ParseSplits(s string) (Splits, error) {
	var out Splits
	s = strings.TrimSpace(strings.ToLower(s))
	if s == "" || s == "none" {
		return out, nil
	}
	if s == "all" {
		return AllSplits, nil
	}
	for _, p := range strings.Split(s, ",") {
		switch strings.TrimSpace(p) {
		case "in", "in_proj":
			out.In = true
		case "x", "x_proj":
			out.X = true
		case "dt", "dt_proj":
			out.Dt = true
		case "out", "out_proj":
			out.Out = true
		default:
			return out, fmt.Errorf("unknown split %q: want a subset of in,x,dt,out", p)
		}
	}
	return out, nil
}

func (s Splits) String() string {
	var p []string
	if s.In {
		p = append(p, "in")
	}
	if s.X {
		p = append(p, "x")
	}
	if s.Dt {
		p = append(p, "dt")
	}
	if s.Out {
		p = append(p, "out")
	}
	if len(p) == 0 {
		return "none (dense)"
	}
	return strings.Join(p, ",")
}

// Config is a model: its sizes, modalities and split switches.
type Config struct {
	Name    string  `json:"name"`
	Setting Setting `json:"setting"`
	DModel  int     `json:"d_model"`
	Layers  int     `json:"n_layer"`
	DState  int     `json:"d_state"`
	DConv   int     `json:"d_conv"`
	Expand  int     `json:"expand"`
	DtRank  int     `json:"dt_rank"`
	// Vocab is the unified vocabulary size; VocabRanges[m] is modality m's
	// id range [start, end). A continuous modality's range holds the
	// noise-level tokens that condition its positions.
	Vocab       int      `json:"vocab_size"`
	VocabRanges [][2]int `json:"vocab_ranges"`
	// Modalities are the setting's rows of the modality table (ids
	// 0..len-1).
	Modalities []Modality `json:"modalities"`
	Splits     Splits     `json:"splits"`
	// PatchDim is the size of a continuous patch (a continuous modality).
	PatchDim int `json:"patch_dim,omitempty"`
	// DiffusionWeight is lambda: the total loss is the mean next-token loss
	// plus lambda times the mean diffusion loss (Transfusion).
	DiffusionWeight float64 `json:"image_loss_weight,omitempty"`
	Eps             float64 `json:"norm_eps"`
	TieEmbeddings   bool    `json:"tie_embeddings"`
}

// ED is expand * d_model, the inner width.
func (c Config) ED() int { return c.Expand * c.DModel }

// Groups is the number of modalities (weight sets of a split projection).
func (c Config) Groups() int { return len(c.Modalities) }

// groupsFor returns how many weight sets a projection has.
func (c Config) groupsFor(split bool) int {
	if split {
		return c.Groups()
	}
	return 1
}

// Validate checks the config and returns an error naming the first problem.
func (c Config) Validate() error {
	pos := map[string]int{"d_model": c.DModel, "n_layer": c.Layers, "d_state": c.DState, "d_conv": c.DConv,
		"expand": c.Expand, "dt_rank": c.DtRank, "vocab_size": c.Vocab}
	keys := make([]string, 0, len(pos))
	for k := range pos {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if pos[k] <= 0 {
			return fmt.Errorf("config %s: %s must be positive, got %d", c.Name, k, pos[k])
		}
	}
	if c.DConv > 8 {
		return fmt.Errorf("config %s: d_conv %d is above the kernel's maximum of 8", c.Name, c.DConv)
	}
	if c.DState > 64 {
		return fmt.Errorf("config %s: d_state %d is above the scan kernel's maximum of 64", c.Name, c.DState)
	}
	spec, err := LookupSetting(c.Setting)
	if err != nil {
		return fmt.Errorf("config %s: %w", c.Name, err)
	}
	if err := validateModalities(c.Modalities); err != nil {
		return fmt.Errorf("config %s: %w", c.Name, err)
	}
	if len(c.Modalities) != len(spec.Modalities) {
		return fmt.Errorf("config %s: the %s setting has modalities %v, the config %v", c.Name, c.Setting, (Config{Modalities: spec.Modalities}).ModalityNames(), c.ModalityNames())
	}
	for i, m := range c.Modalities {
		w := spec.Modalities[i]
		if m.Name != w.Name || m.Continuous != w.Continuous || m.Loss != w.Loss || m.Tokenizer != w.Tokenizer {
			return fmt.Errorf("config %s: modality %d is %s (%s, %s tokens), the %s setting's is %s (%s, %s tokens)", c.Name, i,
				m.Name, m.Loss, m.Tokenizer, c.Setting, w.Name, w.Loss, w.Tokenizer)
		}
	}
	if len(c.VocabRanges) != len(c.Modalities) {
		return fmt.Errorf("config %s: %d vocab ranges for %d modalities", c.Name, len(c.VocabRanges), len(c.Modalities))
	}
	prev := 0
	for i, r := range c.VocabRanges {
		if r[0] != prev || r[1] <= r[0] {
			return fmt.Errorf("config %s: vocab range of %s is [%d, %d): ranges must be non-empty and contiguous from 0", c.Name, c.Modalities[i].Name, r[0], r[1])
		}
		if c.Modalities[i].Continuous && r[1]-r[0] != TimestepBuckets {
			return fmt.Errorf("config %s: the continuous modality %s has %d ids, want %d (one per noise level)", c.Name, c.Modalities[i].Name, r[1]-r[0], TimestepBuckets)
		}
		prev = r[1]
	}
	if prev != c.Vocab {
		return fmt.Errorf("config %s: vocab ranges end at %d but vocab_size is %d", c.Name, prev, c.Vocab)
	}
	if c.Continuous() && c.PatchDim <= 0 {
		return fmt.Errorf("config %s: a continuous modality needs patch_dim > 0", c.Name)
	}
	if !c.Continuous() && c.PatchDim != 0 {
		return fmt.Errorf("config %s: patch_dim %d without a continuous modality", c.Name, c.PatchDim)
	}
	if c.Eps <= 0 {
		return fmt.Errorf("config %s: norm_eps must be positive", c.Name)
	}
	return nil
}

// JSON returns the config as indented JSON.
func (c Config) JSON() []byte {
	b, _ := json.MarshalIndent(c, "", "  ")
	return b
}

// ceilDiv is ceil(a/b).
func ceilDiv(a, b int) int { return (a + b - 1) / b }

// preset describes a size; the modalities come from the setting.
type preset struct {
	dModel, layers, dState, patch int
	// vocab sizes each modality's id range by its tokenizer kind (the
	// synthetic stream's vocabulary; a dataset brings its own).
	vocab map[string]int
	note  string
}

// Presets near the paper's scales (the paper's 37M ... 1.4B models; the
// vocabulary follows the Chameleon tokenizer: 65,536 ids of which 8,192 are
// image codes) plus "tiny" for CI.
var presets = map[string]preset{
	"tiny":  {32, 2, 8, 16, vocabSizes(96, 48, 48), "CI-sized"},
	"small": {128, 4, 16, 32, vocabSizes(1024, 512, 512), "a quick laptop run"},
	"37m":   {384, 12, 16, 256, vocabSizes(53248, 8192, 4096), "near the paper's 37M"},
	"94m":   {640, 20, 16, 256, vocabSizes(53248, 8192, 4096), "near the paper's 94M"},
	"443m":  {1024, 56, 16, 256, vocabSizes(53248, 8192, 4096), "near the paper's 443M"},
	"880m":  {1536, 52, 16, 256, vocabSizes(53248, 8192, 4096), "near the paper's 880M"},
	"1.4b":  {2048, 48, 16, 256, vocabSizes(53248, 8192, 4096), "near the paper's 1.4B"},
}

func vocabSizes(text, image, speech int) map[string]int {
	return map[string]int{"bpe": text, "vq": image, "units": speech}
}

// PresetNames lists the presets, smallest first.
func PresetNames() []string {
	return []string{"tiny", "small", "37m", "94m", "443m", "880m", "1.4b"}
}

// Preset builds a config: a size preset in a setting with the given splits.
// Each modality's vocabulary is sized by the preset for its tokenizer kind
// (continuous modalities get TimestepBuckets noise-level ids); SetVocab
// replaces the sizes with a dataset's.
func Preset(name string, setting Setting, splits Splits) (Config, error) {
	p, ok := presets[strings.ToLower(name)]
	if !ok {
		return Config{}, fmt.Errorf("unknown preset %q (have %s)", name, strings.Join(PresetNames(), ", "))
	}
	spec, err := LookupSetting(setting)
	if err != nil {
		return Config{}, err
	}
	c := Config{
		Name:          strings.ToLower(name),
		Setting:       setting,
		DModel:        p.dModel,
		Layers:        p.layers,
		DState:        p.dState,
		DConv:         4,
		Expand:        2,
		DtRank:        ceilDiv(p.dModel, 16),
		Splits:        splits,
		Eps:           1e-5,
		TieEmbeddings: true,
		Modalities:    spec.Modalities,
	}
	sizes := make([]int, len(spec.Modalities))
	for i, m := range spec.Modalities {
		switch n, ok := p.vocab[m.Tokenizer]; {
		case m.Continuous:
			sizes[i] = TimestepBuckets
		case ok:
			sizes[i] = n
		case m.DefaultVocab > 0:
			sizes[i] = m.DefaultVocab
		default:
			return Config{}, fmt.Errorf("preset %s has no vocabulary size for the %s modality (%s tokens) and the row sets no DefaultVocab", name, m.Name, m.Tokenizer)
		}
	}
	if c.Continuous() {
		c.PatchDim = p.patch
		c.DiffusionWeight = 1
	}
	if err := c.SetVocab(sizes); err != nil {
		return Config{}, err
	}
	return c, c.Validate()
}

// SetVocab lays out the vocabulary from per-modality sizes, in modality
// order, contiguous from 0.
func (c *Config) SetVocab(sizes []int) error {
	if len(sizes) != len(c.Modalities) {
		return fmt.Errorf("config %s: %d vocabulary sizes for %d modalities", c.Name, len(sizes), len(c.Modalities))
	}
	c.VocabRanges = make([][2]int, len(sizes))
	next := 0
	for i, n := range sizes {
		if n <= 0 {
			return fmt.Errorf("config %s: the %s vocabulary size %d must be positive", c.Name, c.Modalities[i].Name, n)
		}
		c.VocabRanges[i] = [2]int{next, next + n}
		next += n
	}
	c.Vocab = next
	return nil
}

// TimestepBuckets is the number of diffusion noise levels Transfusion
// conditions on (each a token of the image range).
const TimestepBuckets = 32
