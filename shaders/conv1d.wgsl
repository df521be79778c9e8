// conv1d.wgsl: depthwise causal conv1d over the sequence, fused with SiLU.
//
//   pre[b,l,c] = bias[c] + sum_{j<K} w[c,j] * x[b, l-(K-1)+j, c]   (x = 0 before l = 0)
//   y[b,l,c]   = silu(pre) if SILU, else pre
// Backward, with dpre = dy * silu'(pre) (or dy):
//   dx[b,l,c]  = sum_j w[c,j] * dpre[b, l+(K-1)-j, c]   (terms past the end are 0)
//   dw[c,j]   += sum_{b,l} dpre[b,l,c] * x[b, l-(K-1)+j, c]
//   dbias[c]  += sum_{b,l} dpre[b,l,c]
//
// A thread owns one channel and a tile of LT consecutive steps of one batch
// row and slides a window of K inputs (and, backward, of K values of dpre)
// along it, so each input is read about once. Consecutive threads take
// consecutive channels, so loads and stores are contiguous. The backward
// sums dw and dbias first per thread, then over the RW row tiles of a
// workgroup in workgroup memory into a partial (NRB, C, K+1), and
// conv_reduce adds the partials in a fixed order (deterministic, no float
// atomics). The sizes come in a uniform (Dims); K, SILU and the tiling are
// constants.
//
// The f16 variant (mixed precision, shaders.ComposeVariant "f16") stores x
// and w in half precision and widens each value to float32 as it loads
// it: the arithmetic, the bias, dy and every output stay float32.

override K: u32;               // taps, 1..KMAX
override SILU: bool;
override LT: u32 = 8u;         // steps per thread
override CW: u32 = 32u;        // backward: channels per workgroup
override RW: u32 = 8u;         // backward: row tiles per workgroup (CW*RW threads)
override WGB: u32 = CW * RW;

const KMAX: u32 = 8u;

// The element type of x and w: float32, or float16 in the f16 variant.
//#if f16
//| alias in1 = f16;
//#else
alias in1 = f32;
//#endif

// Dims: batch, length, channels, row tiles per batch row ceil(len/LT),
// backward row blocks ceil(batch*ntile/RW) and channel blocks ceil(ch/CW).
struct Dims {
	batch: u32,
	len: u32,
	ch: u32,
	ntile: u32,
	nrb: u32,
	ncb: u32,
}

fn sigmoid(x: f32) -> f32 {
	return 1.0 / (1.0 + exp(-x));
}

@group(0) @binding(0) var<storage, read> x: array<in1>;         // (B, L, C)
@group(0) @binding(1) var<storage, read> w: array<in1>;         // (C, K)
@group(0) @binding(2) var<storage, read> bias: array<f32>;      // (C)
@group(0) @binding(3) var<storage, read_write> y: array<f32>;   // (B, L, C)
@group(0) @binding(4) var<uniform> dims_f: Dims;

// conv_fwd: one thread per (batch, tile of LT steps, channel), 256 per
// workgroup, split over y when above the x limit.
@compute @workgroup_size(256)
fn conv_fwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
	let L = dims_f.len;
	let C = dims_f.ch;
	let idx = gid.x + gid.y * nwg.x * 256u;
	if (idx >= dims_f.batch * dims_f.ntile * C) {
		return;
	}
	let c = idx % C;
	let r = idx / C;
	let bi = r / dims_f.ntile;
	let l0 = (r % dims_f.ntile) * LT;
	var wv: array<f32, KMAX>;
	var win: array<f32, KMAX>;   // win[j] = x[l-(K-1)+j] for the current step l
	for (var j = 0u; j < K; j++) {
		wv[j] = f32(w[c * K + j]);
	}
	let bv = bias[c];
	for (var j = 0u; j + 1u < K; j++) {
		win[j] = 0.0;
		if (l0 + j >= K - 1u) {
			win[j] = f32(x[(bi * L + l0 + j - (K - 1u)) * C + c]);
		}
	}
	for (var s = 0u; s < LT; s++) {
		let l = l0 + s;
		if (l >= L) {
			break;
		}
		let o = (bi * L + l) * C + c;
		win[K - 1u] = f32(x[o]);
		var pre = bv;
		for (var j = 0u; j < K; j++) {
			pre += wv[j] * win[j];
		}
		if (SILU) {
			pre *= sigmoid(pre);
		}
		y[o] = pre;
		for (var j = 0u; j + 1u < K; j++) {
			win[j] = win[j + 1u];
		}
	}
}

@group(0) @binding(3) var<storage, read> dy: array<f32>;            // (B, L, C)
@group(0) @binding(4) var<storage, read_write> dx: array<f32>;      // (B, L, C)
@group(0) @binding(5) var<storage, read_write> part: array<f32>;    // (NRB, C, K+1): dw then dbias
@group(0) @binding(6) var<uniform> dims_b: Dims;

var<workgroup> red: array<f32, WGB * (KMAX + 1u)>;

