// ssm_step.wgsl: the selective state update, one step of scan.wgsl's
// recurrence for many streams at once (the recurrent step mode), fused with
// softplus, the D skip and the SiLU(z) gate. Per stream s, channel e in
// [0, ED), state i in [0, N):
//   dt      = softplus(delta[s, e])       delta = dt_raw + dt bias (dt_proj's
//                                         output, its bias included, as in the scan)
//   A[i]    = -exp(a_log[e, i])
//   h[i]    = exp(dt * A[i]) * h[i] + dt * B[s, i] * u[s, e]     (st, updated in place)
//   y[s, e] = (sum_i C[s, i] * h[i] + D[e] * u[s, e]) * silu(z[s, e])   (no gate without GATE)
// The state st (S, ED, N) has the layout of the scan's final state, so a
// prefill hands over with a copy. B and C are column windows of one matrix
// bc (S, W) (x_proj's output, whose columns also hold dt_low):
//   B[s, i] = bc[s*W + BOFF + i],  C[s, i] = bc[s*W + COFF + i].

override N: u32;        // states
override GATE: bool;    // multiply by silu(z)

// Dims: streams, ED, the row stride W of bc and the column offsets of B
// and C in it.
struct Dims {
	streams: u32,
	ed: u32,
	w: u32,
	boff: u32,
	coff: u32,
	pad0: u32,
	pad1: u32,
	pad2: u32,
}

// softplus as in scan.wgsl: max(x, 0) + log1p(exp(-|x|)) with an accurate
// log1p of w in (0, 1].
fn softplus(x: f32) -> f32 {
	if (x > 20.0) {
		return x;
	}
	let w = exp(-abs(x));
	let v = 1.0 + w;
	var l1p = w;
	if (v != 1.0) {
		l1p = log(v) * (w / (v - 1.0));
	}
	return max(x, 0.0) + l1p;
}

fn sigmoid(x: f32) -> f32 {
	return 1.0 / (1.0 + exp(-x));
}

@group(0) @binding(0) var<storage, read> u: array<f32>;          // (S, ED)
@group(0) @binding(1) var<storage, read> delta: array<f32>;      // (S, ED)
@group(0) @binding(2) var<storage, read> z: array<f32>;          // (S, ED), or (1) without a gate
@group(0) @binding(3) var<storage, read> a_log: array<f32>;      // (ED, N)
@group(0) @binding(4) var<storage, read> bc: array<f32>;         // (S, W): B at column BOFF, C at COFF
@group(0) @binding(5) var<storage, read> dskip: array<f32>;      // (ED)
@group(0) @binding(6) var<storage, read_write> y: array<f32>;    // (S, ED)
@group(0) @binding(7) var<storage, read_write> st: array<f32>;   // (S, ED, N), updated in place
@group(0) @binding(8) var<uniform> dims: Dims;

// ssm_step: one thread per (stream, channel), 256 per workgroup, split over
// y when above the x limit. Consecutive threads take consecutive channels,
// so B and C are shared loads and the states of a workgroup are one
// contiguous block.
@compute @workgroup_size(256)
fn ssm_step(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
	let ED = dims.ed;
	let i = gid.x + gid.y * nwg.x * 256u;
	if (i >= dims.streams * ED) {
		return;
	}
	let s = i / ED;
	let e = i % ED;
	let uv = u[i];
	let dt = softplus(delta[i]);
	let bo = s * dims.w + dims.boff;
	let co = s * dims.w + dims.coff;
	let so = i * N;
	var acc = 0.0;
	for (var k = 0u; k < N; k++) {
		let a = exp(dt * -exp(a_log[e * N + k]));
		let h = a * st[so + k] + (dt * uv) * bc[bo + k];
		st[so + k] = h;
		acc += bc[co + k] * h;
	}
	var out = acc + dskip[e] * uv;
	if (GATE) {
		let zv = z[i];
		out *= zv * sigmoid(zv);
	}
	y[i] = out;
}
