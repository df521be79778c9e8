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
