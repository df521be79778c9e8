// gemm.wgsl: tiled, register-blocked SGEMM for Linear.
//
//   C[z] (M, N)  =  (C[z] if ACCUM)  +  sum_{k in chunk z} A(m, k) * B(k, n)  (+ bias[n] if HAS_BIAS)
//
// with the operands read in one of the layouts of a linear layer:
//   A(m, k) = a[m*KD + k]   (A_T false: A stored (M, KD))   or a[k*M + m]  (A_T true: A stored (KD, M))
//   B(k, n) = b[n*KD + k]   (B_T false: B stored (N, KD))   or b[k*N + n]  (B_T true: B stored (KD, N))
//   NT  Y  = X·Wᵀ + bias : A = X (rows, K), B = W (N, K)        A_T false, B_T false
//   NN  dX = dY·W        : A = dY (rows, N), B = W (N, K)       A_T false, B_T true
//   TN  dW += dYᵀ·X      : A = dY (rows, N), B = X (rows, K)    A_T true,  B_T true
//
// One workgroup computes a BM x BN tile of C, walking the reduction in steps
// of BK through workgroup memory: the tile of shared/gemm_tile.wgsl, which
// gemm_grouped.wgsl imports too. Workgroup z reduces over k in
// [z*CHUNK, min(KD, (z+1)*CHUNK)): with CHUNK < KD (split-K) each z writes its
// own partial C[z] = C_OFF + z*M*N (plain =), and gemm_reduce sums the partials
// in order (deterministic: no atomics). With HAS_BIAS only partial 0 adds the
// bias, so that the sum of the partials carries it once. Tiles past the edges
// of M, N and KD read zeros and skip their stores.
//
// Entry points: gemm (scalar loads, any shape) and gemm_v4 (vec4 loads and
// stores; needs every leading dimension a multiple of 4: KD when A or B is
// not transposed, M when A_T, N always); gemm_v4p (gemm_v4 with register
// prefetch; 4*BK <= BM and 4*BK <= BN) and gemm_v4db (gemm_v4p with
// double-buffered workgroup tiles, NBUF 2: one barrier per step). The
// workgroup order over the tiles is the tile's tile_at (BAND).

override M: u32 = 1u;              // rows of C
override N: u32 = 1u;              // columns of C
override KD: u32 = 1u;             // reduction length
override A_T: bool = false;        // A stored (KD, M)
override B_T: bool = false;        // B stored (KD, N)
override HAS_BIAS: bool = false;   // add bias[n]
override ACCUM: bool = false;      // C += instead of C =
override CHUNK: u32 = 0xffffffffu; // split-K chunk (a multiple of BK); >= KD: no split
override C_OFF: u32 = 0u;          // element offset of C[0] in c
//#import gemm_tile

// The element type of A and B: float32, or float16 in the f16 variant
// (shaders.Variant "f16": inputs stored in half precision, converted to
// float32 as they are loaded, so that the tile and the accumulation stay
// float32).
//#if f16
//| alias in1 = f16;
//| alias in4 = vec4<f16>;
//#else
alias in1 = f32;
alias in4 = vec4<f32>;
//#endif

// Scalar views (entry point gemm).
@group(0) @binding(0) var<storage, read> a: array<in1>;          // (M, KD) or (KD, M)
@group(0) @binding(1) var<storage, read> b: array<in1>;          // (N, KD) or (KD, N)
@group(0) @binding(2) var<storage, read> bias: array<f32>;       // (N); any buffer when !HAS_BIAS
@group(0) @binding(3) var<storage, read_write> c: array<f32>;    // C_OFF + (Z, M, N)
// vec4 views of the same bindings (entry point gemm_v4).
@group(0) @binding(0) var<storage, read> a4: array<in4>;             // (M, KD/4) or (KD, M/4)
@group(0) @binding(1) var<storage, read> b4: array<in4>;             // (N, KD/4) or (KD, N/4)
@group(0) @binding(3) var<storage, read_write> c4: array<vec4<f32>>;  // C_OFF/4 + (Z, M, N/4)

// with_bias: whether this workgroup's stores add the bias (HAS_BIAS, and
// chunk 0 of a split-K GEMM); set by store and store4.
var<private> with_bias: bool;

struct Tile {
	m0: u32,
	n0: u32,
	kbeg: u32,
	kend: u32,
	ok: bool,
}

