// conv_step.wgsl: the depthwise causal conv1d of conv1d.wgsl one step at a
// time, for many streams at once (the recurrent step mode), fused with
// SiLU; and the conv state a parallel forward hands over.
//
// The conv state of stream s holds, per channel c, the last K-1 inputs,
// oldest first (zeros before the stream's first token):
//   st[s, c, j] = x[t-(K-1)+j, c]                      j < K-1
// One step with the current input x[s, c] (= x[t, c]):
//   pre[s, c] = bias[c] + sum_{j<K-1} w[c, j] * st[s, c, j] + w[c, K-1] * x[s, c]
//   y[s, c]   = silu(pre) if SILU, else pre
//   st[s, c, j] = st[s, c, j+1] (j < K-2),  st[s, c, K-2] = x[s, c]
// which is conv1d.wgsl's pre at position t (the window x[t-(K-1) .. t]),
// summed in the same order.
//
// conv_tail: the state after a sequence of length L (B, L, C) that a
// parallel forward ran:
//   st[b, c, j] = x[b, L-(K-1)+j, c]                   (0 where L-(K-1)+j < 0)
//
// With K = 1 there is no state: st is a 1-element placeholder, never read
// or written.

override K: u32;        // taps, 1..8
override SILU: bool;

// Dims: streams (or the batch of conv_tail), channels, and conv_tail's
// sequence length.
struct Dims {
	streams: u32,
	ch: u32,
	len: u32,
	pad: u32,
}

fn sigmoid(x: f32) -> f32 {
	return 1.0 / (1.0 + exp(-x));
}

@group(0) @binding(0) var<storage, read> x: array<f32>;          // (S, C)
@group(0) @binding(1) var<storage, read> w: array<f32>;          // (C, K)
@group(0) @binding(2) var<storage, read> bias: array<f32>;       // (C)
@group(0) @binding(3) var<storage, read_write> st: array<f32>;   // (S, C, K-1), or (1) when K = 1
@group(0) @binding(4) var<storage, read_write> y: array<f32>;    // (S, C)
@group(0) @binding(5) var<uniform> dims: Dims;

// conv_step: one thread per (stream, channel), 256 per workgroup, split
// over y when above the x limit.
@compute @workgroup_size(256)
fn conv_step(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
	let C = dims.ch;
	let i = gid.x + gid.y * nwg.x * 256u;
	if (i >= dims.streams * C) {
		return;
	}
	let c = i % C;
	let xv = x[i];
	let o = i * (K - 1u);
	var pre = bias[c];
	for (var j = 0u; j + 1u < K; j++) {
		pre += w[c * K + j] * st[o + j];
	}
	pre += w[c * K + K - 1u] * xv;
	for (var j = 0u; j + 2u < K; j++) {
		st[o + j] = st[o + j + 1u];
	}
	if (K > 1u) {
		st[o + K - 2u] = xv;
	}
	if (SILU) {
		pre *= sigmoid(pre);
	}
	y[i] = pre;
}

@group(0) @binding(0) var<storage, read> xs: array<f32>;          // (B, L, C)
@group(0) @binding(1) var<storage, read_write> tail: array<f32>;  // (B, C, K-1)
@group(0) @binding(2) var<uniform> dims_t: Dims;

// conv_tail: one thread per (batch row, channel, tap), 256 per workgroup.
@compute @workgroup_size(256)
fn conv_tail(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
	let C = dims_t.ch;
	let L = dims_t.len;
	let km = max(K - 1u, 1u);
	let i = gid.x + gid.y * nwg.x * 256u;
	if (K < 2u || i >= dims_t.streams * C * km) {
		return;
	}
	let j = i % km;
	let c = (i / km) % C;
	let b = i / (km * C);
	var v = 0.0;
	if (L + j >= K - 1u) {
		v = xs[(b * L + L + j - (K - 1u)) * C + c];
	}
	tail[i] = v;
}
