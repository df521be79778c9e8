package ref

// MSE is the per-row mean squared error over p columns of pred and target
// (t, p), the diffusion noise-prediction loss, with its gradient:
//
//	loss[row] = Σ_i (pred_i - target_i)² / p
//	dpred_i   = weights[m] * 2 (pred_i - target_i) / p
//
// where m = modality[row] < groups. sums[g] adds the losses of group g's rows
// and counts[g] counts them, over groups whose weight is nonzero only (a
// group with weight 0, text rows in Transfusion, contributes nothing).
func MSE[T Float](dpred, loss, sums, counts, pred, target []T, modality []uint32, weights []T, t, p, groups int) {
	for g := 0; g < groups; g++ {
		sums[g], counts[g] = 0, 0
	}
	for r := 0; r < t; r++ {
		m := modality[r]
		w := weights[m]
		var s T
		for i := r * p; i < (r+1)*p; i++ {
			diff := pred[i] - target[i]
			s += diff * diff
			dpred[i] = w * 2 * diff / T(p)
		}
		loss[r] = s / T(p)
		if w != 0 {
			sums[m] += loss[r]
			counts[m]++
		}
	}
}
