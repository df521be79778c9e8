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

// Span is when a reduction ran on the MPI threads.
type Span struct{ Start, End time.Time }

// Dur is the span's length.
func (s Span) Dur() time.Duration { return s.End.Sub(s.Start) }

// minChunk is the fewest values a bucket's chunk on one lane holds.
const minChunk = 1 << 14

// Elem is the type of a bucket's values.
type Elem int

const (
	// Float32 values, summed exactly as the Reducer's doc says.
	Float32 Elem = iota
	// BFloat16 values (the upper 16 bits of a float32), two to a 32-bit
	// word, element 2i in the low half of word i (as nn.BF16 packs them).
	// Each sum is taken in float32 in the same rank order and rounded to
	// the nearest bfloat16, ties to even, once.
	BFloat16
)

// size is the bytes of one value.
func (e Elem) size() int {
	if e == BFloat16 {
		return 2
	}
	return 4
}

func (e Elem) String() string {
	if e == BFloat16 {
		return "bfloat16"
	}
	return "float32"
}

// Reducer sums float32 buckets over every rank in a fixed order, so that
// every rank gets the same bits and a run is reproducible whatever
// algorithm the MPI library picks: element i of the sum is
// ((x_0[i] + x_1[i]) + x_2[i]) + ..., x_k being rank k's bucket, whatever
// the method, the number of lanes or threads and the bucket sizes. Each
// segment is summed exactly once, on one rank, so all ranks end with
// identical sums. A bucket's length is padded to a multiple of the number
// of ranks (Len); the caller's send buffer has that length, its padding
// zero. A bucket's values are Float32, or BFloat16 (NewReducerElems): half
// the bytes to copy and sum, each sum taken in float32 and rounded once;
// their padded length is a multiple of twice the number of ranks. There
// are two methods (Method):
//
// All-to-all, for any placement of the ranks:
//
//  1. MPI_Alltoall: rank k sends segment j of its bucket to rank j, so
//     rank j holds every rank's copy of segment j;
//  2. rank j adds them in rank order, element by element
//     (MPI_Reduce_local with MPI_SUM, one rank at a time: the library's
//     fast loop, our order);
//  3. MPI_Allgather: every rank receives every summed segment.
//
// The data moved per rank is 2(N-1)/N of a bucket, like a ring all-reduce.
// With several lanes (Options.Lanes) a large bucket is cut into chunks,
// one per lane, and the buckets take turns at the lanes (chunk j of bucket
// b on lane (b+j) mod lanes), each chunk reduced as above, so the cores
// share the copies and sums.
//
// Shared memory, when every rank runs on one host: NewReducer allocates an
// MPI-3 shared-memory window (MPI_Win_allocate_shared on the host's
// communicator) with a slot on each rank as large as the largest bucket
// and an area for each bucket's sums (on one rank, the same for all), and
// every rank maps every rank's part (MPI_Win_shared_query). Every rank
// holds a passive-target epoch on the window (MPI_Win_lock_all) for its
// whole life, and "fence" below is MPI_Win_sync, MPI_Barrier on the host's
// communicator, MPI_Win_sync: the MPI-3 model's way to order one rank's
// stores before another's loads. A bucket, on lane 0:
//
//  1. the rank copies its bucket into its slot (Options.Threads threads);
//  2. fence: every slot holds its rank's bucket;
//  3. rank j sums segment j over the slots in rank order, reading the
//     other ranks' slots directly, into the bucket's sums area (threads);
//  4. fence: the sums are complete, and no rank reads the slots any more,
//     so the next bucket may be copied in.
//
// Wait returns a view of the sums area, which no rank writes again before
// every rank has started the bucket again (step 3 comes after a fence
// that every rank reaches only from Start). The data moved per rank is
// about 2.5 buckets of memory traffic and no copy through MPI; lanes
// other than lane 0 stay idle. The window lives until World.Close (which
// frees it on every rank alike; Release is local, so a rank that fails
// alone never waits in it).
//
// Start queues a bucket and returns at once; buckets (and, with several
// lanes, each lane's chunks) are reduced one after another in the order
// started, which must be the same on every rank. Wait returns a bucket's
// sums, which live in memory the Reducer owns (outside Go's heap) until
// the bucket is started again. Everything is allocated by NewReducer.
type Reducer struct {
	w       *World
	method  Method
	shm     *shmState // the shared-memory method's window
	lens    []int
	elems   []Elem // each bucket's values
	chunks  [][]chunk
	scratch []unsafe.Pointer // per lane: the received segments of the chunk being summed
	results []unsafe.Pointer
	sends   []unsafe.Pointer // the send buffer of each bucket in flight
	keep    [][]float32
	busy    []bool
}

