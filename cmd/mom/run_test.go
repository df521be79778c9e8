package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"mom/mom"
	"mom/nn/nnbench"
	"mom/trainer"
	"mom/trainer/runfolder"
)

// TestMain lets a test run the CLI as a child process: with MOM_CLI_ARGS
// set (a JSON list) the binary is `mom` with those arguments.
func TestMain(m *testing.M) {
	if a := os.Getenv("MOM_CLI_ARGS"); a != "" {
		var args []string
		if err := json.Unmarshal([]byte(a), &args); err != nil {
			panic(err)
		}
		os.Exit(run(args, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// child starts `mom args...` as a process.
func child(t *testing.T, args ...string) (*exec.Cmd, *bytes.Buffer, *bytes.Buffer) {
	t.Helper()
	a, _ := json.Marshal(args)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "MOM_CLI_ARGS="+string(a))
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	return cmd, &out, &errOut
}

// waitRecords waits until a run's metrics file has more than n records
// and returns how many it has.
func waitRecords(t *testing.T, dir string, n int) int {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		if recs, err := runfolder.ReadMetrics(filepath.Join(dir, runfolder.MetricsFile)); err == nil && len(recs) > n {
			return len(recs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s never got past %d records", dir, n)
	return 0
}

func exitCode(t *testing.T, cmd *exec.Cmd) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(2 * time.Minute):
		t.Fatal("the process did not exit")
	}
	return -1
}

// TestTrainSignals: SIGTERM finishes the step, writes a checkpoint of it,
// says where it is and exits 143; the run resumes from it; two Ctrl-Cs
// quit at once with 130.
func TestTrainSignals(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	args := []string{"train", "--preset", "tiny", "--setting", "chameleon", "--steps", "5000", "--batch", "2", "--seq", "32",
		"--eval-every", "0", "--ckpt-every", "1000", "--out", dir}
	cmd, out, errOut := child(t, args...)
	waitRecords(t, dir, 3)
	cmd.Process.Signal(syscall.SIGTERM)
	if code := exitCode(t, cmd); code != 143 {
		t.Fatalf("exit %d after SIGTERM, want 143\nstdout %s\nstderr %s", code, out, errOut)
	}
	c, err := runfolder.LoadCheckpoint(filepath.Join(dir, runfolder.CheckpointsDir))
	if err != nil {
		t.Fatalf("no checkpoint after SIGTERM: %v\n%s", err, errOut)
	}
	recs, _ := runfolder.ReadMetrics(filepath.Join(dir, runfolder.MetricsFile))
	last, _ := recs[len(recs)-1].Step()
	if int64(c.Step) != last {
		t.Errorf("checkpoint at step %d, the last record at %d", c.Step, last)
	}
	for _, want := range []string{fmt.Sprintf("SIGTERM after step %d of 5000", c.Step), "checkpoint " + c.Dir, "--resume"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	// Resumed with no flag but --out and --resume; two Ctrl-Cs quit at once.
	cmd, out, errOut = child(t, "train", "--out", dir, "--resume")
	waitRecords(t, dir, len(recs)+2)
	cmd.Process.Signal(os.Interrupt)
	cmd.Process.Signal(os.Interrupt)
	if code := exitCode(t, cmd); code != 130 {
		t.Fatalf("exit %d after two SIGINTs, want 130\nstdout %s\nstderr %s", code, out, errOut)
	}
	if !strings.Contains(errOut.String(), "again") {
		t.Errorf("stderr does not say the second signal quit at once:\n%s", errOut)
	}
}

// TestTrainFlagsBeforeAnything: bad flags are refused (exit 2) before a
// device opens or the run folder is made; the default warmup fits a short
// run.
func TestTrainFlagsBeforeAnything(t *testing.T) {
	t.Setenv("MOM_WEBGPU_LIB", filepath.Join(t.TempDir(), "libwebgpu.so")) // any device would fail
	out := filepath.Join(t.TempDir(), "run")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--lr", "Inf"}, "--lr +Inf must be a finite number"},
		{[]string{"--min-lr", "NaN"}, "--min-lr NaN"},
		{[]string{"--eval-batches", "0"}, "--eval-batches 0"},
		{[]string{"--eval-batches", "-1"}, "--eval-batches -1"},
		{[]string{"--ckpt-every", "-1"}, "--ckpt-every -1"},
		{[]string{"--eval-data", "x.momtok"}, "--eval-data x.momtok needs token-file --data"},
		{[]string{"--steps", "10", "--warmup", "20"}, "lower --warmup"},
		{[]string{"--lr-schedule", "exp"}, "--lr-schedule"},
		{[]string{"--resume"}, "does not exist"},
		{[]string{"--sample-every", "5"}, "--sample-every needs a dataset folder"},
		{[]string{"--sample-every", "-5"}, "--sample-every -5 must not be negative"},
		{[]string{"--sample-every", "5", "--data", "nonexistent.momtok"}, "the token file nonexistent.momtok has none"},
		{[]string{"--precision", "bf16"}, `--precision "bf16": want f32 or f16`},
		{[]string{"--loss-scale", "1024"}, "apply to --precision f16 only"},
		{[]string{"--precision", "f16", "--loss-scale", "1000"}, "--loss-scale 1000: want a power of two"},
	} {
		code, _, errOut := runCLI(append([]string{"train", "--out", out}, c.args...)...)
		if code != 2 || !strings.Contains(errOut, c.want) {
			t.Errorf("train %v: exit %d, %q; want exit 2 and %q", c.args, code, errOut, c.want)
		}
		if _, err := os.Stat(out); err == nil {
			t.Fatalf("train %v left %s behind", c.args, out)
		}
	}
	// --steps 10 with the default warmup passes the checks (it fails only
	// at the missing library).
	code, _, errOut := runCLI("train", "--out", out, "--steps", "10")
	if code != 1 || !strings.Contains(errOut, "MOM_WEBGPU_LIB") {
		t.Errorf("train --steps 10: exit %d, %q; want the library error", code, errOut)
	}
	if _, err := os.Stat(out); err == nil {
		t.Errorf("a failed start left %s behind", out)
	}
}

// TestResumeFlagConflicts: a flag that differs from the run's setting is
// refused in one line before anything opens.
func TestResumeFlagConflicts(t *testing.T) {
	t.Setenv("MOM_WEBGPU_LIB", filepath.Join(t.TempDir(), "libwebgpu.so"))
	o := trainer.DefaultOptions()
	o.Out = filepath.Join(t.TempDir(), "run")
	c, err := mom.Preset("tiny", mom.ThreeModal, mom.AllSplits)
	if err != nil {
		t.Fatal(err)
	}
	o.Config, o.Batch = c, 4
	os.MkdirAll(filepath.Join(o.Out, runfolder.CheckpointsDir, runfolder.StepDirName(5)), 0o755)
	if err := runfolder.WriteConfig(o.Out, trainer.FolderConfig(o)); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--batch", "8"}, 2, "--batch 8 differs from the run's 4"},
		{[]string{"--dense"}, 2, "--dense true differs from the run's false"},
		{[]string{"--preset", "small"}, 2, "--preset small differs from the run's tiny"},
		{[]string{"--steps", "600"}, 1, "MOM_WEBGPU_LIB"}, // accepted: fails at the library
		{[]string{"--steps", "5"}, 2, "is complete (a checkpoint at step 5, --steps 5): give a larger --steps"},
		{nil, 1, "MOM_WEBGPU_LIB"},
	} {
		code, _, errOut := runCLI(append([]string{"train", "--out", o.Out, "--resume"}, c.args...)...)
		if code != c.code || !strings.Contains(errOut, c.want) || strings.Count(strings.TrimSpace(errOut), "\n") > 0 && c.code == 2 {
			t.Errorf("resume %v: exit %d, %q; want exit %d and one line with %q", c.args, code, errOut, c.code, c.want)
		}
	}
}

// TestHelpFlagsReadable: no flag's help text turns a word into its value
// placeholder (a back-quoted word does: "-adapter mom devices").
func TestHelpFlagsReadable(t *testing.T) {
	for _, cmd := range []string{"train", "grads", "view", "plot", "compare", "info", "devices", "check"} {
		_, _, errOut := runCLI(cmd, "--help")
		sc := bufio.NewScanner(strings.NewReader(errOut))
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) >= 2 && strings.HasPrefix(f[0], "-") && strings.HasPrefix(sc.Text(), "  -") {
				switch f[1] {
				case "int", "string", "float", "uint", "value", "duration":
				default:
					t.Errorf("mom %s --help: %q", cmd, sc.Text())
				}
			}
		}
	}
	_, _, errOut := runCLI("train", "--help")
	if !strings.Contains(errOut, "-adapter string") {
		t.Errorf("train --help lacks -adapter string:\n%s", errOut)
	}
}

