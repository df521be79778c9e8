package ref

import "math"

// AdamW applies one AdamW step (decoupled weight decay wd; pass 0 for a
// parameter without decay) to p, with moments m and v, gradient g scaled by
// the clip scale first, learning rate lr and step counted from 1:
//
//	g = grad*scale; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g²
//	p -= lr * ( (m/(1-b1^step)) / (sqrt(v/(1-b2^step)) + eps) + wd p )
//
// A scale of exactly 0 skips the step (the loss scaler's overflow,
// GradNormScaled): nothing changes.
func AdamW[T Float](p, m, v, g []T, scale, lr, beta1, beta2, eps, wd T, step int) {
	if scale == 0 {
		return
	}
	bc1 := 1 - math.Pow(float64(beta1), float64(step))
	bc2 := 1 - math.Pow(float64(beta2), float64(step))
	for i := range p {
		gi := g[i] * scale
		m[i] = beta1*m[i] + (1-beta1)*gi
		v[i] = beta2*v[i] + (1-beta2)*gi*gi
		mh := float64(m[i]) / bc1
		vh := float64(v[i]) / bc2
		p[i] -= lr * (T(mh/(math.Sqrt(vh)+float64(eps))) + wd*p[i])
	}
}
