package interop

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"mom/mom"
)

const fileDataset = "dataset.json"

// Dataset is what import needs of a dataset folder's dataset.json (written
// by `mom data build`): the setting, the modalities in id order, their
// vocabulary ranges, and the tokenizer files.
type Dataset struct {
	Dir         string
	Setting     mom.Setting
	Modalities  []string
	VocabRanges [][2]int
	PatchDim    int
	Tokenizers  map[string]string // modality -> file name in Dir
}

// ReadDataset reads dir/dataset.json.
func ReadDataset(dir string) (*Dataset, error) {
	p := filepath.Join(dir, fileDataset)
	b, err := readSmall(p, maxJSON)
	if err != nil {
		return nil, fmt.Errorf("interop: dataset %s: %w", dir, err)
	}
	ds, err := parseDataset(b)
	if err != nil {
		return nil, fmt.Errorf("interop: %s: %w", p, err)
	}
	ds.Dir = dir
	return ds, nil
}

// parseDataset reads and checks dataset.json's fields that import uses;
// other fields are ignored.
func parseDataset(b []byte) (*Dataset, error) {
	var raw struct {
		Setting     string            `json:"setting"`
		Modalities  []string          `json:"modalities"`
		VocabRanges [][2]int          `json:"vocab_ranges"`
		PatchDim    int               `json:"patch_dim"`
		Tokenizers  map[string]string `json:"tokenizers"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, err
	}
	if len(raw.Modalities) == 0 || len(raw.Modalities) > mom.MaxModalities {
		return nil, fmt.Errorf("%d modalities, want 1 to %d", len(raw.Modalities), mom.MaxModalities)
	}
	if len(raw.VocabRanges) != len(raw.Modalities) {
		return nil, fmt.Errorf("%d vocab_ranges for %d modalities", len(raw.VocabRanges), len(raw.Modalities))
	}
	prev := 0
	for i, r := range raw.VocabRanges {
		if r[0] != prev || r[1] <= r[0] {
			return nil, fmt.Errorf("vocab range of %s is [%d, %d): ranges must be non-empty and contiguous from 0", raw.Modalities[i], r[0], r[1])
		}
		prev = r[1]
	}
	for m, f := range raw.Tokenizers {
		if f == "" || f != filepath.Base(f) || f == "." || f == ".." || strings.ContainsAny(f, `/\`) {
			return nil, fmt.Errorf("tokenizer of %s is %q, not a file name in the dataset folder", truncate(m, 32), truncate(f, 64))
		}
	}
	if raw.Setting == "" {
		return nil, errors.New("no setting")
	}
	return &Dataset{Setting: mom.Setting(raw.Setting), Modalities: raw.Modalities, VocabRanges: raw.VocabRanges, PatchDim: raw.PatchDim, Tokenizers: raw.Tokenizers}, nil
}

// TextTokenizer returns the dataset's text tokenizer file (nil when it
// names none) and its path.
func (d *Dataset) TextTokenizer() ([]byte, string, error) {
	f, ok := d.Tokenizers["text"]
	if !ok {
		return nil, "", nil
	}
	p := filepath.Join(d.Dir, f)
	b, err := readSmall(p, maxTokenizer)
	if err != nil {
		return nil, "", fmt.Errorf("interop: dataset %s: text tokenizer: %w", d.Dir, err)
	}
	return b, p, nil
}
