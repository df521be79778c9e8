// gemv.wgsl: a linear layer for a few rows (the streams of the recurrent
// step mode), each row with its modality's weights: the routed projection
// of Mixture-of-Mamba in step mode. Row s of group g = grp[s]:
//   y[s*LDY + YOFF + n] (=|+=) sum_k x[s*LDX + XOFF + k] * w[g, n, k] (+ bias[g, n])
// for n < N, k < K. X and Y may be wider than K and N (row strides LDX and
// LDY): a projection can read or write a column window (x_proj's dt, B and
// C parts share one matrix). Without ROUTED every row uses weight set 0 and
// grp is not read (the dense path).
//
// A workgroup owns a tile of TR outputs of one group g: TR rows of TK
// threads. It walks the streams in order and takes those of its group in
// blocks of SB (grp is read-only, so every thread finds the same blocks and
// the walk needs no barrier); for each block every thread keeps SB partial
// dot products over its lane's k = lane, lane+TK, ... (consecutive lanes
// read consecutive weights), and the TK partials of each output are summed
// in lane order. With TK = 1 (chosen on CPU devices, where a lane is a SIMD
// slot and barriers are costly) a thread sums a whole row and stores it
// directly; on GPUs TK = 32 spreads a row over a warp's worth of threads,
// so that even one stream keeps the memory system busy. A group without
// streams reads grp and nothing else: its weights are never loaded, so a
// step costs the FLOPs and weight traffic of the groups present.

override ROUTED: bool;
override ACCUM: bool;       // y += instead of y =
override HAS_BIAS: bool;
override TK: u32 = 32u;     // lanes per output row
override TR: u32 = 8u;      // output rows per workgroup
override WG: u32 = TK * TR;

// SB is the streams per pass (registers per thread).
const SB: u32 = 8u;

// Dims: the streams S, N, K, the weight sets G, the row strides and column
// offsets of x and y, and the number of output tiles ceil(N/TR).
struct Dims {
	streams: u32,
	n: u32,
	k: u32,
	groups: u32,
	ldx: u32,
	xoff: u32,
	ldy: u32,
	yoff: u32,
	ntile: u32,
	pad0: u32,
	pad1: u32,
	pad2: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;          // (S, LDX)
@group(0) @binding(1) var<storage, read> w: array<f32>;          // (G, N, K)
@group(0) @binding(2) var<storage, read> bias: array<f32>;       // (G, N), or (1) without a bias
@group(0) @binding(3) var<storage, read> grp: array<u32>;        // (S) weight set of each row, or (1) unrouted
@group(0) @binding(4) var<storage, read_write> y: array<f32>;    // (S, LDY)
@group(0) @binding(5) var<uniform> dims: Dims;

var<workgroup> red: array<f32, WG * SB>;

// put stores output n of listed stream s (its bias added).
fn put(g: u32, n: u32, s: u32, v: f32) {
	var sum = v;
	if (HAS_BIAS) {
		sum += bias[g * dims.n + n];
	}
	let o = s * dims.ldy + dims.yoff + n;
	if (ACCUM) {
		y[o] += sum;
	} else {
		y[o] = sum;
	}
}

@compute @workgroup_size(WG)
fn gemv(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
	@builtin(local_invocation_index) tid: u32) {
	let S = dims.streams;
	let N = dims.n;
	let K = dims.k;
	let NT = dims.ntile;
	let LDX = dims.ldx;
	let XOFF = dims.xoff;
	var G = 1u;
	if (ROUTED) {
		G = dims.groups;
	}
	let wid = wg.x + wg.y * nwg.x;
	if (wid >= NT * G) {
		return;
	}
	let tile = wid % NT;
	let g = wid / NT;
	let r = tid / TK;
	let lane = tid % TK;
	let n = tile * TR + r;
	let wrow = (g * N + min(n, N - 1u)) * K;
	var next = 0u; // the walk over the streams
	loop {
		// The next block: up to SB streams of group g, in order.
		var sid: array<u32, SB>;
		var nb = 0u;
		for (; next < S && nb < SB; next++) {
			if (!ROUTED || grp[next] == g) {
				sid[nb] = next;
				nb++;
			}
		}
		if (nb == 0u) {
			break;
		}
		// The rows of the block's streams; past the block's end, its last
		// stream again (computed, never stored).
		var xr: array<u32, SB>;
		for (var j = 0u; j < SB; j++) {
			xr[j] = sid[min(j, nb - 1u)] * LDX + XOFF;
		}
		// Two vec4 accumulators: streams 0-3 and 4-7 of the block.
		var a = vec4<f32>(0.0);
		var b = vec4<f32>(0.0);
		for (var k = lane; k < K; k += TK) {
			let wv = w[wrow + k];
			a += wv * vec4<f32>(x[xr[0] + k], x[xr[1] + k], x[xr[2] + k], x[xr[3] + k]);
			b += wv * vec4<f32>(x[xr[4] + k], x[xr[5] + k], x[xr[6] + k], x[xr[7] + k]);
		}
		let acc = array<f32, SB>(a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w);
		if (TK == 1u) {
			// One thread per output: no reduction, no barrier.
			if (n < N) {
				for (var j = 0u; j < SB; j++) {
					if (j < nb) {
						put(g, n, sid[j], acc[j]);
					}
				}
			}
			continue;
		}
		for (var j = 0u; j < SB; j++) {
			red[(r * SB + j) * TK + lane] = acc[j];
		}
		workgroupBarrier();
		if (tid < TR * SB) {
			let ro = tid / SB;
			let j = tid % SB;
			let no = tile * TR + ro;
			if (j < nb && no < N) {
				var sum = 0.0;
				for (var l = 0u; l < TK; l++) {
					sum += red[(ro * SB + j) * TK + l];
				}
				put(g, no, sid[j], sum);
			}
		}
		workgroupBarrier();
	}
}
