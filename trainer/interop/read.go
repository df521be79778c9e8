package interop

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"mom/mom"
	"mom/trainer"
	"mom/trainer/interop/torchpickle"
	"mom/trainer/safetensors"
)

// File names of an ecosystem checkpoint folder.
const (
	fileConfig    = "config.json"
	fileWeights   = "model.safetensors"
	fileIndex     = "model.safetensors.index.json"
	filePickle    = "pytorch_model.bin"
	fileTokenizer = "tokenizer.json"
	fileMom       = "mom.json"
)

// Size limits for the small files read whole.
const (
	maxJSON      = 16 << 20
	maxTokenizer = 256 << 20
)

// readSmall reads a file of at most limit bytes.
func readSmall(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, limit)
	}
	return b, nil
}

func isFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// IsRun reports whether path is a mom run folder, checkpoints folder or
// checkpoint step folder.
func IsRun(path string) bool {
	return isFile(filepath.Join(path, "checkpoints", "latest")) || isFile(filepath.Join(path, "latest")) ||
		isFile(filepath.Join(path, "state.json"))
}

// Read reads a model: a mom run (or checkpoint) folder, or a folder in one
// of the ecosystem's layouts (see ReadDir).
func Read(path string) (*Model, error) {
	if !isDir(path) {
		return nil, fmt.Errorf("interop: %s is not a folder", path)
	}
	if IsRun(path) {
		return ReadRun(path)
	}
	return ReadDir(path)
}

// ReadRun reads a mom checkpoint (a run, checkpoints or step folder) and
// the run's text tokenizer where it has one.
func ReadRun(path string) (*Model, error) {
	ck, err := trainer.LoadCheckpointAt(path)
	if err != nil {
		return nil, fmt.Errorf("interop: %w", err)
	}
	var c mom.Config
	if err := json.Unmarshal(ck.Config, &c); err != nil {
		return nil, fmt.Errorf("interop: checkpoint %s: its config: %w", path, err)
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("interop: checkpoint %s: %w", path, err)
	}
	m := &Model{Config: c, Params: map[string][]float32{}, Source: fmt.Sprintf("%s (step %d)", path, ck.Step)}
	for _, t := range ck.Params {
		v, err := t.Float32s()
		if err != nil {
			return nil, fmt.Errorf("interop: checkpoint %s: %w", path, err)
		}
		m.Params[t.Name] = v
	}
	if err := m.Check(); err != nil {
		return nil, err
	}
	if tok, from, err := RunTokenizer(path); err != nil {
		return nil, err
	} else if tok != nil {
		m.Tokenizer = tok
		m.Notes = append(m.Notes, "text tokenizer from "+from)
	}
	return m, nil
}

// RunFolder returns the run folder of a run, checkpoints or step folder.
func RunFolder(path string) string {
	p := filepath.Clean(path)
	switch {
	case isDir(filepath.Join(p, "checkpoints")):
		return p
	case filepath.Base(p) == "checkpoints":
		return filepath.Dir(p)
	case filepath.Base(filepath.Dir(p)) == "checkpoints":
		return filepath.Dir(filepath.Dir(p))
	}
	return p
}

// RunTokenizer finds a run's text tokenizer: the run folder's own
// tokenizer.json (an imported run), or the text tokenizer of the dataset
// its config.json names in "data". It returns nil when there is none (a
// synthetic run), and the file it read.
func RunTokenizer(path string) ([]byte, string, error) {
	run := RunFolder(path)
	if p := filepath.Join(run, fileTokenizer); isFile(p) {
		b, err := readSmall(p, maxTokenizer)
		return b, p, err
	}
	b, err := readSmall(filepath.Join(run, fileConfig), maxJSON)
	if errors.Is(err, os.ErrNotExist) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("interop: %w", err)
	}
	var rc struct {
		Data string `json:"data"`
	}
	if err := json.Unmarshal(b, &rc); err != nil {
		return nil, "", fmt.Errorf("interop: %s: %w", filepath.Join(run, fileConfig), err)
	}
	if rc.Data == "" || rc.Data == "synthetic" || !isDir(rc.Data) || !isFile(filepath.Join(rc.Data, fileDataset)) {
		return nil, "", nil
	}
	ds, err := ReadDataset(rc.Data)
	if err != nil {
		return nil, "", err
	}
	return ds.TextTokenizer()
}

