// rmsnorm.wgsl: y = x / sqrt(mean(x²) + EPS) * w over each row of D, and
// its backward. With g = dy*w and r = rstd[row]:
//   dx_i  = r g_i - r³/D x_i Σ_j g_j x_j     (written, or added when ACC_DX)
//   dw_i += Σ_rows dy_i x_i r
// Thread tid of a workgroup of WG owns columns tid + k*WG, k < NC, and
// keeps them in registers, so each row is read once. The weight gradient
// is reduced over rows without atomics and in a fixed order: rmsnorm_bwd's
// workgroup c (a chunk of ROWS rows) writes its partial sums to dwp[c], and
// rmsnorm_dw adds the NCHUNK partials of each column to dw.

override D: u32;          // row length
override NROWS: u32;      // rows (all leading dimensions)
override WG: u32 = 256u;  // threads per row (a power of two, D <= NC*WG)
override NC: u32 = 1u;    // columns per thread, ceil(D/WG) <= MAXC
override EPS: f32 = 1e-5;
override ROWS: u32 = 1u;  // rows per workgroup in rmsnorm_bwd
override NCHUNK: u32 = 1u; // ceil(NROWS/ROWS)
override ACC_DX: bool = false;

const MAXC: u32 = 8u;
var<workgroup> red: array<f32, WG>;

// rmsnorm_fwd
@group(0) @binding(0) var<storage, read> x: array<f32>;          // (NROWS, D)
@group(0) @binding(1) var<storage, read> w: array<f32>;          // (D)
@group(0) @binding(2) var<storage, read_write> y: array<f32>;    // (NROWS, D)
@group(0) @binding(3) var<storage, read_write> rstd: array<f32>; // (NROWS)
// rmsnorm_bwd: x, w at 0, 1 as above
@group(0) @binding(2) var<storage, read> dy: array<f32>;          // (NROWS, D)
@group(0) @binding(3) var<storage, read> rstd_in: array<f32>;     // (NROWS)
@group(0) @binding(4) var<storage, read_write> dx: array<f32>;    // (NROWS, D)
@group(0) @binding(5) var<storage, read_write> dwp: array<f32>;   // (NCHUNK, D) partial dw
// rmsnorm_dw
@group(0) @binding(0) var<storage, read> dwp_in: array<f32>;      // (NCHUNK, D)
@group(0) @binding(1) var<storage, read_write> dw: array<f32>;    // (D) accumulated

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

@compute @workgroup_size(WG)
fn rmsnorm_fwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
	@builtin(local_invocation_index) tid: u32) {
	let row = wid.x + wid.y * nwg.x;
	if (row >= NROWS) {
		return;
	}
	let base = row * D;
	var xs: array<f32, MAXC>;
	var ss = 0.0;
	for (var k = 0u; k < NC; k++) {
		let i = tid + k * WG;
		var v = 0.0;
		if (i < D) {
			v = x[base + i];
		}
		xs[k] = v;
		ss += v * v;
	}
	let r = 1.0 / sqrt(wg_sum(tid, ss) / f32(D) + EPS);
	for (var k = 0u; k < NC; k++) {
		let i = tid + k * WG;
		if (i < D) {
			y[base + i] = xs[k] * r * w[i];
		}
	}
	if (tid == 0u) {
		rstd[row] = r;
	}
}

@compute @workgroup_size(WG)
fn rmsnorm_bwd(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
	@builtin(local_invocation_index) tid: u32) {
	let c = wid.x + wid.y * nwg.x;
	if (c >= NCHUNK) {
		return;
	}
	var wv: array<f32, MAXC>;
	var acc: array<f32, MAXC>;
	for (var k = 0u; k < NC; k++) {
		let i = tid + k * WG;
		var v = 0.0;
		if (i < D) {
			v = w[i];
		}
		wv[k] = v;
		acc[k] = 0.0;
	}
	let last = min(NROWS, (c + 1u) * ROWS);
	for (var row = c * ROWS; row < last; row++) {
		let base = row * D;
		let r = rstd_in[row];
		var xs: array<f32, MAXC>;
		var gs: array<f32, MAXC>;
		var dot = 0.0;
		for (var k = 0u; k < NC; k++) {
			let i = tid + k * WG;
			var xv = 0.0;
			var dv = 0.0;
			if (i < D) {
				xv = x[base + i];
				dv = dy[base + i];
			}
			let g = dv * wv[k];
			xs[k] = xv;
			gs[k] = g;
			dot += g * xv;
			acc[k] += dv * xv * r;
		}
		let coef = r * r * r * wg_sum(tid, dot) / f32(D);
		for (var k = 0u; k < NC; k++) {
			let i = tid + k * WG;
			if (i < D) {
				var v = r * gs[k] - coef * xs[k];
				if (ACC_DX) {
					v += dx[base + i];
				}
				dx[base + i] = v;
			}
		}
	}
	for (var k = 0u; k < NC; k++) {
		let i = tid + k * WG;
		if (i < D) {
			dwp[c * D + i] = acc[k];
		}
	}
}

// rmsnorm_dw: a workgroup of 256 covers 32 columns with 8 lanes each; lane l
// sums chunks l, l+8, ... and the lanes are added in a fixed order.
var<workgroup> lanes: array<f32, 256>;

@compute @workgroup_size(256)
fn rmsnorm_dw(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
	let col = wid.x * 32u + (tid & 31u);
	let lane = tid >> 5u;
	var s = 0.0;
	if (col < D) {
		for (var c = lane; c < NCHUNK; c += 8u) {
			s += dwp_in[c * D + col];
		}
	}
	lanes[tid] = s;
	workgroupBarrier();
	if (lane == 0u && col < D) {
		var t = 0.0;
		for (var l = 0u; l < 8u; l++) {
			t += lanes[l * 32u + tid];
		}
		dw[col] += t;
	}
}
