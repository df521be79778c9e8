// gemm_tile.wgsl: the SGEMM tile of gemm.wgsl and gemm_grouped.wgsl,
// imported by both (//#import gemm_tile), so that it is tuned once. The
// kernels differ only in how they find their rows: the plain GEMM reads
// A, B and C at strides, the grouped GEMM gathers rows through the routing
// table and scatters them back.
//
// A workgroup computes a BM x BN tile of C (BM, BN multiples of 8) in
// reduction steps of BK (a multiple of 4) through two padded tiles of
// workgroup memory, each made of NBUF halves of HA (HB) vec4 (NBUF 2: the
// double-buffered *_v4db entry points; half h starts at h*HA):
//   As4[h*HA + k*SA + m/4][m%4] = A(m0+m, k0+k),   Bs4[h*HB + k*SB + n/4][n%4] = B(k0+k, n0+n).
// Each of its WG = (BM/8)*(BN/8) invocations owns 8 x 8 outputs held in 16
// vec4 registers: rows m0 + (i*TY + ty)*4 + r (i < 2, r < 4) and columns
// n0 + (j*TX + tx)*4 + q (j < 2, q < 4), as acc{(4*i + r)*2 + j}[q]
// (row_of maps an acc row index to its row in the tile).
//
// The entry points of each importer, by how a step's tiles get to
// workgroup memory:
//   plain (gemm, grouped_gemm, grouped_tn) and *_v4: loaded straight into
//     the one half, two barriers per step;
//   *_v4p: register prefetch (ra*, rb* below): the next step's vec4 are
//     loaded into registers before this step's inner product and stored
//     after it, two barriers per step;
//   *_v4db: register prefetch into two halves (NBUF 2): step s computes
//     from half s%2 while the registers of step s+1 are stored into the
//     other half, one barrier per step.
// The order of the workgroups over the tiles (tile_at) is row by row, or,
// with BAND > 1, column by column within bands of BAND tile rows, so that
// the workgroups running together share rows of A and columns of B in L2.

override BM: u32 = 64u;            // tile rows
override BN: u32 = 64u;            // tile columns
override BK: u32 = 16u;            // reduction step (a multiple of 4)

override TY: u32 = BM / 8u;        // invocations along m (8 rows each)
override TX: u32 = BN / 8u;        // invocations along n (8 columns each)
override WG: u32 = TX * TY;
override SA: u32 = BM / 4u + 1u;   // row stride of As4 in vec4 (padded against bank conflicts)
override SB: u32 = BN / 4u + 1u;
override NBUF: u32 = 1u;           // halves of each tile: 1, or 2 (double buffering, *_v4db)
override HA: u32 = SA * BK;        // vec4 in one half of As4
override HB: u32 = SB * BK;        // vec4 in one half of Bs4
override BAND: u32 = 1u;           // tile rows per band of the workgroup order (1: row by row)
// Register prefetch: vec4 of A (PA) and of B (PB) each invocation holds
// for the next step, at most 4 (ra0..ra3, rb0..rb3): needs 4*BK <= BN
// (for A) and 4*BK <= BM (for B).
override PA: u32 = (BM * BK / 4u + WG - 1u) / WG;
override PB: u32 = (BN * BK / 4u + WG - 1u) / WG;
// The tiles of the output C, which is M x N: an importer declares the
// overrides M and N. (They are declared here, before the tile's workgroup
// memory: naga 29 panicked creating the pipelines when these overrides came
// after it.)
override TILES_M: u32 = (M + BM - 1u) / BM;
override TILES_N: u32 = (N + BN - 1u) / BN;
override TILES_MN: u32 = TILES_M * TILES_N;

var<workgroup> As4: array<vec4<f32>, HA * NBUF>;
var<workgroup> Bs4: array<vec4<f32>, HB * NBUF>;

var<private> li: u32;       // local invocation index
var<private> tx: u32;       // column group of this invocation
var<private> ty: u32;       // row group of this invocation

fn tile_setup(lid: u32) {
	li = lid;
	tx = lid % TX;
	ty = lid / TX;
}

// tile_at maps the linear workgroup index t (< rows*TILES_N) to its tile:
// (tile row, tile column) of a grid of rows x TILES_N tiles. Row by row
// when BAND <= 1; otherwise the rows are cut into bands of BAND rows (the
// last may be shorter), walked band after band, each column by column.
fn tile_at(t: u32, rows: u32) -> vec2<u32> {
	if (BAND <= 1u) {
		return vec2<u32>(t / TILES_N, t % TILES_N);
	}
	let per = BAND * TILES_N;
	let first = (t / per) * BAND;
	let h = min(BAND, rows - first);
	let r = t % per;
	return vec2<u32>(first + r % h, r / h);
}

// ---- filling the tiles ----

// put_a and put_b store one value: A(m0+m, k0+k) and B(k0+k, n0+n).
fn put_a(m: u32, k: u32, v: f32) {
	As4[k * SA + m / 4u][m % 4u] = v;
}

fn put_b(n: u32, k: u32, v: f32) {
	Bs4[k * SB + n / 4u][n % 4u] = v;
}

