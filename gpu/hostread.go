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
	if C.mg_wait(d.Lib.c, d.inst, d.dev, h.op, C.UINT64_MAX) != 1 {
		return nil, fmt.Errorf("gpu: waiting for host-read buffer %q failed", h.b.Label)
	}
	if h.op.status != 1 {
		err := fmt.Errorf("gpu: mapping host-read buffer %q failed (status %d): %s", h.b.Label, h.op.status, C.GoString(&h.op.msg[0]))
		if e := d.errLocked("map " + h.b.Label); e != nil {
			err = errors.Join(err, e)
		}
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
