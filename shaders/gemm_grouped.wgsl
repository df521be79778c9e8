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
//                      NT (B_T false) Y = X·W[g]ᵀ + b[g];  NN (B_T true) dX = dY·W[g];
//                      split-K when CHUNK < KD: workgroup z reduces over k in
//                      [z*CHUNK, min(KD, (z+1)*CHUNK)) and writes its partial
//                      C_OFF + z*ROWS*N (=; only partial 0 adds the bias), which
//                      gemm.wgsl's gemm_reduce (ASSIGN or not) sums in order
//   grouped_tn[_v4]    dW[g] += Σ_{t in group g} dY[t]ᵀ X[t], split into chunks of
//                      CHUNK rows of one group each (slot z); with ACCUM (no split:
//                      CHUNK >= ROWS) a slot adds into dW[g] directly, otherwise it
//                      writes the partial C_OFF + z*M*N and grouped_reduce sums a
//                      group's partials in order.
//   grouped_colsum     the bias gradient db[g] per slot, likewise.
//   grouped_reduce     dst[g] += the partials of group g, in order; an empty group
//                      is left untouched.
//
// grouped_gemm and grouped_tn come as scalar, _v4, _v4p (register
// prefetch) and _v4db (register prefetch into double-buffered tiles, NBUF
// 2) entry points, as gemm.wgsl's.
//
// The tile (BM x BN tiles, BK steps, 8 x 8 outputs in vec4 registers per
// invocation, padded workgroup tiles, register prefetch, double buffering,
// the workgroup order tile_at) is gemm.wgsl's: both import
// shared/gemm_tile.wgsl. What is this file's own is the row gather through
// the routing table and the scatter back.

override ROWS: u32 = 1u;             // rows of the batch
override G: u32 = 1u;                // modalities
override M: u32 = 1u;                // grouped_tn: rows of dW[g] (N of the layer); the tile's TILES_MN counts dW[g]'s tiles
override N: u32 = 1u;                // columns of C
override KD: u32 = 1u;               // reduction length (grouped_gemm)
override B_T: bool = false;          // grouped_gemm: B stored (G, KD, N) instead of (G, N, KD)
override HAS_BIAS: bool = false;     // add bias[g][n]
override ACCUM: bool = false;        // C += instead of C = (grouped_tn: no split)
override CHUNK: u32 = 0xffffffffu;   // grouped_tn: rows per slot; grouped_gemm: reduction chunk (a multiple of BK)
override C_OFF: u32 = 0u;            // element offset of the partials in c
//#import gemm_tile

const NONE: u32 = 0xffffffffu;

// Routing tables: offsets in every entry point, perm in all but grouped_reduce.
@group(0) @binding(0) var<storage, read> offsets: array<u32>;   // (G+1)
@group(0) @binding(1) var<storage, read> perm: array<u32>;      // (ROWS)

// The element type of the GEMM inputs (a, b, dy, x): float32, or float16
// in the f16 variant (converted to float32 as they are loaded; see
// gemm.wgsl).
//#if f16
//| alias in1 = f16;
//| alias in4 = vec4<f16>;
//#else
alias in1 = f32;
alias in4 = vec4<f32>;
//#endif

// grouped_gemm: scalar and vec4 views.
@group(0) @binding(2) var<storage, read> a: array<in1>;          // (ROWS, KD): X or dY
@group(0) @binding(3) var<storage, read> b: array<in1>;          // (G, N, KD) or (G, KD, N) if B_T
@group(0) @binding(4) var<storage, read> bias: array<f32>;       // (G, N); any buffer without HAS_BIAS
@group(0) @binding(5) var<storage, read_write> c: array<f32>;    // (ROWS, N)
@group(0) @binding(2) var<storage, read> a4: array<in4>;             // (ROWS, KD/4)
@group(0) @binding(3) var<storage, read> b4: array<in4>;             // (G, N, KD/4) or (G, KD, N/4)
@group(0) @binding(5) var<storage, read_write> c4: array<vec4<f32>>;  // (ROWS, N/4)

