package ref

// Linear is y (rows, n) = x (rows, k) · wᵀ (w is (n, k)) + b (n), or y += the
// same when accumulate is set. b may be nil (no bias).
func Linear[T Float](y, x, w, b []T, rows, n, k int, accumulate bool) {
	for t := 0; t < rows; t++ {
		for j := 0; j < n; j++ {
			var s T
			for i := 0; i < k; i++ {
				s += x[t*k+i] * w[j*k+i]
			}
			if b != nil {
				s += b[j]
			}
			if accumulate {
				y[t*n+j] += s
			} else {
				y[t*n+j] = s
			}
		}
	}
}

// LinearBackward is the backward of Linear: dx (rows, k) = dy · w (or += with
// accumulateDX), dw (n, k) += dyᵀ · x, db (n) += the column sums of dy. dx or
// db may be nil (no input gradient, no bias).
func LinearBackward[T Float](dx, dw, db, dy, x, w []T, rows, n, k int, accumulateDX bool) {
	if dx != nil {
		for t := 0; t < rows; t++ {
			for i := 0; i < k; i++ {
				var s T
				for j := 0; j < n; j++ {
					s += dy[t*n+j] * w[j*k+i]
				}
				if accumulateDX {
					dx[t*k+i] += s
				} else {
					dx[t*k+i] = s
				}
			}
		}
	}
	for j := 0; j < n; j++ {
		for i := 0; i < k; i++ {
			var s T
			for t := 0; t < rows; t++ {
				s += dy[t*n+j] * x[t*k+i]
			}
			dw[j*k+i] += s
		}
	}
	if db != nil {
		for j := 0; j < n; j++ {
			var s T
			for t := 0; t < rows; t++ {
				s += dy[t*n+j]
			}
			db[j] += s
		}
	}
}
