package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"mom/trainer/mpi/mpitest"
	"mom/trainer/runfolder"
)

// mpiChild starts `mpirun -np np mom args...` (this test binary as mom) and
// returns it with its combined output. Each rank's lavapipe keeps to one
// thread: the ranks share the machine's cores.
func mpiChild(t *testing.T, np int, args ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	if err := mpitest.Available(); err != nil {
		t.Fatalf("%v: the set-up installs it (make deps)", err)
	}
	a, _ := json.Marshal(args)
	cmd := mpitest.Command(np, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "MOM_CLI_ARGS="+string(a), "LP_NUM_THREADS=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	return cmd, &out
}

// runTrain runs `mom train args...`: alone (np 0) or as np ranks under
// mpirun; it must succeed.
func runTrain(t *testing.T, np int, args ...string) string {
	t.Helper()
	args = append([]string{"train"}, args...)
	if np == 0 {
		cmd, out, errOut := child(t, args...)
		if code := exitCode(t, cmd); code != 0 {
			t.Fatalf("mom %v: exit %d\n%s\n%s", args, code, out, errOut)
		}
		return out.String() + errOut.String()
	}
	cmd, out := mpiChild(t, np, args...)
	if code := exitCode(t, cmd); code != 0 {
		t.Fatalf("mpirun -np %d mom %v: exit %d\n%s", np, args, code, out)
	}
	return out.String()
}

func readRecords(t *testing.T, dir string) []runfolder.Record {
	t.Helper()
	recs, err := runfolder.ReadMetrics(filepath.Join(dir, runfolder.MetricsFile))
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func num(r runfolder.Record, k string) float64 { return r.Float(k) }

// loadParams reads a run's newest checkpoint's parameters.
func loadParams(t *testing.T, dir string) map[string][]float32 {
	t.Helper()
	c, err := runfolder.LoadCheckpoint(filepath.Join(dir, runfolder.CheckpointsDir))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]float32{}
	for _, p := range c.Params {
		v, err := p.Float32s()
		if err != nil {
			t.Fatal(err)
		}
		out[p.Name] = v
	}
	return out
}

// TestDataParallelMatchesOneProcess is issue 13's equivalence test: the
// tiny model trained by 2 ranks (mpirun --oversubscribe -np 2, both on
// lavapipe) on a global batch of 8 gives the loss curve (training and
// held-out), the gradient norms and the parameters of one process training
// on the same batches: the three-modality setting, and Transfusion (noise
// drawn on the global batch) with two micro-batches per step.
//
// Not bit for bit: one process sums each weight gradient over all 8 rows
// inside one GEMM reduction; two ranks sum over their 4 rows each and then
// add the two sums. Float32 addition is not associative, so the gradients
// differ in the last bits (about 1e-7 relative) and AdamW carries that on.
// Measured on lavapipe over 8 steps: the losses and grad norms agree to
// 2e-7 relative, the parameters to 1e-5 of each tensor's largest value;
// the test allows 1e-5 and 1e-4. What the ranks do bit for bit is shown
// by the second half: the same 2-rank job run again, with other buckets
// and 3 MPI threads per rank, gives the same bits (the reduction order is
// fixed and depends on neither).
func TestDataParallelMatchesOneProcess(t *testing.T) {
	for _, c := range []struct {
		name  string
		flags []string
		// The largest relative difference of a loss or grad norm, and of
		// a parameter (relative to its tensor's largest value), from one
		// process: float32 exchanges differ only by the order of the sums;
		// bfloat16 ones round every rank's gradients and the sums to 8
		// significant bits (a relative error of up to 2^-9 each), which
		// AdamW's normalised steps carry into every parameter: measured
		// 5.7e-4 and 0.042 (where a gradient near zero flips the sign of
		// a step), so the bounds below leave about a tenfold margin and
		// still catch a wrong exchange (tried: sums scaled by 1.5 move the
		// grad norm by half; sums of a third of each bucket only move the
		// losses by 1e-2). TestStagingRoundTrip checks the rounding itself
		// exactly.
		lossTol, paramTol float64
		want              string // in the 2-rank run's output
	}{
		// The tied embedding's rows gathered (--embedding-gather on; auto
		// leaves the tiny preset's small table whole).
		{"three", []string{"--setting", "three", "--bucket-mb", "0.01", "--embedding-gather", "on"}, 1e-5, 1e-4, "its token rows"},
		// Diffusion noise drawn on the global batch; two micro-batches a step,
		// the first with the whole backward on each rank.
		{"transfusion-accum2", []string{"--setting", "transfusion", "--accum", "2", "--embedding-gather", "on"}, 1e-5, 1e-4, "its token rows"},
		{"three-bf16", []string{"--setting", "three", "--bucket-mb", "0.01", "--grad-exchange", "bf16"}, 5e-3, 0.3, "exchanged as bfloat16"},
	} {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			common := append([]string{"--preset", "tiny", "--batch", "8", "--seq", "64", "--steps", "8", "--eval-every", "4", "--eval-batches", "1"}, c.flags...)
			one, two := filepath.Join(root, "one"), filepath.Join(root, "two")
			checkThroughput(t, one, runTrain(t, 0, append(common, "--out", one)...))
			out := runTrain(t, 2, append(common, "--out", two, "--share-adapter")...)
			checkThroughput(t, two, out)
			for _, want := range []string{"rank 0 of 2", "rank 1 of 2", "uuid ", "data-parallel over 2 ranks", "the whole job of 2 ranks", c.want} {
				if !strings.Contains(out, want) {
					t.Errorf("the 2-rank run's output lacks %q:\n%s", want, out)
				}
			}
			if gathered := strings.Contains(out, "its token rows"); gathered != (c.want == "its token rows") {
				t.Errorf("the tied embedding's rows gathered: %v, want %v (--embedding-gather auto leaves the tiny preset's table whole)", gathered, !gathered)
			}
			compareRuns(t, one, two, c.lossTol, c.paramTol)
			if c.name != "three" {
				return
			}
			// The same job again with other buckets and 3 MPI threads per
			// rank: the same bits.
			again := filepath.Join(root, "again")
			runTrain(t, 2, append(common, "--out", again, "--share-adapter", "--bucket-mb", "0.02", "--comm-lanes", "3")...)
			b, a := readRecords(t, two), readRecords(t, again)
			for i := range b {
				for k, v := range b[i] {
					if strings.HasPrefix(k, "loss") || k == "grad_norm" {
						if num(a[i], k) != num(b[i], k) {
							t.Errorf("record %d %s: %v, then %v: a 2-rank run is not reproducible", i, k, v, a[i][k])
						}
					}
				}
			}
			for _, f := range []string{"model.safetensors", "optimizer.safetensors"} {
				x, err1 := os.ReadFile(filepath.Join(two, runfolder.CheckpointsDir, runfolder.StepDirName(8), f))
				y, err2 := os.ReadFile(filepath.Join(again, runfolder.CheckpointsDir, runfolder.StepDirName(8), f))
				if err1 != nil || err2 != nil || !bytes.Equal(x, y) {
					t.Errorf("%s differs between two runs of the same 2-rank job (%v, %v)", f, err1, err2)
				}
			}
		})
	}
}

