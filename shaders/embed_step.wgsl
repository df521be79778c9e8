// embed_step.wgsl: the embedding of the streams' current tokens in the
// recurrent step mode, and each token's modality, which routes the
// per-modality projections of the step:
//   out[s, :] = e[ids[s], :]
//   grp[s]    = the g with ends[g-1] <= ids[s] < ends[g]   (ends[-1] = 0)
// The modalities' vocabulary ranges are contiguous from 0 and ends (G)
// holds their ends. The ids are on the device (the sampler writes them), so
// an id past the vocabulary is clamped to its last row instead of read out
// of bounds (the host checks the ids it uploads).

// Dims: streams, the width D, the vocabulary V and the modalities G.
struct Dims {
	streams: u32,
	d: u32,
	v: u32,
	groups: u32,
}

@group(0) @binding(0) var<storage, read> ids: array<u32>;        // (S)
@group(0) @binding(1) var<storage, read> e: array<f32>;          // (V, D)
@group(0) @binding(2) var<storage, read> ends: array<u32>;       // (G)
@group(0) @binding(3) var<storage, read_write> out: array<f32>;  // (S, D)
@group(0) @binding(4) var<storage, read_write> grp: array<u32>;  // (S)
@group(0) @binding(5) var<uniform> dims: Dims;

// embed_step: one thread per element of out, 256 per workgroup, split over
// y when above the x limit.
@compute @workgroup_size(256)
fn embed_step(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
	let D = dims.d;
	let i = gid.x + gid.y * nwg.x * 256u;
	if (i >= dims.streams * D) {
		return;
	}
	let s = i / D;
	let c = i % D;
	let id = min(ids[s], dims.v - 1u);
	out[i] = e[id * D + c];
	if (c == 0u) {
		var g = 0u;
		for (var j = 0u; j + 1u < dims.groups; j++) {
			if (id >= ends[j]) {
				g = j + 1u;
			}
		}
		grp[s] = g;
	}
}
