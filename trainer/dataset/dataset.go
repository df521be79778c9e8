package dataset

import (
	"fmt"
	"os"
	"path/filepath"

	"mom/mom"
	"mom/trainer/data"
)

// Dataset is an opened dataset folder.
type Dataset struct {
	Dir      string
	Manifest *Manifest
}

// IsDataset reports whether dir looks like a dataset folder (it holds a
// manifest).
func IsDataset(dir string) bool {
	fi, err := os.Stat(filepath.Join(dir, ManifestName))
	return err == nil && fi.Mode().IsRegular()
}

// Open reads a dataset folder's manifest and checks that every file it
// names is there with the recorded size and SHA-256, so that a damaged or
// half-copied dataset is refused before training starts.
func Open(dir string) (*Dataset, error) {
	b, err := os.ReadFile(filepath.Join(dir, ManifestName))
	if err != nil {
		if os.IsNotExist(err) {
			return nil, fmt.Errorf("dataset %s: no %s (build one with `mom data build`)", dir, ManifestName)
		}
		return nil, fmt.Errorf("dataset %s: %w", dir, err)
	}
	m, err := ParseManifest(b)
	if err != nil {
		return nil, fmt.Errorf("dataset %s: %w", dir, err)
	}
	d := &Dataset{Dir: dir, Manifest: m}
	for _, s := range SplitNames {
		sp := m.Splits[s]
		sum, n, err := fileSHA256(d.Path(sp.File))
		switch {
		case err != nil:
			return nil, fmt.Errorf("dataset %s: %s split: %w", dir, s, err)
		case n != sp.Bytes:
			return nil, fmt.Errorf("dataset %s: %s is %d bytes, the manifest records %d (truncated or replaced)", dir, sp.File, n, sp.Bytes)
		case sum != sp.SHA256:
			return nil, fmt.Errorf("dataset %s: %s is corrupt: SHA-256 %s, the manifest records %.64s", dir, sp.File, sum, sp.SHA256)
		}
	}
	for mod, f := range m.Tokenizers {
		info := m.TokenizerInfo[mod]
		sum, _, err := fileSHA256(d.Path(f))
		switch {
		case err != nil:
			return nil, fmt.Errorf("dataset %s: %s tokenizer: %w", dir, mod, err)
		case info.SHA256 != "" && sum != info.SHA256:
			return nil, fmt.Errorf("dataset %s: the %s tokenizer %s is corrupt: SHA-256 %s, the manifest records %.64s", dir, mod, f, sum, info.SHA256)
		}
	}
	return d, nil
}

// Path is the path of a file of the dataset.
func (d *Dataset) Path(name string) string { return filepath.Join(d.Dir, name) }

// TokenizerPath is the file of modality mod's tokenizer, or "" if the
// dataset has none for it.
func (d *Dataset) TokenizerPath(mod string) string {
	f, ok := d.Manifest.Tokenizers[mod]
	if !ok {
		return ""
	}
	return d.Path(f)
}

// ModelConfig fits a model config to the dataset: the setting must be the
// dataset's; the vocabulary ranges and the patch size become the
// dataset's.
func (d *Dataset) ModelConfig(c mom.Config) (mom.Config, error) {
	m := d.Manifest
	if string(c.Setting) != m.Setting {
		return c, fmt.Errorf("dataset %s holds %s data; the model is set up for %s (use --setting %s)", d.Dir, m.Setting, c.Setting, m.Setting)
	}
	sizes := make([]int, len(m.VocabRanges))
	for i, r := range m.VocabRanges {
		sizes[i] = r[1] - r[0]
	}
	if err := c.SetVocab(sizes); err != nil {
		return c, fmt.Errorf("dataset %s: %w", d.Dir, err)
	}
	c.PatchDim = m.PatchDim
	if err := c.Validate(); err != nil {
		return c, fmt.Errorf("dataset %s: %w", d.Dir, err)
	}
	return c, nil
}

// OpenSplit opens a split's token file ("train" or "eval"), checked whole,
// and checks that it agrees with the manifest.
func (d *Dataset) OpenSplit(split string) (*data.TokFile, error) {
	sp, ok := d.Manifest.Splits[split]
	if !ok {
		return nil, fmt.Errorf("dataset %s has no %q split", d.Dir, split)
	}
	f, err := data.OpenTokFile(d.Path(sp.File))
	if err != nil {
		return nil, err
	}
	if v := d.Manifest.Vocab(); !f.Vocab().Equal(v) {
		f.Close()
		return nil, fmt.Errorf("dataset %s: %s has the vocabulary %v, the manifest %v", d.Dir, sp.File, f.Vocab(), v)
	}
	if f.Len() != sp.Tokens {
		f.Close()
		return nil, fmt.Errorf("dataset %s: %s holds %d tokens, the manifest records %d", d.Dir, sp.File, f.Len(), sp.Tokens)
	}
	return f, nil
}