// compareRuns checks that two runs of the same job, alone and with 2
// ranks, have the same records (losses and grad norms within lossTol
// relative) and the same final parameters (within paramTol of each
// tensor's largest value).
func compareRuns(t *testing.T, one, two string, lossTol, paramTol float64) {
	t.Helper()
	a, b := readRecords(t, one), readRecords(t, two)
	if len(a) != len(b) || len(a) != 10 {
		t.Fatalf("%d records alone, %d with 2 ranks; want 10 each", len(a), len(b))
	}
	worst := 0.0
	for i := range a {
		sa, _ := a[i].Step()
		sb, _ := b[i].Step()
		if sa != sb || a[i]["split"] != b[i]["split"] || num(a[i], "tokens") != num(b[i], "tokens") {
			t.Fatalf("record %d: step %d %v tokens %v alone, step %d %v tokens %v with 2 ranks", i, sa, a[i]["split"], a[i]["tokens"], sb, b[i]["split"], b[i]["tokens"])
		}
		for k := range a[i] {
			if !strings.HasPrefix(k, "loss") && k != "grad_norm" {
				continue
			}
			x, y := num(a[i], k), num(b[i], k)
			d := math.Abs(x-y) / math.Max(math.Abs(x), 1e-3)
			worst = max(worst, d)
			if d > lossTol || math.IsNaN(d) {
				t.Errorf("step %d %s %s: %v alone, %v with 2 ranks", sa, a[i]["split"], k, x, y)
			}
		}
		if b[i]["split"] == "train" {
			// A step's time holds its exposed communication (the time is
			// the step's own, not that of a late loss readback).
			if sb >= 2 && !(num(b[i], "step_ms") >= num(b[i], "comm_exposed_ms")) {
				t.Errorf("step %d: step_ms %v < comm_exposed_ms %v", sb, b[i]["step_ms"], b[i]["comm_exposed_ms"])
			}
			if num(b[i], "ranks") != 2 || !(num(b[i], "comm_ms") > 0) || !(num(b[i], "comm_overlap_ms") >= 0) || !(num(b[i], "comm_exposed_ms") > 0) {
				t.Errorf("step %d: ranks %v comm_ms %v comm_overlap_ms %v comm_exposed_ms %v", sb, b[i]["ranks"], b[i]["comm_ms"], b[i]["comm_overlap_ms"], b[i]["comm_exposed_ms"])
			}
		}
	}
	t.Logf("largest relative difference of a loss or grad norm: %.2g", worst)
	pa, pb := loadParams(t, one), loadParams(t, two)
	worstP := 0.0
	for name, x := range pa {
		y := pb[name]
		scale := 0.0
		for _, v := range x {
			scale = math.Max(scale, math.Abs(float64(v)))
		}
		for i := range x {
			d := math.Abs(float64(x[i])-float64(y[i])) / math.Max(scale, 1e-6)
			worstP = max(worstP, d)
			if d > paramTol || math.IsNaN(d) {
				t.Fatalf("%s[%d]: %v alone, %v with 2 ranks", name, i, x[i], y[i])
			}
		}
	}
	t.Logf("largest difference of a parameter, relative to its tensor's largest value: %.2g", worstP)
}

