// sample.wgsl: the next token of every stream, chosen on the GPU from the
// LM head's logits, so that only the chosen ids are read back. Per stream s
// (one workgroup), over the allowed ids [lo, hi) = allowed[s] (a modality's
// vocabulary range inside its span; an empty range means the whole
// vocabulary) and ignoring NaN logits:
//
//   temperature <= 0: the argmax, the lowest id on ties (greedy);
//   otherwise, with m the largest logit and e_i = exp((l_i - m) / T):
//   top-k (0 < k < hi-lo): keep the ids whose logit is at least the k-th
//     largest (ties with it are all kept);
//   top-p (0 < p < 1): of those, keep the ids i whose more probable kept ids
//     hold less than p of the kept mass Z: sum_{kept j: l_j > l_i} e_j < p*Z
//     (at least the argmax survives; ties are kept or dropped together);
//   then draw u in [0, 1) and choose the first kept id, in id order, whose
//   cumulative e passes u times the kept mass.
//
// u is a counter-based random number: a hash (PCG's output permutation,
// chained) of the seed, the stream and the stream's step counter pos[s],
// so that a stream's draws do not depend on how steps are batched, and a
// plain loop reproduces them exactly (nn/ref.SampleUniform). pos[s] counts
// up by one per call, greedy or not.
//
// Thresholds work on order-preserving integer keys of the logits (the float
// bits, flipped so that unsigned order is float order; -0 counts as +0).
// The k-th largest key is found exactly by a radix select over four 8-bit
// digits (workgroup histograms of integer counts); the top-p threshold is
// the smallest key t with S(t) = sum_{kept, key > t} e < p*Z, by bisection
// over the 32-bit keys (32 passes, each a workgroup sum in a fixed order).
// The final draw sums e over one contiguous block of ids per thread, scans
// the blocks' sums in order on one thread, and the owner of u's block walks
// it. Every reduction has a fixed order, so the result is deterministic.

override WG: u32 = 256u;    // threads per stream, a power of two

// Params: the streams, V, top-k (0: off), the temperature, top-p (1: off)
// and the 64-bit seed in two halves.
struct Params {
	streams: u32,
	v: u32,
	top_k: u32,
	pad0: u32,
	temperature: f32,
	top_p: f32,
	seed_lo: u32,
	seed_hi: u32,
}

const NONE: u32 = 0xffffffffu;

@group(0) @binding(0) var<storage, read> logits: array<f32>;      // (S, V)
@group(0) @binding(1) var<storage, read_write> ex: array<f32>;    // (S, V) scratch: e in [lo, hi)
@group(0) @binding(2) var<storage, read> allowed: array<u32>;     // (S, 2): [lo, hi)
@group(0) @binding(3) var<storage, read_write> pos: array<u32>;   // (S) step counters, += 1
@group(0) @binding(4) var<storage, read_write> ids: array<u32>;   // (S) the chosen ids
@group(0) @binding(5) var<uniform> prm: Params;

var<workgroup> rv: array<f32, WG>;
var<workgroup> ri: array<u32, WG>;
var<workgroup> hist: array<atomic<u32>, 256>;
var<workgroup> sel: array<u32, 3>;   // radix select: digit, count still needed, found
var<workgroup> own_t: u32;           // the thread whose block holds u
var<workgroup> own_f: f32;           // u*Z minus the mass before that block

// okey maps a float to a u32 in the same order (-0 as +0).
fn okey(v: f32) -> u32 {
	let b = select(bitcast<u32>(v), 0u, v == 0.0);
	if ((b & 0x80000000u) != 0u) {
		return ~b;
	}
	return b | 0x80000000u;
}

// pcg is the output permutation of PCG (RXS-M-XS) applied to one LCG step
// of v: a 32-bit hash.
fn pcg(v: u32) -> u32 {
	let st = v * 747796405u + 2891336453u;
	let w = ((st >> ((st >> 28u) + 4u)) ^ st) * 277803737u;
	return (w >> 22u) ^ w;
}

// uniform01 is the draw of (seed, stream, step): 24 random bits in [0, 1).
fn uniform01(seed_lo: u32, seed_hi: u32, stream: u32, step: u32) -> f32 {
	let h = pcg(step ^ pcg(stream ^ pcg(seed_hi ^ pcg(seed_lo))));
	return f32(h >> 8u) * (1.0 / 16777216.0);
}

// wg_sum returns the sum of every thread's v, added in a fixed tree order.
fn wg_sum(tid: u32, v: f32) -> f32 {
	rv[tid] = v;
	workgroupBarrier();
	for (var o = WG / 2u; o > 0u; o >>= 1u) {
		if (tid < o) {
			rv[tid] += rv[tid + o];
		}
		workgroupBarrier();
	}
	let r = rv[0];
	workgroupBarrier();
	return r;
}

