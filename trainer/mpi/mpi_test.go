package mpi

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"mom/nn/ref"
	"mom/trainer/mpi/mpitest"
)

// The tests start this test binary under mpirun; a process started with
// MOM_MPI_WORKER set runs that worker instead of the tests.
const envWorker = "MOM_MPI_WORKER"

func TestMain(m *testing.M) {
	if name := os.Getenv(envWorker); name != "" {
		fn, ok := workers[name]
		if !ok {
			fmt.Fprintf(os.Stderr, "no worker %q\n", name)
			os.Exit(2)
		}
		os.Exit(fn())
	}
	os.Exit(m.Run())
}

// mpirun runs np copies of the worker name and returns the exit code and
// the combined output.
func mpirun(t testing.TB, np int, name string, env ...string) (int, string) {
	t.Helper()
	if err := mpitest.Available(); err != nil {
		t.Fatalf("%v: the set-up installs it (make deps)", err)
	}
	if _, _, err := loadLib(""); err != nil {
		t.Fatalf("no MPI library (the set-up installs Open MPI: make deps): %v", err)
	}
	cmd := mpitest.Command(np, os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), envWorker+"="+name), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(3 * time.Minute):
		cmd.Process.Kill()
		t.Fatalf("mpirun %s did not end:\n%s", name, out.String())
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), out.String()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, out.String()
}

var workers = map[string]func() int{
	"collectives": workCollectives,
	"stall":       workStall,
	"abort":       workAbort,
	"methods":     workMethods,
	"shmstall":    workShmStall,
	"shmdie":      workShmDie,
	"bench":       workBench,
}

func fail(w *World, format string, a ...any) int {
	fmt.Fprintf(os.Stderr, "%v: FAIL: %s\n", w, fmt.Sprintf(format, a...))
	return 1
}

// bucketValue is element i of rank k's copy of bucket b: magnitudes far
// apart, so that the order of the sum shows in the bits.
func bucketValue(b, k, i int) float32 {
	switch (i + k) % 3 {
	case 0:
		return float32(1e8) * float32(k+1)
	case 1:
		return float32(i%7) + 0.1*float32(k)
	}
	return -float32(1e8)*float32(k) + float32(b)
}

func workCollectives() int {
	lanes, _ := strconv.Atoi(os.Getenv("MOM_MPI_LANES"))
	w, err := Open(Options{Lanes: lanes})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer w.Close()
	if l := Launched(); l.Size != w.Size() || l.Rank != w.Rank() {
		return fail(w, "Launched() = %+v", l)
	}
	// Bcast from the last rank.
	buf := make([]byte, 5)
	if w.Rank() == w.Size()-1 {
		copy(buf, "hello")
	}
	if err := w.Bcast(buf, w.Size()-1); err != nil || string(buf) != "hello" {
		return fail(w, "Bcast: %q, %v", buf, err)
	}
	// Allgather in rank order.
	all, err := w.Allgather([]byte{byte(w.Rank()), byte(w.LocalRank())})
	if err != nil {
		return fail(w, "Allgather: %v", err)
	}
	for k := 0; k < w.Size(); k++ {
		if all[2*k] != byte(k) {
			return fail(w, "Allgather: %v", all)
		}
	}
	// Reductions: buckets of awkward lengths, several in flight.
	if w.Lanes() != max(1, lanes) {
		return fail(w, "%d lanes, want %d", w.Lanes(), lanes)
	}
	if want, _ := ParseMethod(os.Getenv(EnvReduce)); want != Auto && w.Method() != want || want == Auto && w.Method() != SharedMemory {
		return fail(w, "method %v with %s=%q (every rank on one host)", w.Method(), EnvReduce, os.Getenv(EnvReduce))
	}
	lens := []int{1, 7, 1000, 3 * 1031, 100003} // the last in chunks on several lanes
	red, err := w.NewReducer(lens)
	if err != nil {
		return fail(w, "NewReducer: %v", err)
	}
	defer red.Release()
	if red.Method() != w.Method() {
		return fail(w, "reducer method %v, world's %v", red.Method(), w.Method())
	}
	for round := 0; round < 2; round++ {
		sends := make([][]float32, len(lens))
		for b, n := range lens {
			if red.Len(b) < n || red.Len(b)%w.Size() != 0 {
				return fail(w, "Len(%d) = %d for %d values", b, red.Len(b), n)
			}
			sends[b] = make([]float32, red.Len(b))
			for i := 0; i < n; i++ {
				sends[b][i] = bucketValue(b, w.Rank(), i) * float32(round+1)
			}
			if err := red.Start(b, sends[b]); err != nil {
				return fail(w, "Start(%d): %v", b, err)
			}
		}
		for b, n := range lens {
			if round == 1 {
				for !red.Ready(b) { // Ready turns true without consuming the result
					time.Sleep(time.Millisecond)
				}
			}
			got, span, err := red.Wait(b)
			if err != nil {
				return fail(w, "Wait(%d): %v", b, err)
			}
			if span.Dur() < 0 {
				return fail(w, "span %v", span)
			}
			for i := 0; i < n; i++ {
				want := float32(0)
				for k := 0; k < w.Size(); k++ {
					want += bucketValue(b, k, i) * float32(round+1) // rank order
				}
				if math.Float32bits(got[i]) != math.Float32bits(want) {
					return fail(w, "bucket %d [%d] = %v, want %v (rank-order sum)", b, i, got[i], want)
				}
			}
			for i := n; i < red.Len(b); i++ {
				if got[i] != 0 {
					return fail(w, "bucket %d padding [%d] = %v", b, i, got[i])
				}
			}
			// Every rank holds the same bits.
			raw := make([]byte, 4*n)
			for i := 0; i < n; i++ {
				binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(got[i]))
			}
			all, err := w.Allgather(raw)
			if err != nil {
				return fail(w, "Allgather: %v", err)
			}
			for k := 1; k < w.Size(); k++ {
				if !bytes.Equal(all[:4*n], all[4*n*k:4*n*(k+1)]) {
					return fail(w, "bucket %d differs between rank 0 and rank %d", b, k)
				}
			}
		}
	}
	if err := red.Start(0, make([]float32, 3)); err == nil && red.Len(0) != 3 {
		return fail(w, "Start accepted a send of the wrong length")
	} else if err == nil {
		red.Wait(0)
	}
	fmt.Printf("rank %d ok\n", w.Rank())
	return 0
}

