// gemm_grouped.wgsl: the per-modality (grouped) GEMM of GroupedLinear, in one
// dispatch for all G modalities. Row t has modality m(t); the routing table
// of the batch (built on the host, nn.Routing) is a permutation perm that
// lists the rows of modality 0, then 1, ... (each group in order) and the
// group offsets: the rows of group g are perm[offsets[g] .. offsets[g+1]).
// Tiles are cut per group from the offsets, so a tile never mixes groups;
// empty groups get no tiles and write nothing.
//
//   grouped_gemm[_v4]  C[t] (=|+=) A[t]·B[m(t)] (+ bias[m(t)]) for every row t,
//                      rows gathered through perm and scattered back:
//                      NT (B_T false) Y = X·W[g]ᵀ + b[g];  NN (B_T true) dX = dY·W[g]
//   grouped_tn[_v4]    dW[g] += Σ_{t in group g} dY[t]ᵀ X[t], split into chunks of
//                      CHUNK rows of one group each (slot z); with ACCUM (no split:
//                      CHUNK >= ROWS) a slot adds into dW[g] directly, otherwise it
//                      writes the partial C_OFF + z*M*N and grouped_reduce sums a
//                      group's partials in order.
//   grouped_colsum     the bias gradient db[g] per slot, likewise.
//   grouped_reduce     dst[g] += the partials of group g, in order; an empty group
//                      is left untouched.
//
// The tile machinery (BM x BN tiles, BK steps, TM x TN vec4 registers per
// invocation, padded workgroup tiles) is that of gemm.wgsl.

override ROWS: u32 = 1u;             // rows of the batch
override G: u32 = 1u;                // modalities
override M: u32 = 1u;                // grouped_tn: rows of dW[g] (N of the layer)
override N: u32 = 1u;                // columns of C
override KD: u32 = 1u;               // reduction length (grouped_gemm)
override B_T: bool = false;          // grouped_gemm: B stored (G, KD, N) instead of (G, N, KD)
override HAS_BIAS: bool = false;     // add bias[g][n]
override ACCUM: bool = false;        // C += instead of C = (grouped_tn: no split)
override CHUNK: u32 = 0xffffffffu;   // grouped_tn: rows per slot (a multiple of BK)
override C_OFF: u32 = 0u;            // element offset of the partials in c
override BM: u32 = 64u;
override BN: u32 = 64u;
override BK: u32 = 16u;
override TM: u32 = 4u;
override TN: u32 = 4u;

override TY: u32 = BM / TM;
override TX: u32 = BN / TN;
override WG: u32 = TX * TY;
override TM4: u32 = TM / 4u;
override TN4: u32 = TN / 4u;
override SA: u32 = BM / 4u + 1u;
override SB: u32 = BN / 4u + 1u;
override TILES_N: u32 = (N + BN - 1u) / BN;
override TILES_TN: u32 = ((M + BM - 1u) / BM) * TILES_N;

const MAXV: u32 = 2u;
const NONE: u32 = 0xffffffffu;

// Routing tables: offsets in every entry point, perm in all but grouped_reduce.
@group(0) @binding(0) var<storage, read> offsets: array<u32>;   // (G+1)
@group(0) @binding(1) var<storage, read> perm: array<u32>;      // (ROWS)

// grouped_gemm: scalar and vec4 views.
@group(0) @binding(2) var<storage, read> a: array<f32>;          // (ROWS, KD): X or dY
@group(0) @binding(3) var<storage, read> b: array<f32>;          // (G, N, KD) or (G, KD, N) if B_T
@group(0) @binding(4) var<storage, read> bias: array<f32>;       // (G, N); any buffer without HAS_BIAS
@group(0) @binding(5) var<storage, read_write> c: array<f32>;    // (ROWS, N)
@group(0) @binding(2) var<storage, read> a4: array<vec4<f32>>;        // (ROWS, KD/4)
@group(0) @binding(3) var<storage, read> b4: array<vec4<f32>>;        // (G, N, KD/4) or (G, KD, N/4)
@group(0) @binding(5) var<storage, read_write> c4: array<vec4<f32>>;  // (ROWS, N/4)

