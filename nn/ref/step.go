package ref

import (
	"math"
	"sort"
)

// The recurrent step mode: one token per stream per step, for S streams.
// Each function here is the twin of a kernel of the step mode (and of its
// op in package nn) and states the same math as the parallel op it steps.

// ConvStep is one step of CausalConv1d per stream. state (streams,
// channels, k-1) holds each stream's last k-1 inputs, oldest first; it is
// updated in place (x joins, the oldest leaves), and y (streams, channels)
// is set:
//
//	pre[s,c] = bias[c] + sum_{j<k-1} w[c,j]*state[s,c,j] + w[c,k-1]*x[s,c]
//	y[s,c]   = silu(pre) if silu, else pre
func ConvStep[T Float](y, state, x, w, bias []T, streams, channels, k int, silu bool) {
	for s := 0; s < streams; s++ {
		for c := 0; c < channels; c++ {
			i := s*channels + c
			st := state[i*(k-1) : (i+1)*(k-1)]
			p := float64(bias[c])
			for j := 0; j < k-1; j++ {
				p += float64(w[c*k+j]) * float64(st[j])
			}
			p += float64(w[c*k+k-1]) * float64(x[i])
			if k > 1 {
				copy(st, st[1:])
				st[k-2] = x[i]
			}
			if silu {
				p *= 1 / (1 + math.Exp(-p))
			}
			y[i] = T(p)
		}
	}
}

// ConvTail sets tail (batch, channels, k-1) to the conv state a sequence x
// (batch, length, channels) leaves: tail[b,c,j] = x[b, length-(k-1)+j, c],
// 0 where that position is before the start.
func ConvTail[T Float](tail, x []T, batch, length, channels, k int) {
	for b := 0; b < batch; b++ {
		for c := 0; c < channels; c++ {
			for j := 0; j < k-1; j++ {
				var v T
				if t := length - (k - 1) + j; t >= 0 {
					v = x[(b*length+t)*channels+c]
				}
				tail[(b*channels+c)*(k-1)+j] = v
			}
		}
	}
}

// SSMStep is one step of SelectiveScan's recurrence per stream s, channel
// e, state i, with state (streams, ed, n) updated in place and y (streams,
// ed) set; B and C are column windows of bc (streams, w), at columns bcol
// and ccol:
//
//	dt      = softplus(delta[s,e])
//	h[i]    = exp(dt*A[e,i])*h[i] + dt*B[s,i]*u[s,e],  A = -exp(aLog)
//	y[s,e]  = (sum_i C[s,i]*h[i] + d[e]*u[s,e]) * silu(z[s,e])   (no gate when z is nil)
func SSMStep[T Float](y, state, u, delta, aLog, bc, d, z []T, streams, ed, n, w, bcol, ccol int) {
	for s := 0; s < streams; s++ {
		for e := 0; e < ed; e++ {
			x := s*ed + e
			dt := scanSoftplus(float64(delta[x]))
			uv := float64(u[x])
			out := float64(d[e]) * uv
			for i := 0; i < n; i++ {
				a := -math.Exp(float64(aLog[e*n+i]))
				h := math.Exp(dt*a)*float64(state[x*n+i]) + dt*float64(bc[s*w+bcol+i])*uv
				state[x*n+i] = T(h)
				out += float64(bc[s*w+ccol+i]) * h
			}
			if z != nil {
				zv := float64(z[x])
				out *= zv * scanSigmoid(zv)
			}
			y[x] = T(out)
		}
	}
}

// RoutedLinear is GroupedLinear for rows whose inputs and outputs are
// column windows of wider matrices: row t of weight set g = group[t] (0
// for every row when group is nil) computes
//
//	y[t*ldy + ycol + j] (=|+=) sum_i x[t*ldx + xcol + i] * w[(g*n+j)*k+i] (+ b[g*n+j])
//
// for j < n, i < k; b may be nil.
func RoutedLinear[T Float](y, x, w, b []T, group []uint32, rows, n, k, ldx, xcol, ldy, ycol int, accumulate bool) {
	for t := 0; t < rows; t++ {
		g := 0
		if group != nil {
			g = int(group[t])
		}
		for j := 0; j < n; j++ {
			var s float64
			for i := 0; i < k; i++ {
				s += float64(x[t*ldx+xcol+i]) * float64(w[(g*n+j)*k+i])
			}
			if b != nil {
				s += float64(b[g*n+j])
			}
			o := t*ldy + ycol + j
			if accumulate {
				y[o] += T(s)
			} else {
				y[o] = T(s)
			}
		}
	}
}

// StepEmbedding sets out (streams, d) to the rows of e (v, d) of the
// streams' ids and group (streams) to each id's modality: the g with
// ends[g-1] <= id < ends[g] (ends[-1] = 0; ids past the vocabulary count
// as its last id).
func StepEmbedding[T Float](out []T, group []uint32, e []T, ids []uint32, ends []int, streams, d int) {
	v := ends[len(ends)-1]
	for s := 0; s < streams; s++ {
		id := min(int(ids[s]), v-1)
		copy(out[s*d:(s+1)*d], e[id*d:(id+1)*d])
		g := 0
		for g < len(ends)-1 && id >= ends[g] {
			g++
		}
		group[s] = uint32(g)
	}
}