// chunk is values [off, off+n) of a bucket, reduced on one lane.
type chunk struct {
	off, n, lane int
	call         *call
}

// NewReducer prepares buckets of the given lengths (in float32 values,
// before padding), summed with the World's method (World.Method). Every
// rank must make the same reducers in the same order.
func (w *World) NewReducer(lengths []int) (*Reducer, error) {
	return w.NewReducerMethod(lengths, Auto)
}

// NewReducerMethod is NewReducer with the given method. Auto is the
// World's, except that when the World picked SharedMemory itself (neither
// Options.Reduce nor $MOM_MPI_REDUCE asked for it) and some rank's
// /dev/shm lacks room for the window, the reducer uses AllToAll.
// SharedMemory needs every rank on one host.
func (w *World) NewReducerMethod(lengths []int, m Method) (*Reducer, error) {
	return w.NewReducerElems(lengths, nil, m)
}

// NewReducerElems is NewReducerMethod with each bucket's type of values
// (nil: all Float32).
func (w *World) NewReducerElems(lengths []int, elems []Elem, m Method) (*Reducer, error) {
	if elems == nil {
		elems = make([]Elem, len(lengths))
	}
	if len(elems) != len(lengths) {
		return nil, fmt.Errorf("mpi: rank %d: %d bucket lengths and %d types", w.rank, len(lengths), len(elems))
	}
	for i, e := range elems {
		if e != Float32 && e != BFloat16 {
			return nil, fmt.Errorf("mpi: rank %d: bucket %d has no type %d", w.rank, i, int(e))
		}
	}
	if m == Auto {
		m = w.method
		if m == SharedMemory && w.autoShm {
			bytes := make([]int, len(lengths))
			for i, n := range lengths {
				bytes[i] = PaddedLen(n, w.size, elems[i]) * elems[i].size()
			}
			_, _, used := shmPlan(bytes, w.size)
			total := 0
			for _, u := range used {
				total += u
			}
			room, err := w.shmRoom(total)
			if err != nil {
				return nil, err
			}
			if !room {
				m = AllToAll
			}
		}
	}
	if m == SharedMemory && w.shared == nil {
		return nil, fmt.Errorf("mpi: %v: the shared-memory reduction needs every rank on one host, and %d of the %d ranks run on this one",
			w, w.localSize, w.size)
	}
	if m != SharedMemory && m != AllToAll {
		return nil, fmt.Errorf("mpi: %v: no reduction method %v", w, m)
	}
	r := &Reducer{w: w, method: m, elems: append([]Elem(nil), elems...)}
	N, L := w.size, len(w.lanes)
	if m == SharedMemory {
		L = 1 // one chunk per bucket, on lane 0
	}
	most := make([]int, L)
	for i, n := range lengths {
		if n <= 0 {
			return nil, fmt.Errorf("mpi: rank %d: bucket %d has length %d", w.rank, i, n)
		}
		q := 4 / elems[i].size() // values per 32-bit word
		p := PaddedLen(n, N, elems[i])
		// Chunks of a multiple of N words, at most one per lane.
		k := min(L, max(1, p/(N*minChunk)))
		per := (p/(N*q) + k - 1) / k * N * q
		if per/N > 1<<31-1 {
			return nil, fmt.Errorf("mpi: rank %d: bucket %d of %d values is too large for MPI's int counts", w.rank, i, n)
		}
		var cs []chunk
		for off, j := 0, 0; off < p; off, j = off+per, j+1 {
			// Chunk j of bucket i on lane (i+j) mod L: small buckets spread
			// over the lanes too.
			c := chunk{off: off, n: min(per, p-off), lane: (i + j) % L}
			most[c.lane] = max(most[c.lane], c.n)
			cs = append(cs, c)
		}
		r.lens = append(r.lens, p)
		r.chunks = append(r.chunks, cs)
	}
	r.sends = make([]unsafe.Pointer, len(r.lens))
	r.keep = make([][]float32, len(r.lens))
	r.busy = make([]bool, len(r.lens))
	if m == SharedMemory {
		for b := range r.lens {
			// The whole bucket, one chunk.
			r.chunks[b] = []chunk{{n: r.lens[b], call: &call{
				name: fmt.Sprintf("gradient reduction (bucket %d, %d values, shared memory)", b, r.lens[b]),
				fn:   func() C.int { return r.reduceShm(b) }, done: make(chan struct{}, 1)}}}
		}
		if err := r.newShm(); err != nil {
			r.Release()
			return nil, err
		}
		return r, nil
	}
	alloc := func(n int) unsafe.Pointer { return C.calloc(C.size_t(max(n, 1)), 4) }
	for j := 0; j < L; j++ {
		m := alloc(most[j])
		if m == nil {
			r.Release()
			return nil, fmt.Errorf("mpi: rank %d: cannot allocate %d bytes of reduction scratch", w.rank, 4*most[j])
		}
		r.scratch = append(r.scratch, m)
	}
	for i, p := range r.lens {
		m := alloc(p)
		if m == nil {
			r.Release()
			return nil, fmt.Errorf("mpi: rank %d: cannot allocate %d bytes for bucket %d", w.rank, 4*p, i)
		}
		r.results = append(r.results, m)
	}
	for b := range r.chunks {
		for j := range r.chunks[b] {
			r.chunks[b][j].call = &call{
				name: fmt.Sprintf("gradient reduction (bucket %d, %d values, chunk %d on lane %d)", b, r.lens[b], j, r.chunks[b][j].lane),
				fn:   func() C.int { return r.reduce(b, j) }, done: make(chan struct{}, 1)}
		}
	}
	return r, nil
}