// TestKernelTable: the bench table's columns line up whatever the names,
// and an unknown roof says so instead of "0.0 TFLOP/s".
func TestKernelTable(t *testing.T) {
	var b bytes.Buffer
	names := []string{"gemm_nt/m=1024,n=1024,k=1024", "scan_fwd/b=8", "a"}
	tab := newKernelTable(&b, names)
	tab.row(names[0], nnbench.Result{Seconds: 0.0123, FLOPRate: 1.5e11, ByteRate: 2e9, PeakFrac: 0.25, Timed: "gpu timestamps"})
	tab.row(names[1], nnbench.Result{Seconds: 1.5, FLOPRate: 1e6, ByteRate: 3e11, Timed: "wall clock"})
	tab.fail(names[2], errors.New("boom"))
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	col := strings.Index(lines[0], "ms/run") + len("ms/run")
	for _, l := range lines[1:3] {
		if f := strings.Fields(l[:col]); len(f) != 2 {
			t.Errorf("ms/run column not aligned:\n%s", b.String())
		}
	}
	if !strings.Contains(lines[2], "   -  ") {
		t.Errorf("an unknown fraction of the roof is not '-': %q", lines[2])
	}
	if s := roofLine(nnbench.Peak{Bytes: 20e9, Source: "measured buffer copy"}); strings.Contains(s, "0.0 TFLOP/s") || !strings.Contains(s, "unknown") {
		t.Errorf("roof line %q", s)
	}
}

