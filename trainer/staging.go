package trainer

import (
	"fmt"
	"unsafe"

	"mom/gpu"
	"mom/mom"
	"mom/nn"
)

// gradBucket is a group of parameters whose gradients are summed over the
// ranks together: those finished by consecutive backward stages, laid out
// one after another, or one piece of a large parameter.
type gradBucket struct {
	params []*mom.Param
	offs   []int // element offset of each parameter's values in the bucket
	from   []int // the first of the parameter's values in the bucket (0 but for a piece)
	count  []int // how many of its values (all but for a piece)
	n      int   // values (before padding)
	padded int   // values with the padding the reduction needs (a multiple of the ranks)
	last   int   // the backward stage that completes it
	// gather, instead of parameters: the bucket gathers every rank's rows
	// of the token embedding's output gradient (mom.Model's
	// DeferEmbeddingBackward). Always float32, so that the gather is exact.
	gather *rowGather
}

// rowGather is an all-gather done as a sum: each rank copies its rows into
// its own slot of the bucket, the other slots stay zero on that rank, so
// the sum over the ranks is every rank's rows in rank order (adding zeros
// is exact), which comes back into dst.
type rowGather struct {
	src  *nn.Tensor // this rank's rows (mom.Model.EmbeddingRows)
	dst  *nn.Tensor // every rank's rows, in rank order
	slot int        // element offset of this rank's rows in the bucket
}

// pieceAlign is the alignment, in values, of the pieces of a split
// parameter: 512 bytes, a multiple of every storage binding offset
// alignment WebGPU allows (256) and of nn.BF16Align.
const pieceAlign = 128

// planBuckets groups the parameters into buckets of at least maxBytes
// (the last may be smaller), closing a bucket only between backward
// stages, in the order the backward finishes them. finished(s) lists the
// parameters stage s finishes; each starts at a multiple of align values
// (the zeros between them are summed like the rest); pad rounds a length up
// as the reduction needs. A parameter of more than twice maxBytes (the
// tied embedding, which the last stage finishes) is cut into pieces of
// about maxBytes (multiples of pieceAlign values), a bucket each, closed
// at its stage after the bucket being filled: the pieces then pipeline
// (one is summed while the next comes to the host and the one before goes
// back) instead of the whole going through each step in turn.
func planBuckets(stages int, finished func(s int) []*mom.Param, maxBytes int64, align int, pad func(int) int) []gradBucket {
	var out []gradBucket
	cur := gradBucket{}
	closeAt := func(s int) {
		cur.last, cur.padded = s, pad(cur.n)
		out = append(out, cur)
		cur = gradBucket{}
	}
	add := func(p *mom.Param, from, count int) {
		o := (cur.n + align - 1) / align * align
		cur.params = append(cur.params, p)
		cur.offs = append(cur.offs, o)
		cur.from = append(cur.from, from)
		cur.count = append(cur.count, count)
		cur.n = o + count
	}
	piece := max(pieceAlign, int(maxBytes/4)/pieceAlign*pieceAlign)
	for s := 0; s < stages; s++ {
		for _, p := range finished(s) {
			n := p.Spec.Len()
			if maxBytes <= 0 || int64(4*n) <= 2*maxBytes || n <= 2*piece {
				add(p, 0, n)
				continue
			}
			if cur.n > 0 {
				closeAt(s)
			}
			for from := 0; from < n; from += piece {
				add(p, from, min(piece, n-from))
				closeAt(s)
			}
		}
		if cur.n > 0 && (int64(4*cur.n) >= maxBytes || s == stages-1) {
			closeAt(s)
		}
	}
	return out
}

// gradStaging moves gradient buckets between the device and host memory,
// where the ranks sum them. hostStaging, the portable path, copies each
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
	// WaitOut waits for bucket b and returns it in host memory (outside
	// Go's heap), valid until Done(b), as the reduction takes it: the
	// padded values (float32), or their bfloat16 pairs, half as many
	// 32-bit words (mpi.BFloat16).
	WaitOut(b int) ([]float32, error)
	// In writes bucket b's summed gradients, given as WaitOut gives a
	// bucket, back into the gradient tensors, ordered before any later
	// submit.
	In(b int, sums []float32) error
	// Done ends the host's use of what WaitOut(b) returned.
	Done(b int)
	Release()
}

