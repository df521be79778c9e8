package ref

import "math"

// CastHalf is the twin of the float16 cast (nn.Cast, shaders/cast.wgsl):
// dst[i] = RoundHalf(x[i]*scale), the value of the half it stores (pass
// scale 1 for a plain cast; the loss scale is a power of two, so the
// product is exact), and whether some result is infinite or NaN (the
// overflow flag the kernel raises).
func CastHalf[T Float](dst, x []T, scale T) (overflow bool) {
	for i, v := range x {
		h := roundHalf(float64(v) * float64(scale))
		if math.IsInf(h, 0) || math.IsNaN(h) {
			overflow = true
		}
		dst[i] = T(h)
	}
	return overflow
}
