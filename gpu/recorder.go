package gpu

/*
#include "shim.h"
*/
import "C"

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"strings"
	"unsafe"
)

// Recorder puts many dispatches and copies into one command buffer that is
// submitted once. Consecutive dispatches share one compute pass; the
// implementation inserts the barriers between them.
type Recorder struct {
	d      *Device
	enc    unsafe.Pointer
	pass   unsafe.Pointer
	counts map[string]int
	order  []string
	n      int
	err    error
	done   bool

	// profiling: one pass per dispatch, timestamps around each
	qs     unsafe.Pointer
	qbuf   *Buffer
	labels []string
	maxTS  int
}

// Timing is the GPU time of one profiled dispatch.
type Timing struct {
	Label string
	Ns    float64
}

// NewRecorder starts recording.
func (d *Device) NewRecorder() *Recorder {
	d.mu.Lock()
	defer d.mu.Unlock()
	r := &Recorder{d: d, counts: map[string]int{}}
	if d.closed {
		r.err = errors.New("gpu: device is closed")
		return r
	}
	r.enc = C.mg_create_encoder(d.Lib.c, d.dev)
	d.created(C.MG_ENCODER)
	return r
}

// NewProfiledRecorder records like NewRecorder but gives each dispatch its
// own pass with GPU timestamps around it (needs timestamp-query).
func (d *Device) NewProfiledRecorder(maxDispatches int) (*Recorder, error) {
	if !d.Has(FeatureTimestampQuery) {
		return nil, fmt.Errorf("gpu: profiling needs the timestamp-query feature, which %s does not offer", d.Info.Name)
	}
	if maxDispatches <= 0 || maxDispatches > 2048 {
		return nil, fmt.Errorf("gpu: a profiled recorder holds 1 to 2048 dispatches, not %d", maxDispatches)
	}
	qbuf, err := d.NewBuffer("timestamps", int64(16*maxDispatches), UsageQueryResolve|UsageCopySrc)
	if err != nil {
		return nil, err
	}
	r := d.NewRecorder()
	d.mu.Lock()
	defer d.mu.Unlock()
	r.qs = C.mg_create_query_set(d.Lib.c, d.dev, C.uint32_t(2*maxDispatches))
	d.created(C.MG_QUERY_SET)
	r.qbuf = qbuf
	r.maxTS = maxDispatches
	return r, nil
}

func (r *Recorder) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

func (r *Recorder) endPassLocked() {
	if r.pass != nil {
		C.mg_pass_end(r.d.Lib.c, r.pass)
		r.d.release(C.MG_PASS, r.pass)
		r.pass = nil
	}
}