// checkThroughput checks the summary's tokens/s against the records: the
// mean over the steps after the first is their tokens over the sum of their
// step_ms (an identity of the bookkeeping, not a speed).
func checkThroughput(t *testing.T, dir, out string) {
	t.Helper()
	var tokens, ms float64
	prev := 0.0
	for _, r := range readRecords(t, dir) {
		if r.Split() != runfolder.SplitTrain {
			continue
		}
		if s, _ := r.Step(); s >= 2 {
			tokens += r.Float("tokens") - prev
			ms += r.Float("step_ms")
		}
		prev = r.Float("tokens")
	}
	i := strings.Index(out, " tokens/s (mean after the first step")
	j := strings.LastIndex(out[:max(i, 0)], ", ")
	if i < 0 || j < 0 {
		t.Fatalf("no tokens/s in the summary:\n%s", out)
	}
	got, err := strconv.ParseFloat(out[j+2:i], 64)
	if want := tokens / (ms / 1e3); err != nil || math.Abs(got-want) > 0.01*want+1 {
		t.Errorf("%s: the summary says %v tokens/s (%v); the records' steps make %.0f", dir, out[j+2:i], err, want)
	}
}

// rankPID finds the process of a rank of an mpirun job writing dir.
func rankPID(t *testing.T, dir string, rank int) int {
	t.Helper()
	if pid := findRank(dir, rank); pid > 0 {
		return pid
	}
	t.Fatalf("no process of rank %d for %s", rank, dir)
	return 0
}