// pcgHash is the output permutation of PCG (RXS-M-XS) after one LCG step:
// a 32-bit hash.
func pcgHash(v uint32) uint32 {
	st := v*747796405 + 2891336453
	w := ((st >> ((st >> 28) + 4)) ^ st) * 277803737
	return (w >> 22) ^ w
}

// SampleUniform is the sampler's random number for (seed, stream, step):
// a chain of PCG hashes of the seed's halves, the stream and the step,
// whose top 24 bits make a uniform in [0, 1) (exact in float32).
func SampleUniform(seed uint64, stream, step uint32) float64 {
	h := pcgHash(step ^ pcgHash(stream^pcgHash(uint32(seed>>32)^pcgHash(uint32(seed)))))
	return float64(h>>8) / (1 << 24)
}

// SampleRow chooses an id of logits[lo:hi] (NaN logits excluded) with the
// uniform u:
//
//   - temperature <= 0: the argmax, the lowest id on ties;
//   - otherwise e_i = exp((l_i - max)/temperature); top-k (0 < topK <
//     hi-lo) keeps the ids whose logit is at least the topK-th largest;
//     top-p (0 < topP < 1) keeps, of those, the ids i with
//     sum_{kept j: l_j > l_i} e_j < topP * sum_{kept} e; the choice is the
//     first kept id, in id order, whose cumulative e exceeds u times the
//     kept sum (the last kept id if rounding leaves none).
//
// An empty range [lo, hi) means the whole of logits.
func SampleRow[T Float](logits []T, lo, hi int, temperature float64, topK int, topP, u float64) int {
	if lo >= hi {
		lo, hi = 0, len(logits)
	}
	best, mx := -1, 0.0
	for i := lo; i < hi; i++ {
		v := float64(logits[i])
		if v == v && (best < 0 || v > mx) {
			best, mx = i, v
		}
	}
	if best < 0 {
		return lo
	}
	if !(temperature > 0) {
		return best
	}
	var vals []float64
	for i := lo; i < hi; i++ {
		if v := float64(logits[i]); v == v {
			vals = append(vals, v)
		}
	}
	sort.Sort(sort.Reverse(sort.Float64Slice(vals)))
	kth := math.Inf(-1)
	if topK > 0 && topK < hi-lo && topK <= len(vals) {
		kth = vals[topK-1]
	}
	e := func(v float64) float64 { return math.Exp((v - mx) / temperature) }
	keep := func(v float64) bool { return v == v && v >= kth }
	thr := kth
	if topP > 0 && topP < 1 {
		var z float64
		for _, v := range vals {
			if v >= kth {
				z += e(v)
			}
		}
		// Walk the kept values from the largest; a value is kept while the
		// mass strictly above it is below topP*z.
		above := 0.0
		for i := 0; i < len(vals) && vals[i] >= kth; {
			j := i
			group := 0.0
			for j < len(vals) && vals[j] == vals[i] {
				group += e(vals[j])
				j++
			}
			if above >= topP*z {
				break
			}
			thr = vals[i]
			above += group
			i = j
		}
	}
	var total float64
	for i := lo; i < hi; i++ {
		if v := float64(logits[i]); keep(v) && v >= thr {
			total += e(v)
		}
	}
	target := u * total
	var acc float64
	last := best
	for i := lo; i < hi; i++ {
		if v := float64(logits[i]); keep(v) && v >= thr {
			acc += e(v)
			last = i
			if target < acc {
				return i
			}
		}
	}
	return last
}

// Sample is the sampler: for each stream s it chooses ids[s] from its row
// of logits (streams, v) within allowed[2s:2s+2] by SampleRow with the
// uniform SampleUniform(seed, s, pos[s]), then counts pos[s] up by one.
func Sample[T Float](ids, pos []uint32, logits []T, allowed []uint32, streams, v int, temperature float64, topK int, topP float64, seed uint64) {
	for s := 0; s < streams; s++ {
		lo, hi := int(allowed[2*s]), min(int(allowed[2*s+1]), v)
		u := SampleUniform(seed, uint32(s), pos[s])
		ids[s] = uint32(SampleRow(logits[s*v:(s+1)*v], lo, hi, temperature, topK, topP, u))
		pos[s]++
	}
}

// MaskLogits restricts each stream's logits (streams, v) to an id set:
// stream s uses set sel[s] (a row of mask, ceil(v/32) words, bit i%32 of
// word i/32 set when id i is in the set; sel[s] >= sets leaves the row
// alone), and every id in its window [lo, hi) = allowed[2s:2s+2] (clamped
// to v; an empty window is the whole row) that is not in the set gets a
// NaN logit.
func MaskLogits[T Float](logits []T, mask, sel, allowed []uint32, streams, v int) {
	words := (v + 31) / 32
	sets := len(mask) / max(words, 1)
	for s := 0; s < streams; s++ {
		g := int(sel[s])
		if sel[s] >= uint32(sets) {
			continue
		}
		lo, hi := int(allowed[2*s]), min(int(allowed[2*s+1]), v)
		if lo >= hi {
			lo, hi = 0, v
		}
		for i := lo; i < hi; i++ {
			if mask[g*words+i/32]>>(i%32)&1 == 0 {
				logits[s*v+i] = T(math.NaN())
			}
		}
	}
}
