// scan.wgsl: Mamba's selective scan (S6) with fused softplus, D skip and
// SiLU(z) gate, forward and backward, as a chunked associative scan.
//
// Symbols, per batch b, channel e in [0, ED), state i in [0, N), step t:
//   dt[t]   = softplus(delta[t])                      (delta holds dt_proj's bias)
//   A[i]    = -exp(a_log[e, i])
//   a[t]    = exp(dt[t] * A[i])                       the decay, in (0, 1]
//   x[t]    = dt[t] * B[t, i] * u[t]                  the input
//   h[t]    = a[t] * h[t-1] + x[t]                    (h[-1] = 0)
//   pre[t]  = sum_i C[t, i] * h[t] + D * u[t]
//   y[t]    = pre[t] * silu(z[t])                     (y = pre without a gate)
//
// The scan. Step t is the affine map h -> a[t]*h + x[t], written (a[t], x[t]).
// Maps compose associatively, p first then q:
//   (a1, b1) o (a2, b2) = (a1*a2, a2*b1 + b2).
// A workgroup owns G channels of one batch row (a "row" of P threads per
// channel) and walks the sequence in chunks of CHUNK = P*ITEMS steps; thread
// p of a row owns steps [p*ITEMS, (p+1)*ITEMS) of the chunk. For each state i
// a thread composes its ITEMS maps into one, the row does an exclusive scan
// of the P composed maps (Hillis-Steele: log2(P) rounds, in workgroup memory,
// or with subgroup shuffles where the device has subgroups), applies the
// prefix to the state carried in from the previous chunk, and replays its
// items to get every h[t] in registers. The last thread's final h is the
// carry into the next chunk (workgroup memory, double-buffered by chunk
// parity). Only the state at the start of each chunk is stored, in hs
// (B, ED, NCH, N), and the state after the last step, in hf (B, ED, N) (the
// recurrent step mode continues from it); h is never stored per step.
//
// The backward. With g[t] = dy[t] * silu(z[t]) the gradient reaching pre[t],
// the total adjoint of h[t] is
//   dh[t] = g[t] * C[t] + a[t+1] * dh[t+1]            (dh[L] = 0)
// because h[t] feeds y[t] directly and h[t+1] through a[t+1]. Write
//   s[t] = a[t] * dh[t],  so  dh[t] = g[t]*C[t] + s[t+1]  and
//   s[t] = a[t] * s[t+1] + a[t] * g[t] * C[t],
// which is again an affine recurrence, run from the end: the map
// s -> a[t]*s + a[t]*g[t]*C[t], composed with the same operator but in
// reverse order (the last step first). So the backward walks the chunks in
// reverse; in each it (1) recomputes the chunk's states h from the stored
// start state with the forward scan, (2) runs the reverse exclusive scan of
// the composed adjoint maps across the row, starting from the adjoint s
// carried in from the chunk after (double-buffered like the forward carry),
// (3) replays its items backwards: dh = g*C + s, then s = a*dh. Then, from
// h[t] = a[t]*h[t-1] + dt[t]*B[t]*u[t] and a[t] = exp(dt[t]*A):
//   d dt[t]  += dh[t] * (B[t]*u[t] + A * a[t] * h[t-1])      (summed over i)
//   du[t]    += dh[t] * dt[t] * B[t]                          (summed over i)
//   dA[i]    += dh[t] * a[t] * dt[t] * h[t-1]                 (summed over t)
//   dB[t, i] += dh[t] * dt[t] * u[t]                          (summed over e)
//   dC[t, i] += g[t] * h[t]                                   (summed over e)
// and, per (t, e), outside the state loop:
//   du[t]    += g[t] * D;   dD += g[t] * u[t]
//   dz[t]     = dy[t] * pre[t] * silu'(z[t]),  silu'(z) = s(z)*(1 + z*(1 - s(z)))
//   ddelta[t] = d dt[t] * sigmoid(delta[t])     (softplus' = sigmoid)
//   da_log[i] = dA[i] * A[i]                    (dA/da_log = -exp(a_log) = A)
// dA and dD are summed over the row's threads in workgroup memory and
// written per batch row; dB and dC are shared by all channels: each
// workgroup sums its G channels in workgroup memory and writes a partial
// (B, NBLK, N, L). scan_bwd_reduce then sums the partials in a fixed order
// (no float atomics, so the result is deterministic), writes dB, dC and
// adds (+=) d a_log and dD.
//
// Masking: steps past L and channels past ED load zeros (dt = 0, u = 0, so
// the map is the identity (1, 0) and every gradient contribution is zero)
// and store nothing; every thread reaches every barrier.
//
// States in quads: a thread handles four states at once as vec4 lanes (N is
// padded to a multiple of four with B = C = 0, whose lanes stay zero), so
// that four independent recurrences interleave in each thread and B, C load
// as four neighbours.
//
// Loads: a chunk's B and C, which all G channels of a workgroup share, are
// loaded once into workgroup memory (bq, cq); with PREFETCH each chunk's
// loads are issued one chunk ahead into registers (fetch_fwd, fetch_bwd),
// so that their latency passes while the chunk before is computed.
//
// State threads: with QT > 1, QT threads share each (channel, time slot),
// thread qt taking the state quads qt, qt+QT, ... (QT divides NQ), so that a
// workgroup holds QT times as many threads, each with a QT times shorter
// sequential walk. Every such thread computes the per-step scalars (dt, the
// gate) itself; the sums over states (y, and in the backward pre, d dt, du)
// meet in workgroup memory, where the qt = 0 thread adds the others' parts
// in qt order and writes the step's outputs.
//
// Variants: this file as it is uses workgroup memory for the row scans. With
// subgroups, shaders.ScanSource uncomments the `//|` lines of each
// `//#if subgroups` block, drops its `//#else` part and puts
// `enable subgroups;` in place of the first line. The subgroup path assumes
// subgroup k holds the invocations [k*size, (k+1)*size) of the workgroup, as
// Vulkan devices lay out one-dimensional workgroups, and power-of-two sizes.

