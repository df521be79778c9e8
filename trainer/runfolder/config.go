package runfolder

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"mom/trainer/atomicfile"
)

// File names inside a run folder.
const (
	MetricsFile    = "metrics.jsonl"
	ConfigFile     = "config.json"
	CheckpointsDir = "checkpoints"
	LockFile       = ".lock"
)

// Config is a run's config.json: what the run is (model, data, settings),
// written when the run starts and extended by later segments.
//
// The top-level settings are those of the run's first segment and never
// change. A resumed run that changes a setting which may change (the
// number of steps, the learning-rate schedule, the evaluation interval)
// appends a Segment saying from which step the new value holds. Keys this
// package does not know (written by other tools, such as an import) are
// kept when the file is rewritten.
type Config struct {
	Name       string   `json:"name"`
	Dense      bool     `json:"dense"`
	Splits     []string `json:"splits"`
	Modalities []string `json:"modalities"` // names, in modality-id order
	// Model is the model's configuration (mom.Config's JSON): sizes,
	// setting, split switches, vocabulary, and the modality rows.
	Model       json.RawMessage `json:"model,omitempty"`
	Batch       int             `json:"batch"`
	SeqLen      int             `json:"seq_len"`
	Accum       int             `json:"accum"`
	Steps       int             `json:"steps"`
	LR          float64         `json:"lr"`
	MinLR       float64         `json:"min_lr"`
	Warmup      int             `json:"warmup"`
	Schedule    string          `json:"lr_schedule,omitempty"`
	WeightDecay float64         `json:"weight_decay"`
	ClipNorm    float64         `json:"clip"`
	AdamBetas   [2]float64      `json:"adam_betas"`
	AdamEps     float64         `json:"adam_eps"`
	Seed        uint64          `json:"seed"`
	Data        string          `json:"data"`
	EvalData    string          `json:"eval_data,omitempty"`
	EvalEvery   int             `json:"eval_every"`
	EvalBatches int             `json:"eval_batches"`
	LogEvery    int             `json:"log_every"`
	CkptEvery   int             `json:"ckpt_every"`
	Keep        int             `json:"keep"`
	Precision   string          `json:"precision,omitempty"` // f32 or f16 (runs before mixed precision lack it: f32)
	Device      string          `json:"device"`
	Segments    []Segment       `json:"segments,omitempty"`

	present map[string]bool            // keys found in the file read
	extra   map[string]json.RawMessage // keys not known here, kept
}

// Segment is a part of a run that started (on a resume) with a changed
// setting: after step Start, the run has Steps steps in all and the
// learning rate follows Schedule from where it was (see the trainer's
// Schedule); Changed lists every setting that changed, by config key, as
// [old, new] in the command line's notation.
type Segment struct {
	Start    int                  `json:"start_step"`
	Steps    int                  `json:"steps"`
	Schedule string               `json:"lr_schedule,omitempty"`
	Changed  map[string][2]string `json:"changed,omitempty"`
	Time     string               `json:"time,omitempty"`
	Device   string               `json:"device,omitempty"`
}

// Changed returns the newest value a segment gave the setting key (false
// when no segment changed it: the top-level value holds).
func (c Config) Changed(key string) (string, bool) {
	for i := len(c.Segments) - 1; i >= 0; i-- {
		if v, ok := c.Segments[i].Changed[key]; ok {
			return v[1], true
		}
	}
	return "", false
}

type plainConfig Config

// UnmarshalJSON reads a config.json, remembering which keys it had and
// keeping the unknown ones.
func (c *Config) UnmarshalJSON(b []byte) error {
	var p plainConfig
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*c = Config(p)
	c.present = map[string]bool{}
	known := knownKeys()
	for k, v := range raw {
		c.present[k] = true
		if !known[k] {
			if c.extra == nil {
				c.extra = map[string]json.RawMessage{}
			}
			c.extra[k] = v
		}
	}
	return nil
}