// PaddedLen is the length a Reducer pads a bucket of n values of type e
// to on the given number of ranks (its Len): a multiple of the ranks'
// whole 32-bit words (n at least 1).
func PaddedLen(n, ranks int, e Elem) int {
	m := ranks * 4 / e.size()
	return (max(n, 1) + m - 1) / m * m
}

// reduce sums chunk j of bucket b (on its lane).
func (r *Reducer) reduce(b, j int) C.int {
	w := r.w
	c := r.chunks[b][j]
	esz := r.elems[b].size()
	seg := c.n / w.size           // values of each rank's segment
	words := C.int(seg * esz / 4) // the same in 32-bit words, as MPI moves them
	comm := c.call.comm
	scratch := (*C.float)(r.scratch[c.lane])
	send := (*C.float)(unsafe.Add(r.sends[b], esz*c.off))
	// Rank k's segment i of this chunk is send[i*seg : (i+1)*seg].
	if rc := C.mm_alltoall_floats(w.lib, comm, send, words, scratch); rc != 0 {
		return rc
	}
	// scratch holds segment `rank` of every rank's chunk, in rank order;
	// sum them into the first: rank 0's + rank 1's + ...
	if r.elems[b] == BFloat16 {
		ins := make([]*C.uint16_t, w.size)
		for k := range ins {
			ins[k] = (*C.uint16_t)(unsafe.Add(r.scratch[c.lane], 2*seg*k))
		}
		C.mm_sum_ranks_bf16(ins[0], &ins[0], C.int(w.size), C.size_t(seg))
	} else {
		for k := 1; k < w.size; k++ {
			part := (*C.float)(unsafe.Add(r.scratch[c.lane], 4*seg*k))
			if rc := C.mm_sum_local(w.lib, part, scratch, C.int(seg)); rc != 0 {
				return rc
			}
		}
	}
	out := (*C.float)(unsafe.Add(r.results[b], esz*c.off))
	return C.mm_allgather_floats(w.lib, comm, scratch, words, out)
}

