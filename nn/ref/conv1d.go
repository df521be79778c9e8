package ref

import "math"

// Depthwise causal conv1d over the sequence, one filter per channel:
//
//	pre[b,l,c] = bias[c] + sum_{j<k} w[c,j] * x[b, l-(k-1)+j, c]   (x = 0 before l = 0)
//	y[b,l,c]   = silu(pre[b,l,c]) if silu, else pre[b,l,c]
//
// Layouts: x, y (batch, length, channels); w (channels, k); bias (channels).

// convPre is pre[b,l,c] in float64.
func convPre[T Float](x, w, bias []T, bi, l, c, length, channels, k int) float64 {
	s := float64(bias[c])
	for j := 0; j < k; j++ {
		if src := l - (k - 1) + j; src >= 0 {
			s += float64(w[c*k+j]) * float64(x[(bi*length+src)*channels+c])
		}
	}
	return s
}

// CausalConv1d sets y to the causal depthwise convolution of x.
func CausalConv1d[T Float](y, x, w, bias []T, batch, length, channels, k int, silu bool) {
	for bi := 0; bi < batch; bi++ {
		for l := 0; l < length; l++ {
			for c := 0; c < channels; c++ {
				p := convPre(x, w, bias, bi, l, c, length, channels, k)
				if silu {
					p *= 1 / (1 + math.Exp(-p))
				}
				y[(bi*length+l)*channels+c] = T(p)
			}
		}
	}
}

// CausalConv1dBackward is the gradient of CausalConv1d given dy: dx is
// written (=), dw and dbias accumulate (+=).
//
//	dpre[b,l,c] = dy[b,l,c] * silu'(pre[b,l,c])  (or dy without SiLU)
//	dx[b,l,c]   = sum_j w[c,j] * dpre[b, l+(k-1)-j, c]   (terms past the end are 0)
//	dw[c,j]    += sum_{b,l} dpre[b,l,c] * x[b, l-(k-1)+j, c]
//	dbias[c]   += sum_{b,l} dpre[b,l,c]
func CausalConv1dBackward[T Float](dx, dw, dbias, dy, x, w, bias []T, batch, length, channels, k int, silu bool) {
	dpre := make([]float64, batch*length*channels)
	for bi := 0; bi < batch; bi++ {
		for l := 0; l < length; l++ {
			for c := 0; c < channels; c++ {
				i := (bi*length+l)*channels + c
				g := float64(dy[i])
				if silu {
					p := convPre(x, w, bias, bi, l, c, length, channels, k)
					s := 1 / (1 + math.Exp(-p))
					g *= s * (1 + p*(1-s))
				}
				dpre[i] = g
			}
		}
	}
	dwAcc := make([]float64, channels*k)
	dbAcc := make([]float64, channels)
	for bi := 0; bi < batch; bi++ {
		for l := 0; l < length; l++ {
			for c := 0; c < channels; c++ {
				i := (bi*length+l)*channels + c
				s := 0.0
				for j := 0; j < k; j++ {
					if dst := l + (k - 1) - j; dst < length {
						s += float64(w[c*k+j]) * dpre[(bi*length+dst)*channels+c]
					}
					if src := l - (k - 1) + j; src >= 0 {
						dwAcc[c*k+j] += dpre[i] * float64(x[(bi*length+src)*channels+c])
					}
				}
				dx[i] = T(s)
				dbAcc[c] += dpre[i]
			}
		}
	}
	for i := range dwAcc {
		dw[i] += T(dwAcc[i])
	}
	for i := range dbAcc {
		dbias[i] += T(dbAcc[i])
	}
}