// Sizes that vary between calls (batch, length) or between layers come in a
// small uniform (Dims, one per op, written once); the constants shape the
// workgroup (its memory and the unrolled loops).
override N: u32;
override P: u32 = 32u;        // threads per row (along time), a power of two
override G: u32 = 4u;         // rows (channels) per workgroup
override ITEMS: u32 = 4u;     // steps per thread per chunk, at most MAXI
override QT: u32 = 1u;        // state threads per (channel, time slot), dividing NQ
override GATE: bool = true;   // multiply by silu(z)
override PREFETCH: bool = true; // load each chunk's inputs one chunk ahead (see fetch_fwd)
override WG: u32 = P * G * QT;
override CHUNK: u32 = P * ITEMS;
override NQ: u32 = (N + 3u) / 4u;   // state quads
override SQ: u32 = NQ + 1u - NQ % 2u; // odd row stride of bq, cq in quads

// Dims: the batch, the length, ED, the number of chunks ceil(L/CHUNK) and of
// the backward's channel blocks (for the record: each kernel computes
// ceil(ED/G) for its own G, as the forward may use another G than the
// backward), the backward's workspace offsets in floats (see scan_bwd) and
// NQ.
struct Dims {
	batch: u32,
	len: u32,
	ed: u32,
	nch: u32,
	nblk: u32,
	off_db: u32,
	off_dc: u32,
	off_da: u32,
	off_dd: u32,
	off_al: u32,
	off_d: u32,
	off_b: u32,
	off_c: u32,
	nq: u32,    // NQ again, as the state-quad loops' bound: known only at run
	            // time, the loop is not unrolled (lavapipe compiled N = 64
	            // several times slower unrolled)
	off_hf: u32, // workspace offset of the final states hf (B, ED, N)
}

// The length of the per-thread arrays; shaders.ScanSource sets it to ITEMS so
// that the arrays are exactly as long as the unrolled loops over them.
const MAXI: u32 = 16u;
// The (step, state quad) entries of B and C each thread stages per chunk,
// ceil(CHUNK*NQ/WG); shaders.ScanSource sets it.
const MAXS: u32 = 4u;

// Map4 is four affine maps h -> a*h + b, one per state lane.
struct Map4 {
	a: vec4<f32>,
	b: vec4<f32>,
}

// Row-scan buffers: one map per thread, double-buffered.
var<workgroup> sc0: array<Map4, WG>;
var<workgroup> sc1: array<Map4, WG>;
// The carried state (forward) or adjoint (backward), (2, G, NQ) by chunk parity.
var<workgroup> carry: array<vec4<f32>, 2u * G * NQ>;
// A = -exp(a_log) of the workgroup's channels, (G, NQ); 0 in padded lanes.
var<workgroup> a_sh: array<vec4<f32>, G * NQ>;
// B and C of the chunk's steps, shared by the workgroup's channels, loaded
// once per chunk with neighbouring threads on neighbouring floats. Step
// p*ITEMS + k of the chunk is row k*P + p, of SQ quads: the threads of a row
// read neighbouring rows at the same time, and an odd row stride puts up to
// eight of them in different banks.
var<workgroup> bq: array<vec4<f32>, CHUNK * SQ>;
var<workgroup> cq: array<vec4<f32>, CHUNK * SQ>;
// The forward's parts of y from the state threads qt >= 1, (QT-1, G, CHUNK).
var<workgroup> ysum: array<f32, (QT - 1u) * G * CHUNK + 1u>;

