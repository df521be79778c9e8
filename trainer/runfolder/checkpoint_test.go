package runfolder

import (
	"bytes"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"mom/trainer/internal/fstest"
	"mom/trainer/safetensors"
)

// testCheckpoint builds a small checkpoint whose contents depend on step.
func testCheckpoint(t *testing.T, step int) *Checkpoint {
	t.Helper()
	pcg := rand.NewPCG(uint64(step), 7)
	r := rand.New(pcg)
	vals := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(r.NormFloat64())
		}
		return v
	}
	rng, err := pcg.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return &Checkpoint{
		Step:   step,
		Tokens: int64(step) * 4096,
		FLOPs:  float64(step) * 1.5e12,
		Params: []safetensors.Tensor{
			safetensors.F32("embed", []int{8, 4}, vals(32)),
			safetensors.F32("blocks.0.in_proj.0", []int{4, 16}, vals(64)),
		},
		Optimizer: []safetensors.Tensor{
			safetensors.F32("m.embed", []int{8, 4}, vals(32)),
			safetensors.F32("v.embed", []int{8, 4}, vals(32)),
		},
		RNG:    rng,
		Data:   json.RawMessage(`{"sample":` + itoa(step*8) + `}`),
		Config: json.RawMessage(`{"preset":"tiny","lr":0.001}`),
		Meta:   map[string]string{"commit": "abc123"},
	}
}

func compact(b []byte) string {
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return "invalid JSON: " + string(b)
	}
	return buf.String()
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

// sameCheckpoint compares two checkpoints, tensors order-insensitively
// (files hold them sorted by name).
func sameCheckpoint(t *testing.T, got, want *Checkpoint) {
	t.Helper()
	norm := func(ts []safetensors.Tensor) map[string]safetensors.Tensor {
		m := map[string]safetensors.Tensor{}
		for _, x := range ts {
			m[x.Name] = x
		}
		return m
	}
	if got.Step != want.Step || got.Tokens != want.Tokens || got.FLOPs != want.FLOPs {
		t.Errorf("step/tokens/flops %d/%d/%g, want %d/%d/%g", got.Step, got.Tokens, got.FLOPs, want.Step, want.Tokens, want.FLOPs)
	}
	if !reflect.DeepEqual(norm(got.Params), norm(want.Params)) {
		t.Errorf("params differ")
	}
	if !reflect.DeepEqual(norm(got.Optimizer), norm(want.Optimizer)) {
		t.Errorf("optimizer state differs")
	}
	if string(got.RNG) != string(want.RNG) || compact(got.Data) != compact(want.Data) ||
		compact(got.Config) != compact(want.Config) || !reflect.DeepEqual(got.Meta, want.Meta) {
		t.Errorf("rng/data/config/meta differ: %q %s %s %v", got.RNG, got.Data, got.Config, got.Meta)
	}
}

func TestCheckpointRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "runs", "x", "checkpoints")
	c := testCheckpoint(t, 123)
	p, err := SaveCheckpoint(dir, c, 3)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "step_00000123"); p != want {
		t.Errorf("saved to %s, want %s", p, want)
	}
	fstest.AssertOnlyFiles(t, p, "model.safetensors", "optimizer.safetensors", "state.json")
	got, err := LoadCheckpoint(dir)
	if err != nil {
		t.Fatal(err)
	}
	sameCheckpoint(t, got, c)
	// The RNG state restores a generator that continues identically.
	var a, b rand.PCG
	if err := a.UnmarshalBinary(got.RNG); err != nil {
		t.Fatal(err)
	}
	b.UnmarshalBinary(c.RNG)
	if a.Uint64() != b.Uint64() {
		t.Error("restored RNG differs")
	}
	// LoadCheckpointAt: the step folder, the checkpoints folder, the run.
	for _, at := range []string{p, dir, filepath.Dir(dir)} {
		got, err := LoadCheckpointAt(at)
		if err != nil {
			t.Errorf("LoadCheckpointAt(%s): %v", at, err)
			continue
		}
		sameCheckpoint(t, got, c)
	}
	if _, err := LoadCheckpointAt(filepath.Join(p, "state.json")); err == nil {
		t.Error("LoadCheckpointAt of a file succeeded")
	}
	// The tensor files are plain safetensors that other tools can read.
	ts, meta, err := safetensors.Read(filepath.Join(p, "model.safetensors"))
	if err != nil || len(ts) != 2 || meta["step"] != "123" {
		t.Errorf("model.safetensors: %d tensors, meta %v, %v", len(ts), meta, err)
	}
}

