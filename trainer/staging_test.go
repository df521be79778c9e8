package trainer

import (
	"fmt"
	"testing"
	"time"

	"mom/mom"
	"mom/trainer/mpi"
)

// TestPlanBuckets: buckets close between stages once they hold maxBytes,
// in the order the backward finishes the gradients; the last takes the
// rest; every parameter lands in one bucket at its offset; padding rounds
// up to the ranks.
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
		want     string // per bucket: last stage, values, padded, names@offsets
	}{
		{4, "[0 10 10 head@0] [1 8 8 l1.a@0 l1.b@4] [2 3 4 l0.a@0] [4 20 20 emb@0]"},
		{4 * 15, "[1 18 18 head@0 l1.a@10 l1.b@14] [4 23 24 l0.a@0 emb@3]"},
		{1 << 30, "[4 41 42 head@0 l1.a@10 l1.b@14 l0.a@18 emb@21]"},
	} {
		got := ""
		for i, b := range planBuckets(len(stages), finished, c.maxBytes, pad2) {
			if i > 0 {
				got += " "
			}
			got += fmt.Sprintf("[%d %d %d", b.last, b.n, b.padded)
			for j, p := range b.params {
				got += fmt.Sprintf(" %s@%d", p.Spec.Name, b.offs[j])
			}
			got += "]"
		}
		if got != c.want {
			t.Errorf("maxBytes %d:\n got %s\nwant %s", c.maxBytes, got, c.want)
		}
	}
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
