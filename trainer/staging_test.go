package trainer

import (
	"fmt"
	"math"
	"math/rand"
	"testing"
	"time"
	"unsafe"

	"mom/gpu"
	"mom/gpu/gputest"
	"mom/mom"
	"mom/nn"
	"mom/nn/ref"
	"mom/trainer/mpi"
)

// TestPlanBuckets: buckets close between stages once they hold maxBytes,
// in the order the backward finishes the gradients; the last takes the
// rest; every parameter lands in one bucket at its offset; padding rounds
// up to the ranks; a parameter of more than twice maxBytes goes in pieces
// of a bucket each (name[from:to]).
func TestPlanBuckets(t *testing.T) {
	param := func(name string, n int) *mom.Param {
		return &mom.Param{Spec: mom.ParamSpec{Name: name, Shape: []int{n}}}
	}
	// Stage sizes in values: head 10, layer 4+4, layer 3, (nothing), embed 20.
	stages := [][]*mom.Param{
		{param("head", 10)},
		{param("l1.a", 4), param("l1.b", 4)},
		{param("l0.a", 3)},
		{},
		{param("emb", 20)},
	}
	finished := func(s int) []*mom.Param { return stages[s] }
	pad2 := func(n int) int { return (n + 1) / 2 * 2 }
	for _, c := range []struct {
		maxBytes int64
		align    int
		want     string // per bucket: last stage, values, padded, names@offsets
	}{
		{4, 1, "[0 10 10 head@0] [1 8 8 l1.a@0 l1.b@4] [2 3 4 l0.a@0] [4 20 20 emb@0]"},
		{4 * 15, 1, "[1 18 18 head@0 l1.a@10 l1.b@14] [4 23 24 l0.a@0 emb@3]"},
		{1 << 30, 1, "[4 41 42 head@0 l1.a@10 l1.b@14 l0.a@18 emb@21]"},
		// Places on multiples of 8 (the bfloat16 exchange's are of 128).
		{4 * 15, 8, "[1 28 28 head@0 l1.a@16 l1.b@24] [4 28 28 l0.a@0 emb@8]"},
		{1 << 30, 8, "[4 60 60 head@0 l1.a@16 l1.b@24 l0.a@32 emb@40]"},
	} {
		if got := bucketPlan(planBuckets(len(stages), finished, c.maxBytes, c.align, pad2)); got != c.want {
			t.Errorf("maxBytes %d align %d:\n got %s\nwant %s", c.maxBytes, c.align, got, c.want)
		}
	}
	// A large last parameter (the tied embedding) in pieces of 256 values.
	big := [][]*mom.Param{{param("head", 10)}, {param("l", 4)}, {param("emb", 1000)}, {param("in", 3)}}
	for _, c := range []struct {
		maxBytes int64
		want     string
	}{
		{4 * 300, "[2 14 14 head@0 l@10] [2 256 256 emb[0:256]@0] [2 256 256 emb[256:512]@0] [2 256 256 emb[512:768]@0] " +
			"[2 232 232 emb[768:1000]@0] [3 3 4 in@0]"},
		{4 * 500, "[2 1014 1014 head@0 l@10 emb@14] [3 3 4 in@0]"}, // not over twice the size: whole
	} {
		if got := bucketPlan(planBuckets(len(big), func(s int) []*mom.Param { return big[s] }, c.maxBytes, 1, pad2)); got != c.want {
			t.Errorf("maxBytes %d:\n got %s\nwant %s", c.maxBytes, got, c.want)
		}
	}
}

// bucketPlan writes buckets as "[last n padded name@off ...]", a piece of
// a parameter as name[from:to]@off.
func bucketPlan(bs []gradBucket) string {
	got := ""
	for i, b := range bs {
		if i > 0 {
			got += " "
		}
		got += fmt.Sprintf("[%d %d %d", b.last, b.n, b.padded)
		for j, p := range b.params {
			name := p.Spec.Name
			if b.from[j] != 0 || b.count[j] != p.Spec.Len() {
				name += fmt.Sprintf("[%d:%d]", b.from[j], b.from[j]+b.count[j])
			}
			got += fmt.Sprintf(" %s@%d", name, b.offs[j])
		}
		got += "]"
	}
	return got
}

