package runfolder

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

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
	// Dir is the step folder the checkpoint was loaded from (set by the
	// loaders; ignored by SaveCheckpoint).
	Dir string
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
	ckptVersion   = 2 // 2: state.json carries its own digest; 1 is still read
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
	// StateSHA256 is the SHA-256 of this structure's compact JSON with
	// StateSHA256 itself empty (version 2): any change of a value in
	// state.json (the data position, the RNG, the counters) is caught as
	// the tensor files' changes are.
	StateSHA256 string `json:"state_sha256,omitempty"`
}

// stateDigest computes StateSHA256 of st.
func stateDigest(st ckptStateFile) (string, error) {
	st.StateSHA256 = ""
	b, err := json.Marshal(st)
	if err != nil {
		return "", err
	}
	return hexSum(sha256.New(), b), nil
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

// ParseStepDirName returns the step of a folder named by StepDirName
// (any number of digits after "step_").
func ParseStepDirName(name string) (int, bool) {
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
		return "", errors.New("runfolder: SaveCheckpoint: nil checkpoint")
	}
	if c.Step < 0 {
		return "", fmt.Errorf("runfolder: SaveCheckpoint: negative step %d", c.Step)
	}
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return "", fmt.Errorf("runfolder: checkpoint folder: %w", err)
	}
	name := StepDirName(c.Step)
	final, old, err := replaceStepDir(dir, name, func(tmp string) error {
		if err := writeStepDir(tmp, c); err != nil {
			return err
		}
		return ckptStage("before-rename")
	})
	if err != nil {
		return "", fmt.Errorf("runfolder: checkpoint %s: %w", final, err)
	}
	if err := ckptStage("before-latest"); err != nil {
		return "", fmt.Errorf("runfolder: checkpoint %s: %w", final, err)
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, ckptLatest), []byte(name+"\n"), 0o666); err != nil {
		return "", fmt.Errorf("runfolder: checkpoint %s: updating latest: %w", final, err)
	}
	if old != "" {
		if err := os.RemoveAll(old); err != nil {
			return final, fmt.Errorf("runfolder: checkpoint %s saved; removing the replaced one: %w", final, err)
		}
	}
	if err := pruneCheckpoints(dir, name, keep); err != nil {
		return final, fmt.Errorf("runfolder: checkpoint %s saved; pruning: %w", final, err)
	}
	return final, nil
}

// replaceStepDir makes root/name anew: fill writes into a new temporary
// folder beside it, an existing root/name is moved aside (to old, which the
// caller removes once nothing points at it any more), the new folder is
// renamed into place and root is synced. A failed fill or rename removes
// the temporary folder and leaves root/name as it was.
func replaceStepDir(root, name string, fill func(tmp string) error) (final, old string, err error) {
	final = filepath.Join(root, name)
	tmp, err := atomicfile.MkdirTemp(root, ckptTmpPrefix+name+"-")
	if err != nil {
		return final, "", err
	}
	if err := fill(tmp); err != nil {
		os.RemoveAll(tmp)
		return final, "", err
	}
	if _, err := os.Lstat(final); err == nil {
		old = filepath.Join(root, ckptOldPrefix+name+filepath.Base(tmp)[len(ckptTmpPrefix+name):])
		if err := os.Rename(final, old); err != nil {
			os.RemoveAll(tmp)
			return final, "", fmt.Errorf("moving the old one aside: %w", err)
		}
	}
	if err := os.Rename(tmp, final); err != nil {
		os.RemoveAll(tmp)
		return final, old, err
	}
	return final, old, atomicfile.SyncDir(root)
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
	digest, err := stateDigest(st)
	if err != nil {
		return fmt.Errorf("encoding %s: %w", ckptState, err)
	}
	st.StateSHA256 = digest
	js, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding %s: %w", ckptState, err)
	}
	return atomicfile.WriteFile(filepath.Join(d, ckptState), append(js, '\n'), 0o666)
}