// Dispatch records one dispatch of g's pipeline with g bound, over x*y*z
// workgroups. A count above maxComputeWorkgroupsPerDimension is an error
// (reported by Submit) naming the kernel and the limit.
func (r *Recorder) Dispatch(g *BindGroup, x, y, z int) {
	if r.err != nil || r.done {
		return
	}
	if g == nil || g.ptr == nil || g.p.ptr == nil {
		r.fail(errors.New("gpu: dispatch with a released or nil bind group"))
		return
	}
	d := r.d
	name := g.p.Key
	lim := int(d.Limits.MaxComputeWorkgroupsPerDimension)
	for _, c := range []struct {
		axis string
		n    int
	}{{"x", x}, {"y", y}, {"z", z}} {
		if c.n < 0 || c.n > lim {
			r.fail(fmt.Errorf("gpu: dispatch of %s: %d workgroups in %s exceeds maxComputeWorkgroupsPerDimension (%d)", name, c.n, c.axis, lim))
			return
		}
	}
	if x == 0 || y == 0 || z == 0 {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	l := d.Lib.c
	if r.qs != nil {
		if len(r.labels) >= r.maxTS {
			r.fail(fmt.Errorf("gpu: profiled recorder is full (%d dispatches)", r.maxTS))
			return
		}
		i := C.uint32_t(2 * len(r.labels))
		r.pass = C.mg_begin_pass(l, r.enc, r.qs, i, i+1)
		d.created(C.MG_PASS)
		r.labels = append(r.labels, name)
	} else if r.pass == nil {
		r.pass = C.mg_begin_pass(l, r.enc, nil, 0, 0)
		d.created(C.MG_PASS)
	}
	C.mg_pass_pipeline(l, r.pass, g.p.ptr)
	C.mg_pass_bind(l, r.pass, 0, g.ptr)
	C.mg_pass_dispatch(l, r.pass, C.uint32_t(x), C.uint32_t(y), C.uint32_t(z))
	if r.qs != nil {
		r.endPassLocked()
	}
	if r.counts[name] == 0 {
		r.order = append(r.order, name)
	}
	r.counts[name]++
	r.n++
}

// Copy records a buffer-to-buffer copy.
func (r *Recorder) Copy(src *Buffer, srcOff int64, dst *Buffer, dstOff, size int64) {
	if r.err != nil || r.done {
		return
	}
	if err := src.checkRange("copy from", srcOff, size); err != nil {
		r.fail(err)
		return
	}
	if err := dst.checkRange("copy to", dstOff, size); err != nil {
		r.fail(err)
		return
	}
	d := r.d
	d.mu.Lock()
	defer d.mu.Unlock()
	r.endPassLocked()
	C.mg_encoder_copy(d.Lib.c, r.enc, src.ptr, C.uint64_t(srcOff), dst.ptr, C.uint64_t(dstOff), C.uint64_t(size))
	r.n++
}

// Clear records zeroing size bytes of b at off.
func (r *Recorder) Clear(b *Buffer, off, size int64) {
	if r.err != nil || r.done {
		return
	}
	if err := b.checkRange("clear", off, size); err != nil {
		r.fail(err)
		return
	}
	d := r.d
	d.mu.Lock()
	defer d.mu.Unlock()
	r.endPassLocked()
	C.mg_encoder_clear(d.Lib.c, r.enc, b.ptr, C.uint64_t(off), C.uint64_t(size))
	r.n++
}

// Len is the number of commands recorded.
func (r *Recorder) Len() int { return r.n }

// describe names what was recorded, for error messages.
func (r *Recorder) describe() string {
	parts := make([]string, 0, len(r.order))
	for _, k := range r.order {
		parts = append(parts, fmt.Sprintf("%s x%d", k, r.counts[k]))
	}
	if len(parts) > 8 {
		parts = append(parts[:8], fmt.Sprintf("... %d kernels more", len(parts)-8))
	}
	return "submit [" + strings.Join(parts, ", ") + "]"
}

// Submit finishes the command buffer and, if the implementation found it
// valid, submits it with one queue submit. Validation errors of the recorded
// commands come back here, named with the kernels recorded (an invalid
// command buffer is never submitted: wgpu-native aborts the process on one).
// Errors the GPU reports while running surface from Sync or Device.Check.
func (r *Recorder) Submit() error {
	return r.submit()
}

// SubmitChecked is Submit followed by Sync: it returns once the GPU has run
// the commands, with every error they caused.
func (r *Recorder) SubmitChecked() error {
	if err := r.submit(); err != nil {
		return err
	}
	return r.d.Sync()
}

func (r *Recorder) submit() error {
	if r.done {
		return errors.New("gpu: recorder already submitted")
	}
	r.done = true
	d := r.d
	d.mu.Lock()
	defer d.mu.Unlock()
	l := d.Lib.c
	defer func() {
		d.release(C.MG_ENCODER, r.enc)
		r.enc = nil
	}()
	if r.err != nil {
		r.endPassLocked()
		return r.err
	}
	if d.closed {
		return errors.New("gpu: device is closed")
	}
	ctx := r.describe()
	var cmd unsafe.Pointer
	err := d.scopeLocked(ctx, func() {
		r.endPassLocked()
		if r.qs != nil && len(r.labels) > 0 {
			C.mg_encoder_resolve(l, r.enc, r.qs, 0, C.uint32_t(2*len(r.labels)), r.qbuf.ptr, 0)
		}
		cmd = C.mg_encoder_finish(l, r.enc)
		d.created(C.MG_COMMAND_BUFFER)
	})
	defer d.release(C.MG_COMMAND_BUFFER, cmd)
	if err != nil {
		return err
	}
	C.mg_queue_submit(l, d.queue, cmd)
	return d.errLocked(ctx)
}

// Timings waits for a profiled submit and returns each dispatch's GPU time.
func (r *Recorder) Timings() ([]Timing, error) {
	if r.qs == nil {
		return nil, errors.New("gpu: Timings needs a recorder from NewProfiledRecorder")
	}
	if !r.done {
		return nil, errors.New("gpu: Timings before Submit")
	}
	raw, err := r.qbuf.Read(0, int64(16*len(r.labels)))
	if err != nil {
		return nil, err
	}
	out := make([]Timing, len(r.labels))
	for i, lab := range r.labels {
		t0 := binary.LittleEndian.Uint64(raw[16*i:])
		t1 := binary.LittleEndian.Uint64(raw[16*i+8:])
		ns := 0.0
		if t1 > t0 {
			ns = float64(t1-t0) * r.d.tsPeriod
		}
		out[i] = Timing{Label: lab, Ns: ns}
	}
	return out, nil
}

// Release frees a profiled recorder's query set and buffer.
func (r *Recorder) Release() {
	d := r.d
	if r.qbuf != nil {
		r.qbuf.Release()
		r.qbuf = nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if r.qs != nil {
		d.release(C.MG_QUERY_SET, r.qs)
		r.qs = nil
	}
	if r.enc != nil {
		r.endPassLocked()
		d.release(C.MG_ENCODER, r.enc)
		r.enc = nil
	}
}

// Sync waits until the GPU has finished all submitted work and returns the
// errors the device reported meanwhile.
func (d *Device) Sync() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return errors.New("gpu: device is closed")
	}
	if d.lost != nil {
		return d.lost
	}
	C.mg_queue_done(d.Lib.c, d.queue, d.op)
	if C.mg_wait(d.Lib.c, d.inst, d.dev, d.op, C.UINT64_MAX) != 1 {
		return errors.Join(errors.New("gpu: waiting for the queue failed"), d.errLocked("sync"))
	}
	return d.errLocked("sync")
}

// SumTimings adds up timings by label, largest first.
func SumTimings(ts []Timing) []Timing {
	m := map[string]float64{}
	for _, t := range ts {
		m[t.Label] += t.Ns
	}
	out := make([]Timing, 0, len(m))
	for k, v := range m {
		out = append(out, Timing{k, v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Ns > out[j].Ns })
	return out
}
