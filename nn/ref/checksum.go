package ref

import "math"

// Checksum is the sum over i of bits(x[i]) * (2i + 1) modulo 2^32: the
// checksum of a tensor's exact bits that the checksum kernel computes.
func Checksum(x []float32) uint32 {
	var s uint32
	for i, v := range x {
		s += math.Float32bits(v) * (2*uint32(i) + 1)
	}
	return s
}