// grouped_tn: scalar and vec4 views.
@group(0) @binding(2) var<storage, read> dy: array<f32>;         // (ROWS, M)
@group(0) @binding(3) var<storage, read> x: array<f32>;          // (ROWS, N)
@group(0) @binding(4) var<storage, read_write> dw: array<f32>;   // (G, M, N), or partials C_OFF + (Z, M, N)
@group(0) @binding(2) var<storage, read> dy4: array<vec4<f32>>;       // (ROWS, M/4)
@group(0) @binding(3) var<storage, read> x4: array<vec4<f32>>;        // (ROWS, N/4)
@group(0) @binding(4) var<storage, read_write> dw4: array<vec4<f32>>; // (G, M, N/4), or C_OFF/4 + (Z, M, N/4)

var<workgroup> As4: array<vec4<f32>, SA * BK>;
var<workgroup> Bs4: array<vec4<f32>, SB * BK>;
var<workgroup> rowid: array<u32, BM>;   // grouped_gemm: the rows of the tile (NONE past its group)

var<private> li: u32;
var<private> tx: u32;
var<private> ty: u32;

// A run of rows perm[p0 .. p1) of group g.
struct Span {
	g: u32,
	p0: u32,
	p1: u32,
	ok: bool,
}

// span_of finds slot s when group g is cut into ceil(count_g/size) slots of
// size rows, numbered group after group.
fn span_of(s: u32, size: u32) -> Span {
	var r: Span;
	r.ok = false;
	var first = 0u;
	for (var g = 0u; g < G; g++) {
		let lo = offsets[g];
		let hi = offsets[g + 1u];
		let count = (hi - lo + size - 1u) / size;
		if (s < first + count) {
			r.g = g;
			r.p0 = lo + (s - first) * size;
			r.p1 = min(hi, r.p0 + size);
			r.ok = true;
			return r;
		}
		first += count;
	}
	return r;
}

// first_slot is the number of slots of the groups before g.
fn first_slot(g: u32, size: u32) -> u32 {
	var first = 0u;
	for (var h = 0u; h < g; h++) {
		first += (offsets[h + 1u] - offsets[h] + size - 1u) / size;
	}
	return first;
}

fn setup(lid: u32) {
	li = lid;
	tx = lid % TX;
	ty = lid / TX;
}

fn mma(acc: ptr<function, array<vec4<f32>, 16>>) {
	for (var kk = 0u; kk < BK; kk++) {
		var av: array<vec4<f32>, MAXV>;
		var bv: array<vec4<f32>, MAXV>;
		for (var i = 0u; i < TM4; i++) {
			av[i] = As4[kk * SA + i * TY + ty];
		}
		for (var j = 0u; j < TN4; j++) {
			bv[j] = Bs4[kk * SB + j * TX + tx];
		}
		for (var i = 0u; i < TM4; i++) {
			for (var r = 0u; r < 4u; r++) {
				let v = av[i][r];
				for (var j = 0u; j < TN4; j++) {
					let o = (i * 4u + r) * TN4 + j;
					(*acc)[o] = fma(vec4<f32>(v), bv[j], (*acc)[o]);
				}
			}
		}
	}
}

// ---- grouped_gemm: rows gathered through perm ----

fn gather_rows(sp: Span) {
	for (var i = li; i < BM; i += WG) {
		let p = sp.p0 + i;
		var t = NONE;
		if (p < sp.p1) {
			t = perm[p];
		}
		rowid[i] = t;
	}
	workgroupBarrier();
}

fn gg_load(boff: u32, n0: u32, k0: u32) {
	for (var e = li; e < BM * BK; e += WG) {
		let k = e % BK;
		let m = e / BK;
		let t = rowid[m];
		let gk = k0 + k;
		var v = 0.0;
		if (t != NONE && gk < KD) {
			v = a[t * KD + gk];
		}
		As4[k * SA + m / 4u][m % 4u] = v;
	}
	for (var e = li; e < BN * BK; e += WG) {
		var n: u32;
		var k: u32;
		if (B_T) {
			n = e % BN;
			k = e / BN;
		} else {
			k = e % BK;
			n = e / BK;
		}
		let gn = n0 + n;
		let gk = k0 + k;
		var v = 0.0;
		if (gn < N && gk < KD) {
			if (B_T) {
				v = b[boff + gk * N + gn];
			} else {
				v = b[boff + gn * KD + gk];
			}
		}
		Bs4[k * SB + n / 4u][n % 4u] = v;
	}
}

