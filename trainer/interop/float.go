package interop

import (
	"encoding/binary"
	"fmt"
	"math"

	"mom/trainer/safetensors"
)

// toFloat32 converts a floating-point tensor (F32, F16, BF16 or F64) to
// float32 values. F16 and BF16 widen exactly; F64 rounds to nearest.
func toFloat32(t safetensors.Tensor) ([]float32, error) {
	size, ok := safetensors.DTypeSize(t.DType)
	if !ok {
		return nil, fmt.Errorf("tensor %s: unknown dtype %q", t.Name, t.DType)
	}
	n := len(t.Data) / size
	if n*size != len(t.Data) {
		return nil, fmt.Errorf("tensor %s: %d bytes is not a whole number of %s", t.Name, len(t.Data), t.DType)
	}
	out := make([]float32, n)
	switch t.DType {
	case "F32":
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(t.Data[4*i:]))
		}
	case "F64":
		for i := range out {
			out[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(t.Data[8*i:])))
		}
	case "BF16":
		for i := range out {
			out[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(t.Data[2*i:])) << 16)
		}
	case "F16":
		for i := range out {
			out[i] = halfToFloat32(binary.LittleEndian.Uint16(t.Data[2*i:]))
		}
	default:
		return nil, fmt.Errorf("tensor %s is %s; a model parameter must be F32, F16, BF16 or F64", t.Name, t.DType)
	}
	return out, nil
}

// halfToFloat32 widens an IEEE 754 binary16 value.
func halfToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	man := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // Inf, NaN
		return math.Float32frombits(sign | 0xff<<23 | man<<13)
	case exp == 0 && man == 0:
		return math.Float32frombits(sign)
	case exp == 0: // subnormal: normalise
		e := uint32(127 - 15 + 1)
		for man&0x400 == 0 {
			man <<= 1
			e--
		}
		return math.Float32frombits(sign | e<<23 | (man&0x3ff)<<13)
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | man<<13)
}
