// mask_logits.wgsl: restrict each stream's logits to an id set before the
// sampler (sample.wgsl) reads them. Set g is row g of the bit mask
// mask (G, W) u32, W = ceil(V/32): id i is in the set when bit i%32 of
// word i/32 is 1. Stream s uses set sel[s]; NONE leaves its row alone.
// Within the row's allowed window [lo, hi) = allowed[s] (the sampler's
// range, clamped to V), every logit whose id is not in the set becomes NaN,
// which the sampler ignores. Ids outside the window are left as they are:
// the sampler does not read them.
//
// One workgroup of WG threads per stream (split over y when above the x
// limit); the cost is the window's width, nothing when sel[s] is NONE.

override WG: u32 = 256u;  // threads per stream
override V: u32 = 1u;     // vocabulary
override G: u32 = 1u;     // sets (rows of mask)

const NONE: u32 = 0xffffffffu;

@group(0) @binding(0) var<storage, read_write> logits: array<f32>; // (S, V)
@group(0) @binding(1) var<storage, read> mask: array<u32>;         // (G, ceil(V/32)) bits
@group(0) @binding(2) var<storage, read> sel: array<u32>;          // (S) set of each stream, NONE: none
@group(0) @binding(3) var<storage, read> allowed: array<u32>;      // (S, 2) the sampler's window [lo, hi)

@compute @workgroup_size(WG)
fn mask_logits(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
	@builtin(local_invocation_index) tid: u32) {
	let s = wg.x + wg.y * nwg.x;
	if (s >= arrayLength(&sel)) {
		return;
	}
	let g = sel[s];
	if (g >= G) {
		return;
	}
	var lo = allowed[2u * s];
	var hi = min(allowed[2u * s + 1u], V);
	if (lo >= hi) {
		lo = 0u;
		hi = V;
	}
	let words = (V + 31u) / 32u;
	// A NaN from a runtime value: WGSL refuses NaN in constant expressions.
	var nan_bits = 0x7fc00000u;
	let nan = bitcast<f32>(nan_bits);
	for (var i = lo + tid; i < hi; i += WG) {
		if (((mask[g * words + i / 32u] >> (i % 32u)) & 1u) == 0u) {
			logits[s * V + i] = nan;
		}
	}
}
