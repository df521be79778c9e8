package trainer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mom/gpu"
	"mom/mom"
	"mom/trainer/mpi"
	"mom/trainer/mpi/mpitest"
)

// A process started with envWorker set runs that data-parallel worker (as a
// rank under mpirun) instead of the tests.
const envWorker = "MOM_TRAINER_WORKER"

func TestMain(m *testing.M) {
	if w := os.Getenv(envWorker); w != "" {
		name, arg, _ := strings.Cut(w, ":")
		switch name {
		case "diverge":
			os.Exit(workDiverge(arg))
		case "f16skip":
			os.Exit(workF16Skip(arg))
		}
		fmt.Fprintf(os.Stderr, "no worker %q\n", name)
		os.Exit(2)
	}
	os.Exit(m.Run())
}

// workDiverge trains the tiny model on 2 ranks; rank 1 changes one of its
// parameters after step 2; the checksum comparison at step 3 must stop
// both ranks with the same error naming rank 1 and the tensor.
func workDiverge(dir string) int {
	w, err := mpi.Open(mpi.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	d, err := gpu.Open(gpu.Options{Runtime: gpu.Dawn, Adapter: -1})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer d.Close()
	c, err := mom.Preset("tiny", mom.ThreeModal, mom.AllSplits)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	o := DefaultOptions()
	o.Config, o.Out, o.World = c, dir, w
	o.Batch, o.SeqLen, o.Steps, o.Warmup, o.EvalEvery, o.CheckEvery = 4, 32, 10, 1, 0, 3
	var victim string
	testHookAfterStep = func(tr *trainer, s int) {
		if s != 2 || w.Rank() != 1 {
			return
		}
		p := tr.m.Params[len(tr.m.Params)/2]
		victim = p.Spec.Name
		v, err := p.W.Download()
		if err == nil {
			v[len(v)-1] += 1e-3
			err = p.W.Upload(v)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}
	_, err = Train(context.Background(), d, o)
	w.Close()
	want := "after step 3 the parameters of rank 1 differ from rank 0's"
	if err == nil || !strings.Contains(err.Error(), want) || w.Rank() == 1 && !strings.Contains(err.Error(), victim) {
		fmt.Fprintf(os.Stderr, "rank %d: FAIL: got %v, want %q naming %q\n", w.Rank(), err, want, victim)
		return 1
	}
	fmt.Printf("rank %d: %v\n", w.Rank(), err)
	return 0
}

// TestDivergedRanksAreCaught: ranks whose parameters differ stop at the
// next checksum comparison, every rank with the same error naming the rank
// and the tensor that differ.
func TestDivergedRanksAreCaught(t *testing.T) {
	if err := mpitest.Available(); err != nil {
		t.Fatalf("%v: the set-up installs it (make deps)", err)
	}
	dir := filepath.Join(t.TempDir(), "run")
	cmd := mpitest.Command(2, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envWorker+"=diverge:"+dir, "LP_NUM_THREADS=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(3 * time.Minute):
		cmd.Process.Kill()
		t.Fatalf("the job did not end:\n%s", out.String())
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) || err != nil || strings.Count(out.String(), "differ from rank 0's") != 2 {
		t.Fatalf("%v; want both ranks to report rank 1's divergence:\n%s", err, out.String())
	}
}

// workF16Skip trains the tiny model in mixed precision on 2 ranks; rank 1
// alone raises its overflow flag before step 3 (as its casts would at an
// overflow only its rows cause). The ranks share the flag, so both skip
// step 3 and halve the scale: their parameters stay equal (compared every
// 2 steps) and rank 0's records show the skip.
func workF16Skip(dir string) int {
	w, err := mpi.Open(mpi.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	d, err := gpu.Open(gpu.Options{Runtime: gpu.Dawn, Adapter: -1})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer d.Close()
	c, err := mom.Preset("tiny", mom.ThreeModal, mom.AllSplits)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	o := DefaultOptions()
	o.Config, o.Out, o.World = c, dir, w
	o.Batch, o.SeqLen, o.Steps, o.Warmup, o.EvalEvery, o.CheckEvery = 4, 32, 6, 1, 0, 2
	o.Precision, o.LossScale = "f16", 1024
	testHookAfterStep = func(tr *trainer, s int) {
		if s == 2 && w.Rank() == 1 {
			if err := tr.ls.Overflow().UploadU32([]uint32{1}); err != nil {
				fmt.Fprintln(os.Stderr, err)
			}
		}
	}
	res, err := Train(context.Background(), d, o)
	w.Close()
	if err != nil {
		fmt.Fprintf(os.Stderr, "rank %d: FAIL: %v\n", w.Rank(), err)
		return 1
	}
	if res.Skipped != 1 {
		fmt.Fprintf(os.Stderr, "rank %d: FAIL: %d steps skipped, want 1\n", w.Rank(), res.Skipped)
		return 1
	}
	fmt.Printf("rank %d: ok, %d skipped\n", w.Rank(), res.Skipped)
	return 0
}

// TestDataParallelF16SharesOverflow: in mixed precision an overflow on one
// rank skips the step on every rank (workF16Skip).
func TestDataParallelF16SharesOverflow(t *testing.T) {
	if err := mpitest.Available(); err != nil {
		t.Fatalf("%v: the set-up installs it (make deps)", err)
	}
	dir := filepath.Join(t.TempDir(), "run")
	cmd := mpitest.Command(2, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envWorker+"=f16skip:"+dir, "LP_NUM_THREADS=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil || strings.Count(out.String(), "ok, 1 skipped") != 2 {
			t.Fatalf("%v; want both ranks to skip one step:\n%s", err, out.String())
		}
	case <-time.After(3 * time.Minute):
		cmd.Process.Kill()
		t.Fatalf("the job did not end:\n%s", out.String())
	}
	recs, err := ReadMetrics(filepath.Join(dir, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r["split"] != "train" {
			continue
		}
		want := 0.0
		if r["step"] == 3.0 {
			want = 1
		}
		if r["skipped"] != want {
			t.Errorf("step %v: skipped %v, want %v", r["step"], r["skipped"], want)
		}
	}
}