// waitRanksGone waits until rank 0 of a job writing dir has let go of the
// run folder's lock: mpirun may return while a rank it signalled is still
// on its way out (tearing down its memory before its files close).
func waitRanksGone(t *testing.T, dir string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		l, err := runfolder.Acquire(dir)
		if err == nil {
			l.Release()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the job's rank 0 still holds %s: %v", dir, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// findRank returns the pid of rank (any rank if -1) of an mpirun job
// writing dir, 0 if there is none.
func findRank(dir string, rank int) int {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil {
			continue
		}
		vars := strings.Split(string(env), "\x00")
		mine, r := false, -1
		for _, v := range vars {
			if strings.HasPrefix(v, "MOM_CLI_ARGS=") && strings.Contains(v, dir) {
				mine = true
			}
			if s, ok := strings.CutPrefix(v, "OMPI_COMM_WORLD_RANK="); ok {
				r, _ = strconv.Atoi(s)
			}
		}
		if mine && r >= 0 && (rank < 0 || r == rank) {
			return pid
		}
	}
	return 0
}

// waitCheckpoint waits until a run folder has a checkpoint at or after step.
func waitCheckpoint(t *testing.T, dir string, step int) int {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		if steps, err := runfolder.ListCheckpoints(filepath.Join(dir, runfolder.CheckpointsDir)); err == nil && len(steps) > 0 && steps[0] >= step {
			return steps[0]
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s has no checkpoint at step %d or later", dir, step)
	return 0
}

// TestKilledRankStopsTheJob: SIGKILL to rank 1 mid-run ends the whole job
// with an error naming rank 1; the last checkpoint is intact; the run
// resumes alone (-np 1) from it, and then again with 2 ranks: --resume
// works with any number of ranks.
func TestKilledRankStopsTheJob(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	cmd, out := mpiChild(t, 2, "train", "--preset", "tiny", "--batch", "4", "--seq", "32", "--steps", "100000",
		"--eval-every", "0", "--ckpt-every", "3", "--keep", "0", "--out", dir, "--share-adapter")
	waitCheckpoint(t, dir, 6)
	if err := syscall.Kill(rankPID(t, dir, 1), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	code := exitCode(t, cmd)
	if code == 0 || !strings.Contains(out.String(), "rank 1") {
		t.Fatalf("exit %d after rank 1 was killed; want a failure naming rank 1:\n%s", code, out)
	}
	waitRanksGone(t, dir)
	ckdir := filepath.Join(dir, runfolder.CheckpointsDir)
	c, damaged, err := runfolder.LoadLatestIntact(ckdir)
	if err != nil || len(damaged) > 0 {
		t.Fatalf("after the kill: checkpoint %v, damaged %v, err %v", c, damaged, err)
	}
	last := c.Step
	// Alone, to three steps past the checkpoint...
	runTrain(t, 0, "--out", dir, "--resume", "--stop-after", strconv.Itoa(last+3))
	// ...then with 2 ranks, three more.
	runTrain(t, 2, "--out", dir, "--resume", "--stop-after", strconv.Itoa(last+6), "--share-adapter")
	steps, err := runfolder.ListCheckpoints(ckdir)
	if err != nil || steps[0] != last+6 {
		t.Fatalf("checkpoints %v (%v), want the newest at step %d", steps, err, last+6)
	}
	recs := readRecords(t, dir)
	for i, r := range recs {
		if s, _ := r.Step(); s != int64(i+1) {
			t.Fatalf("record %d is of step %d: the metrics are not one record per step", i, s)
		}
	}
	if n := len(recs); n != last+6 {
		t.Errorf("%d records, want %d", n, last+6)
	}
}

// TestSignalStopsTheRanksTogether: SIGUSR1 to mpirun (which forwards it
// to every rank) stops the ranks after the same step; rank 0 checkpoints
// it and the job exits 138 (128 + SIGUSR1).
func TestSignalStopsTheRanksTogether(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	cmd, out := mpiChild(t, 2, "train", "--preset", "tiny", "--batch", "4", "--seq", "32", "--steps", "100000",
		"--eval-every", "0", "--ckpt-every", "100000", "--out", dir, "--share-adapter")
	waitRecords(t, dir, 3)
	cmd.Process.Signal(syscall.SIGUSR1)
	if code := exitCode(t, cmd); code != 138 {
		t.Fatalf("exit %d after SIGUSR1, want 138:\n%s", code, out)
	}
	c, err := runfolder.LoadCheckpoint(filepath.Join(dir, runfolder.CheckpointsDir))
	if err != nil {
		t.Fatalf("no checkpoint after SIGUSR1: %v\n%s", err, out)
	}
	recs := readRecords(t, dir)
	if last, _ := recs[len(recs)-1].Step(); int64(c.Step) != last {
		t.Errorf("checkpoint at step %d, the last record at %d", c.Step, last)
	}
	if want := fmt.Sprintf("SIGUSR1 after step %d of 100000", c.Step); !strings.Contains(out.String(), want) {
		t.Errorf("output lacks %q:\n%s", want, out)
	}
}

func TestParseAdapters(t *testing.T) {
	for _, c := range []struct {
		s     string
		ranks bool
		want  []int
		err   string
	}{
		{"", false, nil, ""},
		{"-1", true, nil, ""},
		{"2", false, []int{2}, ""},
		{"0,1", true, []int{0, 1}, ""},
		{" 1, 0 ", true, []int{1, 0}, ""},
		{"0,1", false, nil, "one adapter per rank"},
		{"x", true, nil, "want an adapter index"},
		{"0,-2", true, nil, "want an adapter index"},
	} {
		got, err := parseAdapters(c.s, c.ranks)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) || !errors.Is(err, errUsage) {
				t.Errorf("parseAdapters(%q): %v, want a usage error with %q", c.s, err, c.err)
			}
			continue
		}
		if err != nil || fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("parseAdapters(%q) = %v, %v; want %v", c.s, got, err, c.want)
		}
	}
}

