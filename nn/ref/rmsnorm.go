package ref

import "math"

// RMSNorm normalises each of the rows rows of x (rows, d) by its root mean
// square and scales by w (d): y = x / sqrt(mean(x²) + eps) * w. It stores
// the per-row reciprocal rms in rstd (rows) when rstd is not nil.
func RMSNorm[T Float](y, rstd, x, w []T, rows, d int, eps T) {
	for r := 0; r < rows; r++ {
		row := x[r*d : (r+1)*d]
		var ss T
		for _, v := range row {
			ss += v * v
		}
		rs := T(1 / math.Sqrt(float64(ss/T(d)+eps)))
		if rstd != nil {
			rstd[r] = rs
		}
		for i, v := range row {
			y[r*d+i] = v * rs * w[i]
		}
	}
}

// RMSNormBackward is the backward of RMSNorm given dy (rows, d). With
// g = dy*w and r the row's reciprocal rms:
//
//	dx_i  = r*g_i - r³/d * x_i * Σ_j g_j x_j   (written, or added when accumulateDX)
//	dw_i += Σ_rows dy_i * x_i * r
func RMSNormBackward[T Float](dx, dw, dy, x, w []T, rows, d int, eps T, accumulateDX bool) {
	for r := 0; r < rows; r++ {
		xr, gr := x[r*d:(r+1)*d], dy[r*d:(r+1)*d]
		var ss, dot T
		for i, v := range xr {
			ss += v * v
			dot += gr[i] * w[i] * v
		}
		rs := T(1 / math.Sqrt(float64(ss/T(d)+eps)))
		coef := rs * rs * rs * dot / T(d)
		for i, v := range xr {
			g := rs*gr[i]*w[i] - coef*v
			if accumulateDX {
				dx[r*d+i] += g
			} else {
				dx[r*d+i] = g
			}
			dw[i] += gr[i] * v * rs
		}
	}
}
