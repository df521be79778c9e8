package trainer

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"mom/trainer/atomicfile"
	"mom/trainer/safetensors"
)

// Checkpoint is everything needed to resume a run exactly.
type Checkpoint struct {
	Step      int                  // optimizer steps taken
	Tokens    int64                // training tokens consumed
	FLOPs     float64              // training FLOPs spent
	Params    []safetensors.Tensor // model parameters (F32)
	Optimizer []safetensors.Tensor // optimizer state, e.g. "m.<param>", "v.<param>" (F32)
	RNG       []byte               // opaque RNG state (math/rand/v2 PCG MarshalBinary)
	Data      json.RawMessage      // opaque data-stream position (Stream.State); must be valid JSON (or empty), stored re-indented
	Config    json.RawMessage      // the run's config; must be valid JSON (or empty), stored re-indented
	Meta      map[string]string    // free-form (e.g. the git commit, the time saved)
}

// ErrNoCheckpoint is wrapped by LoadCheckpoint's error when the folder holds
// no checkpoint at all (no "latest" file), as opposed to a damaged one.
var ErrNoCheckpoint = errors.New("no checkpoint")

// Checkpoint file names.
const (
	ckptLatest    = "latest"
	ckptModel     = "model.safetensors"
	ckptOptimizer = "optimizer.safetensors"
	ckptState     = "state.json"
	ckptFormat    = "mom-checkpoint"
	ckptVersion   = 1
	ckptTmpPrefix = ".tmp-"
	ckptOldPrefix = ".old-"
)

// ckptStateFile is the layout of state.json.
type ckptStateFile struct {
	Format  string              `json:"format"`
	Version int                 `json:"version"`
	Step    int                 `json:"step"`
	Tokens  int64               `json:"tokens"`
	FLOPs   float64             `json:"flops"`
	RNG     []byte              `json:"rng"` // base64
	Data    json.RawMessage     `json:"data,omitempty"`
	Config  json.RawMessage     `json:"config,omitempty"`
	Meta    map[string]string   `json:"meta,omitempty"`
	Files   map[string]ckptFile `json:"files"`
}