// stash_a_k stores vec4 number e of A's tile read along k into half h:
// row m = e/(BK/4), columns 4*(e%(BK/4)) .. +3, transposed into four rows
// of As4.
fn stash_a_k(e: u32, v: vec4<f32>) {
	stash_a_k_at(e, v, 0u);
}

fn stash_a_k_at(e: u32, v: vec4<f32>, h: u32) {
	let m = e / (BK / 4u);
	let s = h * HA + 4u * (e % (BK / 4u)) * SA + m / 4u;
	let q = m % 4u;
	As4[s][q] = v.x;
	As4[s + SA][q] = v.y;
	As4[s + 2u * SA][q] = v.z;
	As4[s + 3u * SA][q] = v.w;
}

// stash_a_m stores vec4 number e of A's tile read along m: k = e/(BM/4),
// rows 4*(e%(BM/4)) .. +3.
fn stash_a_m(e: u32, v: vec4<f32>) {
	stash_a_m_at(e, v, 0u);
}

fn stash_a_m_at(e: u32, v: vec4<f32>, h: u32) {
	As4[h * HA + (e / (BM / 4u)) * SA + e % (BM / 4u)] = v;
}

// stash_b_k and stash_b_n do the same for B (read along k, or along n).
fn stash_b_k(e: u32, v: vec4<f32>) {
	stash_b_k_at(e, v, 0u);
}

fn stash_b_k_at(e: u32, v: vec4<f32>, h: u32) {
	let n = e / (BK / 4u);
	let s = h * HB + 4u * (e % (BK / 4u)) * SB + n / 4u;
	let q = n % 4u;
	Bs4[s][q] = v.x;
	Bs4[s + SB][q] = v.y;
	Bs4[s + 2u * SB][q] = v.z;
	Bs4[s + 3u * SB][q] = v.w;
}

fn stash_b_n(e: u32, v: vec4<f32>) {
	stash_b_n_at(e, v, 0u);
}

fn stash_b_n_at(e: u32, v: vec4<f32>, h: u32) {
	Bs4[h * HB + (e / (BN / 4u)) * SB + e % (BN / 4u)] = v;
}

// ---- the inner product over one BK step ----

// The invocation's 8 x 8 outputs: acc{(4*i + r)*2 + j}[q] is row
// row_of(4*i + r), column (j*TX + tx)*4 + q of the tile. Sixteen
// module-scope private vec4 (zero at the start of every invocation)
// rather than a function's array passed by pointer: on the H200 the
// driver compiled the array version 7-9% slower (4096³ 3.92 -> 3.66 ms
// through Dawn; 64 scalars instead of vec4 ran the same).
var<private> acc0: vec4<f32>;
var<private> acc1: vec4<f32>;
var<private> acc2: vec4<f32>;
var<private> acc3: vec4<f32>;
var<private> acc4: vec4<f32>;
var<private> acc5: vec4<f32>;
var<private> acc6: vec4<f32>;
var<private> acc7: vec4<f32>;
var<private> acc8: vec4<f32>;
var<private> acc9: vec4<f32>;
var<private> acc10: vec4<f32>;
var<private> acc11: vec4<f32>;
var<private> acc12: vec4<f32>;
var<private> acc13: vec4<f32>;
var<private> acc14: vec4<f32>;
var<private> acc15: vec4<f32>;

// mma adds the products of the step in half 0 to the accumulators; mma_at
// those of half h. Unrolled by hand.
fn mma() {
	mma_at(0u);
}

fn mma_at(h: u32) {
	let ab = h * HA + ty;
	let bb = h * HB + tx;
	for (var kk = 0u; kk < BK; kk++) {
		let a0 = As4[ab + kk * SA];
		let a1 = As4[ab + kk * SA + TY];
		let b0 = Bs4[bb + kk * SB];
		let b1 = Bs4[bb + kk * SB + TX];
		acc0 = fma(vec4<f32>(a0.x), b0, acc0);
		acc1 = fma(vec4<f32>(a0.x), b1, acc1);
		acc2 = fma(vec4<f32>(a0.y), b0, acc2);
		acc3 = fma(vec4<f32>(a0.y), b1, acc3);
		acc4 = fma(vec4<f32>(a0.z), b0, acc4);
		acc5 = fma(vec4<f32>(a0.z), b1, acc5);
		acc6 = fma(vec4<f32>(a0.w), b0, acc6);
		acc7 = fma(vec4<f32>(a0.w), b1, acc7);
		acc8 = fma(vec4<f32>(a1.x), b0, acc8);
		acc9 = fma(vec4<f32>(a1.x), b1, acc9);
		acc10 = fma(vec4<f32>(a1.y), b0, acc10);
		acc11 = fma(vec4<f32>(a1.y), b1, acc11);
		acc12 = fma(vec4<f32>(a1.z), b0, acc12);
		acc13 = fma(vec4<f32>(a1.z), b1, acc13);
		acc14 = fma(vec4<f32>(a1.w), b0, acc14);
		acc15 = fma(vec4<f32>(a1.w), b1, acc15);
	}
}

