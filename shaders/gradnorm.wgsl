// gradnorm.wgsl: the global gradient norm over many tensors and the clip
// scale, deterministic and without readback. sumsq runs once per group of up
// to RANGES gradient ranges (whole tensors, or binding-sized ranges of a large
// one): range j gets wgs(n_j) workgroups, numbered after those of the ranges
// before it, and workgroup w of range j sums the squares of the range's
// elements w*256 + tid + k*(wgs(n_j)*256) and writes part[first_j + w] (the
// part binding is the group's own slice of the partials buffer). finish then
// sums every partial in a fixed order; finish_scaled does the same for
// gradients that carry a dynamic loss scale, and steps the scale (see it
// below). One dispatch per group rather than per tensor: each dispatch costs
// a pipeline barrier, and a model has hundreds of small tensors.

override MAX_NORM: f32 = 0.0; // <= 0: no clipping (scale 1)
// finish_scaled: the loss scale doubles after GROWTH_EVERY steps in a row
// without overflow (up to MAX_SCALE) and halves at an overflow (down to
// MIN_SCALE).
override GROWTH_EVERY: f32 = 2000.0;
override MIN_SCALE: f32 = 1.0;
override MAX_SCALE: f32 = 16777216.0;

const WG: u32 = 256u;
var<workgroup> red: array<f32, WG>;

// sumsq: RANGES gradient ranges (a group with fewer binds a one-element
// zero tensor in the rest) and the group's partials.
const RANGES: u32 = 6u;
@group(0) @binding(0) var<storage, read> g0: array<f32>;
@group(0) @binding(1) var<storage, read> g1: array<f32>;
@group(0) @binding(2) var<storage, read> g2: array<f32>;
@group(0) @binding(3) var<storage, read> g3: array<f32>;
@group(0) @binding(4) var<storage, read> g4: array<f32>;
@group(0) @binding(5) var<storage, read> g5: array<f32>;
@group(0) @binding(6) var<storage, read_write> part: array<f32>; // this group's partials
// finish
@group(0) @binding(0) var<storage, read> parts: array<f32>;       // (P) all partials, unused slots 0
@group(0) @binding(1) var<storage, read_write> norm: array<f32>;  // (1)
@group(0) @binding(2) var<storage, read_write> scale: array<f32>; // (1)
// finish_scaled, also
@group(0) @binding(3) var<storage, read_write> st: array<f32>;    // (8) loss-scale state (nn.LossScale)
@group(0) @binding(4) var<storage, read_write> ovf: array<u32>;   // (1) overflow flag raised by the casts

// wg_sum returns the sum of v over the workgroup (a fixed-order tree).
fn wg_sum(tid: u32, v: f32) -> f32 {
	red[tid] = v;
	workgroupBarrier();
	for (var s = WG / 2u; s > 0u; s >>= 1u) {
		if (tid < s) {
			red[tid] += red[tid + s];
		}
		workgroupBarrier();
	}
	let r = red[0];
	workgroupBarrier();
	return r;
}

// wgs is the number of workgroups of a range of n elements: about 8
// elements per invocation, at least 1 and at most 1024 (nn.sumSqWorkgroups
// is the same rule).
fn wgs(n: u32) -> u32 {
	return clamp((n + 2047u) / 2048u, 1u, 1024u);
}

// range_len is the length of range j.
fn range_len(j: u32) -> u32 {
	switch j {
		case 0u: { return arrayLength(&g0); }
		case 1u: { return arrayLength(&g1); }
		case 2u: { return arrayLength(&g2); }
		case 3u: { return arrayLength(&g3); }
		case 4u: { return arrayLength(&g4); }
		default: { return arrayLength(&g5); }
	}
}

// range_at is element i of range j.
fn range_at(j: u32, i: u32) -> f32 {
	switch j {
		case 0u: { return g0[i]; }
		case 1u: { return g1[i]; }
		case 2u: { return g2[i]; }
		case 3u: { return g3[i]; }
		case 4u: { return g4[i]; }
		default: { return g5[i]; }
	}
}