func TestRankAdapter(t *testing.T) {
	for _, c := range []struct {
		count      int
		best, list []int
		k, n       int
		share      bool
		want       int
		err        string
	}{
		{2, []int{0, 1}, nil, 1, 2, false, 1, ""},                  // two GPUs: the second rank takes the second
		{3, []int{1, 2}, nil, 0, 2, false, 1, ""},                  // only the best kind counts
		{1, []int{0}, nil, 1, 2, false, 0, "--runtime wgpu"},       // Dawn on two identical GPUs
		{1, []int{0}, nil, 1, 2, true, 0, ""},                      // allowed
		{4, []int{0}, []int{3, 2}, 1, 2, false, 2, ""},             // an explicit list
		{4, []int{0}, []int{3}, 1, 2, false, 0, "--share-adapter"}, // one adapter for two ranks
		{4, []int{0}, []int{3}, 1, 2, true, 3, ""},
		{4, []int{0}, []int{3, 2}, 2, 3, false, 0, "lists 2 adapters"},
		{2, []int{0}, []int{5, 1}, 0, 2, false, 0, "does not exist"},
		{0, nil, nil, 0, 1, false, 0, "no adapter"},
	} {
		got, err := rankAdapter(c.count, c.best, c.list, c.k, c.n, c.share)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%+v: %d, %v; want an error with %q", c, got, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%+v: %d, %v; want %d", c, got, err, c.want)
		}
	}
}

// TestTwoRanksOnOneAdapterRefused: without --share-adapter two ranks on
// lavapipe's one adapter are refused before training, by rank 0 alone,
// with nothing left behind; a rank that fails alone ends the job.
func TestTwoRanksOnOneAdapterRefused(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	cmd, out := mpiChild(t, 2, "train", "--preset", "tiny", "--steps", "2", "--out", dir)
	if code := exitCode(t, cmd); code == 0 || !strings.Contains(out.String(), "--share-adapter") {
		t.Fatalf("exit %d; want a refusal naming --share-adapter:\n%s", code, out)
	}
	if _, err := os.Stat(dir); err == nil {
		t.Errorf("the refused job left %s behind", dir)
	}
	// A failure of one rank alone (rank 1's adapter does not exist) ends
	// the job, naming the rank, while rank 0 waits for it. (mpirun's own
	// notice, "MPI_ABORT was invoked on rank 1", goes through its help
	// system, which under load was seen to fail with "ORTE_ERROR_LOG: Data
	// unpack would read past end of buffer ... show_help.c".)
	cmd, out = mpiChild(t, 2, "train", "--preset", "tiny", "--steps", "2", "--out", dir, "--adapter", "0,7")
	// Rank 0 waits in a collective: only rank 1's MPI_Abort(1) ends the job
	// with exit code 1 (else the test times out).
	if code := exitCode(t, cmd); code != 1 || !strings.Contains(out.String(), "rank 1 of 2") ||
		!strings.Contains(out.String(), "adapter 7 does not exist") {
		t.Fatalf("exit %d; want 1 (rank 1's MPI_Abort) and rank 1's error:\n%s", code, out)
	}
	if !strings.Contains(out.String(), "MPI_ABORT was invoked on rank 1") {
		t.Logf("mpirun printed no MPI_ABORT notice (its help system failed):\n%s", out)
	}
	// An odd global batch does not divide among 2 ranks.
	cmd, out = mpiChild(t, 2, "train", "--preset", "tiny", "--steps", "2", "--batch", "3", "--out", dir, "--share-adapter")
	if code := exitCode(t, cmd); code != 2 || strings.Count(out.String(), "does not divide among the 2 ranks") != 1 {
		t.Fatalf("exit %d; want 2 and one message about --batch 3:\n%s", code, out)
	}
}
