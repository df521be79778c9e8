// gemm_tile.wgsl: the SGEMM tile of gemm.wgsl and gemm_grouped.wgsl,
// imported by both (//#import gemm_tile), so that it is tuned once. The
// kernels differ only in how they find their rows: the plain GEMM reads
// A, B and C at strides, the grouped GEMM gathers rows through the routing
// table and scatters them back.
//
// A workgroup computes a BM x BN tile of C (BM, BN multiples of 8) in
// reduction steps of BK (a multiple of 4) through two padded tiles of
// workgroup memory:
//   As4[k*SA + m/4][m%4] = A(m0+m, k0+k),   Bs4[k*SB + n/4][n%4] = B(k0+k, n0+n).
// Each of its WG = (BM/8)*(BN/8) invocations owns 8 x 8 outputs held in 16
// vec4 registers: rows m0 + (i*TY + ty)*4 + r (i < 2, r < 4) and columns
// n0 + (j*TX + tx)*4 + q (j < 2, q < 4), as acc[(4*i + r)*2 + j][q]
// (row_of maps an acc row index to its row in the tile).

override BM: u32 = 64u;            // tile rows
override BN: u32 = 64u;            // tile columns
override BK: u32 = 16u;            // reduction step (a multiple of 4)

override TY: u32 = BM / 8u;        // invocations along m (8 rows each)
override TX: u32 = BN / 8u;        // invocations along n (8 columns each)
override WG: u32 = TX * TY;
override SA: u32 = BM / 4u + 1u;   // row stride of As4 in vec4 (padded against bank conflicts)
override SB: u32 = BN / 4u + 1u;
// The tiles of the output C, which is M x N: an importer declares the
// overrides M and N. (They are declared here, before the tile's workgroup
// memory: naga 29 panicked creating the pipelines when these overrides came
// after it.)
override TILES_M: u32 = (M + BM - 1u) / BM;
override TILES_N: u32 = (N + BN - 1u) / BN;
override TILES_MN: u32 = TILES_M * TILES_N;

var<workgroup> As4: array<vec4<f32>, SA * BK>;
var<workgroup> Bs4: array<vec4<f32>, SB * BK>;

var<private> li: u32;       // local invocation index
var<private> tx: u32;       // column group of this invocation
var<private> ty: u32;       // row group of this invocation

fn tile_setup(lid: u32) {
	li = lid;
	tx = lid % TX;
	ty = lid / TX;
}

// ---- filling the tiles ----

// put_a and put_b store one value: A(m0+m, k0+k) and B(k0+k, n0+n).
fn put_a(m: u32, k: u32, v: f32) {
	As4[k * SA + m / 4u][m % 4u] = v;
}

fn put_b(n: u32, k: u32, v: f32) {
	Bs4[k * SB + n / 4u][n % 4u] = v;
}

// stash_a_k stores vec4 number e of A's tile read along k: row m = e/(BK/4),
// columns 4*(e%(BK/4)) .. +3, transposed into four rows of As4.
fn stash_a_k(e: u32, v: vec4<f32>) {
	let m = e / (BK / 4u);
	let s = 4u * (e % (BK / 4u)) * SA + m / 4u;
	let q = m % 4u;
	As4[s][q] = v.x;
	As4[s + SA][q] = v.y;
	As4[s + 2u * SA][q] = v.z;
	As4[s + 3u * SA][q] = v.w;
}

// stash_a_m stores vec4 number e of A's tile read along m: k = e/(BM/4),
// rows 4*(e%(BM/4)) .. +3.
fn stash_a_m(e: u32, v: vec4<f32>) {
	As4[(e / (BM / 4u)) * SA + e % (BM / 4u)] = v;
}

// stash_b_k and stash_b_n do the same for B (read along k, or along n).
fn stash_b_k(e: u32, v: vec4<f32>) {
	let n = e / (BK / 4u);
	let s = 4u * (e % (BK / 4u)) * SB + n / 4u;
	let q = n % 4u;
	Bs4[s][q] = v.x;
	Bs4[s + SB][q] = v.y;
	Bs4[s + 2u * SB][q] = v.z;
	Bs4[s + 3u * SB][q] = v.w;
}

fn stash_b_n(e: u32, v: vec4<f32>) {
	Bs4[(e / (BN / 4u)) * SB + e % (BN / 4u)] = v;
}

// ---- the inner product over one BK step ----

// Unrolled by hand so that acc stays in registers on every compiler.
fn mma(acc: ptr<function, array<vec4<f32>, 16>>) {
	for (var kk = 0u; kk < BK; kk++) {
		let a0 = As4[kk * SA + ty];
		let a1 = As4[kk * SA + TY + ty];
		let b0 = Bs4[kk * SB + tx];
		let b1 = Bs4[kk * SB + TX + tx];
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

// ---- register prefetch (the *_v4p entry points) ----
// The next step's tiles are loaded from memory into registers before the
// current step's inner product and stored to workgroup memory after it, so
// that the load latency hides behind the arithmetic. Each invocation holds
// at most two vec4 of each operand: needs BM*BK/4 <= 2*WG and
// BN*BK/4 <= 2*WG, i.e. 8*BK <= BN and 8*BK <= BM.

var<private> ra0: vec4<f32>;
var<private> ra1: vec4<f32>;
var<private> rb0: vec4<f32>;
var<private> rb1: vec4<f32>;