fn gg_load4(boff: u32, n0: u32, k0: u32) {
	for (var e = li; e < BM * BK / 4u; e += WG) {
		let k4 = e % (BK / 4u);
		let m = e / (BK / 4u);
		let t = rowid[m];
		let gk = k0 + 4u * k4;
		var v = vec4<f32>(0.0);
		if (t != NONE && gk < KD) {
			v = a4[(t * KD + gk) / 4u];
		}
		let s = 4u * k4 * SA + m / 4u;
		let q = m % 4u;
		As4[s][q] = v.x;
		As4[s + SA][q] = v.y;
		As4[s + 2u * SA][q] = v.z;
		As4[s + 3u * SA][q] = v.w;
	}
	for (var e = li; e < BN * BK / 4u; e += WG) {
		if (B_T) {
			let n4 = e % (BN / 4u);
			let k = e / (BN / 4u);
			let gn = n0 + 4u * n4;
			let gk = k0 + k;
			var v = vec4<f32>(0.0);
			if (gn < N && gk < KD) {
				v = b4[(boff + gk * N + gn) / 4u];
			}
			Bs4[k * SB + n4] = v;
		} else {
			let k4 = e % (BK / 4u);
			let n = e / (BK / 4u);
			let gn = n0 + n;
			let gk = k0 + 4u * k4;
			var v = vec4<f32>(0.0);
			if (gn < N && gk < KD) {
				v = b4[(boff + gn * KD + gk) / 4u];
			}
			let s = 4u * k4 * SB + n / 4u;
			let q = n % 4u;
			Bs4[s][q] = v.x;
			Bs4[s + SB][q] = v.y;
			Bs4[s + 2u * SB][q] = v.z;
			Bs4[s + 3u * SB][q] = v.w;
		}
	}
}

fn gg_store(acc: ptr<function, array<vec4<f32>, 16>>, g: u32, n0: u32) {
	for (var i = 0u; i < TM4; i++) {
		for (var r = 0u; r < 4u; r++) {
			let t = rowid[(i * TY + ty) * 4u + r];
			if (t == NONE) {
				continue;
			}
			for (var j = 0u; j < TN4; j++) {
				let v = (*acc)[(i * 4u + r) * TN4 + j];
				let n = n0 + (j * TX + tx) * 4u;
				for (var q = 0u; q < 4u; q++) {
					if (n + q < N) {
						let o = t * N + n + q;
						var y = v[q];
						if (HAS_BIAS) {
							y += bias[g * N + n + q];
						}
						if (ACCUM) {
							y += c[o];
						}
						c[o] = y;
					}
				}
			}
		}
	}
}

fn gg_store4(acc: ptr<function, array<vec4<f32>, 16>>, g: u32, n0: u32) {
	for (var i = 0u; i < TM4; i++) {
		for (var r = 0u; r < 4u; r++) {
			let t = rowid[(i * TY + ty) * 4u + r];
			if (t == NONE) {
				continue;
			}
			for (var j = 0u; j < TN4; j++) {
				let n = n0 + (j * TX + tx) * 4u;
				if (n < N) {
					let o = (t * N + n) / 4u;
					var y = (*acc)[(i * 4u + r) * TN4 + j];
					if (HAS_BIAS) {
						let bo = g * N + n;
						y += vec4<f32>(bias[bo], bias[bo + 1u], bias[bo + 2u], bias[bo + 3u]);
					}
					if (ACCUM) {
						y += c4[o];
					}
					c4[o] = y;
				}
			}
		}
	}
}

// Dispatch (ceil(ROWS/BM) + G - 1) row-tile slots x ceil(N/BN) column tiles
// (split over x and y by nn.Grid); slots past the groups' tiles return.
@compute @workgroup_size(WG)
fn grouped_gemm(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
	@builtin(local_invocation_index) lid: u32) {
	setup(lid);
	let lin = wg.x + wg.y * nwg.x;
	let sp = span_of(lin / TILES_N, BM);
	if (!sp.ok) {
		return;
	}
	let n0 = (lin % TILES_N) * BN;
	let boff = sp.g * N * KD;
	gather_rows(sp);
	var acc: array<vec4<f32>, 16>;
	for (var k0 = 0u; k0 < KD; k0 += BK) {
		gg_load(boff, n0, k0);
		workgroupBarrier();
		mma(&acc);
		workgroupBarrier();
	}
	gg_store(&acc, sp.g, n0);
}

