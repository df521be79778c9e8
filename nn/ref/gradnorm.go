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

// LossScale is the state of dynamic loss scaling, as nn.LossScale keeps it
// on the device: the scale of the next step, the clean steps in a row, the
// steps skipped in all, whether the last step was skipped and the scale it
// used.
type LossScale struct {
	Scale          float64
	Clean, Skipped int
	LastSkipped    bool
	LastScale      float64
}

// GradNormScaled is the twin of the gradient norm's finish for gradients
// multiplied by the loss scale ls.Scale (nn.NewGradNormScaled). The step
// overflowed when overflow is set (a cast's flag) or the sum of squares is
// not finite: then norm and scale are 0 (AdamW skips the step), the loss
// scale halves (not below minScale), the clean count restarts and the skip
// is counted. Otherwise norm is the norm of the unscaled gradients,
// norm(grads)/ls.Scale, scale = min(1, maxNorm/(norm+1e-6))/ls.Scale (or
// 1/ls.Scale with maxNorm <= 0), and after growthEvery clean steps in a row
// the loss scale doubles (not above maxScale) and the count restarts.
func GradNormScaled[T Float](grads [][]T, maxNorm T, ls *LossScale, overflow bool, growthEvery int, minScale, maxScale float64) (norm, scale T) {
	var ss float64
	for _, g := range grads {
		for _, x := range g {
			ss += float64(x) * float64(x)
		}
	}
	s := ls.Scale
	ls.LastScale = s
	if overflow || math.IsNaN(ss) || math.IsInf(ss, 0) || ss > math.MaxFloat32 {
		ls.Scale = math.Max(s/2, minScale)
		ls.Clean = 0
		ls.Skipped++
		ls.LastSkipped = true
		return 0, 0
	}
	n := math.Sqrt(ss) / s
	sc := 1.0
	if maxNorm > 0 {
		sc = math.Min(1, float64(maxNorm)/(n+1e-6))
	}
	ls.Clean++
	if ls.Clean >= growthEvery {
		ls.Scale = math.Min(2*s, maxScale)
		ls.Clean = 0
	}
	ls.LastSkipped = false
	return T(n), T(sc / s)
}
