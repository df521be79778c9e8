package ref

import "math"

// BF16Bits rounds x to the nearest bfloat16, ties to even, on the bits,
// and returns the bfloat16's 16 bits (the upper half of a float32): beyond
// the largest bfloat16 the result is infinite, a NaN stays a (quiet) NaN
// of the same sign.
func BF16Bits(x float32) uint16 {
	b := math.Float32bits(x)
	if b&0x7fffffff > 0x7f800000 {
		return uint16(b>>16)&0x8000 | 0x7fc0
	}
	// The bits below the 16 kept: above half rounds up, below down, at
	// exactly half to the even kept value.
	kept, rest := b>>16, b&0xffff
	if rest > 0x8000 || (rest == 0x8000 && kept&1 == 1) {
		kept++
	}
	return uint16(kept)
}

// FromBF16 is the float32 whose upper 16 bits are h and lower 16 zero.
func FromBF16(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// PackBF16 rounds src to bfloat16 two per word, element 2i in the low half
// of dst[i]; the upper half of the last word is 0 when len(src) is odd.
// dst has ceil(len(src)/2) words.
func PackBF16(dst []uint32, src []float32) {
	for i := range dst {
		lo := uint32(BF16Bits(src[2*i]))
		var hi uint32
		if 2*i+1 < len(src) {
			hi = uint32(BF16Bits(src[2*i+1]))
		}
		dst[i] = lo | hi<<16
	}
}

// UnpackBF16 is PackBF16's inverse: dst[j] = the bfloat16 in half j%2 of
// word j/2 of src, as a float32.
func UnpackBF16(dst []float32, src []uint32) {
	for j := range dst {
		dst[j] = FromBF16(uint16(src[j/2] >> (16 * (j % 2))))
	}
}