fn softplus(x: f32) -> f32 {
	if (x > 20.0) {
		return x;
	}
	// max(x, 0) + log1p(exp(-|x|)), with an accurate log1p of w in (0, 1].
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

// compose applies p first, then q.
fn compose(p: Map4, q: Map4) -> Map4 {
	return Map4(p.a * q.a, q.a * p.b + q.b);
}

const ID4 = Map4(vec4<f32>(1.0), vec4<f32>(0.0));

//#if subgroups
//| // Exclusive scan of v over the P threads of the row that starts at thread
//| // index base; rev scans from the row's last thread to its first. Each
//| // subgroup scans its part of the row with shuffles; when a row spans
//| // several subgroups, their totals are combined through workgroup memory.
//| fn row_scan(base: u32, p: u32, rev: bool, v: Map4, sg_size: u32) -> Map4 {
//| 	let w = min(P, sg_size);          // row threads per subgroup
//| 	let lp = p % w;
//| 	var q = lp;                        // position in scan order within the subgroup part
//| 	if (rev) {
//| 		q = w - 1u - lp;
//| 	}
//| 	var inc = v;
//| 	for (var d = 1u; d < w; d = d * 2u) {
//| 		var o: Map4;
//| 		if (rev) {
//| 			o = Map4(subgroupShuffleDown(inc.a, d), subgroupShuffleDown(inc.b, d));
//| 		} else {
//| 			o = Map4(subgroupShuffleUp(inc.a, d), subgroupShuffleUp(inc.b, d));
//| 		}
//| 		if (q >= d) {
//| 			inc = compose(o, inc);
//| 		}
//| 	}
//| 	var ex: Map4;
//| 	if (rev) {
//| 		ex = Map4(subgroupShuffleDown(inc.a, 1u), subgroupShuffleDown(inc.b, 1u));
//| 	} else {
//| 		ex = Map4(subgroupShuffleUp(inc.a, 1u), subgroupShuffleUp(inc.b, 1u));
//| 	}
//| 	if (q == 0u) {
//| 		ex = ID4;
//| 	}
//| 	if (P > w) {
//| 		// Several subgroups per row: scan their totals.
//| 		let nseg = P / w;
//| 		var seg = p / w;
//| 		if (rev) {
//| 			seg = nseg - 1u - seg;
//| 		}
//| 		if (q == w - 1u) {
//| 			sc0[base + seg] = inc;
//| 		}
//| 		workgroupBarrier();
//| 		var pre = ID4;
//| 		for (var j = 0u; j < seg; j++) {
//| 			pre = compose(pre, sc0[base + j]);
//| 		}
//| 		ex = compose(pre, ex);
//| 		workgroupBarrier();
//| 	}
//| 	return ex;
//| }
//#else
// Exclusive scan of v over the P threads of the row that starts at thread
// index base; rev scans from the row's last thread to its first.
// Hillis-Steele in workgroup memory: log2(P) rounds. (sg_size is unused.)
fn row_scan(base: u32, p: u32, rev: bool, v: Map4, sg_size: u32) -> Map4 {
	var q = p;
	if (rev) {
		q = P - 1u - p;
	}
	var inc = v;
	sc0[base + q] = inc;
	workgroupBarrier();
	var cur = 0u;
	for (var d = 1u; d < P; d = d * 2u) {
		if (q >= d) {
			var o: Map4;
			if (cur == 0u) {
				o = sc0[base + q - d];
			} else {
				o = sc1[base + q - d];
			}
			inc = compose(o, inc);
		}
		if (cur == 0u) {
			sc1[base + q] = inc;
		} else {
			sc0[base + q] = inc;
		}
		cur = 1u - cur;
		workgroupBarrier();
	}
	var ex = ID4;
	if (q > 0u) {
		if (cur == 0u) {
			ex = sc0[base + q - 1u];
		} else {
			ex = sc1[base + q - 1u];
		}
	}
	workgroupBarrier();
	return ex;
}
//#endif

@group(0) @binding(0) var<storage, read> u: array<f32>;          // (B, L, ED)
@group(0) @binding(1) var<storage, read> delta: array<f32>;      // (B, L, ED)
@group(0) @binding(2) var<storage, read> z: array<f32>;          // (B, L, ED), or (1) without a gate
@group(0) @binding(3) var<storage, read> a_log: array<f32>;      // (ED, N)
@group(0) @binding(4) var<storage, read> bm: array<f32>;         // (B, L, N)
@group(0) @binding(5) var<storage, read> cm: array<f32>;         // (B, L, N)
@group(0) @binding(6) var<storage, read> dskip: array<f32>;      // (ED)
@group(0) @binding(7) var<storage, read_write> y: array<f32>;    // (B, L, ED)
@group(0) @binding(8) var<storage, read_write> ws: array<f32>;   // workspace: hs (B, ED, NCH, N) at 0, the state at each chunk's start; hf (B, ED, N) at off_hf, the state after step L-1
@group(0) @binding(9) var<uniform> dims_f: Dims;

// The four states i0..i0+3 of bm or cm from index o (of state i0); lanes
// past N are 0.
fn load_bm(o: u32, i0: u32) -> vec4<f32> {
	if (N % 4u == 0u) {
		return vec4<f32>(bm[o], bm[o + 1u], bm[o + 2u], bm[o + 3u]);
	}
	var v = vec4<f32>(0.0);
	for (var j = 0u; j < 4u; j++) {
		if (i0 + j < N) {
			v[j] = bm[o + j];
		}
	}
	return v;
}

fn load_cm(o: u32, i0: u32) -> vec4<f32> {
	if (N % 4u == 0u) {
		return vec4<f32>(cm[o], cm[o + 1u], cm[o + 2u], cm[o + 3u]);
	}
	var v = vec4<f32>(0.0);
	for (var j = 0u; j < 4u; j++) {
		if (i0 + j < N) {
			v[j] = cm[o + j];
		}
	}
	return v;
}

// Prefetch: each chunk's loads from device memory (the thread's steps of
// u, delta, z and dy, and its share of the chunk's B and C) are issued one
// chunk ahead, into these registers, so that their latency passes while the
// chunk before is computed; the chunk's turn only moves them on. (On the
// H200 through Dawn that took the forward from 0.91 to 0.56 ms and the
// backward from 2.55 to 2.21; through wgpu-native both got slower, 6.37 to
// 6.92 ms together, so there PREFETCH is off and each chunk loads its own
// at its start.)
var<private> pu: array<f32, MAXI>;
var<private> pd: array<f32, MAXI>;
var<private> pz: array<f32, MAXI>;
var<private> py: array<f32, MAXI>;
var<private> pb: array<vec4<f32>, MAXS>;
var<private> pc: array<vec4<f32>, MAXS>;

// fetch_fwd loads chunk ch's u, delta, z (0 past L and for dead rows) and
// this thread's entries of its B and C (0 past L).
fn fetch_fwd(bi: u32, ch: u32, e: u32, live: bool, p: u32, tid: u32, L: u32, ED: u32) {
	let t0 = ch * CHUNK + p * ITEMS;
	for (var k = 0u; k < ITEMS; k++) {
		let t = t0 + k;
		pu[k] = 0.0;
		pd[k] = 0.0;
		pz[k] = 0.0;
		if (live && t < L) {
			let x = (bi * L + t) * ED + e;
			pu[k] = u[x];
			pd[k] = delta[x];
			if (GATE) {
				pz[k] = z[x];
			}
		}
	}
	for (var s = 0u; s < MAXS; s++) {
		let i = tid + s * WG;
		let t = ch * CHUNK + i / NQ;
		let i0 = 4u * (i % NQ);
		var vb = vec4<f32>(0.0);
		var vc = vec4<f32>(0.0);
		if (i < CHUNK * NQ && t < L) {
			vb = load_bm((bi * L + t) * N + i0, i0);
			vc = load_cm((bi * L + t) * N + i0, i0);
		}
		pb[s] = vb;
		pc[s] = vc;
	}
}

// stage_bc stores the prefetched B and C entries into bq, cq: entry i is
// step j = i/NQ of the chunk, quad i%NQ, at row (j%ITEMS)*P + j/ITEMS.
fn stage_bc(tid: u32) {
	for (var s = 0u; s < MAXS; s++) {
		let i = tid + s * WG;
		if (i < CHUNK * NQ) {
			let j = i / NQ;
			let row = (j % ITEMS) * P + j / ITEMS;
			bq[row * SQ + i % NQ] = pb[s];
			cq[row * SQ + i % NQ] = pc[s];
		}
	}
}

// scan_fwd: one workgroup per (batch, block of G channels), WG = G*P threads.
@compute @workgroup_size(WG)
fn scan_fwd(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
	@builtin(local_invocation_index) tid: u32
//#if subgroups
//| , @builtin(subgroup_size) sgs: u32
//#endif
) {
//#if subgroups
//#else
	let sgs = 0u;
//#endif
	let BATCH = dims_f.batch;
	let L = dims_f.len;
	let ED = dims_f.ed;
	let NCH = dims_f.nch;
	let NBLK = (ED + G - 1u) / G;
	let nq = dims_f.nq;
	let wid = wg.x + wg.y * nwg.x;
	if (wid >= BATCH * NBLK) {
		return;
	}
	let bi = wid / NBLK;
	let blk = wid % NBLK;
	let p = tid % P;
	let g = (tid / P) % G;
	let qt = tid / (P * G);     // state thread
	let base = tid - p;         // the row's first thread
	let e = blk * G + g;
	let live = e < ED;
	let ec = min(e, ED - 1u);
	let dv = dskip[ec];
	for (var i = tid; i < G * NQ; i += WG) {
		carry[i] = vec4<f32>(0.0);
		let row = min(blk * G + i / NQ, ED - 1u);
		let i0 = 4u * (i % NQ);
		var a = vec4<f32>(0.0);
		for (var j = 0u; j < 4u; j++) {
			if (i0 + j < N) {
				a[j] = -exp(a_log[row * N + i0 + j]);
			}
		}
		a_sh[i] = a;
	}
	workgroupBarrier();

	var uu: array<f32, MAXI>;
	var dt: array<f32, MAXI>;
	var zz: array<f32, MAXI>;
	var yacc: array<f32, MAXI>;
	var aa: array<vec4<f32>, MAXI>;
	var bx: array<vec4<f32>, MAXI>;
	var cc: array<vec4<f32>, MAXI>;
	if (PREFETCH) {
		fetch_fwd(bi, 0u, e, live, p, tid, L, ED);
	}
	for (var ch = 0u; ch < NCH; ch++) {
		if (!PREFETCH) {
			fetch_fwd(bi, ch, e, live, p, tid, L, ED);
		}
		let t0 = ch * CHUNK + p * ITEMS;
		for (var k = 0u; k < ITEMS; k++) {
			let t = t0 + k;
			uu[k] = pu[k];
			zz[k] = pz[k];
			dt[k] = 0.0;
			yacc[k] = 0.0;
			if (live && t < L) {
				dt[k] = softplus(pd[k]);
			}
		}
		stage_bc(tid);
		workgroupBarrier();
		if (PREFETCH && ch + 1u < NCH) {
			fetch_fwd(bi, ch + 1u, e, live, p, tid, L, ED);
		}
		let cur = (ch & 1u) * G * NQ + g * NQ;
		let nxt = ((ch + 1u) & 1u) * G * NQ + g * NQ;
		for (var q0 = 0u; q0 < nq; q0 += QT) {
			let q = q0 + qt;
			let i0 = 4u * q;
			let A = a_sh[g * NQ + q];
			var m = ID4;
			for (var k = 0u; k < ITEMS; k++) {
				let bt = bq[(k * P + p) * SQ + q];
				cc[k] = cq[(k * P + p) * SQ + q];
				aa[k] = exp(dt[k] * A);
				bx[k] = (dt[k] * uu[k]) * bt;
				m = compose(m, Map4(aa[k], bx[k]));
			}
			let ex = row_scan(base, p, false, m, sgs);
			let h0 = carry[cur + q];
			var h = ex.a * h0 + ex.b;
			for (var k = 0u; k < ITEMS; k++) {
				h = aa[k] * h + bx[k];
				yacc[k] += dot(cc[k], h);
			}
			if (p == P - 1u) {
				carry[nxt + q] = h;
				if (ch + 1u == NCH && live) {
					// Steps past L are identity maps, so the last thread of
					// the last chunk holds the state after step L-1.
					let o = dims_f.off_hf + (bi * ED + e) * N + i0;
					for (var j = 0u; j < 4u; j++) {
						if (i0 + j < N) {
							ws[o + j] = h[j];
						}
					}
				}
			}
			if (p == 0u && live) {
				let o = ((bi * ED + e) * NCH + ch) * N + i0;
				for (var j = 0u; j < 4u; j++) {
					if (i0 + j < N) {
						ws[o + j] = h0[j];
					}
				}
			}
		}
		if (QT > 1u) {
			// The state threads' parts of y meet at qt = 0.
			if (qt > 0u) {
				for (var k = 0u; k < ITEMS; k++) {
					ysum[((qt - 1u) * G + g) * CHUNK + p * ITEMS + k] = yacc[k];
				}
			}
			workgroupBarrier();
			if (qt == 0u) {
				for (var j = 1u; j < QT; j++) {
					for (var k = 0u; k < ITEMS; k++) {
						yacc[k] += ysum[((j - 1u) * G + g) * CHUNK + p * ITEMS + k];
					}
				}
			}
		}
		for (var k = 0u; k < ITEMS; k++) {
			let t = t0 + k;
			if (live && t < L && qt == 0u) {
				let x = (bi * L + t) * ED + e;
				var out = yacc[k] + dv * uu[k];
				if (GATE) {
					let zv = zz[k];
					out *= zv * sigmoid(zv);
				}
				y[x] = out;
			}
		}
		workgroupBarrier();
	}
}

// The backward's workspace (one buffer, so that the kernel stays within 8
// storage bindings): offsets in floats of
//   hs     (B, ED, NCH, N)   chunk-start states, written by scan_fwd, at 0
//   hf     (B, ED, N)        final states, written by scan_fwd
//   dB, dC (B, NBLK, N, L)   per-workgroup partial sums over its G channels
//   dA     (B, ED, N)        d a_log of this call, per batch row
//   dD     (B, ED)           d D of this call, per batch row
//   A_log  (ED, N), D (ED), B, C (B, L, N): copies of the inputs

var<workgroup> red_b: array<vec4<f32>, QT * G * CHUNK>;
var<workgroup> red_c: array<vec4<f32>, QT * G * CHUNK>;
var<workgroup> red_a: array<vec4<f32>, WG>;
var<workgroup> dacc: array<vec4<f32>, G * NQ>;
// The backward's parts of (pre, d dt, du) from the state threads qt >= 1,
// (QT-1, G, CHUNK).
var<workgroup> xsum: array<vec4<f32>, (QT - 1u) * G * CHUNK + 1u>;

@group(0) @binding(3) var<storage, read> dy: array<f32>;             // (B, L, ED)
@group(0) @binding(4) var<storage, read_write> du: array<f32>;       // (B, L, ED)
@group(0) @binding(5) var<storage, read_write> ddelta: array<f32>;   // (B, L, ED)
@group(0) @binding(6) var<storage, read_write> dz: array<f32>;       // (B, L, ED), or (1) without a gate
@group(0) @binding(7) var<storage, read_write> wsb: array<f32>;      // workspace, see above
@group(0) @binding(8) var<uniform> dims_b: Dims;

// Four neighbouring floats of the workspace from index o (of state i0);
// lanes past N are 0.
fn load_ws(o: u32, i0: u32) -> vec4<f32> {
	if (N % 4u == 0u) {
		return vec4<f32>(wsb[o], wsb[o + 1u], wsb[o + 2u], wsb[o + 3u]);
	}
	var v = vec4<f32>(0.0);
	for (var j = 0u; j < 4u; j++) {
		if (i0 + j < N) {
			v[j] = wsb[o + j];
		}
	}
	return v;
}

// fetch_bwd loads chunk ch's u, delta, dy, z (0 past L and for dead rows)
// and this thread's entries of its B and C from the workspace copies. It
// mirrors fetch_fwd: one function cannot serve both, as dy and the
// workspace are bound only in scan_bwd, at the bindings where scan_fwd has
// a_log and B.
fn fetch_bwd(bi: u32, ch: u32, e: u32, live: bool, p: u32, tid: u32, L: u32, ED: u32, OFF_B: u32, OFF_C: u32) {
	let t0 = ch * CHUNK + p * ITEMS;
	for (var k = 0u; k < ITEMS; k++) {
		let t = t0 + k;
		pu[k] = 0.0;
		pd[k] = 0.0;
		py[k] = 0.0;
		pz[k] = 0.0;
		if (live && t < L) {
			let x = (bi * L + t) * ED + e;
			pu[k] = u[x];
			pd[k] = delta[x];
			py[k] = dy[x];
			if (GATE) {
				pz[k] = z[x];
			}
		}
	}
	for (var s = 0u; s < MAXS; s++) {
		let i = tid + s * WG;
		let t = ch * CHUNK + i / NQ;
		let i0 = 4u * (i % NQ);
		var vb = vec4<f32>(0.0);
		var vc = vec4<f32>(0.0);
		if (i < CHUNK * NQ && t < L) {
			vb = load_ws(OFF_B + (bi * L + t) * N + i0, i0);
			vc = load_ws(OFF_C + (bi * L + t) * N + i0, i0);
		}
		pb[s] = vb;
		pc[s] = vc;
	}
}

// scan_bwd: the same workgroup layout as scan_fwd, chunks in reverse.
@compute @workgroup_size(WG)
fn scan_bwd(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
	@builtin(local_invocation_index) tid: u32
//#if subgroups
//| , @builtin(subgroup_size) sgs: u32
//#endif
) {
//#if subgroups
//#else
	let sgs = 0u;
//#endif
	let BATCH = dims_b.batch;
	let L = dims_b.len;
	let ED = dims_b.ed;
	let NCH = dims_b.nch;
	let NBLK = (ED + G - 1u) / G;
	let nq = dims_b.nq;
	let OFF_DB = dims_b.off_db;
	let OFF_DC = dims_b.off_dc;
	let OFF_DA = dims_b.off_da;
	let OFF_DD = dims_b.off_dd;
	let OFF_AL = dims_b.off_al;
	let OFF_D = dims_b.off_d;
	let OFF_B = dims_b.off_b;
	let OFF_C = dims_b.off_c;
	let wid = wg.x + wg.y * nwg.x;
	if (wid >= BATCH * NBLK) {
		return;
	}
	let bi = wid / NBLK;
	let blk = wid % NBLK;
	let p = tid % P;
	let g = (tid / P) % G;
	let qt = tid / (P * G);     // state thread
	let base = tid - p;         // the row's first thread
	let e = blk * G + g;
	let live = e < ED;
	let ec = min(e, ED - 1u);
	let dv = wsb[OFF_D + ec];
	for (var i = tid; i < G * NQ; i += WG) {
		carry[i] = vec4<f32>(0.0);
		dacc[i] = vec4<f32>(0.0);
		let row = min(blk * G + i / NQ, ED - 1u);
		let i0 = 4u * (i % NQ);
		var a = vec4<f32>(0.0);
		for (var j = 0u; j < 4u; j++) {
			if (i0 + j < N) {
				a[j] = -exp(wsb[OFF_AL + row * N + i0 + j]);
			}
		}
		a_sh[i] = a;
	}
	workgroupBarrier();

	var uu: array<f32, MAXI>;   // u
	var dt: array<f32, MAXI>;   // softplus(delta)
	var sg: array<f32, MAXI>;   // sigmoid(delta)
	var gy: array<f32, MAXI>;   // dy * silu(z): the gradient of pre
	var gz: array<f32, MAXI>;   // dy * silu'(z)
	var dua: array<f32, MAXI>;  // du, summed over states
	var ddt: array<f32, MAXI>;  // d dt, summed over states
	var pre: array<f32, MAXI>;  // sum_i C*h
	var aa: array<vec4<f32>, MAXI>;
	var bt: array<vec4<f32>, MAXI>;
	var ct: array<vec4<f32>, MAXI>;
	var hp: array<vec4<f32>, MAXI>;   // h[t-1]
	var dDp = 0.0;
	if (PREFETCH) {
		fetch_bwd(bi, NCH - 1u, e, live, p, tid, L, ED, OFF_B, OFF_C);
	}
	for (var cc = 0u; cc < NCH; cc++) {
		let ch = NCH - 1u - cc;
		if (!PREFETCH) {
			fetch_bwd(bi, ch, e, live, p, tid, L, ED, OFF_B, OFF_C);
		}
		let t0 = ch * CHUNK + p * ITEMS;
		for (var k = 0u; k < ITEMS; k++) {
			let t = t0 + k;
			uu[k] = 0.0;
			dt[k] = 0.0;
			sg[k] = 0.0;
			gy[k] = 0.0;
			gz[k] = 0.0;
			dua[k] = 0.0;
			ddt[k] = 0.0;
			pre[k] = 0.0;
			if (live && t < L) {
				uu[k] = pu[k];
				let dl = pd[k];
				dt[k] = softplus(dl);
				sg[k] = sigmoid(dl);
				let dyv = py[k];
				gy[k] = dyv;
				if (GATE) {
					let zv = pz[k];
					let s = sigmoid(zv);
					gy[k] = dyv * zv * s;
					gz[k] = dyv * s * (1.0 + zv * (1.0 - s));
				}
			}
		}
		stage_bc(tid);
		workgroupBarrier();
		if (PREFETCH && ch > 0u) {
			fetch_bwd(bi, ch - 1u, e, live, p, tid, L, ED, OFF_B, OFF_C);
		}
		let cur = (cc & 1u) * G * NQ + g * NQ;
		let nxt = ((cc + 1u) & 1u) * G * NQ + g * NQ;
		for (var q0 = 0u; q0 < nq; q0 += QT) {
			let q = q0 + qt;
			let i0 = 4u * q;
			let A = a_sh[g * NQ + q];
			// (1) the states of the chunk, from its start state.
			var m = ID4;
			for (var k = 0u; k < ITEMS; k++) {
				bt[k] = bq[(k * P + p) * SQ + q];
				ct[k] = cq[(k * P + p) * SQ + q];
				aa[k] = exp(dt[k] * A);
				m = compose(m, Map4(aa[k], (dt[k] * uu[k]) * bt[k]));
			}
			let ex = row_scan(base, p, false, m, sgs);
			let h0 = load_ws(((bi * ED + ec) * NCH + ch) * N + i0, i0);
			var h = ex.a * h0 + ex.b;
			for (var k = 0u; k < ITEMS; k++) {
				hp[k] = h;
				h = aa[k] * h + (dt[k] * uu[k]) * bt[k];
				pre[k] += dot(ct[k], h);
			}
			// (2) the adjoint map s -> a*s + a*g*C of each step, last step first.
			var r = ID4;
			for (var kk = 0u; kk < ITEMS; kk++) {
				let k = ITEMS - 1u - kk;
				r = compose(r, Map4(aa[k], aa[k] * (gy[k] * ct[k])));
			}
			let er = row_scan(base, p, true, r, sgs);
			var s = er.a * carry[cur + q] + er.b;
			// (3) replay backwards.
			var dAp = vec4<f32>(0.0);
			for (var kk = 0u; kk < ITEMS; kk++) {
				let k = ITEMS - 1u - kk;
				let dh = gy[k] * ct[k] + s;
				let hk = aa[k] * hp[k] + (dt[k] * uu[k]) * bt[k];
				ddt[k] += dot(dh, bt[k] * uu[k] + A * aa[k] * hp[k]);
				dua[k] += dt[k] * dot(dh, bt[k]);
				dAp += dh * aa[k] * hp[k] * dt[k];
				red_b[(qt * G + g) * CHUNK + p * ITEMS + k] = dh * (dt[k] * uu[k]);
				red_c[(qt * G + g) * CHUNK + p * ITEMS + k] = gy[k] * hk;
				s = aa[k] * dh;
			}
			if (p == 0u) {
				carry[nxt + q] = s;
			}
			// dA of the quad, summed over the row: with subgroup shuffles
			// where the row lies in one subgroup, else through red_a after
			// the barrier.
//#if subgroups
//| 			if (P <= sgs) {
//| 				var sa = dAp;
//| 				for (var d = 1u; d < P; d = d * 2u) {
//| 					sa += subgroupShuffleXor(sa, d);
//| 				}
//| 				if (p == 0u) {
//| 					dacc[g * NQ + q] += sa;
//| 				}
//| 			} else {
//| 				red_a[tid] = dAp;
//| 			}
//#else
			red_a[tid] = dAp;
//#endif
			workgroupBarrier();
			// dB, dC: sum the G channels, one thread per (state thread's
			// quad, lane, step), neighbouring threads on neighbouring steps
			// (all threads at work: on the H200 the backward took 2.59 ms
			// against 2.83 with one thread per step); dA: sum the row.
			for (var j = tid; j < QT * 4u * CHUNK; j += WG) {
				let jq = j / (4u * CHUNK);
				let l = (j / CHUNK) % 4u;
				let jt = j % CHUNK;
				let t = ch * CHUNK + jt;
				let i = 4u * (q0 + jq) + l;
				if (t < L && i < N) {
					var sb = 0.0;
					var sc = 0.0;
					for (var r2 = 0u; r2 < G; r2++) {
						sb += red_b[(jq * G + r2) * CHUNK + jt][l];
						sc += red_c[(jq * G + r2) * CHUNK + jt][l];
					}
					let o = ((bi * NBLK + blk) * N + i) * L + t;
					wsb[OFF_DB + o] = sb;
					wsb[OFF_DC + o] = sc;
				}
			}
//#if subgroups
//| 			if (P > sgs && p == 0u) {
//| 				var sa = vec4<f32>(0.0);
//| 				for (var r2 = 0u; r2 < P; r2++) {
//| 					sa += red_a[base + r2];
//| 				}
//| 				dacc[g * NQ + q] += sa;
//| 			}
//#else
			if (p == 0u) {
				var sa = vec4<f32>(0.0);
				for (var r2 = 0u; r2 < P; r2++) {
					sa += red_a[base + r2];
				}
				dacc[g * NQ + q] += sa;
			}
//#endif
			workgroupBarrier();
		}
		if (QT > 1u) {
			// The state threads' parts of pre, d dt and du meet at qt = 0.
			if (qt > 0u) {
				for (var k = 0u; k < ITEMS; k++) {
					xsum[((qt - 1u) * G + g) * CHUNK + p * ITEMS + k] = vec4<f32>(pre[k], ddt[k], dua[k], 0.0);
				}
			}
			workgroupBarrier();
			if (qt == 0u) {
				for (var j = 1u; j < QT; j++) {
					for (var k = 0u; k < ITEMS; k++) {
						let v = xsum[((j - 1u) * G + g) * CHUNK + p * ITEMS + k];
						pre[k] += v.x;
						ddt[k] += v.y;
						dua[k] += v.z;
					}
				}
			}
		}
		for (var k = 0u; k < ITEMS; k++) {
			let t = t0 + k;
			if (live && t < L && qt == 0u) {
				let x = (bi * L + t) * ED + e;
				du[x] = dua[k] + gy[k] * dv;
				ddelta[x] = ddt[k] * sg[k];
				if (GATE) {
					dz[x] = gz[k] * (pre[k] + dv * uu[k]);
				}
				dDp += gy[k] * uu[k];
			}
		}
	}
	red_a[tid] = vec4<f32>(dDp, 0.0, 0.0, 0.0);
	workgroupBarrier();
	if (p == 0u && qt == 0u && live) {
		var sd = 0.0;
		for (var r2 = 0u; r2 < P; r2++) {
			sd += red_a[base + r2].x;
		}
		wsb[OFF_DD + bi * ED + e] = sd;
		for (var q = 0u; q < nq; q++) {
			let da = dacc[g * NQ + q] * a_sh[g * NQ + q];
			for (var l = 0u; l < 4u; l++) {
				if (4u * q + l < N) {
					wsb[OFF_DA + (bi * ED + e) * N + 4u * q + l] = da[l];
				}
			}
		}
	}
}

@group(0) @binding(0) var<storage, read> wsr: array<f32>;             // workspace, see scan_bwd
@group(0) @binding(1) var<storage, read_write> db_out: array<f32>;    // (B, L, N)
@group(0) @binding(2) var<storage, read_write> dc_out: array<f32>;    // (B, L, N)
@group(0) @binding(3) var<storage, read_write> dalog_out: array<f32>; // (ED, N), +=
@group(0) @binding(4) var<storage, read_write> dd_out: array<f32>;    // (ED), +=
@group(0) @binding(5) var<uniform> dims_r: Dims;

// scan_bwd_reduce: dB, dC = the sum of the NBLK partials in a fixed order;
// d a_log, d D += this call's. One thread per output, 256 per workgroup,
// split over y when above the x limit.
@compute @workgroup_size(256)
fn scan_bwd_reduce(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
	let BATCH = dims_r.batch;
	let L = dims_r.len;
	let ED = dims_r.ed;
	let NBLK = (ED + G - 1u) / G;
	let OFF_DB = dims_r.off_db;
	let OFF_DC = dims_r.off_dc;
	let OFF_DA = dims_r.off_da;
	let OFF_DD = dims_r.off_dd;
	let idx = gid.x + gid.y * nwg.x * 256u;
	let nbc = BATCH * L * N;
	if (idx < nbc) {
		let t = idx % L;
		let r = idx / L;
		let i = r % N;
		let bi = r / N;
		var sb = 0.0;
		var sc = 0.0;
		for (var blk = 0u; blk < NBLK; blk++) {
			let o = ((bi * NBLK + blk) * N + i) * L + t;
			sb += wsr[OFF_DB + o];
			sc += wsr[OFF_DC + o];
		}
		db_out[(bi * L + t) * N + i] = sb;
		dc_out[(bi * L + t) * N + i] = sc;
		return;
	}
	let j = idx - nbc;
	if (j < ED * N) {
		var sa = 0.0;
		for (var bi = 0u; bi < BATCH; bi++) {
			sa += wsr[OFF_DA + bi * ED * N + j];
		}
		dalog_out[j] += sa;
		return;
	}
	let k = j - ED * N;
	if (k < ED) {
		var sd = 0.0;
		for (var bi = 0u; bi < BATCH; bi++) {
			sd += wsr[OFF_DD + bi * ED + k];
		}
		dd_out[k] += sd;
	}
}
