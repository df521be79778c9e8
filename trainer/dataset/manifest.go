package dataset

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"mom/mom"
	"mom/trainer/atomicfile"
	"mom/trainer/data"
)

// The manifest's name in a dataset folder, and its format.
const (
	ManifestName    = "dataset.json"
	ManifestFormat  = "mom-dataset"
	ManifestVersion = 1
	maxManifest     = 16 << 20
)

// Manifest is dataset.json: what a dataset holds and how it was made.
type Manifest struct {
	Format  string `json:"format"`  // "mom-dataset"
	Version int    `json:"version"` // 1
	// Setting and Modalities (names, in modality-id order) say which
	// model the data trains; VocabRanges is the unified vocabulary, and
	// PatchDim the continuous patch size (0 without a continuous
	// modality).
	Setting     string   `json:"setting"`
	Modalities  []string `json:"modalities"`
	VocabRanges [][2]int `json:"vocab_ranges"`
	PatchDim    int      `json:"patch_dim,omitempty"`
	// Specials are the marker tokens (ids in the text range): documents and
	// modality spans.
	Specials map[string]int `json:"specials"`
	// Tokenizers maps a modality name to its tokenizer file (relative to
	// the folder); TokenizerInfo describes each.
	Tokenizers    map[string]string        `json:"tokenizers"`
	TokenizerInfo map[string]TokenizerInfo `json:"tokenizer_info"`
	// Splits are "train" and "eval" (held out by source item).
	Splits map[string]Split `json:"splits"`
	// Sources lists where the items came from and how they split.
	Sources []Source `json:"sources"`
	// Documents counts documents by kind ("caption-image", "text", ...).
	Documents map[string]int `json:"documents"`
	// Figures are the tokenizers' reported losses of information and
	// statistics (e.g. "text_bytes_per_token", "image_psnr_db").
	Figures map[string]float64 `json:"figures,omitempty"`
	Seed    uint64             `json:"seed"`
	Limit   int                `json:"limit,omitempty"`
	// BuildSeconds is the wall time of the build; Created its end (RFC 3339).
	BuildSeconds float64 `json:"build_seconds"`
	Created      string  `json:"created"`
}

// TokenizerInfo describes one tokenizer file.
type TokenizerInfo struct {
	Kind    string `json:"kind"`    // "bpe", "vq", "patches", "units"
	Version int    `json:"version"` // the tokenizer file format's version
	Size    int    `json:"size"`    // ids it makes (its vocabulary range's size)
	SHA256  string `json:"sha256,omitempty"`
}

// Split describes one token file.
type Split struct {
	File      string           `json:"file"`
	Tokens    int64            `json:"tokens"`
	Documents int              `json:"documents"`
	Bytes     int64            `json:"bytes"`
	SHA256    string           `json:"sha256"`
	PerModal  map[string]int64 `json:"tokens_per_modality"`
}

// Source is one source of items: how many it offered, how many the build
// took (Limit samples them), and how those split.
type Source struct {
	Name      string `json:"name"`
	Path      string `json:"path,omitempty"`
	Available int    `json:"available"`
	Items     int    `json:"items"`
	Train     int    `json:"train"`
	Eval      int    `json:"eval"`
}

// SplitNames are the splits every dataset has.
var SplitNames = []string{"train", "eval"}

// ParseManifest reads and checks a manifest: format and version, a known
// setting whose modalities match, contiguous vocabulary ranges, every file
// name a plain name inside the folder, both splits present.
func ParseManifest(b []byte) (*Manifest, error) {
	if len(b) > maxManifest {
		return nil, fmt.Errorf("manifest is %d bytes, more than the %d-byte limit", len(b), maxManifest)
	}
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("manifest: bad JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("manifest: trailing data after the JSON object")
	}
	if err := m.validate(); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	return &m, nil
}

