// embedding.wgsl: out[t] = e[ids[t]], and the backward
// de[v] += Σ_{t: ids[t]=v} dout[t] without atomics: the host builds an
// inverted index per batch (the positions sorted by id, stable, with the
// offsets of each distinct id), and workgroup u sums the rows of the u-th
// distinct id in position order and adds the sum to its row of de.
//
// index layout (u32): [0] nu, the number of distinct ids;
// [1 .. T+2) offsets (nu+1 used); [T+2 .. 2T+2) the distinct ids (nu used);
// [2T+2 .. 3T+2) positions sorted by id.

override D: u32;         // embedding width
override T: u32;         // tokens
override WG: u32 = 256u; // embedding_bwd threads, striding over the columns

// embedding_fwd: one thread per element of out, ceil(T*D/256) workgroups
@group(0) @binding(0) var<storage, read> ids: array<u32>;          // (T)
@group(0) @binding(1) var<storage, read> e: array<f32>;            // (V, D)
@group(0) @binding(2) var<storage, read_write> out: array<f32>;    // (T, D)
// embedding_fwd4: one thread per vec4, D divisible by 4
@group(0) @binding(1) var<storage, read> e4: array<vec4<f32>>;         // (V, D/4)
@group(0) @binding(2) var<storage, read_write> out4: array<vec4<f32>>; // (T, D/4)
// embedding_bwd: one workgroup per slot of a distinct id, T workgroups
@group(0) @binding(0) var<storage, read> index: array<u32>;        // (3T+2)
@group(0) @binding(1) var<storage, read> dout: array<f32>;         // (T, D)
@group(0) @binding(2) var<storage, read_write> de: array<f32>;     // (V, D) accumulated
// embedding_bwd4
@group(0) @binding(1) var<storage, read> dout4: array<vec4<f32>>;     // (T, D/4)
@group(0) @binding(2) var<storage, read_write> de4: array<vec4<f32>>; // (V, D/4)

@compute @workgroup_size(256)
fn embedding_fwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
	let i = gid.x + gid.y * nwg.x * 256u;
	if (i >= T * D) {
		return;
	}
	let t = i / D;
	out[i] = e[ids[t] * D + (i - t * D)];
}

@compute @workgroup_size(256)
fn embedding_fwd4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
	let i = gid.x + gid.y * nwg.x * 256u;
	let d4 = D / 4u;
	if (i >= T * d4) {
		return;
	}
	let t = i / d4;
	out4[i] = e4[ids[t] * d4 + (i - t * d4)];
}

@compute @workgroup_size(WG)
fn embedding_bwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
	@builtin(local_invocation_index) tid: u32) {
	let u = wid.x + wid.y * nwg.x;
	if (u >= index[0]) {
		return;
	}
	let lo = index[1u + u];
	let hi = index[2u + u];
	let row = index[T + 2u + u] * D;
	for (var i = tid; i < D; i += WG) {
		var s = 0.0;
		for (var k = lo; k < hi; k++) {
			s += dout[index[2u * T + 2u + k] * D + i];
		}
		de[row + i] += s;
	}
}

@compute @workgroup_size(WG)
fn embedding_bwd4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
	@builtin(local_invocation_index) tid: u32) {
	let u = wid.x + wid.y * nwg.x;
	if (u >= index[0]) {
		return;
	}
	let d4 = D / 4u;
	let lo = index[1u + u];
	let hi = index[2u + u];
	let row = index[T + 2u + u] * d4;
	for (var i = tid; i < d4; i += WG) {
		var s = vec4<f32>(0.0);
		for (var k = lo; k < hi; k++) {
			s += dout4[index[2u * T + 2u + k] * d4 + i];
		}
		de4[row + i] += s;
	}
}