fn tile_of(wg: vec3<u32>, nwg: vec3<u32>, lid: u32) -> Tile {
	tile_setup(lid);
	let t = wg.x + wg.y * nwg.x;
	var r: Tile;
	r.ok = t < TILES_MN;
	let at = tile_at(t, TILES_M);
	r.m0 = at.x * BM;
	r.n0 = at.y * BN;
	r.kbeg = wg.z * CHUNK;
	r.kend = min(KD, r.kbeg + CHUNK);
	return r;
}

// ---- tile loads, scalar ----

fn load_a(m0: u32, k0: u32, kend: u32) {
	for (var e = li; e < BM * BK; e += WG) {
		var m: u32;
		var k: u32;
		if (A_T) {
			m = e % BM;
			k = e / BM;
		} else {
			k = e % BK;
			m = e / BK;
		}
		let gm = m0 + m;
		let gk = k0 + k;
		var v = 0.0;
		if (gm < M && gk < kend) {
			if (A_T) {
				v = f32(a[gk * M + gm]);
			} else {
				v = f32(a[gm * KD + gk]);
			}
		}
		put_a(m, k, v);
	}
}

fn load_b(n0: u32, k0: u32, kend: u32) {
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
				v = f32(b[gk * N + gn]);
			} else {
				v = f32(b[gn * KD + gk]);
			}
		}
		put_b(n, k, v);
	}
}

// ---- tile loads, vec4 ----

fn load_a4(m0: u32, k0: u32, kend: u32) {
	for (var e = li; e < BM * BK / 4u; e += WG) {
		if (A_T) {
			let m4 = e % (BM / 4u);
			let k = e / (BM / 4u);
			let gm = m0 + 4u * m4;
			let gk = k0 + k;
			var v = vec4<f32>(0.0);
			if (gm < M && gk < kend) {
				v = vec4<f32>(a4[(gk * M + gm) / 4u]);
			}
			stash_a_m(e, v);
		} else {
			let k4 = e % (BK / 4u);
			let m = e / (BK / 4u);
			let gm = m0 + m;
			let gk = k0 + 4u * k4;
			var v = vec4<f32>(0.0);
			if (gm < M && gk < kend) {
				v = vec4<f32>(a4[(gm * KD + gk) / 4u]);
			}
			stash_a_k(e, v);
		}
	}
}

fn load_b4(n0: u32, k0: u32, kend: u32) {
	for (var e = li; e < BN * BK / 4u; e += WG) {
		if (B_T) {
			let n4 = e % (BN / 4u);
			let k = e / (BN / 4u);
			let gn = n0 + 4u * n4;
			let gk = k0 + k;
			var v = vec4<f32>(0.0);
			if (gn < N && gk < kend) {
				v = vec4<f32>(b4[(gk * N + gn) / 4u]);
			}
			stash_b_n(e, v);
		} else {
			let k4 = e % (BK / 4u);
			let n = e / (BK / 4u);
			let gn = n0 + n;
			let gk = k0 + 4u * k4;
			var v = vec4<f32>(0.0);
			if (gn < N && gk < kend) {
				v = vec4<f32>(b4[(gn * KD + gk) / 4u]);
			}
			stash_b_k(e, v);
		}
	}
}

// ---- stores ----

// put stores C[o + q] for q < 4 and n + q < N (scalar path).
fn put(o: u32, n: u32, v: vec4<f32>) {
	for (var q = 0u; q < 4u; q++) {
		if (n + q < N) {
			var y = v[q];
			if (with_bias) {
				y += bias[n + q];
			}
			if (ACCUM) {
				y += c[o + q];
			}
			c[o + q] = y;
		}
	}
}

// put4 stores the vec4 C[o .. o+3] if n < N (N is a multiple of 4).
fn put4(o: u32, n: u32, v: vec4<f32>) {
	if (n < N) {
		var y = v;
		if (with_bias) {
			y += vec4<f32>(bias[n], bias[n + 1u], bias[n + 2u], bias[n + 3u]);
		}
		if (ACCUM) {
			y += c4[o / 4u];
		}
		c4[o / 4u] = y;
	}
}

fn store_row(r: u32, v0: vec4<f32>, v1: vec4<f32>, t: Tile, base: u32) {
	let m = t.m0 + row_of(r);
	if (m < M) {
		let n0 = t.n0 + tx * 4u;
		let n1 = t.n0 + (TX + tx) * 4u;
		put(base + m * N + n0, n0, v0);
		put(base + m * N + n1, n1, v1);
	}
}

