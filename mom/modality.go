package mom

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
)

// Loss is how a modality's positions are trained.
type Loss string

const (
	// NextToken: cross-entropy of the next token, whose id lies in the
	// modality's vocabulary range.
	NextToken Loss = "next-token"
	// Diffusion: the position carries a noised continuous patch; the model
	// predicts the noise (mean squared error), weighted by the config's
	// DiffusionWeight in the total.
	Diffusion Loss = "diffusion"
)

// Modality is one row of the modality table: everything the model, the
// trainer, the data pipeline and the window need to know about a kind of
// token. Code asks the row; it never tests for a particular setting.
type Modality struct {
	// Name keys the metrics ("loss_<name>"), the window and the run
	// comparison.
	Name string `json:"name"`
	// Continuous positions carry a patch vector (Config.PatchDim values) on
	// top of their token; the token is the noise level, from the
	// modality's vocabulary range, which then holds TimestepBuckets ids.
	Continuous bool `json:"continuous,omitempty"`
	Loss       Loss `json:"loss"`
	// Tokenizer is the kind of tokenizer that makes this modality's tokens:
	// "bpe" (byte-level BPE, text), "vq" (k-means codebook over image
	// patches), "patches" (normalised patch vectors, continuous), "units"
	// (k-means units over log-mel frames, speech). Preset vocabulary sizes
	// are looked up by it.
	Tokenizer string `json:"tokenizer"`
	// Synthetic names the generator of the synthetic stream for this
	// modality: "markov" (a sparse Markov chain), "grid" (2-D neighbour
	// structure), "periodic" (noisy periodic sequences), "field" (smooth
	// low-rank continuous patches).
	Synthetic string `json:"synthetic"`
	// Color ("#rrggbb") draws the modality's curves; Key is the window key
	// that shows or hides them.
	Color string `json:"color"`
	Key   string `json:"key"`
	// DefaultVocab sizes the modality's range in presets that have no size
	// for its tokenizer kind.
	DefaultVocab int `json:"-"`
}

// The built-in rows.
var (
	TextModality = Modality{Name: "text", Loss: NextToken, Tokenizer: "bpe", Synthetic: "markov", Color: "#1f77b4", Key: "1"}
	// ImageTokens are discrete image codes (Chameleon, three modalities).
	ImageTokens = Modality{Name: "image", Loss: NextToken, Tokenizer: "vq", Synthetic: "grid", Color: "#ff7f0e", Key: "2"}
	// ImagePatches are continuous image patches trained by diffusion
	// (Transfusion).
	ImagePatches = Modality{Name: "image", Continuous: true, Loss: Diffusion, Tokenizer: "patches", Synthetic: "field", Color: "#ff7f0e", Key: "2"}
	SpeechUnits  = Modality{Name: "speech", Loss: NextToken, Tokenizer: "units", Synthetic: "periodic", Color: "#2ca02c", Key: "3"}
)

// SettingSpec is one row of the settings table: a training setting and its
// modalities, in modality-id order (text first).
type SettingSpec struct {
	Name       Setting
	Modalities []Modality
	Summary    string
}

var (
	tableMu  sync.RWMutex
	settings = []SettingSpec{
		{Chameleon, []Modality{TextModality, ImageTokens}, "text and discrete image tokens, one next-token loss reported per modality"},
		{Transfusion, []Modality{TextModality, ImagePatches}, "text tokens (next-token loss) and continuous image patches (diffusion loss); total = text + lambda*image"},
		{ThreeModal, []Modality{TextModality, ImageTokens, SpeechUnits}, "Chameleon plus discrete speech units"},
		{TextOnly, []Modality{TextModality}, "text alone: a plain language model (for example the dense model that upcycling turns into MoM)"},
	}
)

// MaxModalities bounds the modalities of one model (the loss record and the
// window's keys 1-9).
const MaxModalities = 9

// Settings returns the settings table.
func Settings() []SettingSpec {
	tableMu.RLock()
	defer tableMu.RUnlock()
	return slices.Clone(settings)
}

// SettingNames lists the settings' names.
func SettingNames() []string {
	var out []string
	for _, s := range Settings() {
		out = append(out, string(s.Name))
	}
	return out
}

// LookupSetting returns the row of setting s.
func LookupSetting(s Setting) (SettingSpec, error) {
	tableMu.RLock()
	defer tableMu.RUnlock()
	for _, r := range settings {
		if r.Name == s {
			return SettingSpec{r.Name, slices.Clone(r.Modalities), r.Summary}, nil
		}
	}
	names := make([]string, len(settings))
	for i, r := range settings {
		names[i] = string(r.Name)
	}
	return SettingSpec{}, fmt.Errorf("unknown setting %q (want %s)", s, strings.Join(names, ", "))
}