func (m *Manifest) validate() error {
	if m.Format != ManifestFormat {
		return fmt.Errorf("format %.32q, want %q", m.Format, ManifestFormat)
	}
	if m.Version != ManifestVersion {
		return fmt.Errorf("version %d, this build reads version %d", m.Version, ManifestVersion)
	}
	spec, err := mom.LookupSetting(mom.Setting(m.Setting))
	if err != nil {
		return err
	}
	names := (mom.Config{Modalities: spec.Modalities}).ModalityNames()
	if !slices.Equal(m.Modalities, names) {
		return fmt.Errorf("modalities %q, the %s setting has %q", m.Modalities, m.Setting, names)
	}
	if err := m.Vocab().Validate(); err != nil {
		return err
	}
	for i, r := range m.VocabRanges {
		if r[1] <= r[0] {
			return fmt.Errorf("the %s vocabulary range [%d, %d) is empty", m.Modalities[i], r[0], r[1])
		}
		if spec.Modalities[i].Continuous && r[1]-r[0] != mom.TimestepBuckets {
			return fmt.Errorf("the continuous %s range has %d ids, want %d", m.Modalities[i], r[1]-r[0], mom.TimestepBuckets)
		}
	}
	cont := (mom.Config{Modalities: spec.Modalities}).Continuous()
	if cont != (m.PatchDim > 0) || m.PatchDim < 0 {
		return fmt.Errorf("patch_dim %d for a setting with%s continuous modalities", m.PatchDim, map[bool]string{true: "", false: "out"}[cont])
	}
	textEnd := m.VocabRanges[0][1]
	for name, id := range m.Specials {
		if id < 0 || id >= textEnd {
			return fmt.Errorf("special %.32q has id %d outside the text range [0, %d)", name, id, textEnd)
		}
	}
	for mod, file := range m.Tokenizers {
		if !slices.Contains(m.Modalities, mod) {
			return fmt.Errorf("a tokenizer for %.32q, which is not a modality of the dataset", mod)
		}
		if err := plainName(file); err != nil {
			return fmt.Errorf("tokenizer of %s: %w", mod, err)
		}
	}
	for _, s := range SplitNames {
		sp, ok := m.Splits[s]
		if !ok {
			return fmt.Errorf("no %s split", s)
		}
		if err := plainName(sp.File); err != nil {
			return fmt.Errorf("%s split: %w", s, err)
		}
		if sp.Tokens < 2 {
			return fmt.Errorf("the %s split has %d tokens; training needs at least 2", s, sp.Tokens)
		}
	}
	if len(m.Splits) != len(SplitNames) {
		return fmt.Errorf("%d splits, want %v", len(m.Splits), SplitNames)
	}
	return nil
}

// plainName accepts a file name inside the dataset folder.
func plainName(f string) error {
	if f == "" || f != filepath.Base(f) || f == "." || f == ".." || strings.ContainsAny(f, `/\`) {
		return fmt.Errorf("file %.64q is not a plain name inside the dataset folder", f)
	}
	return nil
}

// Vocab is the dataset's unified vocabulary.
func (m *Manifest) Vocab() data.Vocab {
	v := data.Vocab{Names: m.Modalities}
	for _, r := range m.VocabRanges {
		v.Ranges = append(v.Ranges, [2]uint32{uint32(max(r[0], 0)), uint32(max(r[1], 0))})
	}
	return v
}

// JSON returns the manifest as indented JSON.
func (m *Manifest) JSON() []byte {
	b, _ := json.MarshalIndent(m, "", "  ")
	return append(b, '\n')
}

// write checks the manifest and writes it atomically into dir.
func (m *Manifest) write(dir string) error {
	if err := m.validate(); err != nil {
		return fmt.Errorf("dataset: manifest: %w", err)
	}
	return atomicfile.WriteFile(filepath.Join(dir, ManifestName), m.JSON(), 0o644)
}

// fileSHA256 hashes a file.
func fileSHA256(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}
