package ref

// GroupedLinear is the per-modality linear layer: for each row t of modality
// g = modality[t], y[t] (n) = x[t] (k) · w[g]ᵀ + b[g] (or y[t] += the same
// with accumulate), with w (groups, n, k) and b (groups, n) or nil.
func GroupedLinear[T Float](y, x, w, b []T, modality []uint32, rows, groups, n, k int, accumulate bool) {
	for t := 0; t < rows; t++ {
		g := int(modality[t])
		for j := 0; j < n; j++ {
			var s T
			for i := 0; i < k; i++ {
				s += x[t*k+i] * w[(g*n+j)*k+i]
			}
			if b != nil {
				s += b[g*n+j]
			}
			if accumulate {
				y[t*n+j] += s
			} else {
				y[t*n+j] = s
			}
		}
	}
}

// GroupedLinearBackward is the backward of GroupedLinear: dx[t] = dy[t] ·
// w[modality[t]] (or += with accumulateDX); dw[g] += sum over the rows t of
// modality g of dy[t]ᵀ x[t]; db[g] += sum over the same rows of dy[t]. A
// modality with no rows leaves its dw[g] and db[g] untouched. dx or db may be
// nil.
func GroupedLinearBackward[T Float](dx, dw, db, dy, x, w []T, modality []uint32, rows, groups, n, k int, accumulateDX bool) {
	for t := 0; t < rows; t++ {
		g := int(modality[t])
		if dx != nil {
			for i := 0; i < k; i++ {
				var s T
				for j := 0; j < n; j++ {
					s += dy[t*n+j] * w[(g*n+j)*k+i]
				}
				if accumulateDX {
					dx[t*k+i] += s
				} else {
					dx[t*k+i] = s
				}
			}
		}
	}
	for g := 0; g < groups; g++ {
		for j := 0; j < n; j++ {
			for i := 0; i < k; i++ {
				var s T
				any := false
				for t := 0; t < rows; t++ {
					if int(modality[t]) == g {
						s += dy[t*n+j] * x[t*k+i]
						any = true
					}
				}
				if any {
					dw[(g*n+j)*k+i] += s
				}
			}
			if db != nil {
				var s T
				any := false
				for t := 0; t < rows; t++ {
					if int(modality[t]) == g {
						s += dy[t*n+j]
						any = true
					}
				}
				if any {
					db[g*n+j] += s
				}
			}
		}
	}
}