// grouped_tn: scalar and vec4 views.
@group(0) @binding(2) var<storage, read> dy: array<in1>;         // (ROWS, M)
@group(0) @binding(3) var<storage, read> x: array<in1>;          // (ROWS, N)
@group(0) @binding(4) var<storage, read_write> dw: array<f32>;   // (G, M, N), or partials C_OFF + (Z, M, N)
@group(0) @binding(2) var<storage, read> dy4: array<in4>;            // (ROWS, M/4)
@group(0) @binding(3) var<storage, read> x4: array<in4>;             // (ROWS, N/4)
@group(0) @binding(4) var<storage, read_write> dw4: array<vec4<f32>>; // (G, M, N/4), or C_OFF/4 + (Z, M, N/4)

var<workgroup> rowid: array<u32, BM>;   // grouped_gemm: the rows of the tile (NONE past its group)

// grouped_gemm: this workgroup's reduction chunk [kbeg, kend), where its C
// starts (partial z of a split, or C itself) and whether it adds the bias.
var<private> kend: u32;
var<private> cbase: u32;
var<private> with_bias: bool;

// gg_chunk sets kend, cbase and with_bias for chunk z and returns kbeg.
fn gg_chunk(z: u32) -> u32 {
	let kbeg = z * CHUNK;
	kend = min(KD, kbeg + CHUNK);
	cbase = C_OFF + z * ROWS * N;
	with_bias = HAS_BIAS && z == 0u;
	return kbeg;
}

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

// slots is the number of row-tile slots of grouped_gemm: at most
// ceil(ROWS/BM) + G - 1 (each group's last tile may be partial).
fn slots() -> u32 {
	return (ROWS + BM - 1u) / BM + G - 1u;
}

fn setup(lid: u32) {
	tile_setup(lid);
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
		if (t != NONE && gk < kend) {
			v = f32(a[t * KD + gk]);
		}
		put_a(m, k, v);
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
		if (gn < N && gk < kend) {
			if (B_T) {
				v = f32(b[boff + gk * N + gn]);
			} else {
				v = f32(b[boff + gn * KD + gk]);
			}
		}
		put_b(n, k, v);
	}
}

fn gg_load4(boff: u32, n0: u32, k0: u32) {
	for (var e = li; e < BM * BK / 4u; e += WG) {
		let k4 = e % (BK / 4u);
		let m = e / (BK / 4u);
		let t = rowid[m];
		let gk = k0 + 4u * k4;
		var v = vec4<f32>(0.0);
		if (t != NONE && gk < kend) {
			v = vec4<f32>(a4[(t * KD + gk) / 4u]);
		}
		stash_a_k(e, v);
	}
	for (var e = li; e < BN * BK / 4u; e += WG) {
		if (B_T) {
			let n4 = e % (BN / 4u);
			let k = e / (BN / 4u);
			let gn = n0 + 4u * n4;
			let gk = k0 + k;
			var v = vec4<f32>(0.0);
			if (gn < N && gk < kend) {
				v = vec4<f32>(b4[(boff + gk * N + gn) / 4u]);
			}
			stash_b_n(e, v);
		} else {
			let k4 = e % (BK / 4u);
			let n = e / (BK / 4u);
			let gn = n0 + n;
			let gk = k0 + 4u * k4;
			var v = vec4<f32>(0.0);
			if (gn < N && gk < kend) {
				v = vec4<f32>(b4[(boff + gn * KD + gk) / 4u]);
			}
			stash_b_k(e, v);
		}
	}
}

// gg_put stores C[o + q] for q < 4 and n + q < N, with group g's bias.
fn gg_put(o: u32, n: u32, g: u32, v: vec4<f32>) {
	for (var q = 0u; q < 4u; q++) {
		if (n + q < N) {
			var y = v[q];
			if (with_bias) {
				y += bias[g * N + n + q];
			}
			if (ACCUM) {
				y += c[o + q];
			}
			c[o + q] = y;
		}
	}
}