@compute @workgroup_size(WG)
fn grouped_gemm_v4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
	@builtin(local_invocation_index) lid: u32) {
	setup(lid);
	let lin = wg.x + wg.y * nwg.x;
	let sp = span_of(lin / TILES_N, BM);
	if (!sp.ok) {
		return;
	}
	let n0 = (lin % TILES_N) * BN;
	let boff = sp.g * N * KD;
	gather_rows(sp);
	var acc: array<vec4<f32>, 16>;
	for (var k0 = 0u; k0 < KD; k0 += BK) {
		gg_load4(boff, n0, k0);
		workgroupBarrier();
		mma(&acc);
		workgroupBarrier();
	}
	gg_store4(&acc, sp.g, n0);
}

// ---- grouped_tn: dW[g] += dY[group g]ᵀ · X[group g] ----
// A(m, p) = dy[perm[p]*M + m], B(p, n) = x[perm[p]*N + n], p over a slot's rows.

fn tn_load(m0: u32, n0: u32, k0: u32, p1: u32) {
	for (var e = li; e < BM * BK; e += WG) {
		let m = e % BM;
		let k = e / BM;
		let p = k0 + k;
		let gm = m0 + m;
		var v = 0.0;
		if (gm < M && p < p1) {
			v = dy[perm[p] * M + gm];
		}
		As4[k * SA + m / 4u][m % 4u] = v;
	}
	for (var e = li; e < BN * BK; e += WG) {
		let n = e % BN;
		let k = e / BN;
		let p = k0 + k;
		let gn = n0 + n;
		var v = 0.0;
		if (gn < N && p < p1) {
			v = x[perm[p] * N + gn];
		}
		Bs4[k * SB + n / 4u][n % 4u] = v;
	}
}

fn tn_load4(m0: u32, n0: u32, k0: u32, p1: u32) {
	for (var e = li; e < BM * BK / 4u; e += WG) {
		let m4 = e % (BM / 4u);
		let k = e / (BM / 4u);
		let p = k0 + k;
		let gm = m0 + 4u * m4;
		var v = vec4<f32>(0.0);
		if (gm < M && p < p1) {
			v = dy4[(perm[p] * M + gm) / 4u];
		}
		As4[k * SA + m4] = v;
	}
	for (var e = li; e < BN * BK / 4u; e += WG) {
		let n4 = e % (BN / 4u);
		let k = e / (BN / 4u);
		let p = k0 + k;
		let gn = n0 + 4u * n4;
		var v = vec4<f32>(0.0);
		if (gn < N && p < p1) {
			v = x4[(perm[p] * N + gn) / 4u];
		}
		Bs4[k * SB + n4] = v;
	}
}

// tn_base is where slot z of group g writes: dW[g] itself without a split,
// its partial otherwise.
fn tn_base(g: u32, z: u32) -> u32 {
	if (ACCUM) {
		return g * M * N;
	}
	return C_OFF + z * M * N;
}

fn tn_store(acc: ptr<function, array<vec4<f32>, 16>>, m0: u32, n0: u32, base: u32) {
	for (var i = 0u; i < TM4; i++) {
		for (var r = 0u; r < 4u; r++) {
			let m = m0 + (i * TY + ty) * 4u + r;
			if (m >= M) {
				continue;
			}
			for (var j = 0u; j < TN4; j++) {
				let v = (*acc)[(i * 4u + r) * TN4 + j];
				let n = n0 + (j * TX + tx) * 4u;
				for (var q = 0u; q < 4u; q++) {
					if (n + q < N) {
						let o = base + m * N + n + q;
						var y = v[q];
						if (ACCUM) {
							y += dw[o];
						}
						dw[o] = y;
					}
				}
			}
		}
	}
}

fn tn_store4(acc: ptr<function, array<vec4<f32>, 16>>, m0: u32, n0: u32, base: u32) {
	for (var i = 0u; i < TM4; i++) {
		for (var r = 0u; r < 4u; r++) {
			let m = m0 + (i * TY + ty) * 4u + r;
			if (m >= M) {
				continue;
			}
			for (var j = 0u; j < TN4; j++) {
				let n = n0 + (j * TX + tx) * 4u;
				if (n < N) {
					let o = (base + m * N + n) / 4u;
					var y = (*acc)[(i * 4u + r) * TN4 + j];
					if (ACCUM) {
						y += dw4[o];
					}
					dw4[o] = y;
				}
			}
		}
	}
}