// Dispatch the sum of wgs(n_j) over the group's RANGES ranges, in x.
@compute @workgroup_size(256)
fn sumsq(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
	let w = wid.x;
	var j = 0u;
	var first = 0u;
	var count = wgs(range_len(0u));
	while (j + 1u < RANGES && w >= first + count) {
		first += count;
		j++;
		count = wgs(range_len(j));
	}
	if (w >= first + count) {
		return;
	}
	let n = range_len(j);
	let stride = count * WG;
	var s = 0.0;
	for (var i = (w - first) * WG + tid; i < n; i += stride) {
		let v = range_at(j, i);
		s += v * v;
	}
	let tot = wg_sum(tid, s);
	if (tid == 0u) {
		part[w] = tot;
	}
}

@compute @workgroup_size(256)
fn finish(@builtin(local_invocation_index) tid: u32) {
	let n = arrayLength(&parts);
	var s = 0.0;
	for (var i = tid; i < n; i += WG) {
		s += parts[i];
	}
	let tot = wg_sum(tid, s);
	if (tid == 0u) {
		let nrm = sqrt(tot);
		norm[0] = nrm;
		var sc = 1.0;
		if (MAX_NORM > 0.0) {
			sc = min(1.0, MAX_NORM / (nrm + 1e-6));
		}
		scale[0] = sc;
	}
}

// finite reports whether x is neither infinite nor NaN, on its bits (WGSL
// lets an implementation assume floats are finite, so isinf-like tests on
// values may be folded away).
fn finite(x: f32) -> bool {
	return (bitcast<u32>(x) & 0x7f800000u) != 0x7f800000u;
}

// finish_scaled is finish for gradients multiplied by the loss scale
// s = st[0] (mixed precision, nn.LossScale). The step overflowed when a cast
// raised ovf[0] or the sum of squares is not finite; then the step is
// skipped: scale = 0 (AdamW leaves every parameter and moment as it is),
// norm = 0, the loss scale halves and the skip is counted. Otherwise
// norm = sqrt(sum)/s is the norm of the true gradients, and
// scale = min(1, MAX_NORM/(norm+1e-6))/s both unscales and clips them in
// AdamW; after GROWTH_EVERY clean steps in a row the loss scale doubles.
// The flag is cleared for the next step. st: [0] the scale of the next
// step, [1] clean steps in a row, [2] steps skipped in all, [3] 1 if this
// step was skipped, [4] the scale this step used; [5..7] unused.
@compute @workgroup_size(256)
fn finish_scaled(@builtin(local_invocation_index) tid: u32) {
	let n = arrayLength(&parts);
	var s = 0.0;
	for (var i = tid; i < n; i += WG) {
		s += parts[i];
	}
	let tot = wg_sum(tid, s);
	if (tid == 0u) {
		let ls = st[0];
		st[4] = ls;
		if (ovf[0] != 0u || !finite(tot)) {
			norm[0] = 0.0;
			scale[0] = 0.0;
			st[0] = max(ls * 0.5, MIN_SCALE);
			st[1] = 0.0;
			st[2] = st[2] + 1.0;
			st[3] = 1.0;
		} else {
			let nrm = sqrt(tot) / ls;
			norm[0] = nrm;
			var sc = 1.0;
			if (MAX_NORM > 0.0) {
				sc = min(1.0, MAX_NORM / (nrm + 1e-6));
			}
			scale[0] = sc / ls;
			var clean = st[1] + 1.0;
			var next = ls;
			if (clean >= GROWTH_EVERY) {
				next = min(ls * 2.0, MAX_SCALE);
				clean = 0.0;
			}
			st[0] = next;
			st[1] = clean;
			st[3] = 0.0;
		}
		ovf[0] = 0u;
	}
}