// workStall: rank 1 never joins the barrier; rank 0's watchdog must end it.
func workStall() int {
	w, err := Open(Options{Timeout: 2 * time.Second})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if w.Rank() == 1 {
		time.Sleep(10 * time.Minute)
		return 0
	}
	w.Barrier()
	return 0
}

// workAbort: rank 1 aborts while rank 0 waits in a barrier.
func workAbort() int {
	w, err := Open(Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if w.Rank() == 1 {
		fmt.Fprintln(os.Stderr, "rank 1 aborting")
		w.Abort(3)
		return 0
	}
	w.Barrier()
	return 0
}

func TestCollectives(t *testing.T) {
	for _, c := range []struct {
		np, lanes int
		method    string
	}{{2, 1, "alltoall"}, {3, 1, "alltoall"}, {2, 3, "alltoall"}, {3, 2, "alltoall"}, {2, 1, ""}, {3, 2, "shm"}} {
		code, out := mpirun(t, c.np, "collectives", fmt.Sprintf("MOM_MPI_LANES=%d", c.lanes), EnvReduce+"="+c.method)
		if code != 0 || strings.Count(out, " ok\n") != c.np {
			t.Errorf("np %d, %d lanes, %s=%q: exit %d:\n%s", c.np, c.lanes, EnvReduce, c.method, code, out)
		}
	}
}

// workMethods: the shared-memory and all-to-all reducers give the same
// bits as the rank-order sum, for odd lengths, many buckets in flight on
// both at once, and threads that cut the segments at odd places; every
// other bucket holds bfloat16 pairs, whose sums are the rank-order sums of
// the bfloat16 values in float32, rounded once (nn/ref.BF16Bits).
func workMethods() int {
	w, err := Open(Options{Lanes: 2, Threads: 3})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer w.Close()
	lens := []int{1, 2, 3, 5, 7, 1000, 3*1031 + 1, 100003, 1<<17 + 5, 300001, 11}
	elems := make([]Elem, len(lens))
	for b := range elems {
		if b%2 == 1 {
			elems[b] = BFloat16
		}
	}
	var reds [2]*Reducer
	for i, m := range []Method{SharedMemory, AllToAll} {
		if reds[i], err = w.NewReducerElems(lens, elems, m); err != nil {
			return fail(w, "NewReducerMethod(%v): %v", m, err)
		}
		defer reds[i].Release()
		if reds[i].Method() != m {
			return fail(w, "method %v, want %v", reds[i].Method(), m)
		}
	}
	value := func(b, k, i, round int) float32 {
		if i%5 == 0 {
			return float32(i%11) * 1e-3 * float32(k+round+1)
		}
		return bucketValue(b, k, i) * float32(round+1)
	}
	for round := 0; round < 3; round++ {
		sends := make([][]float32, len(lens))
		for b, n := range lens {
			vals := make([]float32, reds[0].Len(b))
			for i := 0; i < n; i++ {
				vals[i] = value(b, w.Rank(), i, round)
			}
			if elems[b] == BFloat16 {
				words := make([]uint32, reds[0].Words(b))
				ref.PackBF16(words, vals)
				sends[b] = unsafe.Slice((*float32)(unsafe.Pointer(&words[0])), len(words))
			} else {
				sends[b] = vals
			}
		}
		// All buckets in flight on both reducers, interleaved.
		for b := range lens {
			for _, red := range reds {
				if red.Len(b) != reds[0].Len(b) {
					return fail(w, "Len(%d) differs between the methods", b)
				}
				if err := red.Start(b, sends[b]); err != nil {
					return fail(w, "%v: Start(%d): %v", red.Method(), b, err)
				}
			}
		}
		for b, n := range lens {
			var got [2][]float32
			for i, red := range reds {
				if got[i], _, err = red.Wait(b); err != nil {
					return fail(w, "%v: Wait(%d): %v", red.Method(), b, err)
				}
			}
			if len(got[0]) != reds[0].Words(b) || len(got[1]) != reds[0].Words(b) {
				return fail(w, "bucket %d: %d and %d words of sums, want %d", b, len(got[0]), len(got[1]), reds[0].Words(b))
			}
			for i := 0; i < reds[0].Len(b); i++ {
				want := float32(0)
				if i < n {
					for k := 0; k < w.Size(); k++ {
						v := value(b, k, i, round)
						if elems[b] == BFloat16 {
							v = ref.FromBF16(ref.BF16Bits(v))
						}
						want += v
					}
				}
				var a, c, x uint32
				if elems[b] == BFloat16 {
					half := func(ws []float32) uint32 { return math.Float32bits(ws[i/2]) >> (16 * (i % 2)) & 0xffff }
					a, c, x = half(got[0]), half(got[1]), uint32(ref.BF16Bits(want))
				} else {
					a, c, x = math.Float32bits(got[0][i]), math.Float32bits(got[1][i]), math.Float32bits(want)
				}
				if a != c || a != x {
					return fail(w, "round %d bucket %d (%v) [%d]: shm %#x, alltoall %#x, rank-order sum %#x", round, b, elems[b], i, a, c, x)
				}
			}
		}
	}
	fmt.Printf("rank %d ok\n", w.Rank())
	return 0
}

func TestMethodsAgree(t *testing.T) {
	for _, np := range []int{2, 3} {
		code, out := mpirun(t, np, "methods")
		if code != 0 || strings.Count(out, " ok\n") != np {
			t.Errorf("np %d: exit %d:\n%s", np, code, out)
		}
	}
}

// openShm opens the world with the shared-memory reduction (timeout 0:
// the default) and a reducer of one bucket of 1000 values; on failure the
// reducer is nil and code is the worker's exit code.
func openShm(timeout time.Duration) (w *World, red *Reducer, code int) {
	w, err := Open(Options{Timeout: timeout, Reduce: SharedMemory})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return nil, nil, 1
	}
	if red, err = w.NewReducer([]int{1000}); err != nil {
		return w, nil, fail(w, "NewReducer: %v", err)
	}
	return w, red, 0
}

