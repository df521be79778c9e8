package gpu

/*
#include <stdlib.h>
#include <string.h>
#include "shim.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"unsafe"
)

// BufferUsage is a set of WebGPU buffer usage flags.
type BufferUsage uint64

// Buffer usages of webgpu.h.
const (
	UsageMapRead      BufferUsage = 0x0001
	UsageMapWrite     BufferUsage = 0x0002
	UsageCopySrc      BufferUsage = 0x0004
	UsageCopyDst      BufferUsage = 0x0008
	UsageUniform      BufferUsage = 0x0040
	UsageStorage      BufferUsage = 0x0080
	UsageQueryResolve BufferUsage = 0x0200

	// UsageTensor is what the engine's tensors use: bound as storage, written
	// from the host, copied and read back.
	UsageTensor = UsageStorage | UsageCopySrc | UsageCopyDst
)

// Buffer is a region of device memory.
type Buffer struct {
	d        *Device
	ptr      unsafe.Pointer
	Size     int64
	Usage    BufferUsage
	Label    string
	Category MemCategory // what the memory holds, for the device's accounting
}

// NewBuffer creates a buffer of size bytes (rounded up to a multiple of 4),
// counted as scratch (staging when it is mappable). A size above the
// device's maxBufferSize is an error that names the limit.
func (d *Device) NewBuffer(label string, size int64, usage BufferUsage) (*Buffer, error) {
	cat := MemScratch
	if usage&(UsageMapRead|UsageMapWrite) != 0 {
		cat = MemStaging
	}
	return d.NewBufferIn(cat, label, size, usage)
}

// NewBufferIn is NewBuffer with the memory counted under cat.
func (d *Device) NewBufferIn(cat MemCategory, label string, size int64, usage BufferUsage) (*Buffer, error) {
	return d.newBufferIn(cat, label, size, usage, false)
}

// newBufferIn is NewBufferIn with the buffer mapped at creation when mapped.
func (d *Device) newBufferIn(cat MemCategory, label string, size int64, usage BufferUsage, mapped bool) (*Buffer, error) {
	if size <= 0 {
		return nil, fmt.Errorf("gpu: buffer %q: size %d must be positive", label, size)
	}
	size = (size + 3) &^ 3
	if uint64(size) > d.Limits.MaxBufferSize {
		return nil, fmt.Errorf("gpu: buffer %q of %d bytes exceeds the device's maxBufferSize limit (%d bytes on %s)",
			label, size, d.Limits.MaxBufferSize, d.Info.Name)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, errors.New("gpu: device is closed")
	}
	return d.newBufferMappedLocked(cat, label, size, usage, mapped)
}

func (d *Device) newBufferLocked(cat MemCategory, label string, size int64, usage BufferUsage) (*Buffer, error) {
	return d.newBufferMappedLocked(cat, label, size, usage, false)
}

// newBufferMappedLocked is newBufferLocked with the buffer mapped at
// creation when mapped (for a map-writable buffer the host fills first).
func (d *Device) newBufferMappedLocked(cat MemCategory, label string, size int64, usage BufferUsage, mapped bool) (*Buffer, error) {
	if d.mem.pending+d.mem.pendStage >= collectMin {
		if err := d.collectLocked(); err != nil {
			return nil, fmt.Errorf("gpu: creating buffer %q: %w", label, err)
		}
	}
	clabel := C.CString(label)
	defer C.free(unsafe.Pointer(clabel))
	var ptr unsafe.Pointer
	err := d.scopeLocked("create buffer "+label, func() {
		ptr = C.mg_create_buffer(d.Lib.c, d.dev, clabel, C.uint64_t(usage), C.uint64_t(size), C.mg_bool(b2u(mapped)))
	})
	if ptr != nil {
		d.created(C.MG_BUFFER)
	}
	if err != nil {
		if ptr != nil {
			C.mg_buffer_destroy(d.Lib.c, ptr)
			d.release(C.MG_BUFFER, ptr)
		}
		return nil, fmt.Errorf("gpu: creating buffer %q (%d bytes): %w", label, size, err)
	}
	if ptr == nil {
		return nil, fmt.Errorf("gpu: creating buffer %q (%d bytes) returned null", label, size)
	}
	b := &Buffer{d: d, ptr: ptr, Size: size, Usage: usage, Label: label, Category: cat}
	d.mem.add(b)
	return b, nil
}

// Release destroys the buffer and frees its memory.
func (b *Buffer) Release() {
	if b == nil || b.ptr == nil {
		return
	}
	b.d.mu.Lock()
	defer b.d.mu.Unlock()
	b.destroyLocked()
}

func (b *Buffer) destroyLocked() {
	if b.ptr == nil || b.d.dead {
		b.ptr = nil // the device took its buffers with it
		return
	}
	b.d.mem.remove(b)
	C.mg_buffer_destroy(b.d.Lib.c, b.ptr)
	b.d.release(C.MG_BUFFER, b.ptr)
	b.ptr = nil
}

func (b *Buffer) checkRange(op string, offset, size int64) error {
	if b.ptr == nil {
		return fmt.Errorf("gpu: %s buffer %q: buffer was released", op, b.Label)
	}
	if offset < 0 || size < 0 || offset+size > b.Size {
		return fmt.Errorf("gpu: %s buffer %q: range [%d, %d) outside its %d bytes", op, b.Label, offset, offset+size, b.Size)
	}
	if offset%4 != 0 || size%4 != 0 {
		return fmt.Errorf("gpu: %s buffer %q: offset %d and size %d must be multiples of 4", op, b.Label, offset, size)
	}
	return nil
}

// Write copies data into the buffer at offset; it is ordered before any
// later submit. A large write goes through the device's transfer path
// (Device.Transfer), a small one through the queue.
func (b *Buffer) Write(offset int64, data []byte) error {
	if len(data) == 0 {
		return nil
	}
	if err := b.checkRange("write", offset, int64(len(data))); err != nil {
		return err
	}
	if len(data) >= transferMin && b.Usage&UsageCopyDst != 0 {
		s, err := b.d.stager()
		if err != nil {
			return err
		}
		if s != nil {
			return s.Upload(b, offset, data)
		}
	}
	return b.writeQueue(offset, data)
}

// WriteWith writes size bytes at offset, asking fill for each piece (the
// bytes at pos .. pos+len(p)) straight into the transfer path's staging.
func (b *Buffer) WriteWith(offset, size int64, fill func(p []byte, pos int64) error) error {
	if size == 0 {
		return nil
	}
	if err := b.checkRange("write", offset, size); err != nil {
		return err
	}
	if size < transferMin {
		p := make([]byte, size)
		if err := fill(p, 0); err != nil {
			return err
		}
		return b.writeQueue(offset, p)
	}
	s, err := b.d.stager()
	if err != nil {
		return err
	}
	if s == nil {
		if s, err = b.d.NewStager(PathQueue, defaultChunk); err != nil {
			return err
		}
	}
	return s.UploadFunc(b, offset, size, fill)
}

// writeQueue is Write through queue.writeBuffer.
func (b *Buffer) writeQueue(offset int64, data []byte) error {
	if err := b.checkRange("write", offset, int64(len(data))); err != nil {
		return err
	}
	d := b.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return errors.New("gpu: device is closed")
	}
	// The implementation copies the bytes before returning, so the Go slice
	// may be passed directly (it holds no Go pointers).
	C.mg_queue_write(d.Lib.c, d.queue, b.ptr, C.uint64_t(offset), unsafe.Pointer(&data[0]), C.size_t(len(data)))
	return d.errLocked("write buffer " + b.Label)
}

// WriteFloat32 writes float32 values at element offset off.
func (b *Buffer) WriteFloat32(off int, v []float32) error {
	if len(v) == 0 {
		return nil
	}
	return b.Write(int64(off)*4, unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), 4*len(v)))
}

// WriteUint32 writes uint32 values at element offset off.
func (b *Buffer) WriteUint32(off int, v []uint32) error {
	if len(v) == 0 {
		return nil
	}
	return b.Write(int64(off)*4, unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), 4*len(v)))
}

// Readback is a pending copy of device memory to the host.
type Readback struct {
	d       *Device
	staging *Buffer
	size    int64
	op      *C.mg_op
	done    bool
	data    []byte
	err     error
}

// ReadAsync starts copying size bytes at offset of b to the host and returns
// at once; Wait (or Ready) collects the bytes. Work submitted before the call
// is included.
func (b *Buffer) ReadAsync(offset, size int64) (*Readback, error) {
	if err := b.checkRange("read", offset, size); err != nil {
		return nil, err
	}
	if size == 0 {
		return &Readback{done: true}, nil
	}
	d := b.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, errors.New("gpu: device is closed")
	}
	st, err := d.stagingLocked(size)
	if err != nil {
		return nil, err
	}
	l := d.Lib.c
	enc := C.mg_create_encoder(l, d.dev)
	d.created(C.MG_ENCODER)
	C.mg_encoder_copy(l, enc, b.ptr, C.uint64_t(offset), st.ptr, 0, C.uint64_t(size))
	cmd := C.mg_encoder_finish(l, enc)
	d.created(C.MG_COMMAND_BUFFER)
	C.mg_queue_submit(l, d.queue, cmd)
	d.release(C.MG_COMMAND_BUFFER, cmd)
	d.release(C.MG_ENCODER, enc)
	rb := &Readback{d: d, staging: st, size: size, op: d.Lib.newOp()}
	C.mg_map_async(l, st.ptr, 1, 0, C.size_t(size), rb.op)
	return rb, nil
}

// stagingLocked takes a map-readable buffer of at least size bytes from the pool.
func (d *Device) stagingLocked(size int64) (*Buffer, error) {
	size = (size + 255) &^ 255
	if list := d.staging[size]; len(list) > 0 {
		b := list[len(list)-1]
		d.staging[size] = list[:len(list)-1]
		return b, nil
	}
	return d.newBufferLocked(MemStaging, "staging", size, UsageMapRead|UsageCopyDst)
}

// Ready reports, without blocking, whether the bytes have arrived.
func (r *Readback) Ready() bool {
	if r.done {
		return true
	}
	d := r.d
	d.mu.Lock()
	ok := C.mg_poll(d.Lib.c, d.inst, d.dev, r.op) == 1
	d.mu.Unlock()
	if ok {
		r.Wait()
	}
	return ok
}

// Wait blocks until the bytes have arrived and returns them.
func (r *Readback) Wait() ([]byte, error) {
	if r.done {
		return r.data, r.err
	}
	d := r.d
	d.mu.Lock()
	defer d.mu.Unlock()
	r.done = true
	defer func() {
		freeOp(r.op)
		d.staging[r.staging.Size] = append(d.staging[r.staging.Size], r.staging)
	}()
	if C.mg_wait(d.Lib.c, d.inst, d.dev, r.op, C.UINT64_MAX) != 1 {
		r.err = fmt.Errorf("gpu: waiting for a readback of %d bytes failed", r.size)
		return nil, r.err
	}
	if r.op.status != 1 {
		r.err = fmt.Errorf("gpu: mapping a readback of %d bytes failed (status %d): %s", r.size, r.op.status, C.GoString(&r.op.msg[0]))
		if err := d.errLocked("readback"); err != nil {
			r.err = errors.Join(r.err, err)
		}
		return nil, r.err
	}
	p := C.mg_mapped_range(d.Lib.c, r.staging.ptr, 0, C.size_t(r.size))
	if p == nil {
		C.mg_unmap(d.Lib.c, r.staging.ptr)
		r.err = fmt.Errorf("gpu: readback of %d bytes: mapped range is null", r.size)
		return nil, r.err
	}
	r.data = C.GoBytes(p, C.int(r.size))
	C.mg_unmap(d.Lib.c, r.staging.ptr)
	return r.data, nil
}

// Read copies size bytes at offset of b to the host, waiting for all work
// submitted before it.
func (b *Buffer) Read(offset, size int64) ([]byte, error) {
	if err := b.checkRange("read", offset, size); err != nil {
		return nil, err
	}
	out := make([]byte, size)
	if err := b.ReadInto(offset, out); err != nil {
		return nil, err
	}
	return out, nil
}

// ReadInto copies len(dst) bytes at offset of b into dst, waiting for all
// work submitted before it. A large read goes through the device's transfer
// path (Device.Transfer).
func (b *Buffer) ReadInto(offset int64, dst []byte) error {
	size := int64(len(dst))
	if err := b.checkRange("read", offset, size); err != nil {
		return err
	}
	if size == 0 {
		return nil
	}
	if size >= transferMin && b.Usage&UsageCopySrc != 0 {
		s, err := b.d.stager()
		if err != nil {
			return err
		}
		if s != nil {
			return s.Download(b, offset, dst)
		}
	}
	rb, err := b.ReadAsync(offset, size)
	if err != nil {
		return err
	}
	raw, err := rb.Wait()
	if err != nil {
		return err
	}
	copy(dst, raw)
	return nil
}

// ReadWith reads size bytes at offset, handing each piece (the bytes at pos
// .. pos+len(p)) to use straight from the transfer path's staging; p is
// valid only during the call.
func (b *Buffer) ReadWith(offset, size int64, use func(p []byte, pos int64) error) error {
	if err := b.checkRange("read", offset, size); err != nil {
		return err
	}
	if size < transferMin {
		p, err := b.Read(offset, size)
		if err != nil {
			return err
		}
		return use(p, 0)
	}
	s, err := b.d.stager()
	if err != nil {
		return err
	}
	if s == nil {
		if s, err = b.d.NewStager(PathQueue, defaultChunk); err != nil {
			return err
		}
	}
	return s.DownloadFunc(b, offset, size, use)
}

// ReadFloat32 reads n float32 values from element offset off.
func (b *Buffer) ReadFloat32(off, n int) ([]float32, error) {
	out := make([]float32, n)
	if n == 0 {
		return out, b.checkRange("read", int64(off)*4, 0)
	}
	err := b.ReadInto(int64(off)*4, unsafe.Slice((*byte)(unsafe.Pointer(&out[0])), 4*n))
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ReadUint32 reads n uint32 values from element offset off.
func (b *Buffer) ReadUint32(off, n int) ([]uint32, error) {
	out := make([]uint32, n)
	if n == 0 {
		return out, b.checkRange("read", int64(off)*4, 0)
	}
	err := b.ReadInto(int64(off)*4, unsafe.Slice((*byte)(unsafe.Pointer(&out[0])), 4*n))
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Float32s reinterprets bytes read back as float32 values.
func Float32s(raw []byte) []float32 {
	n := len(raw) / 4
	out := make([]float32, n)
	if n > 0 {
		copy(unsafe.Slice((*byte)(unsafe.Pointer(&out[0])), 4*n), raw)
	}
	return out
}