// RegisterSetting adds a setting to the table, for example one with a new
// modality (a new modality is one Modality row and a tokenizer). It fails
// if the name is taken or the row is inconsistent.
func RegisterSetting(s SettingSpec) error {
	if s.Name == "" {
		return fmt.Errorf("mom: a setting needs a name")
	}
	if err := validateModalities(s.Modalities); err != nil {
		return fmt.Errorf("mom: setting %s: %w", s.Name, err)
	}
	tableMu.Lock()
	defer tableMu.Unlock()
	for _, r := range settings {
		if r.Name == s.Name {
			return fmt.Errorf("mom: setting %q is already registered", s.Name)
		}
	}
	settings = append(settings, SettingSpec{s.Name, slices.Clone(s.Modalities), s.Summary})
	return nil
}

var colorRE = regexp.MustCompile(`^#[0-9a-fA-F]{6}$`)

// validateModalities checks a list of rows: text-like first, unique names
// and keys, known losses, a continuous row trained by diffusion.
func validateModalities(ms []Modality) error {
	if len(ms) == 0 || len(ms) > MaxModalities {
		return fmt.Errorf("%d modalities, want 1 to %d", len(ms), MaxModalities)
	}
	if ms[0].Continuous {
		return fmt.Errorf("modality 0 (%s) is continuous; the first modality holds the document and span markers and must be discrete", ms[0].Name)
	}
	names, keys := map[string]bool{}, map[string]bool{}
	for i, m := range ms {
		switch {
		case m.Name == "" || strings.ContainsAny(m.Name, " \t\n\"/"):
			return fmt.Errorf("modality %d has the name %q: want a plain word", i, m.Name)
		case names[m.Name]:
			return fmt.Errorf("two modalities are called %q", m.Name)
		case m.Loss != NextToken && m.Loss != Diffusion:
			return fmt.Errorf("modality %s: unknown loss %q (want %s or %s)", m.Name, m.Loss, NextToken, Diffusion)
		case m.Continuous != (m.Loss == Diffusion):
			return fmt.Errorf("modality %s: continuous modalities, and only they, are trained by the diffusion loss", m.Name)
		case !colorRE.MatchString(m.Color):
			return fmt.Errorf("modality %s: colour %q, want #rrggbb", m.Name, m.Color)
		case len(m.Key) != 1 || m.Key[0] < '1' || m.Key[0] > '9':
			return fmt.Errorf("modality %s: window key %q, want one of 1-9", m.Name, m.Key)
		case keys[m.Key]:
			return fmt.Errorf("modality %s: window key %s is taken", m.Name, m.Key)
		}
		names[m.Name], keys[m.Key] = true, true
	}
	return nil
}

// UnmarshalJSON reads a config, including those of runs made before the
// modality table, whose "modalities" were plain names: those are looked up
// in the row of the config's setting.
func (c *Config) UnmarshalJSON(b []byte) error {
	type plain Config
	var raw struct {
		plain
		Modalities json.RawMessage `json:"modalities"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*c = Config(raw.plain)
	c.Modalities = nil
	if len(raw.Modalities) == 0 || string(raw.Modalities) == "null" {
		return nil
	}
	var rows []Modality
	if err := json.Unmarshal(raw.Modalities, &rows); err == nil {
		c.Modalities = rows
		return nil
	}
	var names []string
	if err := json.Unmarshal(raw.Modalities, &names); err != nil {
		return fmt.Errorf("mom: config modalities: want a list of modality rows or names: %w", err)
	}
	s, err := LookupSetting(c.Setting)
	if err != nil {
		return fmt.Errorf("mom: config modalities %v: %w", names, err)
	}
	for i, n := range names {
		if i >= len(s.Modalities) || s.Modalities[i].Name != n {
			return fmt.Errorf("mom: config modalities %v do not match the %s setting's", names, c.Setting)
		}
		c.Modalities = append(c.Modalities, s.Modalities[i])
	}
	return nil
}

// ModalityNames lists the config's modality names in id order.
func (c Config) ModalityNames() []string {
	out := make([]string, len(c.Modalities))
	for i, m := range c.Modalities {
		out[i] = m.Name
	}
	return out
}

// ModalityIndex returns the id of the modality called name, or -1.
func (c Config) ModalityIndex(name string) int {
	for i, m := range c.Modalities {
		if m.Name == name {
			return i
		}
	}
	return -1
}

// Continuous reports whether any modality carries continuous patches (so
// the model has patch_in and patch_out and a diffusion loss).
func (c Config) Continuous() bool {
	for _, m := range c.Modalities {
		if m.Continuous {
			return true
		}
	}
	return false
}

// ModalityOf returns the modality whose vocabulary range holds id.
func (c Config) ModalityOf(id uint32) (int, bool) {
	for g, r := range c.VocabRanges {
		if int(id) >= r[0] && int(id) < r[1] {
			return g, true
		}
	}
	return -1, false
}