// sample: one workgroup per stream, S workgroups split over y when above
// the x limit.
@compute @workgroup_size(WG)
fn sample(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
	@builtin(local_invocation_index) tid: u32) {
	let s = wg.x + wg.y * nwg.x;
	if (s >= prm.streams) {
		return;
	}
	let V = prm.v;
	var lo = allowed[2u * s];
	var hi = min(allowed[2u * s + 1u], V);
	if (lo >= hi) {
		lo = 0u;
		hi = V;
	}
	let row = s * V;

	// The largest logit and the lowest id holding it.
	var bv = 0.0;
	var bi = NONE;
	for (var i = lo + tid; i < hi; i += WG) {
		let v = logits[row + i];
		if (v == v && (bi == NONE || v > bv)) {
			bv = v;
			bi = i;
		}
	}
	rv[tid] = bv;
	ri[tid] = bi;
	workgroupBarrier();
	for (var o = WG / 2u; o > 0u; o >>= 1u) {
		if (tid < o) {
			let v2 = rv[tid + o];
			let i2 = ri[tid + o];
			let i1 = ri[tid];
			if (i2 != NONE && (i1 == NONE || v2 > rv[tid] || (v2 == rv[tid] && i2 < i1))) {
				rv[tid] = v2;
				ri[tid] = i2;
			}
		}
		workgroupBarrier();
	}
	let mx = rv[0];
	var best = ri[0];
	if (best == NONE) {
		best = lo; // every logit is NaN
	}
	workgroupBarrier();
	let temp = prm.temperature;
	if (!(temp > 0.0)) {
		if (tid == 0u) {
			ids[s] = best;
			pos[s] += 1u;
		}
		return;
	}

	// e_i, kept in the scratch.
	for (var i = lo + tid; i < hi; i += WG) {
		let v = logits[row + i];
		var e = 0.0;
		if (v == v) {
			e = exp((v - mx) / temp);
		}
		ex[row + i] = e;
	}
	// The passes below read e written by other threads.
	storageBarrier();

	// top-k: tk is the key of the k-th largest logit.
	var tk = 0u;
	let topk = prm.top_k;
	if (topk > 0u && topk < hi - lo) {
		var prefix = 0u;
		var mask = 0u;
		var need = topk;
		var found = 1u;
		for (var rd = 0u; rd < 4u; rd++) {
			let shift = 24u - 8u * rd;
			for (var b = tid; b < 256u; b += WG) {
				atomicStore(&hist[b], 0u);
			}
			workgroupBarrier();
			for (var i = lo + tid; i < hi; i += WG) {
				let v = logits[row + i];
				let key = okey(v);
				if (v == v && (key & mask) == prefix) {
					atomicAdd(&hist[(key >> shift) & 255u], 1u);
				}
			}
			workgroupBarrier();
			if (tid == 0u) {
				// The digit of the need-th largest key among those matching
				// the prefix: walk the bins from the top.
				var acc = 0u;
				sel[0] = 0u;
				sel[1] = need;
				sel[2] = 0u;
				for (var b = 256u; b > 0u; b--) {
					let c = atomicLoad(&hist[b - 1u]);
					if (acc + c >= need) {
						sel[0] = b - 1u;
						sel[1] = need - acc;
						sel[2] = 1u;
						break;
					}
					acc += c;
				}
			}
			workgroupBarrier();
			prefix |= sel[0] << shift;
			mask |= 255u << shift;
			need = sel[1];
			found &= sel[2];
			workgroupBarrier();
		}
		if (found == 1u) {
			tk = prefix;
		}
	}

	// top-p: tp is the smallest key t with S(t) < p*Z.
	var tp = 0u;
	let topp = prm.top_p;
	if (topp > 0.0 && topp < 1.0) {
		var part = 0.0;
		for (var i = lo + tid; i < hi; i += WG) {
			let v = logits[row + i];
			if (v == v && okey(v) >= tk) {
				part += ex[row + i];
			}
		}
		let goal = topp * wg_sum(tid, part);
		var a = tk;
		var b = okey(mx);
		for (var it = 0u; it < 32u; it++) {
			let mid = a + (b - a) / 2u;
			var sgt = 0.0;
			for (var i = lo + tid; i < hi; i += WG) {
				let v = logits[row + i];
				let key = okey(v);
				if (v == v && key > mid && key >= tk) {
					sgt += ex[row + i];
				}
			}
			let total = wg_sum(tid, sgt);
			if (a < b) {
				if (total < goal) {
					b = mid;
				} else {
					a = mid + 1u;
				}
			}
		}
		tp = a;
	}
	let thr = max(tk, tp);

	// The draw: per-thread block sums, scanned on thread 0.
	let n = hi - lo;
	let blk = (n + WG - 1u) / WG;
	let b0 = min(lo + tid * blk, hi);
	let b1 = min(b0 + blk, hi);
	var bs = 0.0;
	for (var i = b0; i < b1; i++) {
		let v = logits[row + i];
		if (v == v && okey(v) >= thr) {
			bs += ex[row + i];
		}
	}
	rv[tid] = bs;
	workgroupBarrier();
	if (tid == 0u) {
		var total = 0.0;
		for (var t = 0u; t < WG; t++) {
			total += rv[t];
		}
		let tu = uniform01(prm.seed_lo, prm.seed_hi, s, pos[s]) * total;
		var pre = 0.0;
		var own = NONE;
		var opre = 0.0;
		var last = 0u;
		var lpre = 0.0;
		for (var t = 0u; t < WG; t++) {
			let p = rv[t];
			if (p > 0.0) {
				if (own == NONE && tu < pre + p) {
					own = t;
					opre = pre;
				}
				last = t;
				lpre = pre;
			}
			pre += p;
		}
		if (own == NONE) {
			own = last;
			opre = lpre;
		}
		own_t = own;
		own_f = tu - opre;
	}
	workgroupBarrier();
	if (tid == own_t) {
		let tgt = own_f;
		var acc = 0.0;
		var pick = NONE;
		var lastk = NONE;
		for (var i = b0; i < b1; i++) {
			let v = logits[row + i];
			if (v == v && okey(v) >= thr) {
				acc += ex[row + i];
				lastk = i;
				if (pick == NONE && tgt < acc) {
					pick = i;
				}
			}
		}
		if (pick == NONE) {
			pick = lastk;
		}
		if (pick == NONE) {
			pick = best;
		}
		ids[s] = pick;
		pos[s] += 1u;
	}
}
