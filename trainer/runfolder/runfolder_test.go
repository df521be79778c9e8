package runfolder

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMain lets the test binary hold a lock as a child process: with
// MOM_LOCK_CHILD=dir it takes dir's lock, says so, and waits to be killed.
func TestMain(m *testing.M) {
	if dir := os.Getenv("MOM_LOCK_CHILD"); dir != "" {
		if _, err := Acquire(dir); err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Println("locked")
		time.Sleep(time.Minute)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestLockOneWriter: a second Acquire of a folder fails, naming the
// holder's process; a holder killed with SIGKILL leaves no stale lock.
func TestLockOneWriter(t *testing.T) {
	dir := t.TempDir()
	l, err := Acquire(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Acquire(dir)
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), fmt.Sprintf("process %d", os.Getpid())) {
		t.Fatalf("second Acquire in this process: %v, want ErrLocked naming process %d", err, os.Getpid())
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	if err := l.Release(); err != nil {
		t.Errorf("second Release: %v", err)
	}
	l, err = Acquire(dir)
	if err != nil {
		t.Fatalf("Acquire after Release: %v", err)
	}
	l.Release()

	// Another process holds it, then dies without releasing it.
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "MOM_LOCK_CHILD="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	line, _ := bufio.NewReader(out).ReadString('\n')
	if strings.TrimSpace(line) != "locked" {
		t.Fatalf("child: %q", line)
	}
	_, err = Acquire(dir)
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), fmt.Sprintf("process %d", cmd.Process.Pid)) {
		t.Fatalf("Acquire while another process holds the lock: %v, want ErrLocked naming process %d", err, cmd.Process.Pid)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	l, err = Acquire(dir)
	if err != nil {
		t.Fatalf("Acquire after the holder was killed: %v", err)
	}
	l.Release()
}

// TestConfigRoundTrip: config.json keeps the keys it does not know, tells
// which keys it had, and carries segments.
func TestConfigRoundTrip(t *testing.T) {
	dir := t.TempDir()
	in := `{"name": "r", "dense": false, "steps": 100, "lr": 0.003, "imported": {"from": "hf"},
		"model": {"setting": "three", "modalities": [{"name": "text", "loss": "next-token", "color": "#1f77b4", "key": "1"}]}}`
	if err := os.WriteFile(filepath.Join(dir, ConfigFile), []byte(in), 0o644); err != nil {
		t.Fatal(err)
	}
	c, found, err := ReadConfig(dir)
	if err != nil || !found {
		t.Fatalf("ReadConfig: %v, %v", found, err)
	}
	if !c.Has("steps") || c.Has("batch") || c.TotalSteps() != 100 {
		t.Errorf("Has(steps) %v, Has(batch) %v, TotalSteps %d", c.Has("steps"), c.Has("batch"), c.TotalSteps())
	}
	if rows := c.ModalityRows(); len(rows) != 1 || rows[0].Color != "#1f77b4" || rows[0].Key != "1" {
		t.Errorf("rows %+v", rows)
	}
	if c.ModelField("setting") != `"three"` {
		t.Errorf("model setting %q", c.ModelField("setting"))
	}
	c.Segments = append(c.Segments, Segment{Start: 100, Steps: 200, Schedule: "cosine", Changed: map[string][2]string{"steps": {"100", "200"}}})
	if err := WriteConfig(dir, c); err != nil {
		t.Fatal(err)
	}
	c2, _, err := ReadConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	if compact(c2.Extra("imported")) != `{"from":"hf"}` {
		t.Errorf("the unknown key came back as %s", c2.Extra("imported"))
	}
	if c2.TotalSteps() != 200 || c2.Steps != 100 {
		t.Errorf("after a segment: total %d, first segment %d", c2.TotalSteps(), c2.Steps)
	}
	if v, ok := c2.Changed("steps"); !ok || v != "200" {
		t.Errorf("Changed(steps) = %q, %v", v, ok)
	}
	// Old runs: plain modality names.
	old, err := ParseConfig([]byte(`{"name":"o","modalities":["text","image"]}`))
	if err != nil {
		t.Fatal(err)
	}
	if rows := old.ModalityRows(); len(rows) != 2 || rows[1].Name != "image" {
		t.Errorf("old rows %+v", rows)
	}
	for _, bad := range []string{``, `[]`, `{"steps": "x"}`, `{"segments": [{"start_step": 5, "steps": 3}]}`} {
		if _, err := ParseConfig([]byte(bad)); err == nil {
			t.Errorf("ParseConfig(%q): want an error", bad)
		}
	}
}

func TestDisplayNames(t *testing.T) {
	for _, c := range []struct {
		names, dirs, want []string
	}{
		{[]string{"dense", "mom"}, []string{"runs/dense", "runs/mom"}, []string{"dense", "mom"}},
		{[]string{"run", "run"}, []string{"/x/a/run", "/x/b/run"}, []string{"a/run", "b/run"}},
		{[]string{"run", "run"}, []string{"/p/a/r1", "/p/b/r2"}, []string{"run (a/r1)", "run (b/r2)"}},
		{[]string{"run", "run"}, []string{"/same/run", "/same/run"}, []string{"/same/run #1", "/same/run #2"}},
	} {
		got := DisplayNames(c.names, c.dirs)
		if strings.Join(got, "|") != strings.Join(c.want, "|") {
			t.Errorf("DisplayNames(%v, %v) = %v, want %v", c.names, c.dirs, got, c.want)
		}
	}
}

// TestStateIntegrity: a changed value in state.json (the data position,
// the counters) is caught like a changed tensor file; version 1 files,
// which have no digest, still load.
func TestStateIntegrity(t *testing.T) {
	dir := t.TempDir()
	p, err := SaveCheckpoint(dir, testCheckpoint(t, 5), 0)
	if err != nil {
		t.Fatal(err)
	}
	sp := filepath.Join(p, ckptState)
	good, _ := os.ReadFile(sp)
	bad := strings.Replace(string(good), `"tokens": 20480`, `"tokens": 20481`, 1)
	if bad == string(good) {
		t.Fatalf("state.json has no tokens 20480: %s", good)
	}
	os.WriteFile(sp, []byte(bad), 0o644)
	if _, err := LoadCheckpoint(dir); err == nil || !strings.Contains(err.Error(), "state.json is corrupt") {
		t.Errorf("a changed token count: %v, want state.json is corrupt", err)
	}
	var st map[string]any
	json.Unmarshal(good, &st)
	st["version"] = 1
	delete(st, "state_sha256")
	v1, _ := json.Marshal(st)
	os.WriteFile(sp, v1, 0o644)
	if c, err := LoadCheckpoint(dir); err != nil || c.Step != 5 {
		t.Errorf("a version 1 state.json: %v", err)
	}
}

// TestLoadLatestIntact: a damaged newest checkpoint is passed over for the
// newest intact one; leftovers of interrupted saves (a temporary "latest"
// too) are cleaned away.
func TestLoadLatestIntact(t *testing.T) {
	dir := t.TempDir()
	if _, _, err := LoadLatestIntact(dir); !errors.Is(err, ErrNoCheckpoint) {
		t.Fatalf("empty folder: %v", err)
	}
	for _, s := range []int{4, 8, 12} {
		if _, err := SaveCheckpoint(dir, testCheckpoint(t, s), 0); err != nil {
			t.Fatal(err)
		}
	}
	mp := filepath.Join(dir, StepDirName(12), ckptModel)
	b, _ := os.ReadFile(mp)
	b[len(b)-1] ^= 0xff
	os.WriteFile(mp, b, 0o644)
	os.WriteFile(filepath.Join(dir, ".latest.tmp-123"), []byte("step_"), 0o644)
	c, damaged, err := LoadLatestIntact(dir)
	if err != nil {
		t.Fatal(err)
	}
	if c.Step != 8 || len(damaged) != 1 || filepath.Base(damaged[0].Dir) != StepDirName(12) || !strings.Contains(damaged[0].Err.Error(), "SHA-256") {
		t.Errorf("loaded step %d, damaged %+v", c.Step, damaged)
	}
	removed, err := CleanCheckpoints(dir)
	if err != nil || len(removed) != 1 || removed[0] != ".latest.tmp-123" {
		t.Errorf("CleanCheckpoints removed %v, %v", removed, err)
	}
	to, err := SetAside(filepath.Join(dir, StepDirName(12)), "damaged")
	if err != nil || filepath.Base(to) != "damaged-"+StepDirName(12) {
		t.Fatalf("SetAside: %s, %v", to, err)
	}
	if steps, _ := ListCheckpoints(dir); fmt.Sprint(steps) != "[8 4]" {
		t.Errorf("checkpoints after setting one aside: %v", steps)
	}
	// Every one damaged: an error naming each.
	for _, s := range []int{4, 8} {
		os.Remove(filepath.Join(dir, StepDirName(s), ckptOptimizer))
	}
	if _, _, err := LoadLatestIntact(dir); err == nil || !strings.Contains(err.Error(), StepDirName(4)) || !strings.Contains(err.Error(), StepDirName(8)) {
		t.Errorf("all damaged: %v", err)
	}
}

// TestPermissions: checkpoint folders and files, config.json and metrics
// get the usual permissions (0777 and 0666 trimmed by the umask), not 0700
// and 0600.
func TestPermissions(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	dir := t.TempDir()
	p, err := SaveCheckpoint(filepath.Join(dir, CheckpointsDir), testCheckpoint(t, 1), 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteConfig(dir, Config{Name: "x"}); err != nil {
		t.Fatal(err)
	}
	m, err := OpenMetrics(filepath.Join(dir, MetricsFile), -1)
	if err != nil {
		t.Fatal(err)
	}
	m.Close()
	for path, want := range map[string]fs.FileMode{
		p: 0o755 | fs.ModeDir, filepath.Join(p, ckptModel): 0o644, filepath.Join(p, ckptState): 0o644,
		filepath.Join(dir, CheckpointsDir, ckptLatest): 0o644, filepath.Join(dir, ConfigFile): 0o644,
		filepath.Join(dir, MetricsFile): 0o644,
	} {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode() != want {
			t.Errorf("%s: mode %v, want %v", path, st.Mode(), want)
		}
	}
}

// The readers' fuzz tests; their seed corpora run in the normal suite.

func FuzzParseRecord(f *testing.F) {
	for _, s := range []string{`{"step":1,"loss":2.5,"split":"train"}`, `{"step":3,"loss_text":"NaN"}`, `{"step":-1}`,
		`{"step":1,"split":"test"}`, `[1]`, `{"step":1} {"step":2}`, `{"step":1,"loss":"x"}`, `null`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseRecord(b)
		if err != nil {
			return
		}
		if s, ok := r.Step(); !ok || s < 0 {
			t.Fatalf("accepted a record without a valid step: %v", r)
		}
		if sp := r.Split(); sp != SplitTrain && sp != SplitEval {
			t.Fatalf("accepted split %q", sp)
		}
		enc, err := r.JSON()
		if err != nil {
			t.Fatalf("re-encoding %v: %v", r, err)
		}
		if _, err := ParseRecord(enc); err != nil {
			t.Fatalf("re-encoded record %s does not parse: %v", enc, err)
		}
	})
}

func FuzzReadMetrics(f *testing.F) {
	f.Add([]byte("{\"step\":1}\n{\"step\":2,\"split\":\"eval\"}\n{\"step\":3"))
	f.Add([]byte("{\"step\":1}\nnot json\n"))
	f.Add([]byte("\n\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p := filepath.Join(t.TempDir(), MetricsFile)
		os.WriteFile(p, b, 0o644)
		recs, err := ReadMetrics(p)
		if err != nil {
			return
		}
		var tail Tail
		tail.Path = p
		got, err := tail.Poll()
		if err != nil || len(got) < len(recs) {
			t.Fatalf("Tail read %d records (%v), ReadMetrics %d", len(got), err, len(recs))
		}
	})
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(`{"name":"r","dense":true,"steps":10,"segments":[{"start_step":5,"steps":20}]}`))
	f.Add([]byte(`{"model":{"modalities":["text"]},"x":[1,2]}`))
	f.Add([]byte(`{"batch":"eight"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseConfig(b)
		if err != nil {
			return
		}
		_ = c.ModalityRows()
		out, err := json.Marshal(c)
		if err != nil {
			t.Fatalf("re-encoding: %v", err)
		}
		c2, err := ParseConfig(out)
		if err != nil {
			t.Fatalf("re-encoded config %s does not parse: %v", out, err)
		}
		if c2.TotalSteps() != c.TotalSteps() || c2.Name != c.Name {
			t.Fatalf("round trip changed the config: %+v vs %+v", c2, c)
		}
	})
}

func FuzzParseState(f *testing.F) {
	dir := f.TempDir()
	c := &Checkpoint{Step: 3, Tokens: 12, RNG: []byte{1, 2}, Data: json.RawMessage(`{"pos":1}`)}
	p, err := SaveCheckpoint(dir, c, 0)
	if err != nil {
		f.Fatal(err)
	}
	good, _ := os.ReadFile(filepath.Join(p, ckptState))
	f.Add(good)
	f.Add([]byte(`{"format":"mom-checkpoint","version":1,"step":1,"files":{}}`))
	f.Add([]byte(`{"format":"mom-checkpoint","version":2,"step":1}`))
	f.Add([]byte(`{"format":"other"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := parseState(b)
		if err != nil {
			return
		}
		if st.Format != ckptFormat || st.Step < 0 || st.Tokens < 0 {
			t.Fatalf("accepted %+v", st)
		}
	})
}