// TestSpanTimes: the communication time is the union of the reductions'
// spans (lanes run side by side), and the overlap its part before the
// backward ended.
func TestSpanTimes(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	sp := func(a, b int) mpi.Span { return mpi.Span{Start: at(a), End: at(b)} }
	for _, c := range []struct {
		spans         []mpi.Span
		cut           int
		total, before int
	}{
		{nil, 5, 0, 0},
		{[]mpi.Span{sp(0, 10)}, 5, 10, 5},
		{[]mpi.Span{sp(20, 30), sp(0, 10)}, 25, 20, 15},           // disjoint, out of order
		{[]mpi.Span{sp(0, 10), sp(5, 12), sp(6, 8)}, 100, 12, 12}, // overlapping lanes
		{[]mpi.Span{sp(0, 10), sp(10, 15), sp(30, 30)}, 0, 15, 0}, // touching; an empty one
	} {
		total, before := spanTimes(c.spans, at(c.cut))
		if total != time.Duration(c.total)*time.Millisecond || before != time.Duration(c.before)*time.Millisecond {
			t.Errorf("%v cut %d: %v, %v; want %dms, %dms", c.spans, c.cut, total, before, c.total, c.before)
		}
	}
}

// TestStagingRoundTrip: each staging brings a bucket's gradients to the
// host exactly as its exchange says (float32 as they are; bfloat16 rounded
// and packed two to a word by the twin ref.PackBF16, the gaps between
// places zero) and writes sums given the same way back into the gradients,
// on both runtimes, with parameters of odd sizes in two buckets and one
// (257 values) in pieces of 128.
func TestStagingRoundTrip(t *testing.T) {
	gputest.ForEachDevice(t, func(t *testing.T, d *gpu.Device) {
		for _, ex := range []string{ExchangeF32, ExchangeBF16} {
			t.Run(ex, func(t *testing.T) {
				rng := rand.New(rand.NewSource(5))
				sizes := [][]int{{3, 130}, {257}}
				var params [][]*mom.Param
				for s, st := range sizes {
					var ps []*mom.Param
					for j, n := range st {
						g, err := nn.NewTensor(d, fmt.Sprintf("g%d.%d", s, j), n)
						if err != nil {
							t.Fatal(err)
						}
						defer g.Release()
						v := make([]float32, n)
						for i := range v {
							v[i] = float32(rng.NormFloat64())
						}
						if err := g.Upload(v); err != nil {
							t.Fatal(err)
						}
						ps = append(ps, &mom.Param{Spec: mom.ParamSpec{Name: g.Name, Shape: []int{n}}, G: g})
					}
					params = append(params, ps)
				}
				pad := func(n int) int { return (n + 3) / 4 * 4 } // 2 ranks' whole words
				buckets := planBuckets(len(params), func(s int) []*mom.Param { return params[s] }, 4, bucketAlign(ex), pad)
				// A gather bucket, as rank 1 of 2: 5 rows of 3 into slot 1.
				src, err := nn.NewTensor(d, "rows", 5, 3)
				if err != nil {
					t.Fatal(err)
				}
				defer src.Release()
				rows := make([]float32, 15)
				for i := range rows {
					rows[i] = float32(rng.NormFloat64())
				}
				if err := src.Upload(rows); err != nil {
					t.Fatal(err)
				}
				dst, err := nn.NewTensor(d, "gathered", 10, 3)
				if err != nil {
					t.Fatal(err)
				}
				defer dst.Release()
				buckets = append(buckets, gradBucket{n: 30, padded: pad(30), last: len(params) - 1, gather: &rowGather{src: src, dst: dst, slot: 15}})
				st, err := newGradStaging(d, buckets, ex)
				if err != nil {
					t.Fatal(err)
				}
				defer st.Release()
				round := func(x float32) float32 {
					if ex == ExchangeBF16 {
						return ref.FromBF16(ref.BF16Bits(x))
					}
					return x
				}
				// words is values as the exchange carries them.
				words := func(values []float32) []float32 {
					if ex != ExchangeBF16 {
						return values
					}
					w := make([]uint32, len(values)/2)
					ref.PackBF16(w, values)
					return unsafe.Slice((*float32)(unsafe.Pointer(&w[0])), len(w))
				}
				for b, bk := range buckets {
					words, round := words, round
					if bk.gather != nil { // float32 in either exchange
						words = func(v []float32) []float32 { return v }
						round = func(x float32) float32 { return x }
					}
					r := d.NewRecorder()
					st.RecordOut(r, b)
					if err := r.Submit(); err != nil {
						t.Fatal(err)
					}
					if err := st.Out(b); err != nil {
						t.Fatal(err)
					}
					host, err := st.WaitOut(b)
					if err != nil {
						t.Fatal(err)
					}
					want := make([]float32, bk.padded)
					for j, p := range bk.params {
						v, err := p.G.Download()
						if err != nil {
							t.Fatal(err)
						}
						copy(want[bk.offs[j]:], v[bk.from[j]:bk.from[j]+bk.count[j]])
					}
					if bk.gather != nil {
						copy(want[bk.gather.slot:], rows) // slot 0 and the padding stay zero
					}
					ww := words(want)
					if len(host) != len(ww) {
						t.Fatalf("bucket %d: %d words on the host, want %d", b, len(host), len(ww))
					}
					for i := range ww {
						if math.Float32bits(host[i]) != math.Float32bits(ww[i]) {
							t.Fatalf("bucket %d word %d on the host: %#08x, want %#08x", b, i, math.Float32bits(host[i]), math.Float32bits(ww[i]))
						}
					}
					sums := make([]float32, bk.padded)
					for i := range sums {
						sums[i] = float32(rng.NormFloat64() * 3)
					}
					if err := st.In(b, words(sums)[:len(ww)-1]); err == nil {
						t.Fatalf("bucket %d: In took %d words, one short", b, len(ww)-1)
					}
					if err := st.In(b, words(sums)); err != nil {
						t.Fatal(err)
					}
					st.Done(b)
					if bk.gather != nil {
						v, err := dst.Download()
						if err != nil {
							t.Fatal(err)
						}
						for i, x := range v {
							if math.Float32bits(x) != math.Float32bits(sums[i]) {
								t.Fatalf("gathered row value %d written back: %v, want %v", i, x, sums[i])
							}
						}
					}
					for j, p := range bk.params {
						v, err := p.G.Download()
						if err != nil {
							t.Fatal(err)
						}
						for i := 0; i < bk.count[j]; i++ {
							x := v[bk.from[j]+i]
							if w := round(sums[bk.offs[j]+i]); math.Float32bits(x) != math.Float32bits(w) {
								t.Fatalf("bucket %d %s[%d] written back: %v, want %v", b, p.Spec.Name, bk.from[j]+i, x, w)
							}
						}
					}
				}
			})
		}
	})
}

// TestGatherPays: the tied embedding's rows are gathered when asked to,
// or, with auto, while every rank's rows (float32) are at most half the
// table's bytes in the exchange; never with off. (Whether a model can
// defer, a tied table, is mom's TestDeferredEmbeddingBackward.)
func TestGatherPays(t *testing.T) {
	const rows, table = 1000, 64000 // values
	for _, c := range []struct {
		mode, exchange string
		ranks          int
		want           bool
	}{
		// rows in float32: 4*ranks*1000 bytes, at most half the table's.
		{GatherAuto, ExchangeF32, 32, true}, // 128000 <= 256000/2
		{GatherAuto, ExchangeF32, 33, false},
		{"", ExchangeBF16, 16, true}, // 64000 <= 128000/2
		{GatherAuto, ExchangeBF16, 17, false},
		{GatherOn, ExchangeF32, 1000, true},
		{GatherOff, ExchangeF32, 2, false},
	} {
		if got := gatherPays(c.mode, c.exchange, c.ranks, rows, table); got != c.want {
			t.Errorf("%q, %s exchange, %d ranks: %v, want %v", c.mode, c.exchange, c.ranks, got, c.want)
		}
	}
}
