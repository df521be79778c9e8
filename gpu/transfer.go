package gpu

/*
#include <stdlib.h>
#include "shim.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"unsafe"
)

// TransferPath is a way to move bytes between host memory and device
// buffers.
type TransferPath string

const (
	// PathAuto picks the fastest path the device offers.
	PathAuto TransferPath = ""
	// PathHostMapped copies on the device to and from page-aligned host
	// memory that Dawn wraps in buffers (its host-mapped-pointer feature,
	// which needs the allow_unsafe_apis toggle): no mapping, no driver
	// staging. Dawn only, where the adapter offers it.
	PathHostMapped TransferPath = "host-mapped"
	// PathMapped goes through mapped staging buffers: uploads write a
	// MapWrite buffer through its mapped range and copy it, downloads copy
	// into a MapRead buffer and read its mapped range. Every implementation.
	PathMapped TransferPath = "mapped"
	// PathQueue is the portable path: queue.writeBuffer up, a copy into a
	// staging buffer of the whole size and mapAsync down.
	PathQueue TransferPath = "queue"
)

// ParseTransferPath accepts auto (or ""), host-mapped, mapped and queue.
func ParseTransferPath(s string) (TransferPath, error) {
	switch TransferPath(s) {
	case "", "auto":
		return PathAuto, nil
	case PathHostMapped, PathMapped, PathQueue:
		return TransferPath(s), nil
	}
	return "", fmt.Errorf("unknown transfer path %q: want auto, host-mapped, mapped or queue", s)
}

// FeatureHostMappedPointer is Dawn's buffers over host memory (experimental:
// offered only with the allow_unsafe_apis toggle).
const FeatureHostMappedPointer Feature = "host-mapped-pointer"

// transferMin is the size from which Buffer.Write and Read use the device's
// transfer path; smaller ones go through the queue (one call, no staging
// of ours).
const transferMin = 1 << 20

// defaultChunk is the staging size of one slot (two per direction).
const defaultChunk = 32 << 20

// TransferPaths lists the paths the device offers, fastest first.
func (d *Device) TransferPaths() []TransferPath {
	if d.Has(FeatureHostMappedPointer) {
		return []TransferPath{PathHostMapped, PathMapped, PathQueue}
	}
	return []TransferPath{PathMapped, PathQueue}
}

// Transfer is the path Buffer.Write and Read take for large sizes.
func (d *Device) Transfer() TransferPath {
	if d.xferOpt != PathAuto {
		return d.xferOpt
	}
	return d.TransferPaths()[0]
}

// stager returns the device's own stager for its transfer path, made on
// first use; nil for the queue path.
func (d *Device) stager() (*Stager, error) {
	p := d.Transfer()
	if p == PathQueue {
		return nil, nil
	}
	d.mu.Lock()
	s := d.xfer
	d.mu.Unlock()
	if s != nil {
		return s, nil
	}
	s, err := d.NewStager(p, defaultChunk)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.xfer != nil { // made meanwhile by another goroutine
		go s.Release()
		return d.xfer, nil
	}
	d.xfer = s
	return s, nil
}

// Stager moves bytes between host memory and device buffers through one
// path, in chunks through two staging slots per direction, so that the host
// fills (or drains) one slot while the device copies the other. Its staging
// is allocated on first use in each direction and kept until Release. A
// Stager may be used from one goroutine at a time (calls are serialised).
type Stager struct {
	d     *Device
	path  TransferPath
	chunk int64
	mu    sync.Mutex
	up    [2]*stageSlot
	down  [2]*stageSlot
}

// stageSlot is one staging area: a buffer (mapped path) or host memory with
// the buffer that wraps it (host-mapped path), and its pending operation.
type stageSlot struct {
	buf    *Buffer
	host   unsafe.Pointer
	op     *C.mg_op
	busy   bool // op is pending
	isMap  bool // the pending op maps the buffer (mapped path)
	mapped bool // mapped path: the buffer is mapped now
	size   int64
}

// NewStager makes a stager for path with chunk bytes per slot (rounded up
// to the page size). The queue path needs no staging of its own.
func (d *Device) NewStager(path TransferPath, chunk int64) (*Stager, error) {
	if path == PathAuto {
		path = d.TransferPaths()[0]
	}
	switch path {
	case PathHostMapped:
		if !d.Has(FeatureHostMappedPointer) {
			return nil, fmt.Errorf("gpu: the %s transfer path needs the %s feature, which %s does not offer (Dawn offers it with the allow_unsafe_apis toggle where the driver can import host memory)",
				path, FeatureHostMappedPointer, d)
		}
	case PathMapped, PathQueue:
	default:
		return nil, fmt.Errorf("gpu: unknown transfer path %q", path)
	}
	if chunk <= 0 {
		chunk = defaultChunk
	}
	page := int64(os.Getpagesize())
	chunk = (chunk + page - 1) / page * page
	return &Stager{d: d, path: path, chunk: chunk}, nil
}

// Path is the stager's transfer path.
func (s *Stager) Path() TransferPath { return s.path }

// Release frees the staging (waiting for its pending copies).
func (s *Stager) Release() {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.d
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, set := range []*[2]*stageSlot{&s.up, &s.down} {
		for i, sl := range set {
			if sl == nil {
				continue
			}
			if sl.busy && !d.dead {
				C.mg_wait(d.Lib.c, d.inst, d.dev, sl.op, C.UINT64_MAX)
			}
			if sl.mapped && sl.buf.ptr != nil && !d.dead {
				C.mg_unmap(d.Lib.c, sl.buf.ptr)
			}
			sl.buf.destroyLocked()
			// host-mapped memory is freed by Dawn's dispose callback once the
			// buffer no longer uses it
			freeOp(sl.op)
			set[i] = nil
		}
	}
}

// slot returns slot k of a direction, making it on first use.
func (s *Stager) slotLocked(up bool, k int) (*stageSlot, error) {
	set := &s.down
	if up {
		set = &s.up
	}
	if set[k] != nil {
		return set[k], nil
	}
	d := s.d
	sl := &stageSlot{op: d.Lib.newOp(), size: s.chunk}
	label := fmt.Sprintf("staging.%s.%s.%d", s.path, map[bool]string{true: "up", false: "down"}[up], k)
	switch s.path {
	case PathHostMapped:
		host := C.mg_host_alloc(C.size_t(os.Getpagesize()), C.size_t(s.chunk))
		if host == nil {
			freeOp(sl.op)
			return nil, fmt.Errorf("gpu: %s: allocating %d bytes of host memory failed", label, s.chunk)
		}
		clabel := C.CString(label)
		defer C.free(unsafe.Pointer(clabel))
		var ptr unsafe.Pointer
		err := d.scopeLocked("create buffer "+label, func() {
			ptr = C.mg_create_buffer_host(d.Lib.c, d.dev, clabel, C.uint64_t(UsageCopySrc|UsageCopyDst), C.uint64_t(s.chunk), host, 1)
		})
		if ptr != nil {
			d.created(C.MG_BUFFER)
		}
		if err != nil || ptr == nil {
			if ptr != nil {
				C.mg_buffer_destroy(d.Lib.c, ptr)
				d.release(C.MG_BUFFER, ptr)
			} else {
				C.mg_host_free(host)
			}
			freeOp(sl.op)
			if err == nil {
				err = errors.New("returned null")
			}
			return nil, fmt.Errorf("gpu: creating the host-mapped buffer %s (%d bytes): %w", label, s.chunk, err)
		}
		sl.host = host
		sl.buf = &Buffer{d: d, ptr: ptr, Size: s.chunk, Usage: UsageCopySrc | UsageCopyDst, Label: label, Category: MemStaging}
		d.mem.add(sl.buf)
	case PathMapped:
		usage := UsageMapRead | UsageCopyDst
		if up {
			usage = UsageMapWrite | UsageCopySrc
		}
		clabel := C.CString(label)
		defer C.free(unsafe.Pointer(clabel))
		var ptr unsafe.Pointer
		err := d.scopeLocked("create buffer "+label, func() {
			ptr = C.mg_create_buffer(d.Lib.c, d.dev, clabel, C.uint64_t(usage), C.uint64_t(s.chunk), C.mg_bool(b2u(up)))
		})
		if ptr != nil {
			d.created(C.MG_BUFFER)
		}
		if err != nil || ptr == nil {
			if ptr != nil {
				C.mg_buffer_destroy(d.Lib.c, ptr)
				d.release(C.MG_BUFFER, ptr)
			}
			freeOp(sl.op)
			if err == nil {
				err = errors.New("returned null")
			}
			return nil, fmt.Errorf("gpu: creating the staging buffer %s (%d bytes): %w", label, s.chunk, err)
		}
		sl.buf = &Buffer{d: d, ptr: ptr, Size: s.chunk, Usage: usage, Label: label, Category: MemStaging}
		sl.mapped = up // created mapped for writing
		d.mem.add(sl.buf)
	}
	set[k] = sl
	return sl, nil
}

// hostAllocations is the number of host-memory blocks of host-mapped
// staging not yet freed (tests check Dawn's dispose callback frees them).
func hostAllocations() int { return int(C.mg_host_live()) }

func b2u(b bool) int {
	if b {
		return 1
	}
	return 0
}

// waitLocked waits for a slot's pending operation and checks its status.
func (s *Stager) waitLocked(sl *stageSlot, what string) error {
	if !sl.busy {
		return nil
	}
	d := s.d
	sl.busy = false
	isMap := sl.isMap
	sl.isMap = false
	if C.mg_wait(d.Lib.c, d.inst, d.dev, sl.op, C.UINT64_MAX) != 1 {
		return errors.Join(fmt.Errorf("gpu: %s: waiting failed", what), d.errLocked(what))
	}
	if sl.op.status != 1 {
		return errors.Join(fmt.Errorf("gpu: %s failed (status %d): %s", what, sl.op.status, C.GoString(&sl.op.msg[0])), d.errLocked(what))
	}
	if isMap {
		sl.mapped = true
	}
	return nil
}

// copyLocked records and submits one buffer copy.
func (s *Stager) copyLocked(src *Buffer, srcOff int64, dst *Buffer, dstOff, size int64) error {
	d := s.d
	l := d.Lib.c
	enc := C.mg_create_encoder(l, d.dev)
	d.created(C.MG_ENCODER)
	C.mg_encoder_copy(l, enc, src.ptr, C.uint64_t(srcOff), dst.ptr, C.uint64_t(dstOff), C.uint64_t(size))
	cmd := C.mg_encoder_finish(l, enc)
	d.created(C.MG_COMMAND_BUFFER)
	C.mg_queue_submit(l, d.queue, cmd)
	d.release(C.MG_COMMAND_BUFFER, cmd)
	d.release(C.MG_ENCODER, enc)
	return d.errLocked(fmt.Sprintf("copy %s -> %s (%d bytes)", src.Label, dst.Label, size))
}

func checkTransfer(op string, b *Buffer, off, n int64, need BufferUsage) error {
	if err := b.checkRange(op, off, n); err != nil {
		return err
	}
	if b.Usage&need == 0 {
		return fmt.Errorf("gpu: %s buffer %q: it lacks the copy usage a transfer needs", op, b.Label)
	}
	return nil
}

// Upload copies src into dst at byte offset off. It returns once src has
// been copied into staging; the device copies are ordered before any later
// submit.
func (s *Stager) Upload(dst *Buffer, off int64, src []byte) error {
	return s.UploadFunc(dst, off, int64(len(src)), func(p []byte, pos int64) error {
		ParallelCopy(p, src[pos:pos+int64(len(p))])
		return nil
	})
}

// UploadFunc writes n bytes into dst at off, asking fill to write each piece
// (the bytes at pos .. pos+len(p) of the transfer) straight into staging:
// data that is generated or read from a file needs no copy of its own.
func (s *Stager) UploadFunc(dst *Buffer, off, n int64, fill func(p []byte, pos int64) error) error {
	if n == 0 {
		return nil
	}
	if err := checkTransfer("upload to", dst, off, n, UsageCopyDst); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.d
	if s.path == PathQueue {
		buf := make([]byte, min(n, s.chunk))
		for pos := int64(0); pos < n; pos += s.chunk {
			sz := min(s.chunk, n-pos)
			if err := fill(buf[:sz], pos); err != nil {
				return err
			}
			if err := dst.writeQueue(off+pos, buf[:sz]); err != nil {
				return err
			}
		}
		return nil
	}
	for i, pos := 0, int64(0); pos < n; i, pos = i+1, pos+s.chunk {
		sz := min(s.chunk, n-pos)
		d.mu.Lock()
		if d.closed {
			d.mu.Unlock()
			return errors.New("gpu: device is closed")
		}
		sl, err := s.slotLocked(true, i%2)
		if err == nil {
			err = s.readyUpLocked(sl)
		}
		var p []byte
		if err == nil {
			p, err = s.hostViewLocked(sl, sz, true)
		}
		d.mu.Unlock()
		if err != nil {
			return fmt.Errorf("gpu: upload of %d bytes to %q: %w", n, dst.Label, err)
		}
		ferr := fill(p, pos)
		d.mu.Lock()
		if s.path == PathMapped {
			C.mg_unmap(d.Lib.c, sl.buf.ptr)
			sl.mapped = false
		}
		if ferr == nil {
			err = s.copyLocked(sl.buf, 0, dst, off+pos, sz)
		}
		if s.path == PathMapped {
			// Map it again for the next use: the map completes once the
			// copy above has read the buffer.
			C.mg_map_async(d.Lib.c, sl.buf.ptr, 2, 0, C.size_t(sl.size), sl.op)
			sl.isMap = true
		} else {
			C.mg_queue_done(d.Lib.c, d.queue, sl.op)
		}
		sl.busy = true
		d.mu.Unlock()
		if ferr != nil {
			return ferr
		}
		if err != nil {
			return fmt.Errorf("gpu: upload of %d bytes to %q: %w", n, dst.Label, err)
		}
	}
	return nil
}

// readyUpLocked waits until an upload slot may be written.
func (s *Stager) readyUpLocked(sl *stageSlot) error {
	if err := s.waitLocked(sl, "staging "+sl.buf.Label); err != nil {
		return err
	}
	if s.path == PathMapped && !sl.mapped {
		// (after an error: no map pending)
		C.mg_map_async(s.d.Lib.c, sl.buf.ptr, 2, 0, C.size_t(sl.size), sl.op)
		sl.busy, sl.isMap = true, true
		if err := s.waitLocked(sl, "mapping "+sl.buf.Label); err != nil {
			return err
		}
	}
	return nil
}

// hostViewLocked returns the slot's first sz bytes as a Go slice.
func (s *Stager) hostViewLocked(sl *stageSlot, sz int64, write bool) ([]byte, error) {
	if s.path == PathHostMapped {
		return unsafe.Slice((*byte)(sl.host), sz), nil
	}
	var p unsafe.Pointer
	if write {
		p = C.mg_mapped_range_rw(s.d.Lib.c, sl.buf.ptr, 0, C.size_t(sl.size))
	} else {
		p = unsafe.Pointer(C.mg_mapped_range(s.d.Lib.c, sl.buf.ptr, 0, C.size_t(sl.size)))
	}
	if p == nil {
		return nil, fmt.Errorf("the mapped range of %s is null", sl.buf.Label)
	}
	return unsafe.Slice((*byte)(p), sz), nil
}

// Download copies the bytes of src at byte offset off into dst, waiting for
// all work submitted before it.
func (s *Stager) Download(src *Buffer, off int64, dst []byte) error {
	return s.DownloadFunc(src, off, int64(len(dst)), func(p []byte, pos int64) error {
		ParallelCopy(dst[pos:pos+int64(len(p))], p)
		return nil
	})
}

// DownloadFunc reads n bytes of src at off, handing each piece to use (the
// bytes at pos .. pos+len(p) of the transfer) straight from staging; p is
// valid only during the call.
func (s *Stager) DownloadFunc(src *Buffer, off, n int64, use func(p []byte, pos int64) error) error {
	if n == 0 {
		return nil
	}
	if err := checkTransfer("download from", src, off, n, UsageCopySrc); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.d
	if s.path == PathQueue {
		for pos := int64(0); pos < n; pos += s.chunk {
			sz := min(s.chunk, n-pos)
			rb, err := src.ReadAsync(off+pos, sz)
			if err != nil {
				return err
			}
			p, err := rb.Wait()
			if err != nil {
				return err
			}
			if err := use(p, pos); err != nil {
				return err
			}
		}
		return nil
	}
	nch := int((n + s.chunk - 1) / s.chunk)
	issue := func(i int) error { // with d.mu held
		sl, err := s.slotLocked(false, i%2)
		if err != nil {
			return err
		}
		if err := s.waitLocked(sl, "staging "+sl.buf.Label); err != nil {
			return err
		}
		pos := int64(i) * s.chunk
		sz := min(s.chunk, n-pos)
		if err := s.copyLocked(src, off+pos, sl.buf, 0, sz); err != nil {
			return err
		}
		if s.path == PathMapped {
			C.mg_map_async(d.Lib.c, sl.buf.ptr, 1, 0, C.size_t(sl.size), sl.op)
			sl.isMap = true
		} else {
			C.mg_queue_done(d.Lib.c, d.queue, sl.op)
		}
		sl.busy = true
		return nil
	}
	wrap := func(err error) error {
		return fmt.Errorf("gpu: download of %d bytes from %q: %w", n, src.Label, err)
	}
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return errors.New("gpu: device is closed")
	}
	var err error
	for i := 0; i < min(2, nch) && err == nil; i++ {
		err = issue(i)
	}
	d.mu.Unlock()
	if err != nil {
		return wrap(err)
	}
	for i := 0; i < nch; i++ {
		sl := s.down[i%2]
		pos := int64(i) * s.chunk
		sz := min(s.chunk, n-pos)
		d.mu.Lock()
		err := s.waitLocked(sl, "staging "+sl.buf.Label)
		var p []byte
		if err == nil {
			p, err = s.hostViewLocked(sl, sz, false)
		}
		d.mu.Unlock()
		if err != nil {
			s.unmapDown()
			return wrap(err)
		}
		uerr := use(p, pos)
		d.mu.Lock()
		if sl.mapped {
			C.mg_unmap(d.Lib.c, sl.buf.ptr)
			sl.mapped = false
		}
		if uerr == nil && i+2 < nch {
			err = issue(i + 2)
		}
		d.mu.Unlock()
		if uerr != nil {
			s.unmapDown()
			return uerr
		}
		if err != nil {
			s.unmapDown()
			return wrap(err)
		}
	}
	return nil
}

// unmapDown settles the download slots after an early return: pending work
// is waited for and mapped buffers are unmapped, so the next use starts clean.
func (s *Stager) unmapDown() {
	d := s.d
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, sl := range s.down {
		if sl == nil {
			continue
		}
		if sl.busy {
			s.waitLocked(sl, "staging")
		}
		if sl.mapped {
			C.mg_unmap(d.Lib.c, sl.buf.ptr)
			sl.mapped = false
		}
	}
}

// ParallelCopy copies src into dst (of the same length) with several
// goroutines when it is large: one core's memcpy falls short of what the
// device's copies reach.
func ParallelCopy(dst, src []byte) {
	const piece = 4 << 20
	n := len(src)
	w := min(runtime.GOMAXPROCS(0), 8, n/piece)
	if w <= 1 {
		copy(dst, src)
		return
	}
	per := (n + w - 1) / w
	per = (per + 4095) &^ 4095
	var wg sync.WaitGroup
	for lo := 0; lo < n; lo += per {
		hi := min(n, lo+per)
		wg.Add(1)
		go func() {
			defer wg.Done()
			copy(dst[lo:hi], src[lo:hi])
		}()
	}
	wg.Wait()
}

// HostMappedBuffer is host memory that the device copies to and from
// directly (Dawn's host-mapped-pointer feature): record copies between it
// (Buffer) and device buffers, Fence after their submit, Wait, and read or
// write Bytes in place, with no mapping and no copy of the host's own. (A
// data-parallel trainer can stage gradient buckets this way: the device
// copies the gradients in, MPI reads and sums them where they lie, and the
// device copies the sums back.) The host must not touch Bytes while copies
// that use them are pending.
type HostMappedBuffer struct {
	b    *Buffer
	host unsafe.Pointer
	op   *C.mg_op
	busy bool
}

// NewHostMappedBuffer makes a host-mapped buffer of size bytes (rounded up
// to the page size); the device must have the host-mapped-pointer feature.
func (d *Device) NewHostMappedBuffer(label string, size int64) (*HostMappedBuffer, error) {
	s, err := d.NewStager(PathHostMapped, size)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	sl, err := s.slotLocked(true, 0)
	if err != nil {
		return nil, err
	}
	sl.buf.Label = label
	return &HostMappedBuffer{b: sl.buf, host: sl.host, op: sl.op}, nil
}

// Buffer is the device side, for Recorder.Copy.
func (h *HostMappedBuffer) Buffer() *Buffer { return h.b }

// Bytes is the host side: the buffer's memory.
func (h *HostMappedBuffer) Bytes() []byte {
	if h.b == nil || h.b.ptr == nil {
		return nil
	}
	return unsafe.Slice((*byte)(h.host), h.b.Size)
}

// Fence marks the work submitted so far: Wait returns once it is done.
func (h *HostMappedBuffer) Fence() error {
	if h.b == nil || h.b.ptr == nil {
		return errors.New("gpu: fence on a released host-mapped buffer")
	}
	d := h.b.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return errors.New("gpu: device is closed")
	}
	C.mg_queue_done(d.Lib.c, d.queue, h.op)
	h.busy = true
	return nil
}

// Wait blocks until the work before the last Fence is done (at once
// without one).
func (h *HostMappedBuffer) Wait() error {
	if !h.busy {
		return nil
	}
	d := h.b.d
	d.mu.Lock()
	defer d.mu.Unlock()
	h.busy = false
	if C.mg_wait(d.Lib.c, d.inst, d.dev, h.op, C.UINT64_MAX) != 1 || h.op.status != 1 {
		return errors.Join(fmt.Errorf("gpu: waiting for host-mapped buffer %q failed", h.b.Label), d.errLocked("host-mapped "+h.b.Label))
	}
	return d.errLocked("host-mapped " + h.b.Label)
}

// Release waits for pending work and frees the buffer (its memory goes
// once the device is done with it).
func (h *HostMappedBuffer) Release() {
	if h == nil || h.b == nil {
		return
	}
	h.Wait()
	d := h.b.d
	d.mu.Lock()
	h.b.destroyLocked()
	d.mu.Unlock()
	freeOp(h.op)
	h.b = nil
}
