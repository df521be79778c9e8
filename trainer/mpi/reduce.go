package mpi

/*
#include <stdlib.h>
#include "shim.h"
*/
import "C"

import (
	"fmt"
	"time"
	"unsafe"
)

// Span is when a reduction ran on the MPI thread.
type Span struct{ Start, End time.Time }

// Dur is the span's length.
func (s Span) Dur() time.Duration { return s.End.Sub(s.Start) }

// Reducer sums float32 buckets over every rank in a fixed order, so that
// every rank gets the same bits and a run is reproducible whatever
// algorithm the MPI library picks:
//
//  1. MPI_Alltoall: rank k sends segment j of its bucket to rank j, so
//     rank j holds every rank's copy of segment j;
//  2. rank j adds them in rank order, ((s_0 + s_1) + s_2) + ...,
//     element by element (MPI_Reduce_local with MPI_SUM, one rank at a
//     time: the library's fast loop, our order);
//  3. MPI_Allgather: every rank receives every summed segment.
//
// Each segment is summed exactly once, on one rank, so all ranks end with
// identical sums; the data moved per rank is 2(N-1)/N of a bucket, like a
// ring all-reduce. A bucket's length is padded to a multiple of the number
// of ranks (Len); the caller's send buffer has that length, its padding
// zero.
//
// Start queues a bucket on the MPI thread and returns at once; buckets are
// reduced one after another in the order started, which must be the same
// on every rank. Wait returns a bucket's sums, which live in memory the
// Reducer owns (outside Go's heap) until the bucket is started again.
// Everything is allocated by NewReducer: a step allocates nothing.
type Reducer struct {
	w       *World
	lens    []int
	scratch unsafe.Pointer // the received segments of the bucket being summed
	results []unsafe.Pointer
	calls   []*call    // one per bucket, queued again every time
	sends   []*C.float // the send buffer of each bucket in flight
	keep    [][]float32
	busy    []bool
}

// NewReducer prepares buckets of the given lengths (in float32 values,
// before padding).
func (w *World) NewReducer(lengths []int) (*Reducer, error) {
	r := &Reducer{w: w}
	most := 0
	for i, n := range lengths {
		if n <= 0 {
			return nil, fmt.Errorf("mpi: rank %d: bucket %d has length %d", w.rank, i, n)
		}
		p := (n + w.size - 1) / w.size * w.size
		if p/w.size > 1<<31-1 {
			return nil, fmt.Errorf("mpi: rank %d: bucket %d of %d values is too large for MPI's int counts", w.rank, i, n)
		}
		r.lens = append(r.lens, p)
		most = max(most, p)
	}
	if len(lengths) == 0 {
		return r, nil
	}
	alloc := func(n int) unsafe.Pointer { return C.calloc(C.size_t(n), 4) }
	if r.scratch = alloc(most); r.scratch == nil {
		return nil, fmt.Errorf("mpi: rank %d: cannot allocate %d bytes of reduction scratch", w.rank, 4*most)
	}
	for i, p := range r.lens {
		m := alloc(p)
		if m == nil {
			r.Release()
			return nil, fmt.Errorf("mpi: rank %d: cannot allocate %d bytes for bucket %d", w.rank, 4*p, i)
		}
		r.results = append(r.results, m)
	}
	r.sends = make([]*C.float, len(r.lens))
	r.keep = make([][]float32, len(r.lens))
	r.busy = make([]bool, len(r.lens))
	for b := range r.lens {
		r.calls = append(r.calls, &call{name: fmt.Sprintf("gradient reduction (bucket %d, %d values)", b, r.lens[b]),
			fn: func() C.int { return r.reduce(b) }, done: make(chan struct{}, 1)})
	}
	return r, nil
}

// reduce sums bucket b (on the MPI thread).
func (r *Reducer) reduce(b int) C.int {
	w := r.w
	seg := r.lens[b] / w.size
	scratch := (*C.float)(r.scratch)
	if rc := C.mm_alltoall_floats(w.lib, r.sends[b], C.int(seg), scratch); rc != 0 {
		return rc
	}
	// scratch holds segment `rank` of every rank's bucket, in rank order;
	// sum them into the first: rank 0's + rank 1's + ...
	for k := 1; k < w.size; k++ {
		part := (*C.float)(unsafe.Add(r.scratch, 4*seg*k))
		if rc := C.mm_sum_local(w.lib, part, scratch, C.int(seg)); rc != 0 {
			return rc
		}
	}
	return C.mm_allgather_floats(w.lib, scratch, C.int(seg), (*C.float)(r.results[b]))
}

// Buckets is the number of buckets.
func (r *Reducer) Buckets() int { return len(r.lens) }

// Len is bucket b's padded length: its send buffer's length.
func (r *Reducer) Len(b int) int { return r.lens[b] }

// Start queues the sum of bucket b over all ranks; send (Len(b) values)
// must stay untouched until Wait(b) returns.
func (r *Reducer) Start(b int, send []float32) error {
	w := r.w
	if b < 0 || b >= len(r.lens) {
		return fmt.Errorf("mpi: rank %d: no bucket %d (there are %d)", w.rank, b, len(r.lens))
	}
	if len(send) != r.lens[b] {
		return fmt.Errorf("mpi: rank %d: bucket %d: %d values to send, want %d", w.rank, b, len(send), r.lens[b])
	}
	if r.busy[b] {
		return fmt.Errorf("mpi: rank %d: bucket %d started twice", w.rank, b)
	}
	r.sends[b], r.keep[b] = (*C.float)(unsafe.Pointer(&send[0])), send
	if err := w.queue(r.calls[b]); err != nil {
		r.sends[b], r.keep[b] = nil, nil
		return err
	}
	r.busy[b] = true
	return nil
}

// Wait waits for bucket b's sums and returns them with the time the
// reduction ran.
func (r *Reducer) Wait(b int) ([]float32, Span, error) {
	if b < 0 || b >= len(r.lens) || !r.busy[b] {
		return nil, Span{}, fmt.Errorf("mpi: rank %d: bucket %d was not started", r.w.rank, b)
	}
	c := r.calls[b]
	<-c.done
	r.busy[b], r.sends[b], r.keep[b] = false, nil, nil
	if c.err != nil {
		return nil, Span{c.start, c.end}, c.err
	}
	return unsafe.Slice((*float32)(r.results[b]), r.lens[b]), Span{c.start, c.end}, nil
}

// Ready reports, without blocking, whether bucket b's sums are ready; Wait
// then returns them at once.
func (r *Reducer) Ready(b int) bool {
	if b < 0 || b >= len(r.lens) || !r.busy[b] {
		return false
	}
	c := r.calls[b]
	select {
	case <-c.done:
		c.done <- struct{}{} // for Wait
		return true
	default:
		return false
	}
}

// Release frees the reducer's memory after the buckets in flight are done.
func (r *Reducer) Release() {
	for b, busy := range r.busy {
		if busy {
			<-r.calls[b].done
		}
	}
	if r.scratch != nil {
		C.free(r.scratch)
		r.scratch = nil
	}
	for _, m := range r.results {
		C.free(m)
	}
	r.results, r.calls, r.sends, r.keep, r.busy = nil, nil, nil, nil, nil
}
