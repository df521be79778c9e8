package mpi

/*
#cgo LDFLAGS: -ldl
#include <stdlib.h>
#include "shim.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// EnvLib names the environment variable that points at the MPI library to
// load (by default Open MPI's libmpi.so.40, then libmpi.so).
const EnvLib = "MOM_MPI_LIB"

// libNames are the file names tried when EnvLib is not set: Open MPI 4 and
// 5 ship libmpi.so.40; libmpi.so is the development link.
var libNames = []string{"libmpi.so.40", "libmpi.so"}

// DefaultTimeout is how long one collective may wait for the other ranks
// before this rank gives up (Options.Timeout).
const DefaultTimeout = 15 * time.Minute

// Launch describes how this process was started, from the environment an
// MPI launcher sets: Size is the number of processes (0 when no launcher
// started it), Rank this one's, and Launcher names the variables found.
type Launch struct {
	Size, Rank int
	Launcher   string
}

// Launched reads the launcher's environment: Open MPI's mpirun sets
// OMPI_COMM_WORLD_SIZE and OMPI_COMM_WORLD_RANK; MPICH's Hydra (and Intel
// MPI) PMI_SIZE and PMI_RANK. It starts nothing.
func Launched() Launch {
	for _, v := range [][3]string{
		{"OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK", "Open MPI (mpirun)"},
		{"PMI_SIZE", "PMI_RANK", "PMI (MPICH Hydra, Slurm)"},
	} {
		s, err1 := strconv.Atoi(os.Getenv(v[0]))
		r, err2 := strconv.Atoi(os.Getenv(v[1]))
		if err1 == nil && err2 == nil && s > 0 {
			return Launch{Size: s, Rank: r, Launcher: v[2]}
		}
	}
	return Launch{}
}

// Options configure Open.
type Options struct {
	// Lib is the MPI library to load; "" means $MOM_MPI_LIB, then the
	// usual names of Open MPI's libmpi.
	Lib string
	// Timeout bounds how long one collective may wait (0: DefaultTimeout).
	// A rank whose collective waits longer reports it and exits, and the
	// launcher then ends the whole job: a hung or silently lost rank stops
	// the job within Timeout.
	Timeout time.Duration
	// Stderr receives the timeout report (nil: os.Stderr).
	Stderr io.Writer
	// Lanes is the number of MPI threads (0: 1). With more than one, MPI
	// runs at MPI_THREAD_MULTIPLE and lane k > 0 has a duplicate of
	// MPI_COMM_WORLD of its own; a Reducer spreads each bucket over the
	// lanes, so the copies and sums of a reduction use several cores.
	// (The shared-memory method runs on lane 0 and uses Threads instead.)
	Lanes int
	// Reduce picks how Reducers sum (Auto: $MOM_MPI_REDUCE, else
	// SharedMemory when every rank runs on this host, else AllToAll).
	Reduce Method
	// Threads is the number of threads that copy and sum a bucket in the
	// shared-memory method (0: this rank's share of the host's cores,
	// runtime.NumCPU() / LocalSize, at least 1).
	Threads int
}

// World is this process's place in MPI_COMM_WORLD. Every MPI call runs on
// a lane: a goroutine locked to an OS thread, which runs the calls handed
// to it in order. Lane 0, the thread that initialised MPI, serves
// MPI_COMM_WORLD (at the MPI_THREAD_FUNNELED level when it is the only
// lane); callers on any goroutine hand their calls to it. Collectives must
// be called in the same order on every rank, lane by lane.
type World struct {
	rank, size           int
	localRank, localSize int
	host, version, path  string

	lib     *C.mm_lib
	lanes   []*lane
	method  Method        // how NewReducer sums (never Auto)
	autoShm bool          // method is SharedMemory because every rank is on this host
	threads int           // threads of a shared-memory reduction
	shared  C.mm_handle   // the host's communicator when every rank is on it, else nil
	wins    []C.mm_handle // shared-memory windows, freed by Close
	timeout time.Duration
	stderr  io.Writer
	quit    chan struct{}
	mu      sync.Mutex
	closed  bool
	// exit ends the process after a timeout (tests replace it).
	exit func(code int)
}

// lane is one MPI thread with its communicator.
type lane struct {
	comm  C.mm_handle // nil: MPI_COMM_WORLD
	calls chan *call
	busy  atomic.Pointer[call] // the call running, if any
	since atomic.Int64         // when it started (Unix nanoseconds), for the watchdog
	done  chan struct{}        // closed when the lane's goroutine ends
}

// call is one unit of work for a lane. A call may be queued again once it
// is done (a Reducer's buckets reuse theirs every step).
type call struct {
	name       string
	fn         func() C.int
	done       chan struct{} // receives one value when the call has run
	err        error
	start, end time.Time
	comm       C.mm_handle // the communicator of the lane running it (for fn)
}

// loadLib finds and opens the MPI library.
func loadLib(path string) (*C.mm_lib, string, error) {
	names := libNames
	if path == "" {
		path = os.Getenv(EnvLib)
	}
	if path != "" {
		names = []string{path}
	}
	var msgs []string
	for _, n := range names {
		cn := C.CString(n)
		var buf [1024]C.char
		l := C.mm_open(cn, &buf[0], C.size_t(len(buf)))
		C.free(unsafe.Pointer(cn))
		if l != nil {
			return l, n, nil
		}
		msgs = append(msgs, n+": "+C.GoString(&buf[0]))
	}
	return nil, "", fmt.Errorf("mpi: cannot load Open MPI's libmpi (%s); install Open MPI (Debian: apt-get install openmpi-bin libopenmpi3) "+
		"or set %s to its libmpi.so", strings.Join(msgs, "; "), EnvLib)
}

// Open loads the MPI library, initialises MPI on a thread of its own and
// returns this process's rank and size, and its rank among the processes
// on its host (MPI_Comm_split_type, MPI_COMM_TYPE_SHARED).
func Open(o Options) (*World, error) {
	lib, path, err := loadLib(o.Lib)
	if err != nil {
		return nil, err
	}
	method := o.Reduce
	if method == Auto {
		if method, err = ParseMethod(os.Getenv(EnvReduce)); err != nil {
			return nil, fmt.Errorf("mpi: $%s: %w", EnvReduce, err)
		}
	}
	w := &World{lib: lib, path: path, timeout: o.Timeout, stderr: o.Stderr, quit: make(chan struct{}), exit: os.Exit, method: method}
	for i := 0; i < max(1, o.Lanes); i++ {
		w.lanes = append(w.lanes, &lane{calls: make(chan *call, 256), done: make(chan struct{})})
	}
	if w.timeout <= 0 {
		w.timeout = DefaultTimeout
	}
	if w.stderr == nil {
		w.stderr = os.Stderr
	}
	w.host, _ = os.Hostname()
	ready := make(chan error, 1)
	go w.serve(ready)
	if err := <-ready; err != nil {
		return nil, err
	}
	go w.watch()
	switch {
	case w.method == Auto && w.shared != nil:
		w.method, w.autoShm = SharedMemory, true
	case w.method == Auto:
		w.method = AllToAll
	case w.method == SharedMemory && w.shared == nil:
		err := fmt.Errorf("mpi: %v: the shared-memory reduction needs every rank on one host, and %d of the %d ranks run on this one "+
			"(set %s=alltoall)", w, w.localSize, w.size, EnvReduce)
		w.Close()
		return nil, err
	}
	w.threads = o.Threads
	if w.threads <= 0 {
		w.threads = max(1, runtime.NumCPU()/max(1, w.localSize))
	}
	return w, nil
}

// serve initialises MPI on a locked OS thread (lane 0), makes the other
// lanes' communicators and starts them, then runs lane 0's calls.
func (w *World) serve(ready chan<- error) {
	runtime.LockOSThread()
	// The thread stays locked until the process ends: MPI was initialised
	// on it.
	l := w.lib
	if C.mm_initialized(l) != 0 {
		ready <- errors.New("mpi: MPI is already initialised in this process")
		return
	}
	multiple := len(w.lanes) > 1
	var provided C.int
	if rc := C.mm_init(l, C.int(b2i(multiple)), &provided); rc != 0 {
		ready <- w.errorf("MPI_Init_thread", rc)
		return
	}
	if need := map[bool]C.int{false: l.thread_funneled, true: l.thread_multiple}[multiple]; provided < need {
		ready <- fmt.Errorf("mpi: MPI_Init_thread gave thread level %d; mom needs %d for %d lanes (MPI_THREAD_FUNNELED 1, MPI_THREAD_MULTIPLE 3)",
			provided, need, len(w.lanes))
		return
	}
	if rc := C.mm_errors_return(l, nil); rc != 0 {
		ready <- w.errorf("MPI_Comm_set_errhandler", rc)
		return
	}
	for _, ln := range w.lanes[1:] {
		if rc := C.mm_comm_dup(l, &ln.comm); rc != 0 {
			ready <- w.errorf("MPI_Comm_dup", rc)
			return
		}
		if rc := C.mm_errors_return(l, ln.comm); rc != 0 {
			ready <- w.errorf("MPI_Comm_set_errhandler", rc)
			return
		}
	}
	var r, s, lr, ls C.int
	if rc := C.mm_rank(l, nil, &r); rc != 0 {
		ready <- w.errorf("MPI_Comm_rank", rc)
		return
	}
	if rc := C.mm_size(l, nil, &s); rc != 0 {
		ready <- w.errorf("MPI_Comm_size", rc)
		return
	}
	w.rank, w.size = int(r), int(s)
	var local C.mm_handle
	if rc := C.mm_split_shared(l, &local); rc != 0 {
		ready <- w.errorf("MPI_Comm_split_type", rc)
		return
	}
	C.mm_rank(l, local, &lr)
	C.mm_size(l, local, &ls)
	w.localRank, w.localSize = int(lr), int(ls)
	// Every rank on this host, in the same order: the shared-memory
	// reduction may run on the host's communicator.
	if ls == s && lr == r && C.mm_errors_return(l, local) == 0 {
		w.shared = local
	} else {
		C.mm_comm_free(l, &local)
	}
	var v [1024]C.char
	C.mm_version(l, &v[0], C.int(len(v)))
	w.version = strings.TrimSpace(strings.SplitN(C.GoString(&v[0]), ",", 2)[0])
	for _, ln := range w.lanes[1:] {
		go func() {
			runtime.LockOSThread()
			w.run(ln)
		}()
	}
	ready <- nil
	w.run(w.lanes[0])
}

// run runs a lane's calls until its channel closes.
func (w *World) run(ln *lane) {
	defer close(ln.done)
	for c := range ln.calls {
		c.start = time.Now()
		ln.since.Store(c.start.UnixNano())
		ln.busy.Store(c)
		c.comm = ln.comm
		rc := c.fn()
		ln.busy.Store(nil)
		c.end = time.Now()
		c.err = nil
		if rc != 0 {
			c.err = w.errorf(c.name, rc)
		}
		c.done <- struct{}{}
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// watch ends the process when a call has waited longer than the timeout.
func (w *World) watch() {
	tick := time.NewTicker(min(time.Second, w.timeout/4))
	defer tick.Stop()
	for {
		select {
		case <-w.quit:
			return
		case <-tick.C:
		}
		var c *call
		var waited time.Duration
		for _, ln := range w.lanes {
			b := ln.busy.Load()
			if d := time.Since(time.Unix(0, ln.since.Load())); b != nil && d > w.timeout {
				c, waited = b, d
			}
		}
		if c == nil {
			continue
		}
		fmt.Fprintf(w.stderr, "mom: rank %d of %d (%s): %s has waited %s for the other ranks (the limit, --comm-timeout, is %s): "+
			"another rank hung or was lost; this rank stops so that the launcher ends the whole job\n",
			w.rank, w.size, w.host, c.name, waited.Round(time.Second), w.timeout)
		w.exit(1)
		return
	}
}

// errorf turns an MPI error code into an error naming this rank and the call.
func (w *World) errorf(what string, rc C.int) error {
	var buf [1024]C.char
	C.mm_error_string(w.lib, rc, &buf[0], C.int(len(buf)))
	return fmt.Errorf("mpi: rank %d of %d (%s): %s: %s", w.rank, w.size, w.host, what, C.GoString(&buf[0]))
}

// start hands fn to lane 0 and returns at once.
func (w *World) start(name string, fn func() C.int) (*call, error) {
	c := &call{name: name, fn: fn, done: make(chan struct{}, 1)}
	return c, w.queue(0, c)
}

// queue hands c to a lane; c must not be queued already.
func (w *World) queue(lane int, c *call) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return fmt.Errorf("mpi: rank %d: %s after Close", w.rank, c.name)
	}
	w.lanes[lane].calls <- c
	return nil
}

// Lanes is the number of MPI threads.
func (w *World) Lanes() int { return len(w.lanes) }

// do runs fn on the MPI thread and waits for it.
func (w *World) do(name string, fn func() C.int) error {
	c, err := w.start(name, fn)
	if err != nil {
		return err
	}
	<-c.done
	return c.err
}

// Rank is this process's rank in MPI_COMM_WORLD.
func (w *World) Rank() int { return w.rank }

// Size is the number of processes.
func (w *World) Size() int { return w.size }

// LocalRank is this process's rank among those on its host.
func (w *World) LocalRank() int { return w.localRank }

// LocalSize is the number of processes on this host.
func (w *World) LocalSize() int { return w.localSize }

// Host is this process's host name.
func (w *World) Host() string { return w.host }

// Method is how NewReducer sums: SharedMemory or AllToAll.
func (w *World) Method() Method { return w.method }

// Threads is the number of threads a shared-memory reduction uses.
func (w *World) Threads() int { return w.threads }

// Library names the MPI library loaded: its file and version line.
func (w *World) Library() string { return w.path + " (" + w.version + ")" }

// Timeout is the longest a collective may wait (see Options.Timeout).
func (w *World) Timeout() time.Duration { return w.timeout }

// String is "rank R of N (host)".
func (w *World) String() string { return fmt.Sprintf("rank %d of %d (%s)", w.rank, w.size, w.host) }

// Barrier waits until every rank has called it.
func (w *World) Barrier() error {
	return w.do("MPI_Barrier", func() C.int { return C.mm_barrier(w.lib, nil) })
}

// maxChunk bounds one call's byte count (MPI counts are C ints).
const maxChunk = 1 << 30

// Bcast sends root's buf to every rank's buf (all of the same length).
func (w *World) Bcast(buf []byte, root int) error {
	for off := 0; off < len(buf); off += maxChunk {
		part := buf[off:min(len(buf), off+maxChunk)]
		p := unsafe.Pointer(&part[0])
		if err := w.do(fmt.Sprintf("MPI_Bcast of %d bytes from rank %d", len(part), root), func() C.int {
			return C.mm_bcast(w.lib, nil, p, C.int(len(part)), C.int(root))
		}); err != nil {
			return err
		}
	}
	return nil
}

// Allgather returns every rank's send, in rank order; every rank must send
// the same number of bytes (at most 1 GiB in all).
func (w *World) Allgather(send []byte) ([]byte, error) {
	if len(send) == 0 {
		return nil, nil
	}
	if len(send)*w.size > maxChunk {
		return nil, fmt.Errorf("mpi: rank %d: allgather of %d bytes per rank is too large", w.rank, len(send))
	}
	out := make([]byte, len(send)*w.size)
	s, r := unsafe.Pointer(&send[0]), unsafe.Pointer(&out[0])
	err := w.do(fmt.Sprintf("MPI_Allgather of %d bytes", len(send)), func() C.int {
		return C.mm_allgather_bytes(w.lib, nil, s, C.int(len(send)), r)
	})
	return out, err
}

// Abort ends every process of the job with code (MPI_Abort): at once when
// the MPI thread is free, else, after a short wait, by exiting this
// process, which makes the launcher end the others.
func (w *World) Abort(code int) {
	w.mu.Lock()
	closed := w.closed
	w.mu.Unlock()
	if !closed {
		if c, err := w.start("MPI_Abort", func() C.int { return C.mm_abort(w.lib, C.int(code)) }); err == nil {
			select {
			case <-c.done:
			case <-time.After(2 * time.Second):
			}
		}
	}
	w.exit(code)
}

// Close stops the lanes, finalises MPI on lane 0 (every rank must call
// it) and stops lane 0.
func (w *World) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true // no more calls
	for _, ln := range w.lanes[1:] {
		close(ln.calls)
	}
	w.mu.Unlock()
	for _, ln := range w.lanes[1:] {
		<-ln.done
	}
	// The shared-memory windows and the host's communicator go first
	// (collective: every rank made the same windows in the same order).
	free := &call{name: "MPI_Win_free", fn: func() C.int {
		var rc C.int
		for i := range w.wins {
			if e := C.mm_win_free(w.lib, &w.wins[i]); e != 0 && rc == 0 {
				rc = e
			}
		}
		w.wins = nil
		if w.shared != nil {
			C.mm_comm_free(w.lib, &w.shared)
		}
		return rc
	}, done: make(chan struct{}, 1)}
	w.lanes[0].calls <- free
	<-free.done
	c := &call{name: "MPI_Finalize", fn: func() C.int { return C.mm_finalize(w.lib) }, done: make(chan struct{}, 1)}
	w.lanes[0].calls <- c
	<-c.done
	close(w.lanes[0].calls)
	close(w.quit)
	return errors.Join(free.err, c.err)
}
