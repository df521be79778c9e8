package ref

import "math"

// IgnoreIndex marks a row without a target: no loss, zero gradient.
const IgnoreIndex = 0xFFFFFFFF

// CrossEntropy is softmax cross-entropy over logits (t, v) with the
// gradient fused in. For each row with a target (not IgnoreIndex):
//
//	loss[row]  = logsumexp(logits[row]) - logits[row][target]
//	dlogits    = weights[m] * (softmax(logits[row]) - onehot(target))
//
// where m = modality[row] < groups. Ignored rows get loss 0 and a zero
// gradient. sums[g] adds the unweighted losses of the valid rows of group g,
// counts[g] counts them. dlogits may be logits (in place).
func CrossEntropy[T Float](dlogits, loss, sums, counts, logits []T, targets, modality []uint32, weights []T, t, v, groups int) {
	for g := 0; g < groups; g++ {
		sums[g], counts[g] = 0, 0
	}
	for r := 0; r < t; r++ {
		row := logits[r*v : (r+1)*v]
		out := dlogits[r*v : (r+1)*v]
		tgt := targets[r]
		if tgt == IgnoreIndex {
			loss[r] = 0
			for i := range out {
				out[i] = 0
			}
			continue
		}
		mx := row[0]
		for _, x := range row {
			if x > mx {
				mx = x
			}
		}
		var s float64
		for _, x := range row {
			s += math.Exp(float64(x - mx))
		}
		lse := float64(mx) + math.Log(s)
		l := T(lse - float64(row[tgt]))
		loss[r] = l
		m := modality[r]
		w := weights[m]
		sums[m] += l
		counts[m]++
		for i, x := range row {
			p := T(math.Exp(float64(x) - lse))
			if uint32(i) == tgt {
				p--
			}
			out[i] = w * p
		}
	}
}
