package mpi

/*
#cgo CFLAGS: -O3
#include <stdlib.h>
#include "shim.h"
*/
import "C"

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"syscall"
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

// shmPlan lays out a window for buckets of the given sizes in bytes
// (padded) on n ranks: every rank's slot (as large as the largest bucket) first, then
// the sums areas; bucket b's sums go to rank owner[b], at byte offs[b] of
// its part, given to the rank with the fewest bytes so far (the same
// choice on every rank). used[k] is the size of rank k's part.
func shmPlan(bytes []int, n int) (owner, offs, used []int) {
	most := 0
	for _, p := range bytes {
		most = max(most, p)
	}
	owner, offs, used = make([]int, len(bytes)), make([]int, len(bytes)), make([]int, n)
	for k := range used {
		used[k] = pageRound(most)
	}
	for b, p := range bytes {
		k := 0
		for j := range used {
			if used[j] < used[k] {
				k = j
			}
		}
		owner[b], offs[b] = k, used[k]
		used[k] += pageRound(p)
	}
	return owner, offs, used
}

// shmDir is where Open MPI keeps the memory of shared windows on Linux.
const shmDir = "/dev/shm"

// shmRoom reports whether every rank sees room for a window of the given
// bytes in shmDir (a container's is often 64 MiB; touching a page past a
// full tmpfs would kill the process with SIGBUS). Collective, on lane 0.
func (w *World) shmRoom(bytes int) (bool, error) {
	ok := byte(1)
	var st syscall.Statfs_t
	if err := syscall.Statfs(shmDir, &st); err == nil && int64(st.Bavail)*int64(st.Bsize) < int64(bytes)+64<<20 {
		ok = 0
	}
	all, err := w.Allgather([]byte{ok})
	if err != nil {
		return false, err
	}
	for _, v := range all {
		if v == 0 {
			return false, nil
		}
	}
	return true, nil
}

// newShm makes r's window on the host's communicator and points
// r.results into it; r.lens is set. It runs on the caller's goroutine and
// makes its MPI calls on lane 0.
func (r *Reducer) newShm() error {
	w := r.w
	N := w.size
	bytes := make([]int, len(r.lens))
	for b, p := range r.lens {
		bytes[b] = p * r.elems[b].size()
	}
	owner, offs, used := shmPlan(bytes, N)
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
	esz := r.elems[b].size()
	comm := w.shared
	seg := p / w.size
	off := w.rank * seg // this rank's segment: [off, off+seg)
	// 1. This rank's values to its slot, but for its own segment, which
	// only this rank reads (from send).
	mine := s.slots[w.rank]
	send := r.sends[b]
	// send (Go memory in tests) goes to C inside the array of inputs.
	var pin runtime.Pinner
	pin.Pin(send)
	defer pin.Unpin()
	cp := func(lo, hi int) {
		if hi > lo {
			C.mm_copy(unsafe.Add(mine, esz*lo), unsafe.Add(send, esz*lo), C.size_t(esz*(hi-lo)))
		}
	}
	s.split(p-seg, func(lo, hi int) {
		// Values [lo, hi) of the bucket without the segment [off, off+seg).
		cp(min(lo, off), min(hi, off))
		cp(max(lo, off)+seg, max(hi, off)+seg)
	})
	// 2. Every slot is filled (and the sums' area is free: every rank has
	// started b again, so none reads its previous sums).
	if rc := C.mm_win_fence(w.lib, s.win, comm); rc != 0 {
		return rc
	}
	// 3. This rank's segment, summed over the ranks in rank order.
	out := r.results[b]
	s.split(seg, func(lo, hi int) {
		at := esz * (off + lo)
		ins := make([]unsafe.Pointer, len(s.slots))
		for k, slot := range s.slots {
			ins[k] = unsafe.Add(slot, at)
		}
		ins[w.rank] = unsafe.Add(send, at)
		sumRanks(r.elems[b], unsafe.Add(out, at), ins, hi-lo)
	})
	// 4. Every segment is summed, and no rank reads the slots any more.
	return C.mm_win_fence(w.lib, s.win, comm)
}

// sumRanks sets the n values of type e at out to the sums of those at ins,
// in rank order (C's mm_sum_ranks and mm_sum_ranks_bf16).
func sumRanks(e Elem, out unsafe.Pointer, ins []unsafe.Pointer, n int) {
	if e == BFloat16 {
		ps := make([]*C.uint16_t, len(ins))
		for k, p := range ins {
			ps[k] = (*C.uint16_t)(p)
		}
		C.mm_sum_ranks_bf16((*C.uint16_t)(out), &ps[0], C.int(len(ps)), C.size_t(n))
		return
	}
	ps := make([]*C.float, len(ins))
	for k, p := range ins {
		ps[k] = (*C.float)(p)
	}
	C.mm_sum_ranks((*C.float)(out), &ps[0], C.int(len(ps)), C.size_t(n))
}