// MarshalJSON writes the known keys in their order, then the kept unknown
// ones sorted.
func (c Config) MarshalJSON() ([]byte, error) {
	b, err := json.Marshal(plainConfig(c))
	if err != nil {
		return nil, err
	}
	if len(c.extra) == 0 {
		return b, nil
	}
	keys := make([]string, 0, len(c.extra))
	for k := range c.extra {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b = b[:len(b)-1]
	for _, k := range keys {
		kb, _ := json.Marshal(k)
		b = append(append(append(b, ','), kb...), ':')
		b = append(b, c.extra[k]...)
	}
	return append(b, '}'), nil
}

func knownKeys() map[string]bool {
	out := map[string]bool{}
	t := []string{"name", "dense", "splits", "modalities", "model", "batch", "seq_len", "accum", "steps", "lr", "min_lr",
		"warmup", "lr_schedule", "weight_decay", "clip", "adam_betas", "adam_eps", "seed", "data", "eval_data",
		"eval_every", "eval_batches", "log_every", "ckpt_every", "keep", "device", "segments"}
	for _, k := range t {
		out[k] = true
	}
	return out
}

// Has reports whether the file read held key (a run made by an older
// version, or imported, lacks some settings; those are taken from the
// command line when it resumes).
func (c Config) Has(key string) bool { return c.present[key] }

// Extra returns a key the package does not know, as raw JSON (nil if
// absent).
func (c Config) Extra(key string) json.RawMessage { return c.extra[key] }

// TotalSteps is the run's number of steps: the last segment's, else the
// first's.
func (c Config) TotalSteps() int {
	if n := len(c.Segments); n > 0 {
		return c.Segments[n-1].Steps
	}
	return c.Steps
}

// Modality is a row of the model's modality table as config.json holds it
// (model.modalities): what readers of the run need to show it.
type Modality struct {
	Name       string `json:"name"`
	Continuous bool   `json:"continuous,omitempty"`
	Loss       string `json:"loss,omitempty"`
	Tokenizer  string `json:"tokenizer,omitempty"`
	Color      string `json:"color,omitempty"` // "#rrggbb"
	Key        string `json:"key,omitempty"`   // "1".."9"
}

// ModalityRows returns the model's modality rows from model.modalities;
// runs made before the modality table hold only names there (or only the
// top-level "modalities"), which give rows with just a Name.
func (c Config) ModalityRows() []Modality {
	var m struct {
		Modalities json.RawMessage `json:"modalities"`
	}
	if len(c.Model) > 0 && json.Unmarshal(c.Model, &m) == nil && len(m.Modalities) > 0 {
		var rows []Modality
		if json.Unmarshal(m.Modalities, &rows) == nil {
			return rows
		}
		var names []string
		if json.Unmarshal(m.Modalities, &names) == nil {
			return namesToRows(names)
		}
	}
	return namesToRows(c.Modalities)
}

func namesToRows(names []string) []Modality {
	out := make([]Modality, len(names))
	for i, n := range names {
		out[i] = Modality{Name: n}
	}
	return out
}

// ModelField returns one key of the model's configuration as compact JSON
// ("" when absent), for comparing runs.
func (c Config) ModelField(key string) string {
	var m map[string]json.RawMessage
	if len(c.Model) == 0 || json.Unmarshal(c.Model, &m) != nil {
		return ""
	}
	v, ok := m[key]
	if !ok {
		return ""
	}
	var buf bytes.Buffer
	if json.Compact(&buf, v) != nil {
		return string(v)
	}
	return buf.String()
}

// Kind is "dense" or "MoM".
func (c Config) Kind() string {
	if c.Dense {
		return "dense"
	}
	return "MoM"
}

// SplitPath accepts a run folder or the path of its metrics file and
// returns both.
func SplitPath(path string) (dir, metrics string) {
	if st, err := os.Stat(path); err == nil && !st.IsDir() {
		return filepath.Dir(path), path
	}
	return path, filepath.Join(path, MetricsFile)
}

// ReadConfig reads dir/config.json. A missing file is no error: the
// config then only has Name (the folder's name) and found is false.
func ReadConfig(dir string) (c Config, found bool, err error) {
	c.Name = filepath.Base(filepath.Clean(dir))
	p := filepath.Join(dir, ConfigFile)
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return c, false, nil
	}
	if err != nil {
		return c, false, fmt.Errorf("runfolder: reading the run config: %w", err)
	}
	c, err = ParseConfig(b)
	if err != nil {
		return Config{Name: filepath.Base(filepath.Clean(dir))}, false, fmt.Errorf("runfolder: %s: %w", p, err)
	}
	if c.Name == "" {
		c.Name = filepath.Base(filepath.Clean(dir))
	}
	return c, true, nil
}

// ParseConfig decodes the contents of a config.json: a JSON object whose
// known keys have the right types.
func ParseConfig(b []byte) (Config, error) {
	var c Config
	if len(bytes.TrimSpace(b)) == 0 || bytes.TrimSpace(b)[0] != '{' {
		return c, errors.New("not a JSON object")
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return Config{}, err
	}
	for i, s := range c.Segments {
		if s.Start < 0 || s.Steps <= s.Start {
			return Config{}, fmt.Errorf("segment %d starts at step %d and ends at %d", i+1, s.Start, s.Steps)
		}
	}
	return c, nil
}

// WriteConfig replaces dir/config.json atomically.
func WriteConfig(dir string, c Config) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return fmt.Errorf("runfolder: encoding %s: %w", ConfigFile, err)
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, ConfigFile), append(b, '\n'), 0o666); err != nil {
		return fmt.Errorf("runfolder: %w", err)
	}
	return nil
}

// DisplayNames names runs for legends and tables: each run's own name,
// except where two runs share a name; those are told apart by as many of
// their folders' trailing path elements as it takes ("a/run", "b/run"),
// with the run's own name in brackets when it is not the folder's.
func DisplayNames(names, dirs []string) []string {
	out := append([]string(nil), names...)
	for depth := 2; depth <= 32; depth++ {
		count := map[string]int{}
		for _, n := range out {
			count[n]++
		}
		clash := false
		for i, n := range out {
			if count[n] > 1 && i < len(dirs) {
				clash = true
				out[i] = tail(dirs[i], depth)
				if filepath.Base(filepath.Clean(dirs[i])) != names[i] {
					out[i] = names[i] + " (" + out[i] + ")"
				}
			}
		}
		if !clash {
			return out
		}
	}
	for i := range out { // the same folder twice: number them
		out[i] = fmt.Sprintf("%s #%d", out[i], i+1)
	}
	return out
}

// tail returns the last n elements of a path, slash-separated.
func tail(p string, n int) string {
	abs, err := filepath.Abs(p)
	if err == nil {
		p = abs
	}
	parts := strings.Split(filepath.ToSlash(filepath.Clean(p)), "/")
	if n > len(parts) {
		n = len(parts)
	}
	return strings.Join(parts[len(parts)-n:], "/")
}
