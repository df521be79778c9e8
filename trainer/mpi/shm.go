package mpi

/*
#cgo CFLAGS: -O3
#include <stdlib.h>
#include "shim.h"
*/
import "C"

import (
	"fmt"
	"strings"
	"sync"
	"unsafe"
)

// Method is how a Reducer moves buckets between the ranks. Both methods
// give the same bits: every element is summed in rank order.
type Method int

const (
	// Auto is SharedMemory when every rank runs on one host, else
	// AllToAll ($MOM_MPI_REDUCE overrides it in Open).
	Auto Method = iota
	// AllToAll sums with MPI_Alltoall, local sums and MPI_Allgather on
	// the lanes: any placement of the ranks.
	AllToAll
	// SharedMemory sums through MPI-3 shared-memory windows
	// (MPI_Win_allocate_shared): every rank on one host.
	SharedMemory
)

// EnvReduce names the environment variable that picks the method when
// Options.Reduce is Auto: "shm", "alltoall" or "auto" ("" is auto).
const EnvReduce = "MOM_MPI_REDUCE"

// String is the method's name as EnvReduce spells it.
func (m Method) String() string {
	switch m {
	case Auto:
		return "auto"
	case AllToAll:
		return "alltoall"
	case SharedMemory:
		return "shm"
	}
	return fmt.Sprintf("Method(%d)", int(m))
}

// ParseMethod reads a method's name ("", "auto", "shm", "alltoall").
func ParseMethod(s string) (Method, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "auto":
		return Auto, nil
	case "alltoall":
		return AllToAll, nil
	case "shm":
		return SharedMemory, nil
	}
	return Auto, fmt.Errorf("reduction method %q: want shm, alltoall or auto", s)
}

// shmState is a shared-memory Reducer's window: on every rank a slot as
// large as the largest bucket, which the rank copies its bucket into, and
// the result areas of some of the buckets (each bucket's sums live once,
// on one rank, for every rank to read).
type shmState struct {
	win     C.mm_handle
	slots   []unsafe.Pointer // rank k's input slot, as this process maps it
	threads int
}

// minPiece is the fewest values one thread of a shared-memory reduction
// copies or sums.
const minPiece = 1 << 15

// pageRound rounds a byte count up to whole 4 KiB pages, so that every
// area of the window starts on a page.
func pageRound(n int) int { return (n + 4095) &^ 4095 }

// newShm makes r's window on the host's communicator and points
// r.results into it; r.lens is set. It runs on the caller's goroutine and
// makes its MPI calls on lane 0.
func (r *Reducer) newShm() error {
	w := r.w
	N := w.size
	most := 0
	for _, p := range r.lens {
		most = max(most, p)
	}
	// Bucket b's sums go to the rank with the fewest bytes so far (the
	// same choice on every rank).
	owner := make([]int, len(r.lens))
	offs := make([]int, len(r.lens))
	used := make([]int, N)
	for k := range used {
		used[k] = pageRound(4 * most)
	}
	for b, p := range r.lens {
		k := 0
		for j := range used {
			if used[j] < used[k] {
				k = j
			}
		}
		owner[b], offs[b] = k, used[k]
		used[k] += pageRound(4 * p)
	}
	s := &shmState{threads: w.threads}
	err := w.do(fmt.Sprintf("MPI_Win_allocate_shared of %d bytes", used[w.rank]), func() C.int {
		var base unsafe.Pointer
		return C.mm_win_shared(w.lib, w.shared, C.ptrdiff_t(used[w.rank]), &base, &s.win)
	})
	if s.win != nil {
		w.mu.Lock()
		w.wins = append(w.wins, s.win) // freed by Close, on every rank alike
		w.mu.Unlock()
	}
	if err != nil {
		return fmt.Errorf("%w (the shared-memory reduction needs %d MiB of shared memory per rank, /dev/shm on Linux; %s=alltoall avoids it)",
			err, used[w.rank]>>20, EnvReduce)
	}
	bases := make([]unsafe.Pointer, N)
	for k := 0; k < N; k++ {
		var size C.ptrdiff_t
		if err := w.do(fmt.Sprintf("MPI_Win_shared_query of rank %d", k), func() C.int {
			var b unsafe.Pointer
			rc := C.mm_win_query(w.lib, s.win, C.int(k), &b, &size)
			bases[k] = b
			return rc
		}); err != nil {
			return err
		}
		if int(size) != used[k] || bases[k] == nil {
			return fmt.Errorf("mpi: %v: rank %d's part of the shared window has %d bytes at %p, want %d", w, k, int(size), bases[k], used[k])
		}
	}
	s.slots = bases
	for b := range r.lens {
		r.results = append(r.results, unsafe.Add(bases[owner[b]], offs[b]))
	}
	r.shm = s
	return nil
}

// split runs fn over [0, n) cut into pieces of whole 1024 values, at most
// one per thread, side by side; the first piece runs on the calling
// thread.
func (s *shmState) split(n int, fn func(lo, hi int)) {
	k := min(s.threads, max(1, n/minPiece))
	if k <= 1 {
		fn(0, n)
		return
	}
	per := ((n+k-1)/k + 1023) &^ 1023
	var wg sync.WaitGroup
	for lo := per; lo < n; lo += per {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(lo, min(n, lo+per))
		}()
	}
	fn(0, min(n, per))
	wg.Wait()
}

// reduceShm sums bucket b on lane 0 (Reducer's doc, "shared memory").
func (r *Reducer) reduceShm(b int) C.int {
	w, s := r.w, r.shm
	p := r.lens[b]
	comm := w.shared
	// 1. This rank's values to its slot.
	mine := s.slots[w.rank]
	send := unsafe.Pointer(r.sends[b])
	s.split(p, func(lo, hi int) {
		C.mm_copy(unsafe.Add(mine, 4*lo), unsafe.Add(send, 4*lo), C.size_t(4*(hi-lo)))
	})
	// 2. Every slot is filled (and the sums' area is free: every rank has
	// started b again, so none reads its previous sums).
	if rc := C.mm_win_fence(w.lib, s.win, comm); rc != 0 {
		return rc
	}
	// 3. This rank's segment, summed over the slots in rank order.
	seg := p / w.size
	off := w.rank * seg
	out := r.results[b]
	s.split(seg, func(lo, hi int) {
		at := off + lo
		ins := make([]*C.float, len(s.slots)) // C pointers only: may go to C
		for k, slot := range s.slots {
			ins[k] = (*C.float)(unsafe.Add(slot, 4*at))
		}
		C.mm_sum_ranks((*C.float)(unsafe.Add(out, 4*at)), &ins[0], C.int(len(ins)), C.size_t(hi-lo))
	})
	// 4. Every segment is summed, and no rank reads the slots any more.
	return C.mm_win_fence(w.lib, s.win, comm)
}
