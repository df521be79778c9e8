package ref

import "math"

// RoundHalf is the twin of the float16 storage of the mixed-precision GEMM
// inputs (nn.F16 tensors, nn.F16Bits): each x rounded to the nearest IEEE
// half-precision value, ties to even, into dst; beyond the largest half
// (65504, and what rounds above it) infinity, NaN stays NaN. The float16
// GEMM kernels' twins are the float32 ones (Linear, GroupedLinear and their
// backwards) on inputs rounded so: they widen each value to float32 as they
// load it, and a product of two halves is exact in float32.
func RoundHalf[T Float](dst, x []T) {
	for i, v := range x {
		dst[i] = T(roundHalf(float64(v)))
	}
}

func roundHalf(x float64) float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) || x == 0 {
		return x
	}
	a := math.Abs(x)
	// The spacing of halves around a: 2^(e-10) for normal halves of
	// exponent e (2^e <= a < 2^(e+1)), 2^-24 for subnormals.
	e := math.Floor(math.Log2(a))
	if math.Pow(2, e) > a { // guard against log2 rounding
		e--
	} else if math.Pow(2, e+1) <= a {
		e++
	}
	step := math.Pow(2, math.Max(e, -14)-10)
	q := a / step
	r := math.RoundToEven(q) * step
	if r > 65504 {
		r = math.Inf(1)
	}
	return math.Copysign(r, x)
}
