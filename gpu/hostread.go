package gpu

/*
#include <stdlib.h>
#include "shim.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"unsafe"
)

// HostReadBuffer is a map-readable buffer made once and used again and
// again to bring device data to the host without a copy into Go memory:
// the device copies into it (Recorder.Copy to Buffer()), Map starts
// mapping it after that submit, Wait returns the bytes where they lie, and
// Unmap hands the buffer back to the device for its next use. (The
// data-parallel trainer reads gradient buckets this way and passes the
// mapped bytes straight to MPI.)
type HostReadBuffer struct {
	b      *Buffer
	op     *C.mg_op
	mapped bool // Map was called and Unmap not yet
	data   []byte
}

// NewHostReadBuffer makes a host-readable buffer of size bytes (a
// multiple of 4).
func (d *Device) NewHostReadBuffer(label string, size int64) (*HostReadBuffer, error) {
	b, err := d.NewBuffer(label, size, UsageMapRead|UsageCopyDst)
	if err != nil {
		return nil, err
	}
	return &HostReadBuffer{b: b, op: d.Lib.newOp()}, nil
}

// Buffer is the device buffer to copy into.
func (h *HostReadBuffer) Buffer() *Buffer { return h.b }

// Map starts mapping the whole buffer for reading; work submitted before
// it is included.
func (h *HostReadBuffer) Map() error {
	if h.b == nil || h.b.ptr == nil {
		return errors.New("gpu: map of a released host-read buffer")
	}
	if h.mapped {
		return fmt.Errorf("gpu: host-read buffer %q is already mapped", h.b.Label)
	}
	d := h.b.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return errors.New("gpu: device is closed")
	}
	*h.op = C.mg_op{}
	C.mg_map_async(d.Lib.c, h.b.ptr, 1, 0, C.size_t(h.b.Size), h.op)
	h.mapped, h.data = true, nil
	return nil
}

// Wait blocks until the buffer is mapped and returns its bytes, which stay
// valid (and must not be written) until Unmap.
func (h *HostReadBuffer) Wait() ([]byte, error) {
	if !h.mapped {
		return nil, fmt.Errorf("gpu: host-read buffer %q: Wait without Map", h.b.Label)
	}
	if h.data != nil {
		return h.data, nil
	}
	d := h.b.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, errors.New("gpu: device is closed")
	}
	if err := d.waitMapLocked(h.op, "host-read", h.b.Label); err != nil {
		return nil, err
	}
	p := C.mg_mapped_range(d.Lib.c, h.b.ptr, 0, C.size_t(h.b.Size))
	if p == nil {
		return nil, fmt.Errorf("gpu: host-read buffer %q: mapped range is null", h.b.Label)
	}
	h.data = unsafe.Slice((*byte)(unsafe.Pointer(p)), h.b.Size)
	return h.data, nil
}

// Unmap ends the host's access: the bytes Wait returned are gone. It
// waits for a mapping still under way.
func (h *HostReadBuffer) Unmap() {
	if !h.mapped || h.b.ptr == nil {
		return
	}
	if h.data == nil {
		h.Wait() // a pending map must finish before the unmap
	}
	d := h.b.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.dead {
		C.mg_unmap(d.Lib.c, h.b.ptr)
	}
	h.mapped, h.data = false, nil
}

// Release unmaps and destroys the buffer.
func (h *HostReadBuffer) Release() {
	if h == nil || h.b == nil {
		return
	}
	if h.mapped && h.b.ptr != nil && !h.b.d.closed {
		h.Unmap()
	}
	h.b.Release()
	freeOp(h.op)
	h.b, h.op, h.mapped, h.data = nil, nil, false, nil
}

// HostWriteBuffer is a map-writable buffer made once and used again and
// again to bring host data to the device without the queue's copy: the
// host writes into Bytes() while it is mapped, Unmap hands it to the
// device, the device copies out of it (Recorder.Copy from Buffer()), and
// Remap, after the submit holding that copy, starts mapping it again for
// the next use. Unlike Buffer.Write, nothing here waits for the queue to
// drain: only the next Bytes waits, for the copy out of this buffer. (The
// data-parallel trainer writes the summed gradient buckets this way while
// the backward is still running.)
type HostWriteBuffer struct {
	b       *Buffer
	op      *C.mg_op
	mapped  bool // mapped now, or a map is pending (Remap)
	pending bool // a map is pending
	data    []byte
}

// NewHostWriteBuffer makes a host-writable buffer of size bytes (a
// multiple of 4), mapped for writing from the start.
func (d *Device) NewHostWriteBuffer(label string, size int64) (*HostWriteBuffer, error) {
	b, err := d.newBufferIn(MemStaging, label, size, UsageMapWrite|UsageCopySrc, true)
	if err != nil {
		return nil, fmt.Errorf("gpu: host-write buffer: %w", err)
	}
	return &HostWriteBuffer{b: b, op: d.Lib.newOp(), mapped: true}, nil
}

// Buffer is the device buffer to copy from.
func (h *HostWriteBuffer) Buffer() *Buffer { return h.b }

// Bytes waits until the buffer is mapped and returns its bytes to write,
// valid until Unmap.
func (h *HostWriteBuffer) Bytes() ([]byte, error) {
	if h.b == nil || h.b.ptr == nil {
		return nil, errors.New("gpu: write into a released host-write buffer")
	}
	if !h.mapped {
		return nil, fmt.Errorf("gpu: host-write buffer %q is not mapped (Remap after the copy out of it)", h.b.Label)
	}
	if h.data != nil {
		return h.data, nil
	}
	d := h.b.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, errors.New("gpu: device is closed")
	}
	if h.pending {
		h.pending = false
		if err := d.waitMapLocked(h.op, "host-write", h.b.Label); err != nil {
			h.mapped = false
			return nil, err
		}
	}
	p := C.mg_mapped_range_rw(d.Lib.c, h.b.ptr, 0, C.size_t(h.b.Size))
	if p == nil {
		return nil, fmt.Errorf("gpu: host-write buffer %q: mapped range is null", h.b.Label)
	}
	h.data = unsafe.Slice((*byte)(p), h.b.Size)
	return h.data, nil
}

// Unmap hands the written bytes to the device; copies out of Buffer()
// recorded after it see them.
func (h *HostWriteBuffer) Unmap() error {
	if h.b == nil || h.b.ptr == nil {
		return errors.New("gpu: unmap of a released host-write buffer")
	}
	if !h.mapped {
		return nil
	}
	if h.pending {
		if _, err := h.Bytes(); err != nil {
			return err
		}
	}
	d := h.b.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.dead {
		C.mg_unmap(d.Lib.c, h.b.ptr)
	}
	h.mapped, h.data = false, nil
	return nil
}

// Remap starts mapping the buffer for writing again; it completes once
// the work submitted before it (the copy out of it) is done, and Bytes
// waits for that.
func (h *HostWriteBuffer) Remap() error {
	if h.b == nil || h.b.ptr == nil {
		return errors.New("gpu: remap of a released host-write buffer")
	}
	if h.mapped {
		return nil
	}
	d := h.b.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return errors.New("gpu: device is closed")
	}
	*h.op = C.mg_op{}
	C.mg_map_async(d.Lib.c, h.b.ptr, 2, 0, C.size_t(h.b.Size), h.op)
	h.mapped, h.pending, h.data = true, true, nil
	return nil
}

// Release destroys the buffer (waiting for a pending map first).
func (h *HostWriteBuffer) Release() {
	if h == nil || h.b == nil {
		return
	}
	if h.pending && h.b.ptr != nil && !h.b.d.closed {
		h.Bytes()
	}
	h.b.Release()
	freeOp(h.op)
	h.b, h.op, h.mapped, h.pending, h.data = nil, nil, false, false, nil
}

// waitMapLocked waits for the map op of a host-read or host-write buffer
// (kind) and checks its status.
func (d *Device) waitMapLocked(op *C.mg_op, kind, label string) error {
	if C.mg_wait(d.Lib.c, d.inst, d.dev, op, C.UINT64_MAX) != 1 {
		return fmt.Errorf("gpu: waiting for %s buffer %q failed", kind, label)
	}
	if op.status != 1 {
		err := fmt.Errorf("gpu: mapping %s buffer %q failed (status %d): %s", kind, label, op.status, C.GoString(&op.msg[0]))
		if e := d.errLocked("map " + label); e != nil {
			err = errors.Join(err, e)
		}
		return err
	}
	return nil
}