// writeHashedSafetensors writes a safetensors file and returns its size and
// SHA-256, computed while writing.
func writeHashedSafetensors(path string, ts []safetensors.Tensor, meta map[string]string) (ckptFile, error) {
	h := sha256.New()
	var n int64
	err := atomicfile.Write(path, 0o666, func(w io.Writer) error {
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
		if leftover(n) {
			if err := os.RemoveAll(filepath.Join(dir, n)); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		if s, ok := ParseStepDirName(n); ok && e.IsDir() && n != current {
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

// leftover reports whether a name in a checkpoints folder is a leftover of
// an interrupted save: a temporary step folder, a replaced one, or a
// temporary "latest".
func leftover(name string) bool {
	return strings.HasPrefix(name, ckptTmpPrefix+"step_") || strings.HasPrefix(name, ckptOldPrefix+"step_") ||
		strings.HasPrefix(name, "."+ckptLatest+".tmp-")
}

// CleanCheckpoints removes the leftovers of interrupted saves from a
// checkpoints folder (temporary step folders, replaced ones, temporary
// "latest" files) and returns their names. A missing folder is no error.
func CleanCheckpoints(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("runfolder: %w", err)
	}
	var removed []string
	var errs []error
	for _, e := range ents {
		if leftover(e.Name()) {
			if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
				errs = append(errs, err)
				continue
			}
			removed = append(removed, e.Name())
		}
	}
	if err := errors.Join(errs...); err != nil {
		return removed, fmt.Errorf("runfolder: cleaning %s: %w", dir, err)
	}
	return removed, nil
}

// ListCheckpoints returns the steps of the step folders (step_N) in a
// folder, newest first: the checkpoints of a checkpoints folder (intact or
// not), or a samples folder's steps. A missing folder has none.
func ListCheckpoints(dir string) ([]int, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("runfolder: %w", err)
	}
	var steps []int
	for _, e := range ents {
		if s, ok := ParseStepDirName(e.Name()); ok && e.IsDir() {
			steps = append(steps, s)
		}
	}
	sort.Sort(sort.Reverse(sort.IntSlice(steps)))
	return steps, nil
}

// Damaged is a checkpoint that could not be loaded, and why.
type Damaged struct {
	Dir string
	Err error
}

// LoadLatestIntact loads the newest intact checkpoint of a checkpoints
// folder: the one "latest" names if it loads, else the step folders newest
// first. It returns the damaged checkpoints it passed over (a damaged
// "latest" file among them). The error wraps ErrNoCheckpoint when dir
// holds no checkpoint at all (no "latest", no step folder); when every
// checkpoint is damaged it names each one and why.
func LoadLatestIntact(dir string) (*Checkpoint, []Damaged, error) {
	var damaged []Damaged
	c, err := LoadCheckpoint(dir)
	if err == nil {
		return c, nil, nil
	}
	steps, lerr := ListCheckpoints(dir)
	if lerr != nil {
		return nil, nil, lerr
	}
	tried := ""
	if !errors.Is(err, ErrNoCheckpoint) {
		damaged = append(damaged, Damaged{Dir: latestTarget(dir), Err: err})
		tried = latestTarget(dir)
	} else if len(steps) == 0 {
		return nil, nil, err
	}
	for _, s := range steps {
		p := filepath.Join(dir, StepDirName(s))
		if p == tried {
			continue
		}
		c, err := loadStepDir(p)
		if err == nil {
			return c, damaged, nil
		}
		damaged = append(damaged, Damaged{Dir: p, Err: err})
	}
	msgs := make([]string, len(damaged))
	for i, d := range damaged {
		msgs[i] = d.Err.Error()
	}
	return nil, damaged, fmt.Errorf("runfolder: no intact checkpoint in %s: %s", dir, strings.Join(msgs, "; "))
}

// latestTarget is the step folder dir/latest names, or dir/latest itself
// when it names none.
func latestTarget(dir string) string {
	b, err := os.ReadFile(filepath.Join(dir, ckptLatest))
	if err == nil {
		if name := strings.TrimSpace(string(b)); name != "" {
			if _, ok := ParseStepDirName(name); ok {
				return filepath.Join(dir, name)
			}
		}
	}
	return filepath.Join(dir, ckptLatest)
}

// SetAside renames a step folder to "<why>-step_N" (for example
// "damaged-step_00000200"), which no loader, listing or pruning takes for
// a checkpoint, and returns the new path. The contents are kept for a
// person to look at.
func SetAside(stepDir, why string) (string, error) {
	to := filepath.Join(filepath.Dir(stepDir), why+"-"+filepath.Base(stepDir))
	if _, err := os.Lstat(to); err == nil {
		to += "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	}
	if err := os.Rename(stepDir, to); err != nil {
		return "", fmt.Errorf("runfolder: setting %s aside: %w", stepDir, err)
	}
	return to, nil
}

// WriteLatest points the folder's "latest" at a step folder.
func WriteLatest(dir string, step int) error {
	if err := atomicfile.WriteFile(filepath.Join(dir, ckptLatest), []byte(StepDirName(step)+"\n"), 0o666); err != nil {
		return fmt.Errorf("runfolder: updating %s: %w", filepath.Join(dir, ckptLatest), err)
	}
	return nil
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
			return nil, fmt.Errorf("runfolder: %w in %s: %w", ErrNoCheckpoint, dir, serr)
		}
		return nil, fmt.Errorf("runfolder: %w in %s (no %s file)", ErrNoCheckpoint, dir, ckptLatest)
	}
	if err != nil {
		return nil, fmt.Errorf("runfolder: reading %s: %w", lp, err)
	}
	name := strings.TrimSpace(string(b))
	if _, ok := ParseStepDirName(name); !ok {
		return nil, fmt.Errorf("runfolder: %s is corrupt: %q does not name a step folder", lp, truncate(name, 64))
	}
	p := filepath.Join(dir, name)
	if _, err := os.Stat(p); err != nil {
		return nil, fmt.Errorf("runfolder: %s names %s, which is missing: %w", lp, name, err)
	}
	return loadStepDir(p)
}

// LoadCheckpointAt loads the checkpoint at path: a step folder
// (runs/NAME/checkpoints/step_00000123), or a checkpoints folder (meaning
// its latest), or a run folder holding checkpoints/ (its latest).
func LoadCheckpointAt(path string) (*Checkpoint, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("runfolder: checkpoint: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("runfolder: checkpoint %s is not a folder", path)
	}
	if exists(filepath.Join(path, ckptLatest)) {
		return LoadCheckpoint(path)
	}
	if exists(filepath.Join(path, "checkpoints", ckptLatest)) {
		return LoadCheckpoint(filepath.Join(path, "checkpoints"))
	}
	if !exists(filepath.Join(path, ckptState)) {
		if _, ok := ParseStepDirName(filepath.Base(path)); !ok {
			return nil, fmt.Errorf("runfolder: %s is neither a checkpoint step folder nor holds a %s file", path, ckptLatest)
		}
	}
	return loadStepDir(path)
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// parseState decodes and verifies the contents of a state.json; its error
// completes the phrase "state.json ...".
func parseState(b []byte) (ckptStateFile, error) {
	var st ckptStateFile
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("is corrupt: %w", err)
	}
	if st.Format != ckptFormat {
		return st, fmt.Errorf("has format %q, want %q", truncate(st.Format, 64), ckptFormat)
	}
	if st.Version != ckptVersion && st.Version != 1 {
		return st, fmt.Errorf("has version %d, this build reads 1 and %d", st.Version, ckptVersion)
	}
	if st.Version >= 2 {
		want, err := stateDigest(st)
		if err != nil {
			return st, err
		}
		if st.StateSHA256 != want {
			return st, fmt.Errorf("is corrupt: its contents do not match its digest (SHA-256 %s, recorded %s)", want, truncate(st.StateSHA256, 64))
		}
	}
	if st.Step < 0 || st.Tokens < 0 {
		return st, fmt.Errorf("records step %d and %d tokens", st.Step, st.Tokens)
	}
	for name, f := range st.Files {
		if f.Size < 0 {
			return st, fmt.Errorf("records %s with %d bytes", name, f.Size)
		}
	}
	return st, nil
}

// loadStepDir loads and verifies one step folder.
func loadStepDir(d string) (*Checkpoint, error) {
	sp := filepath.Join(d, ckptState)
	b, err := os.ReadFile(sp)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("runfolder: checkpoint %s is incomplete: no %s", d, ckptState)
	}
	if err != nil {
		return nil, fmt.Errorf("runfolder: checkpoint %s: %w", d, err)
	}
	st, err := parseState(b)
	if err != nil {
		return nil, fmt.Errorf("runfolder: checkpoint %s: %s %w", d, ckptState, err)
	}
	if s, ok := ParseStepDirName(filepath.Base(d)); ok && s != st.Step {
		return nil, fmt.Errorf("runfolder: checkpoint %s: %s records step %d", d, ckptState, st.Step)
	}
	c := &Checkpoint{
		Step: st.Step, Tokens: st.Tokens, FLOPs: st.FLOPs,
		RNG: st.RNG, Data: st.Data, Config: st.Config, Meta: st.Meta, Dir: d,
	}
	for _, f := range []struct {
		name string
		dst  *[]safetensors.Tensor
	}{{ckptModel, &c.Params}, {ckptOptimizer, &c.Optimizer}} {
		want, ok := st.Files[f.name]
		if !ok {
			return nil, fmt.Errorf("runfolder: checkpoint %s: %s does not record %s", d, ckptState, f.name)
		}
		p := filepath.Join(d, f.name)
		data, err := os.ReadFile(p)
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("runfolder: checkpoint %s is incomplete: no %s", d, f.name)
		}
		if err != nil {
			return nil, fmt.Errorf("runfolder: checkpoint %s: %w", d, err)
		}
		if int64(len(data)) != want.Size {
			return nil, fmt.Errorf("runfolder: checkpoint %s: %s is %d bytes, %s records %d (truncated or replaced)", d, f.name, len(data), ckptState, want.Size)
		}
		if got := hexSum(sha256.New(), data); got != want.SHA256 {
			return nil, fmt.Errorf("runfolder: checkpoint %s: %s is corrupt: SHA-256 %s, %s records %s", d, f.name, got, ckptState, truncate(want.SHA256, 64))
		}
		ts, _, err := safetensors.Decode(data)
		if err != nil {
			return nil, fmt.Errorf("runfolder: checkpoint %s: %s: %w", d, f.name, err)
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