fn store_row4(r: u32, v0: vec4<f32>, v1: vec4<f32>, t: Tile, base: u32) {
	let m = t.m0 + row_of(r);
	if (m < M) {
		let n0 = t.n0 + tx * 4u;
		let n1 = t.n0 + (TX + tx) * 4u;
		put4(base + m * N + n0, n0, v0);
		put4(base + m * N + n1, n1, v1);
	}
}

fn store(t: Tile, z: u32) {
	let base = C_OFF + z * M * N;
	with_bias = HAS_BIAS && z == 0u;
	store_row(0u, acc0, acc1, t, base);
	store_row(1u, acc2, acc3, t, base);
	store_row(2u, acc4, acc5, t, base);
	store_row(3u, acc6, acc7, t, base);
	store_row(4u, acc8, acc9, t, base);
	store_row(5u, acc10, acc11, t, base);
	store_row(6u, acc12, acc13, t, base);
	store_row(7u, acc14, acc15, t, base);
}

fn store4(t: Tile, z: u32) {
	let base = C_OFF + z * M * N;
	with_bias = HAS_BIAS && z == 0u;
	store_row4(0u, acc0, acc1, t, base);
	store_row4(1u, acc2, acc3, t, base);
	store_row4(2u, acc4, acc5, t, base);
	store_row4(3u, acc6, acc7, t, base);
	store_row4(4u, acc8, acc9, t, base);
	store_row4(5u, acc10, acc11, t, base);
	store_row4(6u, acc12, acc13, t, base);
	store_row4(7u, acc14, acc15, t, base);
}

@compute @workgroup_size(WG)
fn gemm(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
	@builtin(local_invocation_index) lid: u32) {
	let t = tile_of(wg, nwg, lid);
	if (!t.ok) {
		return;
	}
	for (var k0 = t.kbeg; k0 < t.kend; k0 += BK) {
		load_a(t.m0, k0, t.kend);
		load_b(t.n0, k0, t.kend);
		workgroupBarrier();
		mma();
		workgroupBarrier();
	}
	store(t, wg.z);
}

@compute @workgroup_size(WG)
fn gemm_v4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
	@builtin(local_invocation_index) lid: u32) {
	let t = tile_of(wg, nwg, lid);
	if (!t.ok) {
		return;
	}
	for (var k0 = t.kbeg; k0 < t.kend; k0 += BK) {
		load_a4(t.m0, k0, t.kend);
		load_b4(t.n0, k0, t.kend);
		workgroupBarrier();
		mma();
		workgroupBarrier();
	}
	store4(t, wg.z);
}

// ---- vec4 loads with register prefetch (gemm_v4p, gemm_v4db) ----
// The registers ra0..ra3, rb0..rb3 of the tile hold the next step's tiles
// (see shared/gemm_tile.wgsl).

fn fetch_a4(e: u32, m0: u32, k0: u32, kend: u32) -> vec4<f32> {
	var v = vec4<f32>(0.0);
	if (e < BM * BK / 4u) {
		if (A_T) {
			let gm = m0 + 4u * (e % (BM / 4u));
			let gk = k0 + e / (BM / 4u);
			if (gm < M && gk < kend) {
				v = vec4<f32>(a4[(gk * M + gm) / 4u]);
			}
		} else {
			let gm = m0 + e / (BK / 4u);
			let gk = k0 + 4u * (e % (BK / 4u));
			if (gm < M && gk < kend) {
				v = vec4<f32>(a4[(gm * KD + gk) / 4u]);
			}
		}
	}
	return v;
}

fn fetch_b4(e: u32, n0: u32, k0: u32, kend: u32) -> vec4<f32> {
	var v = vec4<f32>(0.0);
	if (e < BN * BK / 4u) {
		if (B_T) {
			let gn = n0 + 4u * (e % (BN / 4u));
			let gk = k0 + e / (BN / 4u);
			if (gn < N && gk < kend) {
				v = vec4<f32>(b4[(gk * N + gn) / 4u]);
			}
		} else {
			let gn = n0 + e / (BK / 4u);
			let gk = k0 + 4u * (e % (BK / 4u));
			if (gn < N && gk < kend) {
				v = vec4<f32>(b4[(gn * KD + gk) / 4u]);
			}
		}
	}
	return v;
}

// fetch4 loads the step at k0 into the registers (zeros past kend).
fn fetch4(m0: u32, n0: u32, k0: u32, kend: u32) {
	ra0 = fetch_a4(li, m0, k0, kend);
	if (PA > 1u) {
		ra1 = fetch_a4(li + WG, m0, k0, kend);
	}
	if (PA > 2u) {
		ra2 = fetch_a4(li + 2u * WG, m0, k0, kend);
		ra3 = fetch_a4(li + 3u * WG, m0, k0, kend);
	}
	rb0 = fetch_b4(li, n0, k0, kend);
	if (PB > 1u) {
		rb1 = fetch_b4(li + WG, n0, k0, kend);
	}
	if (PB > 2u) {
		rb2 = fetch_b4(li + 2u * WG, n0, k0, kend);
		rb3 = fetch_b4(li + 3u * WG, n0, k0, kend);
	}
}

