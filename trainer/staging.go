package trainer

import (
	"fmt"
	"unsafe"

	"mom/gpu"
	"mom/mom"
)

// gradBucket is a group of parameters whose gradients are summed over the
// ranks together: those finished by consecutive backward stages, laid out
// one after another.
type gradBucket struct {
	params []*mom.Param
	offs   []int // element offset of each parameter's gradient in the bucket
	n      int   // values (before padding)
	padded int   // values with the padding the reduction needs (a multiple of the ranks)
	last   int   // the backward stage that completes it
}

// planBuckets groups the parameters into buckets of at least maxBytes
// (the last may be smaller), closing a bucket only between backward
// stages, in the order the backward finishes them. finished(s) lists the
// parameters stage s finishes; pad rounds a length up as the reduction
// needs.
func planBuckets(stages int, finished func(s int) []*mom.Param, maxBytes int64, pad func(int) int) []gradBucket {
	var out []gradBucket
	cur := gradBucket{}
	for s := 0; s < stages; s++ {
		for _, p := range finished(s) {
			cur.params = append(cur.params, p)
			cur.offs = append(cur.offs, cur.n)
			cur.n += p.Spec.Len()
		}
		if cur.n > 0 && (int64(4*cur.n) >= maxBytes || s == stages-1) {
			cur.last, cur.padded = s, pad(cur.n)
			out = append(out, cur)
			cur = gradBucket{}
		}
	}
	return out
}

// gradStaging moves gradient buckets between the device and host memory,
// where the ranks sum them. mappedStaging, the portable path, copies each
// bucket into a map-readable buffer and hands MPI the mapped bytes, and
// writes the sums back through map-writable buffers (no wait for the
// queue). A faster path (Dawn's host-mapped buffers, which the device reads
// and writes directly) can take its place behind this interface.
type gradStaging interface {
	// RecordOut records copying bucket b's gradients to its host area;
	// it is recorded right after the backward stage that completes b.
	RecordOut(r *gpu.Recorder, b int)
	// Out starts bringing bucket b to the host, after the submit that
	// holds its RecordOut.
	Out(b int) error
	// WaitOut waits for bucket b and returns its padded values in host
	// memory (outside Go's heap), valid until Done(b).
	WaitOut(b int) ([]float32, error)
	// In writes bucket b's summed gradients back into the gradient
	// tensors, ordered before any later submit.
	In(b int, sums []float32) error
	// Done ends the host's use of what WaitOut(b) returned.
	Done(b int)
	Release()
}

// newGradStaging makes the fastest staging the device offers for the
// buckets. Today that is mappedStaging everywhere; a device with host-mapped
// buffers (Dawn's host-mapped-pointer feature: the GPU copies straight into
// host memory that MPI reads, and reads the sums from host memory MPI
// wrote, at tens of GB/s instead of the queue's 1-8 GB/s) is where a faster
// implementation plugs in.
func newGradStaging(d *gpu.Device, buckets []gradBucket) (gradStaging, error) {
	return newMappedStaging(d, buckets)
}

// mappedStaging implements gradStaging with a gpu.HostReadBuffer and a
// gpu.HostWriteBuffer per bucket, made once.
type mappedStaging struct {
	d       *gpu.Device
	buckets []gradBucket
	bufs    []*gpu.HostReadBuffer  // device -> host, per bucket
	ups     []*gpu.HostWriteBuffer // host -> device, per bucket
}

func newMappedStaging(d *gpu.Device, buckets []gradBucket) (*mappedStaging, error) {
	s := &mappedStaging{d: d, buckets: buckets}
	for i, b := range buckets {
		h, err := d.NewHostReadBuffer(fmt.Sprintf("grad bucket %d", i), int64(4*b.padded))
		if err != nil {
			s.Release()
			return nil, fmt.Errorf("trainer: gradient bucket %d (%d values): %w", i, b.padded, err)
		}
		s.bufs = append(s.bufs, h)
		u, err := d.NewHostWriteBuffer(fmt.Sprintf("grad bucket %d sums", i), int64(4*b.n))
		if err != nil {
			s.Release()
			return nil, fmt.Errorf("trainer: gradient bucket %d (%d values): %w", i, b.n, err)
		}
		s.ups = append(s.ups, u)
	}
	return s, nil
}

func (s *mappedStaging) RecordOut(r *gpu.Recorder, b int) {
	for i, p := range s.buckets[b].params {
		r.Copy(p.G.Buf, 0, s.bufs[b].Buffer(), int64(4*s.buckets[b].offs[i]), p.G.Bytes())
	}
}

func (s *mappedStaging) Out(b int) error { return s.bufs[b].Map() }

func (s *mappedStaging) WaitOut(b int) ([]float32, error) {
	raw, err := s.bufs[b].Wait()
	if err != nil {
		return nil, err
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(&raw[0])), s.buckets[b].padded), nil
}

// In writes the sums into the bucket's host-write buffer and records
// copies from it into the gradient tensors. Nothing waits for the queue
// (Buffer.Write would, for its staging, behind the whole backward still
// running): only the next step's In of the same bucket waits, for these
// copies.
func (s *mappedStaging) In(b int, sums []float32) error {
	bk := s.buckets[b]
	u := s.ups[b]
	p, err := u.Bytes()
	if err != nil {
		return fmt.Errorf("trainer: gradient bucket %d: %w", b, err)
	}
	gpu.ParallelCopy(p[:4*bk.n], unsafe.Slice((*byte)(unsafe.Pointer(&sums[0])), 4*bk.n))
	if err := u.Unmap(); err != nil {
		return fmt.Errorf("trainer: gradient bucket %d: %w", b, err)
	}
	r := s.d.NewRecorder()
	for i, q := range bk.params {
		r.Copy(u.Buffer(), int64(4*bk.offs[i]), q.G.Buf, 0, q.G.Bytes())
	}
	if err := r.Submit(); err != nil {
		return fmt.Errorf("trainer: writing the summed gradients of bucket %d: %w", b, err)
	}
	if err := u.Remap(); err != nil {
		return fmt.Errorf("trainer: gradient bucket %d: %w", b, err)
	}
	return nil
}

func (s *mappedStaging) Done(b int) { s.bufs[b].Unmap() }

func (s *mappedStaging) Release() {
	for _, h := range s.bufs {
		h.Release()
	}
	for _, u := range s.ups {
		u.Release()
	}
	s.bufs, s.ups = nil, nil
}