fn gg_put4(o: u32, n: u32, g: u32, v: vec4<f32>) {
	if (n < N) {
		var y = v;
		if (with_bias) {
			let bo = g * N + n;
			y += vec4<f32>(bias[bo], bias[bo + 1u], bias[bo + 2u], bias[bo + 3u]);
		}
		if (ACCUM) {
			y += c4[o / 4u];
		}
		c4[o / 4u] = y;
	}
}

// gg_row scatters the row of acc index r back to its row t of C.
fn gg_row(r: u32, v0: vec4<f32>, v1: vec4<f32>, g: u32, n0: u32) {
	let t = rowid[row_of(r)];
	if (t != NONE) {
		let na = n0 + tx * 4u;
		let nb = n0 + (TX + tx) * 4u;
		gg_put(cbase + t * N + na, na, g, v0);
		gg_put(cbase + t * N + nb, nb, g, v1);
	}
}

fn gg_row4(r: u32, v0: vec4<f32>, v1: vec4<f32>, g: u32, n0: u32) {
	let t = rowid[row_of(r)];
	if (t != NONE) {
		let na = n0 + tx * 4u;
		let nb = n0 + (TX + tx) * 4u;
		gg_put4(cbase + t * N + na, na, g, v0);
		gg_put4(cbase + t * N + nb, nb, g, v1);
	}
}

fn gg_store(acc: ptr<function, array<vec4<f32>, 16>>, g: u32, n0: u32) {
	gg_row(0u, (*acc)[0], (*acc)[1], g, n0);
	gg_row(1u, (*acc)[2], (*acc)[3], g, n0);
	gg_row(2u, (*acc)[4], (*acc)[5], g, n0);
	gg_row(3u, (*acc)[6], (*acc)[7], g, n0);
	gg_row(4u, (*acc)[8], (*acc)[9], g, n0);
	gg_row(5u, (*acc)[10], (*acc)[11], g, n0);
	gg_row(6u, (*acc)[12], (*acc)[13], g, n0);
	gg_row(7u, (*acc)[14], (*acc)[15], g, n0);
}

fn gg_store4(acc: ptr<function, array<vec4<f32>, 16>>, g: u32, n0: u32) {
	gg_row4(0u, (*acc)[0], (*acc)[1], g, n0);
	gg_row4(1u, (*acc)[2], (*acc)[3], g, n0);
	gg_row4(2u, (*acc)[4], (*acc)[5], g, n0);
	gg_row4(3u, (*acc)[6], (*acc)[7], g, n0);
	gg_row4(4u, (*acc)[8], (*acc)[9], g, n0);
	gg_row4(5u, (*acc)[10], (*acc)[11], g, n0);
	gg_row4(6u, (*acc)[12], (*acc)[13], g, n0);
	gg_row4(7u, (*acc)[14], (*acc)[15], g, n0);
}

// GgTile is where a grouped NT/NN workgroup starts: its group g, its
// column tile n0, the group's weight offset boff and its chunk [kbeg, kstop)
// of the reduction (kstop is kend as a uniform value); ok is false for a
// slot past the groups' tiles, which returns.
struct GgTile {
	ok: bool,
	g: u32,
	n0: u32,
	boff: u32,
	kbeg: u32,
	kstop: u32,
}

// gg_begin finds the workgroup's tile, gathers its rows into workgroup
// memory and sets its chunk (gg_chunk).
fn gg_begin(wg: vec3<u32>, nwg: vec3<u32>, lid: u32) -> GgTile {
	setup(lid);
	var t: GgTile;
	t.ok = false;
	let lin = wg.x + wg.y * nwg.x;
	if (lin >= slots() * TILES_N) {
		return t;
	}
	let at = tile_at(lin, slots());
	let sp = span_of(at.x, BM);
	if (!sp.ok) {
		return t;
	}
	gather_rows(sp);
	t.ok = true;
	t.g = sp.g;
	t.n0 = at.y * BN;
	t.boff = sp.g * N * KD;
	t.kbeg = gg_chunk(wg.z);
	t.kstop = min(KD, t.kbeg + CHUNK);
	return t;
}