// ReadDir reads a folder in transformers', mamba_ssm's or the paper
// export's layout: config.json, and the weights in model.safetensors, a
// sharded model.safetensors.index.json, or pytorch_model.bin (a torch.save
// state dict); mom.json, where present, restores mom's config of an
// exported model, and tokenizer.json is kept.
func ReadDir(dir string) (*Model, error) {
	cb, err := readSmall(filepath.Join(dir, fileConfig), maxJSON)
	if err != nil {
		return nil, fmt.Errorf("interop: %s: %w", dir, err)
	}
	pc, err := parseConfig(cb)
	if err != nil {
		return nil, fmt.Errorf("interop: %s: %w", dir, err)
	}
	c := pc.Config
	if p := filepath.Join(dir, fileMom); isFile(p) {
		b, err := readSmall(p, maxJSON)
		if err != nil {
			return nil, fmt.Errorf("interop: %w", err)
		}
		if c, err = parseMomFile(b, c); err != nil {
			return nil, fmt.Errorf("interop: %s: %w", dir, err)
		}
	}
	ts, from, err := readWeights(dir)
	if err != nil {
		return nil, err
	}
	m, err := fromFileTensors(c, pc.Format, pc.ConvBias, ts, from)
	if err != nil {
		return nil, err
	}
	m.Notes = append(pc.Notes, m.Notes...)
	if p := filepath.Join(dir, fileTokenizer); isFile(p) {
		if m.Tokenizer, err = readSmall(p, maxTokenizer); err != nil {
			return nil, fmt.Errorf("interop: %w", err)
		}
	}
	return m, nil
}

// readWeights reads the folder's tensors and says which file(s) they came
// from.
func readWeights(dir string) ([]safetensors.Tensor, string, error) {
	var have []string
	for _, n := range []string{fileWeights, fileIndex, filePickle} {
		if isFile(filepath.Join(dir, n)) {
			have = append(have, n)
		}
	}
	if len(have) == 0 {
		return nil, "", fmt.Errorf("interop: %s has no weights: want %s, %s or %s", dir, fileWeights, fileIndex, filePickle)
	}
	switch p := filepath.Join(dir, have[0]); have[0] {
	case fileWeights:
		ts, _, err := safetensors.Read(p)
		if err != nil {
			return nil, "", fmt.Errorf("interop: %w", err)
		}
		return ts, p, nil
	case fileIndex:
		return readSharded(dir)
	default:
		ts, err := torchpickle.Read(p)
		if err != nil {
			return nil, "", fmt.Errorf("interop: %w", err)
		}
		return ts, p, nil
	}
}

// parseIndex reads model.safetensors.index.json: its weight_map from
// tensor names to shard files, which must be plain file names in the same
// folder.
func parseIndex(b []byte) (map[string]string, error) {
	var idx struct {
		Metadata  map[string]any    `json:"metadata"`
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := json.Unmarshal(b, &idx); err != nil {
		return nil, fmt.Errorf("not a safetensors index: %w", err)
	}
	if len(idx.WeightMap) == 0 {
		return nil, errors.New("weight_map is missing or empty")
	}
	for name, file := range idx.WeightMap {
		if file == "" || file != filepath.Base(file) || file == "." || file == ".." || strings.ContainsAny(file, `/\`) {
			return nil, fmt.Errorf("weight_map sends %s to %q, not a file name in the same folder", truncate(name, 80), truncate(file, 80))
		}
		if !strings.HasSuffix(file, ".safetensors") {
			return nil, fmt.Errorf("weight_map sends %s to %q, not a .safetensors file", truncate(name, 80), truncate(file, 80))
		}
	}
	return idx.WeightMap, nil
}

func readSharded(dir string) ([]safetensors.Tensor, string, error) {
	ip := filepath.Join(dir, fileIndex)
	b, err := readSmall(ip, maxJSON)
	if err != nil {
		return nil, "", fmt.Errorf("interop: %w", err)
	}
	wm, err := parseIndex(b)
	if err != nil {
		return nil, "", fmt.Errorf("interop: %s: %w", ip, err)
	}
	files := map[string][]string{}
	for name, f := range wm {
		files[f] = append(files[f], name)
	}
	shards := sortedKeys(files)
	var out []safetensors.Tensor
	for _, f := range shards {
		ts, _, err := safetensors.Read(filepath.Join(dir, f))
		if err != nil {
			return nil, "", fmt.Errorf("interop: %s names shard %s: %w", ip, f, err)
		}
		for _, t := range ts {
			if wm[t.Name] != f {
				return nil, "", fmt.Errorf("interop: shard %s holds %s, which %s places in %q", filepath.Join(dir, f), t.Name, ip, wm[t.Name])
			}
		}
		got := map[string]bool{}
		for _, t := range ts {
			got[t.Name] = true
		}
		var missing []string
		for _, n := range files[f] {
			if !got[n] {
				missing = append(missing, n)
			}
		}
		if len(missing) > 0 {
			sort.Strings(missing)
			return nil, "", fmt.Errorf("interop: shard %s lacks %s, which %s places there", filepath.Join(dir, f), strings.Join(missing, ", "), ip)
		}
		out = append(out, ts...)
	}
	return out, fmt.Sprintf("%s (%d shards)", ip, len(shards)), nil
}