// newGradStaging makes the staging of the buckets for the exchange.
// Today that is hostStaging everywhere; a device with host-mapped buffers
// (Dawn's host-mapped-pointer feature: the GPU copies straight into host
// memory that MPI reads, and reads the sums from host memory MPI wrote) is
// where a faster implementation plugs in.
func newGradStaging(d *gpu.Device, buckets []gradBucket, exchange string) (gradStaging, error) {
	return newHostStaging(d, buckets, exchange == ExchangeBF16)
}

// Gradient exchanges (Options.GradExchange): the ranks' gradients and their
// sums cross PCIe and host memory as float32 (the default: the sums are
// exact up to the fixed summation order) or as bfloat16 (half the bytes;
// each rank's gradients and the sums are rounded to bfloat16, the sums are
// taken in float32).
const (
	ExchangeF32  = "f32"
	ExchangeBF16 = "bf16"
)

// bucketAlign is the alignment of the parameters' places in a bucket for
// an exchange: bfloat16 places must start on nn.BF16Align values.
func bucketAlign(exchange string) int {
	if exchange == ExchangeBF16 {
		return nn.BF16Align
	}
	return 1
}

// hostStaging implements gradStaging with a gpu.HostReadBuffer and a
// gpu.HostWriteBuffer per bucket, made once, holding the bucket as the
// reduction takes it. In float32 the gradients are copied into and out of
// their places in them. In the bfloat16 exchange, after the stage that
// completes a bucket the device rounds its gradients to bfloat16 into
// their places in the bucket's packed buffer (nn.BF16), which comes to the
// host (half the bytes of float32) and goes to the reduction as it is (an
// mpi.BFloat16 bucket: summed in float32, rounded once); the packed sums
// come back into it and are widened into the gradients. The words between
// the places stay zero. A gather bucket is float32 in either exchange: the
// rank's rows go into its slot, the gathered rows come back into the
// gather's destination.
type hostStaging struct {
	d       *gpu.Device
	buckets []gradBucket
	words   []int                  // per bucket: 32-bit words on the host (padded values, or their bfloat16 pairs)
	bufs    []*gpu.HostReadBuffer  // device -> host, per bucket
	ups     []*gpu.HostWriteBuffer // host -> device, per bucket
	// The bfloat16 exchange only (nil in float32): per bucket the packed
	// buffer on the device and the conversions into and out of it (nil
	// for a gather bucket).
	packed       []*nn.Tensor
	pack, unpack []*nn.BF16
}

func newHostStaging(d *gpu.Device, buckets []gradBucket, bf16 bool) (*hostStaging, error) {
	s := &hostStaging{d: d, buckets: buckets}
	ex := "float32"
	if bf16 {
		ex = "bfloat16"
	}
	fail := func(b int, err error) (*hostStaging, error) {
		s.Release()
		return nil, fmt.Errorf("trainer: gradient bucket %d (%d values, %s exchange): %w", b, buckets[b].n, ex, err)
	}
	if bf16 {
		s.packed = make([]*nn.Tensor, len(buckets))
		s.pack = make([]*nn.BF16, len(buckets))
		s.unpack = make([]*nn.BF16, len(buckets))
	}
	for i, b := range buckets {
		w := b.padded
		if bf16 && b.gather == nil {
			w = b.padded / 2 // the reduction pads a bfloat16 bucket to whole words
			if err := s.addConversions(i, b, w); err != nil {
				return fail(i, err)
			}
		}
		s.words = append(s.words, w)
		h, err := d.NewHostReadBuffer(fmt.Sprintf("grad bucket %d", i), int64(4*w))
		if err != nil {
			return fail(i, err)
		}
		s.bufs = append(s.bufs, h)
		u, err := d.NewHostWriteBuffer(fmt.Sprintf("grad bucket %d sums", i), int64(4*w))
		if err != nil {
			return fail(i, err)
		}
		s.ups = append(s.ups, u)
	}
	return s, nil
}

