package shaders

// gemmTileConstants are the override constants that size a GEMM tile: a
// workgroup computes BM x BN outputs (multiples of 8) in reduction steps of
// BK (a multiple of 4), each of its (BM/8)*(BN/8) invocations 8 x 8 of them.
// The tile has two more, optional: NBUF (2 for the *_v4db entry points,
// which need it; 1 otherwise) and BAND (tile rows per band of the workgroup
// order; 1, row by row, by default).
var gemmTileConstants = []string{"BM", "BN", "BK"}

func gemmConstants(extra ...string) []string {
	return append(append([]string(nil), extra...), gemmTileConstants...)
}

var gemmBindings = []string{
	"a: (M, KD) or (KD, M) if A_T, read",
	"b: (N, KD) or (KD, N) if B_T, read",
	"bias: (N), read (any buffer without HAS_BIAS)",
	"c: C_OFF + (Z, M, N) read_write",
}

// GemmWorkgroup is the workgroup size of the GEMM kernels for a BM x BN
// tile: (BM/8)*(BN/8) invocations.
func GemmWorkgroup(bm, bn int) [3]int { return [3]int{(bm / 8) * (bn / 8), 1, 1} }

var (
	// Gemm computes C[z] (=|+=) A·B (+ bias) over the reduction chunk z
	// (with a split, C_OFF + z*M*N; only chunk 0 adds the bias), with
	// A and B in the layout set by A_T and B_T (NT: Y = X·Wᵀ; NN: dX = dY·W;
	// TN: dW += dYᵀ·X), scalar loads, any shape. Dispatch
	// ceil(M/BM)*ceil(N/BN) tiles (split over x and y by nn.Grid) by Z
	// reduction chunks in z. The workgroup size is set by the tile constants
	// (GemmWorkgroup).
	Gemm = Kernel{
		File:      "gemm.wgsl",
		Entry:     "gemm",
		Bindings:  gemmBindings,
		Constants: gemmConstants("M", "N", "KD", "A_T", "B_T", "HAS_BIAS", "ACCUM", "CHUNK"),
		Half:      []int{0, 1},
	}
	// GemmV4 is Gemm with vec4 loads and stores; every leading dimension
	// (KD unless both operands are transposed, M if A_T, N) must be a
	// multiple of 4.
	GemmV4 = Kernel{
		File:      "gemm.wgsl",
		Entry:     "gemm_v4",
		Bindings:  gemmBindings,
		Constants: gemmConstants("M", "N", "KD", "A_T", "B_T", "HAS_BIAS", "ACCUM", "CHUNK"),
		Half:      []int{0, 1},
	}
	// GemmV4Prefetch is GemmV4 with the next step's tiles loaded into
	// registers during the current step's arithmetic; needs 4*BK <= BN and
	// 4*BK <= BM (at most 4 vec4 of each operand per invocation).
	GemmV4Prefetch = Kernel{
		File:      "gemm.wgsl",
		Entry:     "gemm_v4p",
		Bindings:  gemmBindings,
		Constants: gemmConstants("M", "N", "KD", "A_T", "B_T", "HAS_BIAS", "ACCUM", "CHUNK"),
		Half:      []int{0, 1},
	}
	// GemmV4DoubleBuffer is GemmV4Prefetch with double-buffered workgroup
	// tiles: one barrier per reduction step instead of two, twice the
	// workgroup memory. Needs NBUF = 2 and what GemmV4Prefetch needs.
	GemmV4DoubleBuffer = Kernel{
		File:      "gemm.wgsl",
		Entry:     "gemm_v4db",
		Bindings:  gemmBindings,
		Constants: gemmConstants("M", "N", "KD", "A_T", "B_T", "HAS_BIAS", "ACCUM", "CHUNK", "NBUF"),
		Half:      []int{0, 1},
	}
	// GemmReduce sums split-K partials in order: dst[i] += sum_s
	// part[P_OFF + s*LEN + i], or dst[i] = the sum with ASSIGN. Dispatch
	// ceil(LEN/256) workgroups (nn.Grid).
	GemmReduce = Kernel{
		File:      "gemm.wgsl",
		Entry:     "gemm_reduce",
		Bindings:  []string{"part: P_OFF + (SPLITS, LEN) read", "dst: (LEN) read_write"},
		Workgroup: [3]int{256, 1, 1},
		Constants: []string{"LEN", "SPLITS", "ASSIGN"},
	}
	// GemmColSum is the bias gradient: column sums of dy over the rows of
	// chunk z, into db (+=, ACCUM) or its partial z (=). Dispatch
	// (ceil(COLS/256), 1, Z).
	GemmColSum = Kernel{
		File:      "gemm.wgsl",
		Entry:     "gemm_colsum",
		Bindings:  []string{"dy: (ROWS, COLS) read", "db: C_OFF + (Z, COLS) read_write"},
		Workgroup: [3]int{256, 1, 1},
		Constants: []string{"ROWS", "COLS", "CHUNK", "ACCUM"},
		Half:      []int{0},
	}
)