// Dispatch ceil(M/BM)*ceil(N/BN) tiles (nn.Grid over x and y) by
// ceil(ROWS/CHUNK) + G - 1 slots in z; slots past the groups' chunks return.
@compute @workgroup_size(WG)
fn grouped_tn(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
	@builtin(local_invocation_index) lid: u32) {
	setup(lid);
	let lin = wg.x + wg.y * nwg.x;
	let sp = span_of(wg.z, CHUNK);
	if (lin >= TILES_TN || !sp.ok) {
		return;
	}
	let m0 = (lin / TILES_N) * BM;
	let n0 = (lin % TILES_N) * BN;
	var acc: array<vec4<f32>, 16>;
	for (var k0 = sp.p0; k0 < sp.p1; k0 += BK) {
		tn_load(m0, n0, k0, sp.p1);
		workgroupBarrier();
		mma(&acc);
		workgroupBarrier();
	}
	tn_store(&acc, m0, n0, tn_base(sp.g, wg.z));
}

@compute @workgroup_size(WG)
fn grouped_tn_v4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
	@builtin(local_invocation_index) lid: u32) {
	setup(lid);
	let lin = wg.x + wg.y * nwg.x;
	let sp = span_of(wg.z, CHUNK);
	if (lin >= TILES_TN || !sp.ok) {
		return;
	}
	let m0 = (lin / TILES_N) * BM;
	let n0 = (lin % TILES_N) * BN;
	var acc: array<vec4<f32>, 16>;
	for (var k0 = sp.p0; k0 < sp.p1; k0 += BK) {
		tn_load4(m0, n0, k0, sp.p1);
		workgroupBarrier();
		mma(&acc);
		workgroupBarrier();
	}
	tn_store4(&acc, m0, n0, tn_base(sp.g, wg.z));
}

// ---- bias gradient and split-K epilogue ----

override LEN: u32 = 1u;              // grouped_reduce: elements of one group's output

@group(0) @binding(2) var<storage, read> gdy: array<f32>;          // (ROWS, N)
@group(0) @binding(3) var<storage, read_write> gdb: array<f32>;    // (G, N), or partials C_OFF + (Z, N)

// grouped_colsum: for slot z (group g, rows perm[p0..p1)), the column sums
// of dy over those rows: gdb[g][n] += (ACCUM, no split) or partial z =.
// Dispatch (ceil(N/256), 1, ceil(ROWS/CHUNK) + G - 1).
@compute @workgroup_size(256)
fn grouped_colsum(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
	let n = wg.x * 256u + lid;
	let sp = span_of(wg.z, CHUNK);
	if (n >= N || !sp.ok) {
		return;
	}
	var s = 0.0;
	for (var p = sp.p0; p < sp.p1; p++) {
		s += gdy[perm[p] * N + n];
	}
	if (ACCUM) {
		gdb[sp.g * N + n] += s;
	} else {
		gdb[C_OFF + wg.z * N + n] = s;
	}
}

@group(0) @binding(1) var<storage, read> part: array<f32>;         // C_OFF + (Z, LEN)
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;    // (G, LEN)

// grouped_reduce: dst[g][i] += the partials of group g's slots, in order;
// nothing for a group without rows. Dispatch ceil(G*LEN/256) workgroups
// (nn.Grid).
@compute @workgroup_size(256)
fn grouped_reduce(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
	@builtin(local_invocation_index) lid: u32) {
	let e = (wg.x + wg.y * nwg.x) * 256u + lid;
	if (e >= G * LEN) {
		return;
	}
	let g = e / LEN;
	let i = e % LEN;
	let z0 = first_slot(g, CHUNK);
	let z1 = z0 + (offsets[g + 1u] - offsets[g] + CHUNK - 1u) / CHUNK;
	if (z1 == z0) {
		return;
	}
	var s = 0.0;
	for (var z = z0; z < z1; z++) {
		s += part[C_OFF + z * LEN + i];
	}
	dst[e] += s;
}