// workShmStall: rank 1 never starts the bucket that rank 0 reduces
// through shared memory; rank 0's watchdog must end the job.
func workShmStall() int {
	w, red, code := openShm(2 * time.Second)
	if red == nil {
		return code
	}
	if w.Rank() == 1 {
		time.Sleep(10 * time.Minute)
		return 0
	}
	if err := red.Start(0, make([]float32, red.Len(0))); err != nil {
		return fail(w, "Start: %v", err)
	}
	red.Wait(0)
	return 0
}

// workShmDie: rank 1 dies (no MPI_Finalize) while rank 0 waits in a
// shared-memory reduction; mpirun must end the job.
func workShmDie() int {
	w, red, code := openShm(0)
	if red == nil {
		return code
	}
	if w.Rank() == 1 {
		fmt.Fprintln(os.Stderr, "rank 1 dying")
		os.Exit(5)
	}
	if err := red.Start(0, make([]float32, red.Len(0))); err != nil {
		return fail(w, "Start: %v", err)
	}
	red.Wait(0)
	return 0
}

func TestShmStallEndsTheJob(t *testing.T) {
	code, out := mpirun(t, 2, "shmstall")
	if code == 0 || !strings.Contains(out, "rank 0 of 2") || !strings.Contains(out, "shared memory) has waited") {
		t.Errorf("exit %d, want a failure naming rank 0's stalled reduction:\n%s", code, out)
	}
}

