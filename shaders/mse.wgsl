// mse.wgsl: per-row mean squared error over P (the diffusion noise-prediction
// loss) with its gradient, and deterministic per-modality sums.
//
// mse: one workgroup of WG per row writes dpred = weight[m] * 2 (pred -
// target) / P and the row's loss Σ (pred - target)² / P (a fixed-order
// workgroup sum). mse_sums: one workgroup adds the row losses and counts the
// rows of each group whose weight is nonzero (a group of weight 0, text rows
// in Transfusion, contributes nothing).
//
// info layout (u32): [0, T) modality of each row (< G), [T, T+G) the weight
// of each group (f32 bits).

override P: u32;         // values per row
override T: u32;         // rows
override G: u32;         // groups (modalities)
override WG: u32 = 64u;  // threads per row, a power of two
override WGS: u32 = 256u; // mse_sums threads, a power of two

// mse
@group(0) @binding(0) var<storage, read> pred: array<f32>;          // (T, P)
@group(0) @binding(1) var<storage, read> tgt: array<f32>;           // (T, P)
@group(0) @binding(2) var<storage, read_write> dpred: array<f32>;   // (T, P)
@group(0) @binding(3) var<storage, read> info: array<u32>;          // (T + G)
@group(0) @binding(4) var<storage, read_write> rowloss: array<f32>; // (T)
// mse_sums
@group(0) @binding(0) var<storage, read> sinfo: array<u32>;         // (T + G)
@group(0) @binding(1) var<storage, read> sloss: array<f32>;         // (T)
@group(0) @binding(2) var<storage, read_write> sums: array<f32>;    // (G)
@group(0) @binding(3) var<storage, read_write> counts: array<f32>;  // (G)

var<workgroup> red: array<f32, WG>;

@compute @workgroup_size(WG)
fn mse(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
	@builtin(local_invocation_index) tid: u32) {
	let row = wid.x + wid.y * nwg.x;
	if (row >= T) {
		return;
	}
	let base = row * P;
	let sc = 2.0 * bitcast<f32>(info[T + info[row]]) / f32(P);
	var s = 0.0;
	for (var i = tid; i < P; i += WG) {
		let d = pred[base + i] - tgt[base + i];
		s += d * d;
		dpred[base + i] = sc * d;
	}
	red[tid] = s;
	workgroupBarrier();
	for (var k = WG / 2u; k > 0u; k >>= 1u) {
		if (tid < k) {
			red[tid] += red[tid + k];
		}
		workgroupBarrier();
	}
	if (tid == 0u) {
		rowloss[row] = red[0] / f32(P);
	}
}

var<workgroup> sum_l: array<f32, WGS>;
var<workgroup> sum_c: array<f32, WGS>;

@compute @workgroup_size(WGS)
fn mse_sums(@builtin(local_invocation_index) tid: u32) {
	for (var g = 0u; g < G; g++) {
		var l = 0.0;
		var c = 0.0;
		if (bitcast<f32>(sinfo[T + g]) != 0.0) {
			for (var t = tid; t < T; t += WGS) {
				if (sinfo[t] == g) {
					l += sloss[t];
					c += 1.0;
				}
			}
		}
		sum_l[tid] = l;
		sum_c[tid] = c;
		workgroupBarrier();
		for (var s = WGS / 2u; s > 0u; s >>= 1u) {
			if (tid < s) {
				sum_l[tid] += sum_l[tid + s];
				sum_c[tid] += sum_c[tid + s];
			}
			workgroupBarrier();
		}
		if (tid == 0u) {
			sums[g] = sum_l[0];
			counts[g] = sum_c[0];
		}
		workgroupBarrier();
	}
}