// TestViewMissingRun: `mom view` of a folder that does not exist fails at
// once instead of waiting for it.
func TestViewMissingRun(t *testing.T) {
	t.Setenv("MOM_WEBGPU_LIB", filepath.Join(t.TempDir(), "libwebgpu.so"))
	code, _, errOut := runCLI("view", filepath.Join(t.TempDir(), "typo"))
	if code != 1 || !strings.Contains(errOut, "does not exist") {
		t.Errorf("view of a missing run: exit %d, %q", code, errOut)
	}
}

// TestPrintResult: the summary of a stopped run tells the true step count,
// the cause and the checkpoint that exists.
func TestPrintResult(t *testing.T) {
	o := trainer.Options{Out: "runs/x"}
	res := &trainer.Result{Steps: 57, Total: 300, Start: 40, TokensPerSec: 1234, Checkpoint: "runs/x/checkpoints/step_00000057",
		Final: mom.Losses{Total: 2, PerModality: map[string]float64{"text": 2}}}
	for _, c := range []struct {
		err  error
		want []string
	}{
		{nil, []string{"x: 57 steps done (resumed at step 40)", "1234 tokens/s", "checkpoint runs/x/checkpoints/step_00000057\n"}},
		{trainExit(fmt.Errorf("trainer: stopped: %w", signalStop{syscall.SIGTERM})), []string{"SIGTERM after step 57 of 300", "(continue with --resume)"}},
		{errors.New("trainer: stopping: mom: the loss is NaN"), []string{"stopped by an error after step 57 of 300"}},
	} {
		var b bytes.Buffer
		printResult(&b, o, res, c.err)
		for _, w := range c.want {
			if !strings.Contains(b.String(), w) {
				t.Errorf("err %v: output lacks %q:\n%s", c.err, w, b.String())
			}
		}
	}
	var b bytes.Buffer
	printResult(&b, o, &trainer.Result{Steps: 3, Total: 300}, errors.New("NaN"))
	if !strings.Contains(b.String(), "no checkpoint written") || strings.Contains(b.String(), "0 steps") {
		t.Errorf("no checkpoint: %s", b.String())
	}
}