// ckptFile records a tensor file's size and SHA-256, so that a truncated or
// corrupted file is told apart from a good one.
type ckptFile struct {
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// StepDirName is the folder name of the checkpoint of a step:
// step_00000123.
func StepDirName(step int) string { return fmt.Sprintf("step_%08d", step) }

// parseStepDirName returns the step of a folder named by StepDirName.
func parseStepDirName(name string) (int, bool) {
	s, ok := strings.CutPrefix(name, "step_")
	if !ok || s == "" {
		return 0, false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(s)
	return n, err == nil
}

// ckptTestHook, when set (by tests), is called at each stage of
// SaveCheckpoint; an error it returns aborts the save there, as a crash
// would.
var ckptTestHook func(stage string) error

func ckptStage(stage string) error {
	if ckptTestHook != nil {
		return ckptTestHook(stage)
	}
	return nil
}

// SaveCheckpoint writes c into dir (a run's checkpoints folder, created if
// needed) as dir/step_%08d/{model.safetensors, optimizer.safetensors,
// state.json} and returns that folder's path.
//
// The folder is written under a temporary name, every file synced, and
// renamed into place only when complete; then the file dir/latest is
// replaced atomically to name it. A crash at any point therefore leaves
// "latest" naming a complete checkpoint (the new one or the previous one).
// Saving a step that already has a folder replaces that folder (there is a
// moment, between two renames, where a crash would leave "latest" naming a
// missing folder; LoadCheckpoint then reports that clearly).
//
// After the save, only the newest keep step folders (by step number) are
// kept, and temporary folders left by interrupted saves are removed; keep
// <= 0 keeps all. The folder just written is never pruned. One process at a
// time may save into dir. An error from pruning is returned together with
// the path of the (complete) new checkpoint.
func SaveCheckpoint(dir string, c *Checkpoint, keep int) (string, error) {
	if c == nil {
		return "", errors.New("trainer: SaveCheckpoint: nil checkpoint")
	}
	if c.Step < 0 {
		return "", fmt.Errorf("trainer: SaveCheckpoint: negative step %d", c.Step)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("trainer: checkpoint folder: %w", err)
	}
	name := StepDirName(c.Step)
	final := filepath.Join(dir, name)
	tmp, err := os.MkdirTemp(dir, ckptTmpPrefix+name+"-")
	if err != nil {
		return "", fmt.Errorf("trainer: checkpoint %s: %w", final, err)
	}
	if err := writeStepDir(tmp, c); err != nil {
		os.RemoveAll(tmp)
		return "", fmt.Errorf("trainer: checkpoint %s: %w", final, err)
	}
	if err := ckptStage("before-rename"); err != nil {
		os.RemoveAll(tmp)
		return "", fmt.Errorf("trainer: checkpoint %s: %w", final, err)
	}
	// Move an existing folder of the same step aside, then the new one in.
	old := ""
	if _, err := os.Lstat(final); err == nil {
		old = filepath.Join(dir, ckptOldPrefix+name+filepath.Base(tmp)[len(ckptTmpPrefix+name):])
		if err := os.Rename(final, old); err != nil {
			os.RemoveAll(tmp)
			return "", fmt.Errorf("trainer: checkpoint %s: moving the old one aside: %w", final, err)
		}
	}
	if err := os.Rename(tmp, final); err != nil {
		os.RemoveAll(tmp)
		return "", fmt.Errorf("trainer: checkpoint %s: %w", final, err)
	}
	if err := atomicfile.SyncDir(dir); err != nil {
		return "", fmt.Errorf("trainer: checkpoint %s: %w", final, err)
	}
	if err := ckptStage("before-latest"); err != nil {
		return "", fmt.Errorf("trainer: checkpoint %s: %w", final, err)
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, ckptLatest), []byte(name+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("trainer: checkpoint %s: updating latest: %w", final, err)
	}
	if old != "" {
		if err := os.RemoveAll(old); err != nil {
			return final, fmt.Errorf("trainer: checkpoint %s saved; removing the replaced one: %w", final, err)
		}
	}
	if err := pruneCheckpoints(dir, name, keep); err != nil {
		return final, fmt.Errorf("trainer: checkpoint %s saved; pruning: %w", final, err)
	}
	return final, nil
}

// writeStepDir writes the three files of a checkpoint into folder d.
func writeStepDir(d string, c *Checkpoint) error {
	st := ckptStateFile{
		Format: ckptFormat, Version: ckptVersion,
		Step: c.Step, Tokens: c.Tokens, FLOPs: c.FLOPs,
		RNG: c.RNG, Data: c.Data, Config: c.Config, Meta: c.Meta,
		Files: map[string]ckptFile{},
	}
	stMeta := map[string]string{"format": ckptFormat, "step": strconv.Itoa(c.Step)}
	for _, f := range []struct {
		name string
		ts   []safetensors.Tensor
	}{{ckptModel, c.Params}, {ckptOptimizer, c.Optimizer}} {
		info, err := writeHashedSafetensors(filepath.Join(d, f.name), f.ts, stMeta)
		if err != nil {
			return err
		}
		st.Files[f.name] = info
		if err := ckptStage("after-" + f.name); err != nil {
			return err
		}
	}
	js, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding %s: %w", ckptState, err)
	}
	return atomicfile.WriteFile(filepath.Join(d, ckptState), append(js, '\n'), 0o644)
}

// writeHashedSafetensors writes a safetensors file and returns its size and
// SHA-256, computed while writing.
func writeHashedSafetensors(path string, ts []safetensors.Tensor, meta map[string]string) (ckptFile, error) {
	h := sha256.New()
	var n int64
	err := atomicfile.Write(path, 0o644, func(w io.Writer) error {
		return safetensors.Encode(&countingWriter{w: io.MultiWriter(w, h), n: &n}, ts, meta)
	})
	if err != nil {
		return ckptFile{}, err
	}
	return ckptFile{Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

type countingWriter struct {
	w io.Writer
	n *int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	k, err := c.w.Write(p)
	*c.n += int64(k)
	return k, err
}

// pruneCheckpoints removes all but the newest keep step folders (never
// current) and leftovers of interrupted saves.
func pruneCheckpoints(dir, current string, keep int) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	type sd struct {
		name string
		step int
	}
	var steps []sd
	var errs []error
	for _, e := range ents {
		n := e.Name()
		if strings.HasPrefix(n, ckptTmpPrefix+"step_") || strings.HasPrefix(n, ckptOldPrefix+"step_") {
			if err := os.RemoveAll(filepath.Join(dir, n)); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		if s, ok := parseStepDirName(n); ok && e.IsDir() && n != current {
			steps = append(steps, sd{n, s})
		}
	}
	if keep <= 0 {
		return errors.Join(errs...)
	}
	// current counts as one of the keep.
	sort.Slice(steps, func(i, j int) bool { return steps[i].step > steps[j].step })
	for i, s := range steps {
		if i < keep-1 {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, s.name)); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// LoadCheckpoint loads the checkpoint that dir/latest names (dir is a run's
// checkpoints folder). The error wraps ErrNoCheckpoint when there is no
// "latest" file; a missing, truncated or corrupt checkpoint gives an error
// naming the folder and the file at fault. It never falls back to an older
// checkpoint by itself: the caller decides (LoadCheckpointAt loads a given
// one).
func LoadCheckpoint(dir string) (*Checkpoint, error) {
	lp := filepath.Join(dir, ckptLatest)
	b, err := os.ReadFile(lp)
	if errors.Is(err, os.ErrNotExist) {
		if _, serr := os.Stat(dir); serr != nil {
			return nil, fmt.Errorf("trainer: %w in %s: %w", ErrNoCheckpoint, dir, serr)
		}
		return nil, fmt.Errorf("trainer: %w in %s (no %s file)", ErrNoCheckpoint, dir, ckptLatest)
	}
	if err != nil {
		return nil, fmt.Errorf("trainer: reading %s: %w", lp, err)
	}
	name := strings.TrimSpace(string(b))
	if _, ok := parseStepDirName(name); !ok {
		return nil, fmt.Errorf("trainer: %s is corrupt: %q does not name a step folder", lp, truncate(name, 64))
	}
	p := filepath.Join(dir, name)
	if _, err := os.Stat(p); err != nil {
		return nil, fmt.Errorf("trainer: %s names %s, which is missing: %w", lp, name, err)
	}
	return loadStepDir(p)
}

// LoadCheckpointAt loads the checkpoint at path: a step folder
// (runs/NAME/checkpoints/step_00000123), or a checkpoints folder (meaning
// its latest), or a run folder holding checkpoints/ (its latest).
func LoadCheckpointAt(path string) (*Checkpoint, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("trainer: checkpoint: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("trainer: checkpoint %s is not a folder", path)
	}
	if exists(filepath.Join(path, ckptLatest)) {
		return LoadCheckpoint(path)
	}
	if exists(filepath.Join(path, "checkpoints", ckptLatest)) {
		return LoadCheckpoint(filepath.Join(path, "checkpoints"))
	}
	if !exists(filepath.Join(path, ckptState)) {
		if _, ok := parseStepDirName(filepath.Base(path)); !ok {
			return nil, fmt.Errorf("trainer: %s is neither a checkpoint step folder nor holds a %s file", path, ckptLatest)
		}
	}
	return loadStepDir(path)
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// loadStepDir loads and verifies one step folder.
func loadStepDir(d string) (*Checkpoint, error) {
	sp := filepath.Join(d, ckptState)
	b, err := os.ReadFile(sp)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("trainer: checkpoint %s is incomplete: no %s", d, ckptState)
	}
	if err != nil {
		return nil, fmt.Errorf("trainer: checkpoint %s: %w", d, err)
	}
	var st ckptStateFile
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("trainer: checkpoint %s: %s is corrupt: %w", d, ckptState, err)
	}
	if st.Format != ckptFormat {
		return nil, fmt.Errorf("trainer: checkpoint %s: %s has format %q, want %q", d, ckptState, truncate(st.Format, 64), ckptFormat)
	}
	if st.Version != ckptVersion {
		return nil, fmt.Errorf("trainer: checkpoint %s: %s has version %d, this build reads %d", d, ckptState, st.Version, ckptVersion)
	}
	if s, ok := parseStepDirName(filepath.Base(d)); ok && s != st.Step {
		return nil, fmt.Errorf("trainer: checkpoint %s: %s records step %d", d, ckptState, st.Step)
	}
	c := &Checkpoint{
		Step: st.Step, Tokens: st.Tokens, FLOPs: st.FLOPs,
		RNG: st.RNG, Data: st.Data, Config: st.Config, Meta: st.Meta,
	}
	for _, f := range []struct {
		name string
		dst  *[]safetensors.Tensor
	}{{ckptModel, &c.Params}, {ckptOptimizer, &c.Optimizer}} {
		want, ok := st.Files[f.name]
		if !ok {
			return nil, fmt.Errorf("trainer: checkpoint %s: %s does not record %s", d, ckptState, f.name)
		}
		p := filepath.Join(d, f.name)
		data, err := os.ReadFile(p)
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("trainer: checkpoint %s is incomplete: no %s", d, f.name)
		}
		if err != nil {
			return nil, fmt.Errorf("trainer: checkpoint %s: %w", d, err)
		}
		if int64(len(data)) != want.Size {
			return nil, fmt.Errorf("trainer: checkpoint %s: %s is %d bytes, %s records %d (truncated or replaced)", d, f.name, len(data), ckptState, want.Size)
		}
		if got := hexSum(sha256.New(), data); got != want.SHA256 {
			return nil, fmt.Errorf("trainer: checkpoint %s: %s is corrupt: SHA-256 %s, %s records %s", d, f.name, got, ckptState, truncate(want.SHA256, 64))
		}
		ts, _, err := safetensors.Decode(data)
		if err != nil {
			return nil, fmt.Errorf("trainer: checkpoint %s: %s: %w", d, f.name, err)
		}
		*f.dst = ts
	}
	return c, nil
}

func hexSum(h hash.Hash, b []byte) string {
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))
}

// truncate shortens s for an error message.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
