// cast.wgsl: float32 to float16 (the copies that feed the GEMMs and the conv
// in mixed precision), optionally multiplied by the loss scale first, with
// an overflow flag. The rounding is done on the bits, in integer arithmetic:
// to the nearest half, ties to even, subnormal halves kept, beyond the
// largest half (65504, and what rounds above it) infinity, NaN a quiet NaN,
// float32 subnormals zero. It needs no shader-f16 (the halves are stored in
// pairs, in u32 words) and it depends neither on the implementation's
// f32-to-f16 conversion (WGSL leaves its rounding and its overflow to the
// implementation) nor on infinities surviving float arithmetic. It is
// bit for bit nn/ref.CastHalf.
//
//   y[i] = half(x[i] * s)     s = ls[0] with SCALED, else 1 (no multiply)
//   flag[0] |= 1              with FLAG, where some y[i] is infinite or NaN
//
// to_half: one thread per pair of elements (the last pair's upper half is 0
// when n is odd); to_half4: one thread per 4 elements (n divisible by 4).
// Dispatch ceil(pairs/256) (ceil(n/4/256)) workgroups split over y (nn.Grid).

override SCALED: bool = false; // multiply by ls[0] before rounding
override FLAG: bool = false;   // raise flag[0] where a result is not finite

@group(0) @binding(0) var<storage, read> x: array<u32>;                  // (n) float32 bits
@group(0) @binding(1) var<storage, read_write> y: array<u32>;            // (ceil(n/2)) halves, element 2i in the low 16 bits
@group(0) @binding(2) var<storage, read> ls: array<f32>;                 // (>= 1) the loss scale in [0]; any buffer without SCALED
@group(0) @binding(3) var<storage, read_write> flag: array<atomic<u32>>; // (1) overflow flag; any u32 buffer without FLAG
// to_half4
@group(0) @binding(0) var<storage, read> x4: array<vec4<u32>>;           // (n/4)
@group(0) @binding(1) var<storage, read_write> y2: array<vec2<u32>>;     // (n/4) four halves

// half_bits rounds the float32 with bits b to the nearest half (ties to
// even) and returns the half's bits.
fn half_bits(b: u32) -> u32 {
	let sign = (b >> 16u) & 0x8000u;
	let e = (b >> 23u) & 0xffu;
	let mant = b & 0x7fffffu;
	if (e == 0xffu) { // infinity or NaN
		if (mant != 0u) {
			return sign | 0x7e00u;
		}
		return sign | 0x7c00u;
	}
	let ex = i32(e) - 127;
	if (ex > 15) {
		return sign | 0x7c00u;
	}
	if (ex >= -14) { // a normal half (the carry of rounding up may reach infinity: correct)
		var h = (u32(ex + 15) << 10u) | (mant >> 13u);
		let rest = mant & 0x1fffu;
		if (rest > 0x1000u || (rest == 0x1000u && (h & 1u) == 1u)) {
			h += 1u;
		}
		return sign | h;
	}
	if (ex >= -25) { // a subnormal half (or zero, or the smallest one)
		let m = mant | 0x800000u;
		let shift = u32(-ex - 1); // 13 + (-14 - ex): 14 .. 24
		var h = m >> shift;
		let rest = m & ((1u << shift) - 1u);
		let mid = 1u << (shift - 1u);
		if (rest > mid || (rest == mid && (h & 1u) == 1u)) {
			h += 1u;
		}
		return sign | h;
	}
	return sign;
}

// scaled returns the bits to round: x's own, or those of x * s.
fn scaled(b: u32, s: f32) -> u32 {
	if (SCALED) {
		return bitcast<u32>(bitcast<f32>(b) * s);
	}
	return b;
}

// finite reports whether the half with bits h is finite.
fn finite(h: u32) -> bool {
	return (h & 0x7c00u) != 0x7c00u;
}

fn loss_scale() -> f32 {
	if (SCALED) {
		return ls[0];
	}
	return 1.0;
}

@compute @workgroup_size(256)
fn to_half(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
	let i = gid.x + gid.y * nwg.x * 256u;
	let n = arrayLength(&x);
	if (2u * i >= n) {
		return;
	}
	let s = loss_scale();
	let lo = half_bits(scaled(x[2u * i], s));
	var hi = 0u;
	if (2u * i + 1u < n) {
		hi = half_bits(scaled(x[2u * i + 1u], s));
	}
	y[i] = lo | (hi << 16u);
	if (FLAG && !(finite(lo) && finite(hi))) {
		atomicOr(&flag[0], 1u);
	}
}

@compute @workgroup_size(256)
fn to_half4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
	let i = gid.x + gid.y * nwg.x * 256u;
	if (i >= arrayLength(&x4)) {
		return;
	}
	let s = loss_scale();
	let v = x4[i];
	let h0 = half_bits(scaled(v.x, s));
	let h1 = half_bits(scaled(v.y, s));
	let h2 = half_bits(scaled(v.z, s));
	let h3 = half_bits(scaled(v.w, s));
	y2[i] = vec2<u32>(h0 | (h1 << 16u), h2 | (h3 << 16u));
	if (FLAG && !(finite(h0) && finite(h1) && finite(h2) && finite(h3))) {
		atomicOr(&flag[0], 1u);
	}
}
