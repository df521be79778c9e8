package ref

import "math"

// GradNorm returns the global L2 norm of all gradients and the clip scale
// min(1, maxNorm/(norm+1e-6)); with maxNorm <= 0 the scale is 1.
func GradNorm[T Float](grads [][]T, maxNorm T) (norm, scale T) {
	var ss float64
	for _, g := range grads {
		for _, x := range g {
			ss += float64(x) * float64(x)
		}
	}
	norm = T(math.Sqrt(ss))
	scale = 1
	if maxNorm > 0 {
		scale = T(math.Min(1, float64(maxNorm)/(float64(norm)+1e-6)))
	}
	return norm, scale
}
