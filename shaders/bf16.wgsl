// bf16.wgsl: float32 to bfloat16 and back, for the gradients that
// data-parallel ranks exchange in 16 bits (--grad-exchange bf16): half the
// bytes over PCIe and through host memory. A bfloat16 is the upper 16 bits
// of a float32 (same sign and exponent, 7 mantissa bits); rounding is on
// the bits, to the nearest, ties to even: what rounds beyond the largest
// bfloat16 is infinite, NaN is a quiet NaN of the same sign, subnormals
// round like the rest. Bit for bit nn/ref.PackBF16 and nn/ref.UnpackBF16.
//
//   to_bf16:   y[i] = bf16(x[2i]) | bf16(x[2i+1]) << 16   (0 past n)
//   from_bf16: x[2i] = y[i] << 16, x[2i+1] = y[i] & 0xffff0000 (not past n)
//
// One thread per pair; dispatch ceil(ceil(n/2)/256) workgroups split over y
// (nn.Grid). n is the float32 binding's length.

@group(0) @binding(0) var<storage, read> x: array<u32>;              // to_bf16: (n) float32 bits
@group(0) @binding(1) var<storage, read_write> y: array<u32>;        // to_bf16: (ceil(n/2)) bfloat16 pairs, element 2i low
@group(0) @binding(0) var<storage, read> yp: array<u32>;             // from_bf16: (ceil(n/2)) bfloat16 pairs
@group(0) @binding(1) var<storage, read_write> xo: array<u32>;       // from_bf16: (n) float32 bits

// bf16_bits rounds the float32 with bits b to the nearest bfloat16 (ties
// to even) and returns its 16 bits.
fn bf16_bits(b: u32) -> u32 {
	if ((b & 0x7fffffffu) > 0x7f800000u) { // NaN
		return ((b >> 16u) & 0x8000u) | 0x7fc0u;
	}
	// Adding 0x7fff plus the lowest kept bit rounds up exactly past the
	// half, and at the half when the kept part is odd; a carry into the
	// exponent is the right result (up to infinity). Below NaN, b + 0x8000
	// does not wrap.
	return (b + 0x7fffu + ((b >> 16u) & 1u)) >> 16u;
}

@compute @workgroup_size(256)
fn to_bf16(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
	let i = gid.x + gid.y * nwg.x * 256u;
	let n = arrayLength(&x);
	if (2u * i >= n) {
		return;
	}
	let lo = bf16_bits(x[2u * i]);
	var hi = 0u;
	if (2u * i + 1u < n) {
		hi = bf16_bits(x[2u * i + 1u]);
	}
	y[i] = lo | (hi << 16u);
}

@compute @workgroup_size(256)
fn from_bf16(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
	let i = gid.x + gid.y * nwg.x * 256u;
	let n = arrayLength(&xo);
	if (2u * i >= n) {
		return;
	}
	let w = yp[i];
	xo[2u * i] = w << 16u;
	if (2u * i + 1u < n) {
		xo[2u * i + 1u] = w & 0xffff0000u;
	}
}