// mma_arr and mma_arr_at are mma and mma_at on a function's array of the
// same 16 accumulators, acc{i} as (*acc)[i]: the grouped GEMM's form. On
// the H200 its kernels ran 27% slower through Dawn with the private
// accumulators (grouped NT 1.150 -> 1.455 ms, TN 1.202 -> 1.557) and the
// same through wgpu-native, while the plain GEMM's ran 7-9% faster with
// them on both.
fn mma_arr(acc: ptr<function, array<vec4<f32>, 16>>) {
	mma_arr_at(acc, 0u);
}

fn mma_arr_at(acc: ptr<function, array<vec4<f32>, 16>>, h: u32) {
	let ab = h * HA + ty;
	let bb = h * HB + tx;
	for (var kk = 0u; kk < BK; kk++) {
		let a0 = As4[ab + kk * SA];
		let a1 = As4[ab + kk * SA + TY];
		let b0 = Bs4[bb + kk * SB];
		let b1 = Bs4[bb + kk * SB + TX];
		(*acc)[0] = fma(vec4<f32>(a0.x), b0, (*acc)[0]);
		(*acc)[1] = fma(vec4<f32>(a0.x), b1, (*acc)[1]);
		(*acc)[2] = fma(vec4<f32>(a0.y), b0, (*acc)[2]);
		(*acc)[3] = fma(vec4<f32>(a0.y), b1, (*acc)[3]);
		(*acc)[4] = fma(vec4<f32>(a0.z), b0, (*acc)[4]);
		(*acc)[5] = fma(vec4<f32>(a0.z), b1, (*acc)[5]);
		(*acc)[6] = fma(vec4<f32>(a0.w), b0, (*acc)[6]);
		(*acc)[7] = fma(vec4<f32>(a0.w), b1, (*acc)[7]);
		(*acc)[8] = fma(vec4<f32>(a1.x), b0, (*acc)[8]);
		(*acc)[9] = fma(vec4<f32>(a1.x), b1, (*acc)[9]);
		(*acc)[10] = fma(vec4<f32>(a1.y), b0, (*acc)[10]);
		(*acc)[11] = fma(vec4<f32>(a1.y), b1, (*acc)[11]);
		(*acc)[12] = fma(vec4<f32>(a1.z), b0, (*acc)[12]);
		(*acc)[13] = fma(vec4<f32>(a1.z), b1, (*acc)[13]);
		(*acc)[14] = fma(vec4<f32>(a1.w), b0, (*acc)[14]);
		(*acc)[15] = fma(vec4<f32>(a1.w), b1, (*acc)[15]);
	}
}

// row_of is the row in the tile of acc row index r (< 8) of this invocation.
fn row_of(r: u32) -> u32 {
	return ((r / 4u) * TY + ty) * 4u + r % 4u;
}

// ---- register prefetch (the *_v4p and *_v4db entry points) ----
// The next step's tiles are loaded from memory into registers before the
// current step's inner product and stored to workgroup memory after it, so
// that the load latency hides behind the arithmetic. Invocation li holds
// A's vec4 number li + i*WG in rai (i < PA) and B's in rbi (i < PB); the
// importer fetches them (its own addressing), stash_regs stores them.

var<private> ra0: vec4<f32>;
var<private> ra1: vec4<f32>;
var<private> ra2: vec4<f32>;
var<private> ra3: vec4<f32>;
var<private> rb0: vec4<f32>;
var<private> rb1: vec4<f32>;
var<private> rb2: vec4<f32>;
var<private> rb3: vec4<f32>;

// stash_ra stores A's vec4 number e (if it is one of the tile's) into half
// h: read along k (ak) or along m.
fn stash_ra(e: u32, v: vec4<f32>, ak: bool, h: u32) {
	if (e < BM * BK / 4u) {
		if (ak) {
			stash_a_k_at(e, v, h);
		} else {
			stash_a_m_at(e, v, h);
		}
	}
}

// stash_rb stores B's vec4 number e into half h: read along k (bk) or
// along n.
fn stash_rb(e: u32, v: vec4<f32>, bk: bool, h: u32) {
	if (e < BN * BK / 4u) {
		if (bk) {
			stash_b_k_at(e, v, h);
		} else {
			stash_b_n_at(e, v, h);
		}
	}
}

// stash_regs stores the prefetched registers into half h, A's read along
// k if ak (along m otherwise), B's along k if bk (along n otherwise).
fn stash_regs(ak: bool, bk: bool, h: u32) {
	stash_ra(li, ra0, ak, h);
	if (PA > 1u) {
		stash_ra(li + WG, ra1, ak, h);
	}
	if (PA > 2u) {
		stash_ra(li + 2u * WG, ra2, ak, h);
		stash_ra(li + 3u * WG, ra3, ak, h);
	}
	stash_rb(li, rb0, bk, h);
	if (PB > 1u) {
		stash_rb(li + WG, rb1, bk, h);
	}
	if (PB > 2u) {
		stash_rb(li + 2u * WG, rb2, bk, h);
		stash_rb(li + 3u * WG, rb3, bk, h);
	}
}
