// gradnorm.wgsl: the global gradient norm over many tensors and the clip
// scale, deterministic and without readback. sumsq (or sumsq4) runs once per
// tensor range: workgroup w sums the squares of the elements
// w*256 + tid + k*(num_workgroups*256) and writes part[w] (the part binding
// is that range's own slice of the partials buffer). finish then sums every
// partial in a fixed order.

override MAX_NORM: f32 = 0.0; // <= 0: no clipping (scale 1)

const WG: u32 = 256u;
var<workgroup> red: array<f32, WG>;

// sumsq / sumsq4
@group(0) @binding(0) var<storage, read> g: array<f32>;         // (n) one gradient range
@group(0) @binding(0) var<storage, read> g4: array<vec4<f32>>;  // (n/4)
@group(0) @binding(1) var<storage, read_write> part: array<f32>; // (num_workgroups) this range's partials
// finish
@group(0) @binding(0) var<storage, read> parts: array<f32>;       // (P) all partials, unused slots 0
@group(0) @binding(1) var<storage, read_write> norm: array<f32>;  // (1)
@group(0) @binding(2) var<storage, read_write> scale: array<f32>; // (1)

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

@compute @workgroup_size(256)
fn sumsq(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
	@builtin(local_invocation_index) tid: u32) {
	let n = arrayLength(&g);
	let stride = nwg.x * WG;
	var s = 0.0;
	for (var i = wid.x * WG + tid; i < n; i += stride) {
		let v = g[i];
		s += v * v;
	}
	let tot = wg_sum(tid, s);
	if (tid == 0u) {
		part[wid.x] = tot;
	}
}

@compute @workgroup_size(256)
fn sumsq4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
	@builtin(local_invocation_index) tid: u32) {
	let n = arrayLength(&g4);
	let stride = nwg.x * WG;
	var s = 0.0;
	for (var i = wid.x * WG + tid; i < n; i += stride) {
		let v = g4[i];
		s += dot(v, v);
	}
	let tot = wg_sum(tid, s);
	if (tid == 0u) {
		part[wid.x] = tot;
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