func TestShmDeadRankEndsTheJob(t *testing.T) {
	start := time.Now()
	code, out := mpirun(t, 2, "shmdie")
	if code == 0 || !strings.Contains(out, "rank 1 dying") {
		t.Errorf("exit %d, want a failure after rank 1 died:\n%s", code, out)
	}
	if d := time.Since(start); d > time.Minute {
		t.Errorf("the job took %s to end after rank 1 died", d)
	}
}

func TestStalledRankEndsTheJob(t *testing.T) {
	code, out := mpirun(t, 2, "stall")
	if code == 0 || !strings.Contains(out, "rank 0 of 2") || !strings.Contains(out, "MPI_Barrier has waited") {
		t.Errorf("exit %d, want a failure naming rank 0's stalled barrier:\n%s", code, out)
	}
}

func TestAbortEndsTheJob(t *testing.T) {
	code, out := mpirun(t, 2, "abort")
	if code != 3 || !strings.Contains(out, "rank 1") {
		t.Errorf("exit %d, want 3 and rank 1 named:\n%s", code, out)
	}
}

func TestLaunched(t *testing.T) {
	cases := []struct {
		env  map[string]string
		want Launch
	}{
		{map[string]string{}, Launch{}},
		{map[string]string{"OMPI_COMM_WORLD_SIZE": "4", "OMPI_COMM_WORLD_RANK": "2"}, Launch{4, 2, "Open MPI (mpirun)"}},
		{map[string]string{"PMI_SIZE": "2", "PMI_RANK": "1"}, Launch{2, 1, "PMI (MPICH Hydra, Slurm)"}},
		{map[string]string{"OMPI_COMM_WORLD_SIZE": "x", "OMPI_COMM_WORLD_RANK": "0"}, Launch{}},
	}
	for _, c := range cases {
		for _, k := range []string{"OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK", "PMI_SIZE", "PMI_RANK"} {
			t.Setenv(k, c.env[k])
			if _, ok := c.env[k]; !ok {
				os.Unsetenv(k)
			}
		}
		if got := Launched(); got != c.want {
			t.Errorf("env %v: Launched() = %+v, want %+v", c.env, got, c.want)
		}
	}
}

func TestMissingLibrary(t *testing.T) {
	_, err := Open(Options{Lib: "/nonexistent/libmpi.so"})
	if err == nil || !strings.Contains(err.Error(), EnvLib) || !strings.Contains(err.Error(), "/nonexistent/libmpi.so") {
		t.Errorf("err = %v, want one naming the file and %s", err, EnvLib)
	}
}

// TestNotLinked: nothing links libmpi at build time (this test binary
// holds the package): a binary built with it runs where MPI is absent.
func TestNotLinked(t *testing.T) {
	f, err := elf.Open(os.Args[0])
	if err != nil {
		t.Skipf("not an ELF binary: %v", err)
	}
	defer f.Close()
	libs, err := f.ImportedLibraries()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range libs {
		if strings.Contains(l, "mpi") || strings.Contains(l, "open-pal") {
			t.Errorf("the binary links %s; MPI must be loaded at run time", l)
		}
	}
}