// conv_bwd: workgroups of CW channels x RW row tiles, NCB*NRB of them.
@compute @workgroup_size(WGB)
fn conv_bwd(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
	@builtin(local_invocation_index) tid: u32) {
	let L = dims_b.len;
	let C = dims_b.ch;
	let wid = wg.x + wg.y * nwg.x;
	if (wid >= dims_b.ncb * dims_b.nrb) {
		return;
	}
	let cb = wid % dims_b.ncb;
	let rb = wid / dims_b.ncb;
	let cl = tid % CW;
	let c = cb * CW + cl;
	let rt = rb * RW + tid / CW;
	var dwa: array<f32, KMAX>;
	var dba = 0.0;
	for (var j = 0u; j < K; j++) {
		dwa[j] = 0.0;
	}
	if (c < C && rt < dims_b.batch * dims_b.ntile) {
		let bi = rt / dims_b.ntile;
		let l0 = (rt % dims_b.ntile) * LT;
		var wv: array<f32, KMAX>;
		var xw: array<f32, KMAX>;    // xw[j] = x[m-(K-1)+j]
		var dpw: array<f32, KMAX>;   // dpw[j] = dpre[m-(K-1)+j]
		for (var j = 0u; j < K; j++) {
			wv[j] = f32(w[c * K + j]);
		}
		let bv = bias[c];
		for (var j = 0u; j + 1u < K; j++) {
			xw[j] = 0.0;
			dpw[j] = 0.0;
			if (l0 + j >= K - 1u) {
				xw[j] = f32(x[(bi * L + l0 + j - (K - 1u)) * C + c]);
			}
		}
		// Step m = l0+s computes dpre[m]; the tile's rows l0..l0+LT-1 add to
		// dw, dbias; dx[m-(K-1)] needs dpre up to m, so the walk runs K-1
		// steps past the tile (recomputing the next tile's first dpre).
		for (var s = 0u; s < LT + K - 1u; s++) {
			let m = l0 + s;
			var dp = 0.0;
			xw[K - 1u] = 0.0;
			if (m < L) {
				let o = (bi * L + m) * C + c;
				xw[K - 1u] = f32(x[o]);
				var pre = bv;
				for (var j = 0u; j < K; j++) {
					pre += wv[j] * xw[j];
				}
				dp = dy[o];
				if (SILU) {
					let sg = sigmoid(pre);
					dp *= sg * (1.0 + pre * (1.0 - sg));
				}
			}
			dpw[K - 1u] = dp;
			if (s < LT) {
				for (var j = 0u; j < K; j++) {
					dwa[j] += dp * xw[j];
				}
				dba += dp;
			}
			if (s + 1u >= K) {
				let l = m + 1u - K;   // dx[l] = sum_j w[j] * dpre[l+(K-1)-j]
				if (l < L) {
					var acc = 0.0;
					for (var j = 0u; j < K; j++) {
						acc += wv[j] * dpw[K - 1u - j];
					}
					dx[(bi * L + l) * C + c] = acc;
				}
			}
			for (var j = 0u; j + 1u < K; j++) {
				xw[j] = xw[j + 1u];
				dpw[j] = dpw[j + 1u];
			}
		}
	}
	for (var j = 0u; j < K; j++) {
		red[tid * (KMAX + 1u) + j] = dwa[j];
	}
	red[tid * (KMAX + 1u) + K] = dba;
	workgroupBarrier();
	// Sum the RW row tiles: one thread per (channel, tap or bias).
	for (var q = tid; q < CW * (K + 1u); q += WGB) {
		let ql = q % CW;
		let j = q / CW;
		let cc = cb * CW + ql;
		if (cc < C) {
			var sum = 0.0;
			for (var rl = 0u; rl < RW; rl++) {
				sum += red[(rl * CW + ql) * (KMAX + 1u) + j];
			}
			part[(rb * C + cc) * (K + 1u) + j] = sum;
		}
	}
}

@group(0) @binding(0) var<storage, read> partr: array<f32>;         // (NRB, C, K+1)
@group(0) @binding(1) var<storage, read_write> dw: array<f32>;      // (C, K), +=
@group(0) @binding(2) var<storage, read_write> dbias: array<f32>;   // (C), +=
@group(0) @binding(3) var<uniform> dims_r: Dims;

// conv_reduce: dw, dbias += the sum of the NRB partials, one thread per
// (channel, tap or bias), 256 per workgroup.
@compute @workgroup_size(256)
fn conv_reduce(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
	let C = dims_r.ch;
	let idx = gid.x + gid.y * nwg.x * 256u;
	if (idx >= C * (K + 1u)) {
		return;
	}
	var sum = 0.0;
	for (var rb = 0u; rb < dims_r.nrb; rb++) {
		sum += partr[rb * C * (K + 1u) + idx];
	}
	let c = idx / (K + 1u);
	let j = idx % (K + 1u);
	if (j < K) {
		dw[c * K + j] += sum;
	} else {
		dbias[c] += sum;
	}
}