// addConversions makes bucket i's packed buffer of w words and its
// bfloat16 conversions.
func (s *hostStaging) addConversions(i int, b gradBucket, w int) error {
	t, err := nn.NewTensorIn(s.d, gpu.MemScratch, fmt.Sprintf("grad bucket %d bf16", i), w)
	if err != nil {
		return err
	}
	s.packed[i] = t
	gs := make([]*nn.Tensor, len(b.params))
	for j, p := range b.params {
		gs[j] = p.G
	}
	a := nn.BF16Args{F32: gs, Packed: t, Offs: b.offs, From: b.from, Count: b.count}
	pk, err := nn.NewBF16Pack(s.d, a)
	if err != nil {
		return err
	}
	s.pack[i] = pk
	up, err := nn.NewBF16Unpack(s.d, a)
	if err != nil {
		return err
	}
	s.unpack[i] = up
	return nil
}

func (s *hostStaging) RecordOut(r *gpu.Recorder, b int) {
	if g := s.buckets[b].gather; g != nil {
		r.Copy(g.src.Buf, 0, s.bufs[b].Buffer(), int64(4*g.slot), int64(4*g.src.Len()))
		return
	}
	if s.pack != nil {
		s.pack[b].Record(r)
		r.Copy(s.packed[b].Buf, 0, s.bufs[b].Buffer(), 0, int64(4*s.words[b]))
		return
	}
	bk := s.buckets[b]
	for i, p := range bk.params {
		r.Copy(p.G.Buf, int64(4*bk.from[i]), s.bufs[b].Buffer(), int64(4*bk.offs[i]), int64(4*bk.count[i]))
	}
}

func (s *hostStaging) Out(b int) error { return s.bufs[b].Map() }

func (s *hostStaging) WaitOut(b int) ([]float32, error) {
	raw, err := s.bufs[b].Wait()
	if err != nil {
		return nil, err
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(&raw[0])), s.words[b]), nil
}

// In writes the sums into the bucket's host-write buffer and records
// copies from it into the gradient tensors (in bfloat16: into the packed
// buffer, widened into the gradients). Nothing waits for the queue
// (Buffer.Write would, for its staging, behind the whole backward still
// running): only the next step's In of the same bucket waits, for these
// copies.
func (s *hostStaging) In(b int, sums []float32) error {
	w := s.words[b]
	if len(sums) != w {
		return fmt.Errorf("trainer: gradient bucket %d: %d words of sums, want %d", b, len(sums), w)
	}
	u := s.ups[b]
	p, err := u.Bytes()
	if err != nil {
		return fmt.Errorf("trainer: gradient bucket %d: %w", b, err)
	}
	gpu.ParallelCopy(p[:4*w], unsafe.Slice((*byte)(unsafe.Pointer(&sums[0])), 4*w))
	if err := u.Unmap(); err != nil {
		return fmt.Errorf("trainer: gradient bucket %d: %w", b, err)
	}
	r := s.d.NewRecorder()
	if g := s.buckets[b].gather; g != nil {
		r.Copy(u.Buffer(), 0, g.dst.Buf, 0, int64(4*g.dst.Len()))
	} else if s.unpack != nil {
		r.Copy(u.Buffer(), 0, s.packed[b].Buf, 0, int64(4*w))
		s.unpack[b].Record(r)
	} else {
		bk := s.buckets[b]
		for i, q := range bk.params {
			r.Copy(u.Buffer(), int64(4*bk.offs[i]), q.G.Buf, int64(4*bk.from[i]), int64(4*bk.count[i]))
		}
	}
	if err := r.Submit(); err != nil {
		return fmt.Errorf("trainer: writing the summed gradients of bucket %d: %w", b, err)
	}
	if err := u.Remap(); err != nil {
		return fmt.Errorf("trainer: gradient bucket %d: %w", b, err)
	}
	return nil
}

func (s *hostStaging) Done(b int) { s.bufs[b].Unmap() }

func (s *hostStaging) Release() {
	for _, h := range s.bufs {
		h.Release()
	}
	for _, u := range s.ups {
		u.Release()
	}
	for i := range s.pack {
		if s.pack[i] != nil {
			s.pack[i].Release()
		}
	}
	for i := range s.unpack {
		if s.unpack[i] != nil {
			s.unpack[i].Release()
		}
	}
	for _, t := range s.packed {
		if t != nil {
			t.Release()
		}
	}
	s.bufs, s.ups, s.pack, s.unpack, s.packed = nil, nil, nil, nil, nil
}