// workBench times reductions of one bucket ($MOM_MPI_BENCH_MIB MiB,
// default 160) by each method ($MOM_MPI_BENCH_METHODS, default
// "shm,alltoall"), $MOM_MPI_BENCH_ITERS times after two warm-up rounds,
// with $MOM_MPI_LANES lanes (default 4); rank 0 prints one line per
// method: "bench METHOD MS ms GBPS GB/s".
func workBench() int {
	mib, err := strconv.ParseFloat(os.Getenv("MOM_MPI_BENCH_MIB"), 64)
	if err != nil || mib <= 0 {
		mib = 160
	}
	iters, err := strconv.Atoi(os.Getenv("MOM_MPI_BENCH_ITERS"))
	if err != nil || iters < 1 {
		iters = 10
	}
	lanes, err := strconv.Atoi(os.Getenv("MOM_MPI_LANES"))
	if err != nil || lanes < 1 {
		lanes = 4
	}
	methods := os.Getenv("MOM_MPI_BENCH_METHODS")
	if methods == "" {
		methods = "shm,alltoall"
	}
	w, err := Open(Options{Lanes: lanes})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer w.Close()
	n := int(mib * (1 << 20) / 4)
	for _, name := range strings.Split(methods, ",") {
		m, err := ParseMethod(name)
		if err != nil {
			return fail(w, "%v", err)
		}
		red, err := w.NewReducerMethod([]int{n}, m)
		if err != nil {
			return fail(w, "NewReducerMethod(%v): %v", m, err)
		}
		send := make([]float32, red.Len(0))
		for i := range send {
			send[i] = float32(i%1000) * 1e-3
		}
		var start time.Time
		for it := -2; it < iters; it++ {
			if it == 0 {
				if err := w.Barrier(); err != nil {
					return fail(w, "Barrier: %v", err)
				}
				start = time.Now()
			}
			if err := red.Start(0, send); err != nil {
				return fail(w, "Start: %v", err)
			}
			if _, _, err := red.Wait(0); err != nil {
				return fail(w, "Wait: %v", err)
			}
		}
		per := time.Since(start) / time.Duration(iters)
		red.Release()
		if w.Rank() == 0 {
			fmt.Printf("bench %v %.3f ms %.2f GB/s (%d ranks, %.0f MiB bucket, %d lanes, %d threads)\n", red.Method(), float64(per)/1e6,
				float64(4*len(send))/per.Seconds()/1e9, w.Size(), mib, w.Lanes(), w.Threads())
		}
	}
	return 0
}

// BenchmarkReduce reduces a 160 MiB bucket on 2 ranks by each method
// (mpirun -np 2 runs b.N timed reductions per method); ns/op is one
// reduction, GB/s the bucket's bytes over that time. $MOM_MPI_BENCH_MIB
// and $MOM_MPI_LANES change the bucket and the lanes; mpirun's own
// options (--mca btl self,vader, --map-by) come from OMPI_MCA_*
// variables.
func BenchmarkReduce(b *testing.B) {
	for _, m := range []string{"shm", "alltoall"} {
		b.Run(m, func(b *testing.B) {
			code, out := mpirun(b, 2, "bench", "MOM_MPI_BENCH_METHODS="+m, fmt.Sprintf("MOM_MPI_BENCH_ITERS=%d", b.N))
			var ms, gbps float64
			for _, line := range strings.Split(out, "\n") {
				if strings.HasPrefix(line, "bench ") {
					if _, err := fmt.Sscanf(line, "bench "+m+" %f ms %f GB/s", &ms, &gbps); err != nil {
						b.Fatalf("%q: %v", line, err)
					}
				}
			}
			if code != 0 || gbps == 0 {
				b.Fatalf("exit %d:\n%s", code, out)
			}
			b.ReportMetric(ms*1e6, "ns/op")
			b.ReportMetric(gbps, "GB/s")
		})
	}
}

// TestPaddedLen: buckets pad to a multiple of the ranks' whole 32-bit
// words: N values in float32, 2N in bfloat16; an empty bucket to one unit.
func TestPaddedLen(t *testing.T) {
	for _, c := range []struct {
		n, ranks int
		e        Elem
		want     int
	}{
		{1, 2, Float32, 2}, {4, 2, Float32, 4}, {5, 3, Float32, 6}, {0, 2, Float32, 2},
		{1, 2, BFloat16, 4}, {4, 2, BFloat16, 4}, {5, 2, BFloat16, 8}, {7, 3, BFloat16, 12}, {0, 3, BFloat16, 6},
	} {
		if got := PaddedLen(c.n, c.ranks, c.e); got != c.want {
			t.Errorf("PaddedLen(%d, %d, %v) = %d, want %d", c.n, c.ranks, c.e, got, c.want)
		}
	}
}