// stash4 stores the registers into half h (A read along k unless A_T, B
// along k unless B_T).
fn stash4(h: u32) {
	stash_regs(!A_T, !B_T, h);
}

@compute @workgroup_size(WG)
fn gemm_v4p(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
	@builtin(local_invocation_index) lid: u32) {
	let t = tile_of(wg, nwg, lid);
	if (!t.ok) {
		return;
	}
	fetch4(t.m0, t.n0, t.kbeg, t.kend);
	for (var k0 = t.kbeg; k0 < t.kend; k0 += BK) {
		stash4(0u);
		workgroupBarrier();
		fetch4(t.m0, t.n0, k0 + BK, t.kend);
		mma();
		workgroupBarrier();
	}
	store4(t, wg.z);
}

// gemm_v4db: step s computes from half s%2 while the registers holding
// step s+1 go to the other half. The barrier that ends step s both
// publishes half (s+1)%2 and tells that every invocation is done reading
// half s%2, which step s+1 then overwrites. Needs NBUF = 2.
@compute @workgroup_size(WG)
fn gemm_v4db(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
	@builtin(local_invocation_index) lid: u32) {
	let t = tile_of(wg, nwg, lid);
	if (!t.ok) {
		return;
	}
	fetch4(t.m0, t.n0, t.kbeg, t.kend);
	stash4(0u);
	workgroupBarrier();
	var h = 0u;
	for (var k0 = t.kbeg; k0 < t.kend; k0 += BK) {
		fetch4(t.m0, t.n0, k0 + BK, t.kend);
		mma_at(h);
		h ^= 1u;
		stash4(h);
		workgroupBarrier();
	}
	store4(t, wg.z);
}

// ---- split-K epilogue and bias gradient ----

override LEN: u32 = 1u;            // elements of one output (N*K for dW, N for dB)
override SPLITS: u32 = 1u;         // partials to sum
override P_OFF: u32 = 0u;          // element offset of partial 0 in part
override ASSIGN: bool = false;     // dst = the sum instead of dst +=

@group(0) @binding(0) var<storage, read> part: array<f32>;         // P_OFF + (SPLITS, LEN)
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;    // (LEN)

// gemm_reduce: dst[i] += sum_{s < SPLITS} part[P_OFF + s*LEN + i], summed in
// order of s (dst[i] = the sum with ASSIGN: the epilogue of a split-K forward
// or input gradient, whose partial 0 already holds the bias). Dispatch ceil(LEN/256) workgroups (split over y by nn.Grid).
@compute @workgroup_size(256)
fn gemm_reduce(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
	@builtin(local_invocation_index) lid: u32) {
	let i = (wg.x + wg.y * nwg.x) * 256u + lid;
	if (i >= LEN) {
		return;
	}
	var s = 0.0;
	for (var z = 0u; z < SPLITS; z++) {
		s += part[P_OFF + z * LEN + i];
	}
	if (ASSIGN) {
		dst[i] = s;
	} else {
		dst[i] += s;
	}
}

override ROWS: u32 = 1u;           // rows of dy
override COLS: u32 = 1u;           // columns of dy

@group(0) @binding(0) var<storage, read> dy: array<in1>;           // (ROWS, COLS)
@group(0) @binding(1) var<storage, read_write> db: array<f32>;     // C_OFF + (Z, COLS)

// gemm_colsum: the bias gradient, db[z][n] (+)= sum over rows t of chunk z of
// dy[t, n] (ACCUM: += into db, used without split; otherwise = into the
// partial z). Dispatch (ceil(COLS/256), 1, Z).
@compute @workgroup_size(256)
fn gemm_colsum(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
	let n = wg.x * 256u + lid;
	if (n >= COLS) {
		return;
	}
	let t0 = wg.z * CHUNK;
	let t1 = min(ROWS, t0 + CHUNK);
	var s = 0.0;
	for (var t = t0; t < t1; t++) {
		s += f32(dy[t * COLS + n]);
	}
	let o = C_OFF + wg.z * COLS + n;
	if (ACCUM) {
		s += db[o];
	}
	db[o] = s;
}