var (
	groupedGemmBindings = []string{
		"offsets: (G+1) u32 read", "perm: (ROWS) u32 read",
		"a: (ROWS, KD) read", "b: (G, N, KD) or (G, KD, N) if B_T, read",
		"bias: (G, N) read (any buffer without HAS_BIAS)", "c: (ROWS, N) read_write",
	}
	groupedTNBindings = []string{
		"offsets: (G+1) u32 read", "perm: (ROWS) u32 read",
		"dy: (ROWS, M) read", "x: (ROWS, N) read",
		"dw: (G, M, N) or partials C_OFF + (Z, M, N), read_write",
	}

	// GroupedGemm is the grouped GEMM of one dispatch over all modalities:
	// for every row t of group g (rows gathered through the routing table),
	// C[t] (=|+=) A[t]·B[g] (+ bias[g]); NT (Y = X·W[g]ᵀ + b[g]) or, with B_T,
	// NN (dX = dY·W[g]). Scalar loads, any shape. Dispatch
	// (ceil(ROWS/BM) + G - 1) * ceil(N/BN) workgroups (nn.Grid) by Z
	// reduction chunks of CHUNK in z: with a split (CHUNK < KD) chunk z
	// writes its partial C_OFF + z*ROWS*N (=, bias in partial 0 only) for
	// GemmReduce to sum.
	GroupedGemm = Kernel{
		File:      "gemm_grouped.wgsl",
		Entry:     "grouped_gemm",
		Bindings:  groupedGemmBindings,
		Constants: gemmConstants("ROWS", "G", "N", "KD", "B_T", "HAS_BIAS", "ACCUM", "CHUNK"),
		Half:      []int{2, 3},
	}
	// GroupedGemmV4 is GroupedGemm with vec4 loads and stores (KD and N
	// multiples of 4).
	GroupedGemmV4 = Kernel{
		File:      "gemm_grouped.wgsl",
		Entry:     "grouped_gemm_v4",
		Bindings:  groupedGemmBindings,
		Constants: gemmConstants("ROWS", "G", "N", "KD", "B_T", "HAS_BIAS", "ACCUM", "CHUNK"),
		Half:      []int{2, 3},
	}
	// GroupedGemmV4Prefetch is GroupedGemmV4 with register prefetch (as
	// GemmV4Prefetch; 4*BK <= BM and 4*BK <= BN).
	GroupedGemmV4Prefetch = Kernel{
		File:      "gemm_grouped.wgsl",
		Entry:     "grouped_gemm_v4p",
		Bindings:  groupedGemmBindings,
		Constants: gemmConstants("ROWS", "G", "N", "KD", "B_T", "HAS_BIAS", "ACCUM", "CHUNK"),
		Half:      []int{2, 3},
	}
	// GroupedGemmV4DoubleBuffer is GroupedGemmV4Prefetch with
	// double-buffered tiles (as GemmV4DoubleBuffer; NBUF = 2).
	GroupedGemmV4DoubleBuffer = Kernel{
		File:      "gemm_grouped.wgsl",
		Entry:     "grouped_gemm_v4db",
		Bindings:  groupedGemmBindings,
		Constants: gemmConstants("ROWS", "G", "N", "KD", "B_T", "HAS_BIAS", "ACCUM", "NBUF"),
		Half:      []int{2, 3},
	}
	// GroupedTN is the grouped weight gradient dW[g] += Σ_{t in g} dY[t]ᵀ X[t],
	// each group's rows cut into slots of CHUNK rows: with ACCUM (no split)
	// each slot adds into dW[g], otherwise it writes its partial and
	// GroupedReduce sums them. Dispatch ceil(M/BM)*ceil(N/BN) tiles (nn.Grid)
	// by ceil(ROWS/CHUNK) + G - 1 slots in z.
	GroupedTN = Kernel{
		File:      "gemm_grouped.wgsl",
		Entry:     "grouped_tn",
		Bindings:  groupedTNBindings,
		Constants: gemmConstants("ROWS", "G", "M", "N", "ACCUM", "CHUNK"),
		Half:      []int{2, 3},
	}
	// GroupedTNV4 is GroupedTN with vec4 loads and stores (M and N multiples
	// of 4).
	GroupedTNV4 = Kernel{
		File:      "gemm_grouped.wgsl",
		Entry:     "grouped_tn_v4",
		Bindings:  groupedTNBindings,
		Constants: gemmConstants("ROWS", "G", "M", "N", "ACCUM", "CHUNK"),
		Half:      []int{2, 3},
	}
	// GroupedTNV4Prefetch is GroupedTNV4 with register prefetch (as
	// GemmV4Prefetch; 4*BK <= BM and 4*BK <= BN).
	GroupedTNV4Prefetch = Kernel{
		File:      "gemm_grouped.wgsl",
		Entry:     "grouped_tn_v4p",
		Bindings:  groupedTNBindings,
		Constants: gemmConstants("ROWS", "G", "M", "N", "ACCUM", "CHUNK"),
		Half:      []int{2, 3},
	}
	// GroupedTNV4DoubleBuffer is GroupedTNV4Prefetch with double-buffered
	// tiles (as GemmV4DoubleBuffer; NBUF = 2).
	GroupedTNV4DoubleBuffer = Kernel{
		File:      "gemm_grouped.wgsl",
		Entry:     "grouped_tn_v4db",
		Bindings:  groupedTNBindings,
		Constants: gemmConstants("ROWS", "G", "M", "N", "ACCUM", "CHUNK", "NBUF"),
		Half:      []int{2, 3},
	}
	// GroupedColSum is the grouped bias gradient per slot of CHUNK rows:
	// db[g] += (ACCUM) or partial z = the column sums of dy over the slot's
	// rows. Dispatch (ceil(N/256), 1, ceil(ROWS/CHUNK) + G - 1).
	GroupedColSum = Kernel{
		File:      "gemm_grouped.wgsl",
		Entry:     "grouped_colsum",
		Bindings:  []string{"offsets: (G+1) u32 read", "perm: (ROWS) u32 read", "dy: (ROWS, N) read", "db: (G, N) or partials C_OFF + (Z, N), read_write"},
		Workgroup: [3]int{256, 1, 1},
		Constants: []string{"ROWS", "G", "N", "ACCUM", "CHUNK"},
		Half:      []int{2},
	}
	// GroupedReduce adds each group's split-K partials, in order, into
	// dst[g]; a group without rows is left untouched. Dispatch
	// ceil(G*LEN/256) workgroups (nn.Grid).
	GroupedReduce = Kernel{
		File:      "gemm_grouped.wgsl",
		Entry:     "grouped_reduce",
		Bindings:  []string{"offsets: (G+1) u32 read", "part: C_OFF + (Z, LEN) read", "dst: (G, LEN) read_write"},
		Workgroup: [3]int{256, 1, 1},
		Constants: []string{"G", "LEN", "CHUNK"},
	}
)