// Dispatch (ceil(ROWS/BM) + G - 1) row-tile slots x ceil(N/BN) column tiles
// (split over x and y by nn.Grid) by ceil(KD/CHUNK) reduction chunks in z;
// slots past the groups' tiles return.
@compute @workgroup_size(WG)
fn grouped_gemm(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
	@builtin(local_invocation_index) lid: u32) {
	let t = gg_begin(wg, nwg, lid);
	if (!t.ok) {
		return;
	}
	let n0 = t.n0;
	let boff = t.boff;
	let kbeg = t.kbeg;
	let kstop = t.kstop;
	var acc: array<vec4<f32>, 16>;
	for (var k0 = kbeg; k0 < kstop; k0 += BK) {
		gg_load(boff, n0, k0);
		workgroupBarrier();
		mma_arr(&acc);
		workgroupBarrier();
	}
	gg_store(&acc, t.g, n0);
}

@compute @workgroup_size(WG)
fn grouped_gemm_v4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
	@builtin(local_invocation_index) lid: u32) {
	let t = gg_begin(wg, nwg, lid);
	if (!t.ok) {
		return;
	}
	let n0 = t.n0;
	let boff = t.boff;
	let kbeg = t.kbeg;
	let kstop = t.kstop;
	var acc: array<vec4<f32>, 16>;
	for (var k0 = kbeg; k0 < kstop; k0 += BK) {
		gg_load4(boff, n0, k0);
		workgroupBarrier();
		mma_arr(&acc);
		workgroupBarrier();
	}
	gg_store4(&acc, t.g, n0);
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
			v = f32(dy[perm[p] * M + gm]);
		}
		put_a(m, k, v);
	}
	for (var e = li; e < BN * BK; e += WG) {
		let n = e % BN;
		let k = e / BN;
		let p = k0 + k;
		let gn = n0 + n;
		var v = 0.0;
		if (gn < N && p < p1) {
			v = f32(x[perm[p] * N + gn]);
		}
		put_b(n, k, v);
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
			v = vec4<f32>(dy4[(perm[p] * M + gm) / 4u]);
		}
		stash_a_m(e, v);
	}
	for (var e = li; e < BN * BK / 4u; e += WG) {
		let n4 = e % (BN / 4u);
		let k = e / (BN / 4u);
		let p = k0 + k;
		let gn = n0 + 4u * n4;
		var v = vec4<f32>(0.0);
		if (gn < N && p < p1) {
			v = vec4<f32>(x4[(perm[p] * N + gn) / 4u]);
		}
		stash_b_n(e, v);
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

fn tn_put(o: u32, n: u32, v: vec4<f32>) {
	for (var q = 0u; q < 4u; q++) {
		if (n + q < N) {
			var y = v[q];
			if (ACCUM) {
				y += dw[o + q];
			}
			dw[o + q] = y;
		}
	}
}

fn tn_put4(o: u32, n: u32, v: vec4<f32>) {
	if (n < N) {
		var y = v;
		if (ACCUM) {
			y += dw4[o / 4u];
		}
		dw4[o / 4u] = y;
	}
}

fn tn_row(r: u32, v0: vec4<f32>, v1: vec4<f32>, m0: u32, n0: u32, base: u32) {
	let m = m0 + row_of(r);
	if (m < M) {
		let na = n0 + tx * 4u;
		let nb = n0 + (TX + tx) * 4u;
		tn_put(base + m * N + na, na, v0);
		tn_put(base + m * N + nb, nb, v1);
	}
}

fn tn_row4(r: u32, v0: vec4<f32>, v1: vec4<f32>, m0: u32, n0: u32, base: u32) {
	let m = m0 + row_of(r);
	if (m < M) {
		let na = n0 + tx * 4u;
		let nb = n0 + (TX + tx) * 4u;
		tn_put4(base + m * N + na, na, v0);
		tn_put4(base + m * N + nb, nb, v1);
	}
}

fn tn_store(acc: ptr<function, array<vec4<f32>, 16>>, m0: u32, n0: u32, base: u32) {
	tn_row(0u, (*acc)[0], (*acc)[1], m0, n0, base);
	tn_row(1u, (*acc)[2], (*acc)[3], m0, n0, base);
	tn_row(2u, (*acc)[4], (*acc)[5], m0, n0, base);
	tn_row(3u, (*acc)[6], (*acc)[7], m0, n0, base);
	tn_row(4u, (*acc)[8], (*acc)[9], m0, n0, base);
	tn_row(5u, (*acc)[10], (*acc)[11], m0, n0, base);
	tn_row(6u, (*acc)[12], (*acc)[13], m0, n0, base);
	tn_row(7u, (*acc)[14], (*acc)[15], m0, n0, base);
}

fn tn_store4(acc: ptr<function, array<vec4<f32>, 16>>, m0: u32, n0: u32, base: u32) {
	tn_row4(0u, (*acc)[0], (*acc)[1], m0, n0, base);
	tn_row4(1u, (*acc)[2], (*acc)[3], m0, n0, base);
	tn_row4(2u, (*acc)[4], (*acc)[5], m0, n0, base);
	tn_row4(3u, (*acc)[6], (*acc)[7], m0, n0, base);
	tn_row4(4u, (*acc)[8], (*acc)[9], m0, n0, base);
	tn_row4(5u, (*acc)[10], (*acc)[11], m0, n0, base);
	tn_row4(6u, (*acc)[12], (*acc)[13], m0, n0, base);
	tn_row4(7u, (*acc)[14], (*acc)[15], m0, n0, base);
}

// Dispatch ceil(M/BM)*ceil(N/BN) tiles (nn.Grid over x and y) by
// ceil(ROWS/CHUNK) + G - 1 slots in z; slots past the groups' chunks return.
@compute @workgroup_size(WG)
fn grouped_tn(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
	@builtin(local_invocation_index) lid: u32) {
	setup(lid);
	let lin = wg.x + wg.y * nwg.x;
	let sp = span_of(wg.z, CHUNK);
	if (lin >= TILES_MN || !sp.ok) {
		return;
	}
	let at = tile_at(lin, TILES_M);
	let m0 = at.x * BM;
	let n0 = at.y * BN;
	var acc: array<vec4<f32>, 16>;
	for (var k0 = sp.p0; k0 < sp.p1; k0 += BK) {
		tn_load(m0, n0, k0, sp.p1);
		workgroupBarrier();
		mma_arr(&acc);
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
	if (lin >= TILES_MN || !sp.ok) {
		return;
	}
	let at = tile_at(lin, TILES_M);
	let m0 = at.x * BM;
	let n0 = at.y * BN;
	var acc: array<vec4<f32>, 16>;
	for (var k0 = sp.p0; k0 < sp.p1; k0 += BK) {
		tn_load4(m0, n0, k0, sp.p1);
		workgroupBarrier();
		mma_arr(&acc);
		workgroupBarrier();
	}
	tn_store4(&acc, m0, n0, tn_base(sp.g, wg.z));
}

// ---- vec4 loads with register prefetch (grouped_*_v4p, grouped_*_v4db) ----
// As gemm_v4p in gemm.wgsl: the next step's tiles wait in the tile's
// registers ra0..ra3, rb0..rb3 during the current step's inner product.

// A of grouped_gemm: row rowid[m], contiguous along k (stored transposed).
fn gg_fetch_a(e: u32, k0: u32) -> vec4<f32> {
	var v = vec4<f32>(0.0);
	if (e < BM * BK / 4u) {
		let t = rowid[e / (BK / 4u)];
		let gk = k0 + 4u * (e % (BK / 4u));
		if (t != NONE && gk < kend) {
			v = vec4<f32>(a4[(t * KD + gk) / 4u]);
		}
	}
	return v;
}

fn gg_fetch_b(e: u32, boff: u32, n0: u32, k0: u32) -> vec4<f32> {
	var v = vec4<f32>(0.0);
	if (e < BN * BK / 4u) {
		if (B_T) {
			let gn = n0 + 4u * (e % (BN / 4u));
			let gk = k0 + e / (BN / 4u);
			if (gn < N && gk < kend) {
				v = vec4<f32>(b4[(boff + gk * N + gn) / 4u]);
			}
		} else {
			let gn = n0 + e / (BK / 4u);
			let gk = k0 + 4u * (e % (BK / 4u));
			if (gn < N && gk < kend) {
				v = vec4<f32>(b4[(boff + gn * KD + gk) / 4u]);
			}
		}
	}
	return v;
}

// tn_fetch_a: A(m, p) = dy[perm[p]*M + m], contiguous along m.
fn tn_fetch_a(e: u32, m0: u32, k0: u32, p1: u32) -> vec4<f32> {
	var v = vec4<f32>(0.0);
	if (e < BM * BK / 4u) {
		let gm = m0 + 4u * (e % (BM / 4u));
		let p = k0 + e / (BM / 4u);
		if (gm < M && p < p1) {
			v = vec4<f32>(dy4[(perm[p] * M + gm) / 4u]);
		}
	}
	return v;
}

// tn_fetch_b: B(p, n) = x[perm[p]*N + n], contiguous along n.
fn tn_fetch_b(e: u32, n0: u32, k0: u32, p1: u32) -> vec4<f32> {
	var v = vec4<f32>(0.0);
	if (e < BN * BK / 4u) {
		let gn = n0 + 4u * (e % (BN / 4u));
		let p = k0 + e / (BN / 4u);
		if (gn < N && p < p1) {
			v = vec4<f32>(x4[(perm[p] * N + gn) / 4u]);
		}
	}
	return v;
}

fn gg_fetch(boff: u32, n0: u32, k0: u32) {
	ra0 = gg_fetch_a(li, k0);
	if (PA > 1u) {
		ra1 = gg_fetch_a(li + WG, k0);
	}
	if (PA > 2u) {
		ra2 = gg_fetch_a(li + 2u * WG, k0);
		ra3 = gg_fetch_a(li + 3u * WG, k0);
	}
	rb0 = gg_fetch_b(li, boff, n0, k0);
	if (PB > 1u) {
		rb1 = gg_fetch_b(li + WG, boff, n0, k0);
	}
	if (PB > 2u) {
		rb2 = gg_fetch_b(li + 2u * WG, boff, n0, k0);
		rb3 = gg_fetch_b(li + 3u * WG, boff, n0, k0);
	}
}

// gg_stash stores the registers into half h: A along k, B along k unless
// B_T.
fn gg_stash(h: u32) {
	stash_regs(true, !B_T, h);
}

fn tn_fetch(m0: u32, n0: u32, k0: u32, p1: u32) {
	ra0 = tn_fetch_a(li, m0, k0, p1);
	if (PA > 1u) {
		ra1 = tn_fetch_a(li + WG, m0, k0, p1);
	}
	if (PA > 2u) {
		ra2 = tn_fetch_a(li + 2u * WG, m0, k0, p1);
		ra3 = tn_fetch_a(li + 3u * WG, m0, k0, p1);
	}
	rb0 = tn_fetch_b(li, n0, k0, p1);
	if (PB > 1u) {
		rb1 = tn_fetch_b(li + WG, n0, k0, p1);
	}
	if (PB > 2u) {
		rb2 = tn_fetch_b(li + 2u * WG, n0, k0, p1);
		rb3 = tn_fetch_b(li + 3u * WG, n0, k0, p1);
	}
}

// tn_stash stores the registers into half h: A along m, B along n.
fn tn_stash(h: u32) {
	stash_regs(false, false, h);
}

@compute @workgroup_size(WG)
fn grouped_gemm_v4p(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
	@builtin(local_invocation_index) lid: u32) {
	let t = gg_begin(wg, nwg, lid);
	if (!t.ok) {
		return;
	}
	let n0 = t.n0;
	let boff = t.boff;
	let kbeg = t.kbeg;
	let kstop = t.kstop;
	var acc: array<vec4<f32>, 16>;
	gg_fetch(boff, n0, kbeg);
	for (var k0 = kbeg; k0 < kstop; k0 += BK) {
		gg_stash(0u);
		workgroupBarrier();
		gg_fetch(boff, n0, k0 + BK);
		mma_arr(&acc);
		workgroupBarrier();
	}
	gg_store4(&acc, t.g, n0);
}

@compute @workgroup_size(WG)
fn grouped_tn_v4p(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
	@builtin(local_invocation_index) lid: u32) {
	setup(lid);
	let lin = wg.x + wg.y * nwg.x;
	let sp = span_of(wg.z, CHUNK);
	if (lin >= TILES_MN || !sp.ok) {
		return;
	}
	let at = tile_at(lin, TILES_M);
	let m0 = at.x * BM;
	let n0 = at.y * BN;
	var acc: array<vec4<f32>, 16>;
	tn_fetch(m0, n0, sp.p0, sp.p1);
	for (var k0 = sp.p0; k0 < sp.p1; k0 += BK) {
		tn_stash(0u);
		workgroupBarrier();
		tn_fetch(m0, n0, k0 + BK, sp.p1);
		mma_arr(&acc);
		workgroupBarrier();
	}
	tn_store4(&acc, m0, n0, tn_base(sp.g, wg.z));
}

// grouped_gemm_v4db and grouped_tn_v4db: grouped_gemm_v4p and
// grouped_tn_v4p with double-buffered tiles (NBUF 2), one barrier per step,
// as gemm_v4db in gemm.wgsl.
@compute @workgroup_size(WG)
fn grouped_gemm_v4db(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
	@builtin(local_invocation_index) lid: u32) {
	let t = gg_begin(wg, nwg, lid);
	if (!t.ok) {
		return;
	}
	let n0 = t.n0;
	let boff = t.boff;
	let kbeg = t.kbeg;
	let kstop = t.kstop;
	var acc: array<vec4<f32>, 16>;
	gg_fetch(boff, n0, kbeg);
	gg_stash(0u);
	workgroupBarrier();
	var h = 0u;
	for (var k0 = kbeg; k0 < kstop; k0 += BK) {
		gg_fetch(boff, n0, k0 + BK);
		mma_arr_at(&acc, h);
		h ^= 1u;
		gg_stash(h);
		workgroupBarrier();
	}
	gg_store4(&acc, t.g, n0);
}

@compute @workgroup_size(WG)
fn grouped_tn_v4db(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
	@builtin(local_invocation_index) lid: u32) {
	setup(lid);
	let lin = wg.x + wg.y * nwg.x;
	let sp = span_of(wg.z, CHUNK);
	if (lin >= TILES_MN || !sp.ok) {
		return;
	}
	let at = tile_at(lin, TILES_M);
	let m0 = at.x * BM;
	let n0 = at.y * BN;
	var acc: array<vec4<f32>, 16>;
	tn_fetch(m0, n0, sp.p0, sp.p1);
	tn_stash(0u);
	workgroupBarrier();
	var h = 0u;
	for (var k0 = sp.p0; k0 < sp.p1; k0 += BK) {
		tn_fetch(m0, n0, k0 + BK, sp.p1);
		mma_arr_at(&acc, h);
		h ^= 1u;
		tn_stash(h);
		workgroupBarrier();
	}
	tn_store4(&acc, m0, n0, tn_base(sp.g, wg.z));
}

// ---- bias gradient and split-K epilogue ----

override LEN: u32 = 1u;              // grouped_reduce: elements of one group's output

@group(0) @binding(2) var<storage, read> gdy: array<in1>;          // (ROWS, N)
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
		s += f32(gdy[perm[p] * N + n]);
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