func latestName(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "latest"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func TestCheckpointLatestMovesOnlyWhenComplete(t *testing.T) {
	dir := t.TempDir()
	if _, err := SaveCheckpoint(dir, testCheckpoint(t, 10), 0); err != nil {
		t.Fatal(err)
	}
	defer func() { ckptTestHook = nil }()
	crash := errors.New("simulated crash")
	for _, stage := range []string{"after-model.safetensors", "after-optimizer.safetensors", "before-rename"} {
		ckptTestHook = func(s string) error {
			if s == stage {
				return crash
			}
			return nil
		}
		_, err := SaveCheckpoint(dir, testCheckpoint(t, 20), 0)
		if !errors.Is(err, crash) {
			t.Fatalf("%s: err = %v", stage, err)
		}
		if n := latestName(t, dir); n != "step_00000010" {
			t.Errorf("%s: latest moved to %s", stage, n)
		}
		// Nothing of the failed save is visible.
		fstest.AssertOnlyFiles(t, dir, "latest", "step_00000010")
	}
	// Crash after the folder is complete but before latest moves: the
	// folder exists, latest still names the old one.
	ckptTestHook = func(s string) error {
		if s == "before-latest" {
			return crash
		}
		return nil
	}
	if _, err := SaveCheckpoint(dir, testCheckpoint(t, 20), 0); !errors.Is(err, crash) {
		t.Fatalf("err = %v", err)
	}
	if n := latestName(t, dir); n != "step_00000010" {
		t.Errorf("latest moved to %s before it was written", n)
	}
	got, err := LoadCheckpoint(dir)
	if err != nil || got.Step != 10 {
		t.Fatalf("LoadCheckpoint after crash: %v, %v", got, err)
	}
	ckptTestHook = nil
	// A leftover temporary folder, as a real crash leaves, is cleaned up by
	// the next save.
	if err := os.Mkdir(filepath.Join(dir, ".tmp-step_00000030-123"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := SaveCheckpoint(dir, testCheckpoint(t, 30), 0); err != nil {
		t.Fatal(err)
	}
	if n := latestName(t, dir); n != "step_00000030" {
		t.Errorf("latest = %s after a good save", n)
	}
	fstest.AssertOnlyFiles(t, dir, "latest", "step_00000010", "step_00000020", "step_00000030")
}

func TestCheckpointKeep(t *testing.T) {
	dir := t.TempDir()
	for s := 1; s <= 5; s++ {
		if _, err := SaveCheckpoint(dir, testCheckpoint(t, s*100), 2); err != nil {
			t.Fatal(err)
		}
	}
	fstest.AssertOnlyFiles(t, dir, "latest", "step_00000400", "step_00000500")
	// Saving an older step (a run resumed from further back) keeps the new
	// folder even though it is not among the newest by number.
	if _, err := SaveCheckpoint(dir, testCheckpoint(t, 50), 1); err != nil {
		t.Fatal(err)
	}
	fstest.AssertOnlyFiles(t, dir, "latest", "step_00000050")
	// keep 0 keeps everything.
	for s := 1; s <= 3; s++ {
		if _, err := SaveCheckpoint(dir, testCheckpoint(t, s), 0); err != nil {
			t.Fatal(err)
		}
	}
	fstest.AssertOnlyFiles(t, dir, "latest", "step_00000001", "step_00000002", "step_00000003", "step_00000050")
	// Saving the same step again replaces it.
	c := testCheckpoint(t, 3)
	c.Tokens = 999
	if _, err := SaveCheckpoint(dir, c, 0); err != nil {
		t.Fatal(err)
	}
	got, err := LoadCheckpoint(dir)
	if err != nil || got.Tokens != 999 {
		t.Fatalf("re-saved step: %v, %v", got, err)
	}
	fstest.AssertOnlyFiles(t, dir, "latest", "step_00000001", "step_00000002", "step_00000003", "step_00000050")
}

func TestCheckpointDamaged(t *testing.T) {
	cases := []struct {
		name   string
		damage func(dir, step string) error
		want   string // besides the step folder's path, unless noWant
		path   bool   // the error names the step folder
	}{
		{"truncated model", func(d, s string) error {
			p := filepath.Join(d, s, "model.safetensors")
			fi, _ := os.Stat(p)
			return os.Truncate(p, fi.Size()-5)
		}, "model.safetensors is", true},
		{"flipped byte", func(d, s string) error {
			p := filepath.Join(d, s, "optimizer.safetensors")
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			b[len(b)-1] ^= 1
			return os.WriteFile(p, b, 0o644)
		}, "optimizer.safetensors is corrupt: SHA-256", true},
		{"missing model", func(d, s string) error { return os.Remove(filepath.Join(d, s, "model.safetensors")) }, "incomplete: no model.safetensors", true},
		{"missing state", func(d, s string) error { return os.Remove(filepath.Join(d, s, "state.json")) }, "incomplete: no state.json", true},
		{"corrupt state", func(d, s string) error {
			return os.WriteFile(filepath.Join(d, s, "state.json"), []byte(`{"format": "mom-checkpoint", "step": 1`), 0o644)
		}, "state.json is corrupt", true},
		{"wrong format", func(d, s string) error {
			return os.WriteFile(filepath.Join(d, s, "state.json"), []byte(`{"format": "other"}`), 0o644)
		}, `state.json has format "other"`, true},
		{"step mismatch", func(d, s string) error {
			return os.Rename(filepath.Join(d, s), filepath.Join(d, "step_00000008"))
		}, "", false},
		{"latest garbage", func(d, s string) error {
			return os.WriteFile(filepath.Join(d, "latest"), []byte("../../etc\n"), 0o644)
		}, `latest is corrupt: "../../etc" does not name a step folder`, false},
		{"latest empty", func(d, s string) error {
			return os.WriteFile(filepath.Join(d, "latest"), nil, 0o644)
		}, "latest is corrupt", false},
		{"folder gone", func(d, s string) error { return os.RemoveAll(filepath.Join(d, s)) }, "names step_00000007, which is missing", false},
	}
	for _, c := range cases {
		dir := t.TempDir()
		if _, err := SaveCheckpoint(dir, testCheckpoint(t, 7), 0); err != nil {
			t.Fatal(err)
		}
		if err := c.damage(dir, "step_00000007"); err != nil {
			t.Fatal(err)
		}
		_, err := LoadCheckpoint(dir)
		if err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		if c.name == "step mismatch" {
			// latest still names step_00000007, now missing.
			if !strings.Contains(err.Error(), "missing") {
				t.Errorf("%s: %v", c.name, err)
			}
			got, err := LoadCheckpointAt(filepath.Join(dir, "step_00000008"))
			if err == nil || !strings.Contains(err.Error(), "state.json records step 7") {
				t.Errorf("%s: LoadCheckpointAt: %v, %v", c.name, got, err)
			}
			continue
		}
		if errors.Is(err, ErrNoCheckpoint) {
			t.Errorf("%s: a damaged checkpoint reported as none: %v", c.name, err)
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %q, want %q", c.name, err, c.want)
		}
		name := dir
		if c.path {
			name = filepath.Join(dir, "step_00000007")
		}
		if !strings.Contains(err.Error(), name) {
			t.Errorf("%s: err = %q does not name %s", c.name, err, name)
		}
	}
	// No checkpoint at all: ErrNoCheckpoint, for an empty and a missing folder.
	for _, d := range []string{t.TempDir(), filepath.Join(t.TempDir(), "nope")} {
		_, err := LoadCheckpoint(d)
		if !errors.Is(err, ErrNoCheckpoint) || !strings.Contains(err.Error(), d) {
			t.Errorf("LoadCheckpoint(%s) = %v, want ErrNoCheckpoint naming it", d, err)
		}
	}
}

func TestSaveCheckpointRejects(t *testing.T) {
	dir := t.TempDir()
	if _, err := SaveCheckpoint(dir, nil, 1); err == nil {
		t.Error("nil checkpoint saved")
	}
	c := testCheckpoint(t, 1)
	c.Params = append(c.Params, safetensors.F32("bad", []int{3}, []float32{1}))
	if _, err := SaveCheckpoint(dir, c, 1); err == nil || !strings.Contains(err.Error(), "tensor bad") {
		t.Errorf("bad tensor: %v", err)
	}
	c = testCheckpoint(t, 1)
	c.Config = json.RawMessage(`{not json`)
	if _, err := SaveCheckpoint(dir, c, 1); err == nil || !strings.Contains(err.Error(), "state.json") {
		t.Errorf("bad config: %v", err)
	}
	fstest.AssertOnlyFiles(t, dir)
}

// BenchmarkCheckpoint saves and loads a checkpoint of 8M parameters (32 MiB)
// and 16M optimizer values (64 MiB).
func BenchmarkCheckpoint(b *testing.B) {
	dir := b.TempDir()
	const n = 8 << 20
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(i)
	}
	c := &Checkpoint{
		Step:      1,
		Params:    []safetensors.Tensor{safetensors.F32("w", []int{n}, v)},
		Optimizer: []safetensors.Tensor{safetensors.F32("m.w", []int{n}, v), safetensors.F32("v.w", []int{n}, v)},
	}
	bytes := int64(3 * 4 * n)
	b.Run("save", func(b *testing.B) {
		b.SetBytes(bytes)
		for b.Loop() {
			if _, err := SaveCheckpoint(dir, c, 1); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("load", func(b *testing.B) {
		b.SetBytes(bytes)
		for b.Loop() {
			if _, err := LoadCheckpoint(dir); err != nil {
				b.Fatal(err)
			}
		}
	})
}