// Method is how the reducer sums: SharedMemory or AllToAll.
func (r *Reducer) Method() Method { return r.method }

// Buckets is the number of buckets.
func (r *Reducer) Buckets() int { return len(r.lens) }

// Len is bucket b's padded length in values.
func (r *Reducer) Len(b int) int { return r.lens[b] }

// Words is bucket b's padded length in 32-bit words: its send buffer's
// length (Len for Float32, Len/2 for BFloat16).
func (r *Reducer) Words(b int) int { return r.lens[b] * r.elems[b].size() / 4 }

// Start queues the sum of bucket b over all ranks; send (Words(b) words:
// the values, or for a BFloat16 bucket their pairs as nn.BF16 packs them)
// must stay untouched until Wait(b) returns.
func (r *Reducer) Start(b int, send []float32) error {
	w := r.w
	if b < 0 || b >= len(r.lens) {
		return fmt.Errorf("mpi: rank %d: no bucket %d (there are %d)", w.rank, b, len(r.lens))
	}
	if len(send) != r.Words(b) {
		return fmt.Errorf("mpi: rank %d: bucket %d (%s): %d words to send, want %d", w.rank, b, r.elems[b], len(send), r.Words(b))
	}
	if r.busy[b] {
		return fmt.Errorf("mpi: rank %d: bucket %d started twice", w.rank, b)
	}
	r.sends[b], r.keep[b] = unsafe.Pointer(&send[0]), send
	for j, c := range r.chunks[b] {
		if err := w.queue(c.lane, c.call); err != nil {
			// The chunks queued already must finish before send is let go.
			for _, q := range r.chunks[b][:j] {
				<-q.call.done
			}
			r.sends[b], r.keep[b] = nil, nil
			return err
		}
	}
	r.busy[b] = true
	return nil
}

// Ready reports, without blocking, whether bucket b's sums are ready; Wait
// then returns them at once.
func (r *Reducer) Ready(b int) bool {
	if b < 0 || b >= len(r.lens) || !r.busy[b] {
		return false
	}
	for _, c := range r.chunks[b] {
		select {
		case <-c.call.done:
			c.call.done <- struct{}{} // for Wait
		default:
			return false
		}
	}
	return true
}

// Wait waits for bucket b's sums (Words(b) words, as Start takes them) and
// returns them with the time its reduction ran (from the first chunk's
// start to the last one's end).
func (r *Reducer) Wait(b int) ([]float32, Span, error) {
	if b < 0 || b >= len(r.lens) || !r.busy[b] {
		return nil, Span{}, fmt.Errorf("mpi: rank %d: bucket %d was not started", r.w.rank, b)
	}
	var sp Span
	var err error
	for j, c := range r.chunks[b] {
		<-c.call.done
		if j == 0 || c.call.start.Before(sp.Start) {
			sp.Start = c.call.start
		}
		if c.call.end.After(sp.End) {
			sp.End = c.call.end
		}
		if err == nil {
			err = c.call.err
		}
	}
	r.busy[b], r.sends[b], r.keep[b] = false, nil, nil
	if err != nil {
		return nil, sp, err
	}
	return unsafe.Slice((*float32)(r.results[b]), r.Words(b)), sp, nil
}

// Release frees the reducer's memory after the buckets in flight are done
// (a shared-memory window stays until World.Close). It is local: it waits
// for no other rank, beyond the reductions in flight.
func (r *Reducer) Release() {
	for b, busy := range r.busy {
		if busy {
			for _, c := range r.chunks[b] {
				<-c.call.done
			}
		}
	}
	for _, m := range r.scratch {
		C.free(m)
	}
	if r.method == AllToAll { // else the sums live in the window
		for _, m := range r.results {
			C.free(m)
		}
	}
	r.shm, r.scratch, r.results, r.chunks, r.sends, r.keep, r.busy = nil, nil, nil, nil, nil, nil, nil
}
