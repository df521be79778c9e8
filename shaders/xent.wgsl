// xent.wgsl: softmax cross-entropy over rows of V logits with the gradient
// fused in (as in llm.c), and deterministic per-modality loss sums.
//
// xent / xent4: one workgroup of WG per row of a span of TS rows starting at
// row ROW0 (logits larger than one storage binding are bound in row spans;
// src and dst hold the span, info and rowloss all rows). Pass 1 reads the row once with
// an online max and sum of exponentials per thread, then a fixed-order
// workgroup reduction gives lse = max + log(sum). Pass 2 reads the row again
// and writes dlogits = weight[m] * (softmax - onehot(target)); the row's
// loss lse - logit[target] goes to rowloss. A row whose target is IGNORE
// gets a zero gradient and loss 0. With INPLACE the logits are read from
// dst, which the gradient then overwrites (src is a placeholder binding);
// every read of a row happens before the barrier after which it is written.
// xent_sums: one workgroup of WGS adds the row losses and counts of the valid rows
// of each group, in row order per thread and a fixed tree across threads.
//
// info layout (u32): [0, T) targets, [T, 2T) modality of each row (< G),
// [2T, 2T+G) the gradient weight of each group (f32 bits).

override V: u32;          // vocabulary (row length)
override T: u32;          // rows
override TS: u32 = 0u;    // rows of this span (xent, xent4)
override ROW0: u32 = 0u;  // first row of this span
override WGS: u32 = 256u; // xent_sums threads, a power of two
override G: u32;          // groups (modalities)
override WG: u32 = 256u;  // threads per row, a power of two
override INPLACE: bool = false;

const IGNORE: u32 = 0xFFFFFFFFu;
const LOWEST: f32 = -3.0e38; // below any logit, and exp(LOWEST - x) = 0 without NaN

// xent
@group(0) @binding(0) var<storage, read> src: array<f32>;          // (TS, V) logits, or a placeholder if INPLACE
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;    // (TS, V) dlogits (the logits on entry if INPLACE)
@group(0) @binding(2) var<storage, read> info: array<u32>;         // (2T + G)
@group(0) @binding(3) var<storage, read_write> rowloss: array<f32>; // (T)
// xent4: bindings 2 and 3 as above
@group(0) @binding(0) var<storage, read> src4: array<vec4<f32>>;       // (TS, V/4)
@group(0) @binding(1) var<storage, read_write> dst4: array<vec4<f32>>; // (TS, V/4)
// xent_sums
@group(0) @binding(0) var<storage, read> sinfo: array<u32>;          // (2T + G)
@group(0) @binding(1) var<storage, read> sloss: array<f32>;          // (T)
@group(0) @binding(2) var<storage, read_write> sums: array<f32>;     // (G) unweighted loss sums
@group(0) @binding(3) var<storage, read_write> counts: array<f32>;   // (G) valid rows

var<workgroup> red_m: array<f32, WG>;
var<workgroup> red_s: array<f32, WG>;

fn ld(i: u32) -> f32 {
	if (INPLACE) {
		return dst[i];
	}
	return src[i];
}

fn ld4(i: u32) -> vec4<f32> {
	if (INPLACE) {
		return dst4[i];
	}
	return src4[i];
}

// lse_reduce combines the threads' (max, sum of exp) pairs in a fixed tree
// and returns max + log(sum).
fn lse_reduce(tid: u32, mx: f32, se: f32) -> f32 {
	red_m[tid] = mx;
	red_s[tid] = se;
	workgroupBarrier();
	for (var s = WG / 2u; s > 0u; s >>= 1u) {
		if (tid < s) {
			let m1 = red_m[tid];
			let m2 = red_m[tid + s];
			let m = max(m1, m2);
			red_s[tid] = red_s[tid] * exp(m1 - m) + red_s[tid + s] * exp(m2 - m);
			red_m[tid] = m;
		}
		workgroupBarrier();
	}
	return red_m[0] + log(red_s[0]);
}

@compute @workgroup_size(WG)
fn xent(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
	@builtin(local_invocation_index) tid: u32) {
	let local = wid.x + wid.y * nwg.x;
	if (local >= TS) {
		return;
	}
	let row = ROW0 + local;
	let base = local * V;
	let tgt = info[row];
	let valid = tgt != IGNORE;
	var tl = 0.0;
	if (tid == 0u && valid) {
		tl = ld(base + tgt);
	}
	var mx = LOWEST;
	var se = 0.0;
	for (var i = tid; i < V; i += WG) {
		let v = ld(base + i);
		if (v > mx) {
			se = se * exp(mx - v) + 1.0;
			mx = v;
		} else {
			se += exp(v - mx);
		}
	}
	let lse = lse_reduce(tid, mx, se);
	var wgt = 0.0;
	if (valid) {
		wgt = bitcast<f32>(info[2u * T + info[T + row]]);
	}
	for (var i = tid; i < V; i += WG) {
		var g = 0.0;
		if (valid) {
			g = exp(ld(base + i) - lse);
			if (i == tgt) {
				g -= 1.0;
			}
			g *= wgt;
		}
		dst[base + i] = g;
	}
	if (tid == 0u) {
		rowloss[row] = select(0.0, lse - tl, valid);
	}
}

@compute @workgroup_size(WG)
fn xent4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
	@builtin(local_invocation_index) tid: u32) {
	let local = wid.x + wid.y * nwg.x;
	if (local >= TS) {
		return;
	}
	let row = ROW0 + local;
	let v4 = V / 4u;
	let base = local * v4;
	let tgt = info[row];
	let valid = tgt != IGNORE;
	var tl = 0.0;
	if (tid == 0u && valid) {
		tl = ld4(base + tgt / 4u)[tgt % 4u];
	}
	var mx = LOWEST;
	var se = 0.0;
	for (var i = tid; i < v4; i += WG) {
		let v = ld4(base + i);
		let m4 = max(max(v.x, v.y), max(v.z, v.w));
		if (m4 > mx) {
			se *= exp(mx - m4);
			mx = m4;
		}
		let e = exp(v - vec4<f32>(mx));
		se += (e.x + e.y) + (e.z + e.w);
	}
	let lse = lse_reduce(tid, mx, se);
	var wgt = 0.0;
	if (valid) {
		wgt = bitcast<f32>(info[2u * T + info[T + row]]);
	}
	let tv = vec4<u32>(tgt);
	for (var i = tid; i < v4; i += WG) {
		var g = vec4<f32>(0.0);
		if (valid) {
			let idx = vec4<u32>(4u * i) + vec4<u32>(0u, 1u, 2u, 3u);
			g = exp(ld4(base + i) - vec4<f32>(lse));
			g -= select(vec4<f32>(0.0), vec4<f32>(1.0), idx == tv);
			g *= wgt;
		}
		dst4[base + i] = g;
	}
	if (tid == 0u) {
		rowloss[row] = select(0.0, lse - tl, valid);
	}
}

var<workgroup> sum_l: array<f32, WGS>;
var<workgroup> sum_c: array<f32, WGS>;

@compute @workgroup_size(WGS)
fn xent_sums(@builtin(local_invocation_index) tid: u32) {
	for (var g = 0u; g < G; g++) {
		var l = 0.0;
		var c = 0.0;
		for (var t = tid; t < T; t += WGS) {
			if (sinfo[t] != IGNORE && sinfo[T + t] == g) {
				l += sloss[t];
				c += 1.0;
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
