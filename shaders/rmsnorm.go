package shaders

// RMSNorm kernels (rmsnorm.wgsl).
var (
	// RMSNormFwd: one workgroup of WG per row, NROWS workgroups split over y
	// past the x limit. Saves the per-row reciprocal rms.
	RMSNormFwd = Kernel{File: "rmsnorm.wgsl", Entry: "rmsnorm_fwd", Workgroup: [3]int{0, 1, 1}, // (WG, 1, 1)
		Bindings:  []string{"x: (NROWS, D) read", "w: (D) read", "y: (NROWS, D) read_write", "rstd: (NROWS) read_write"},
		Constants: []string{"D", "NROWS", "WG", "NC", "EPS"}}
	// RMSNormBwd: one workgroup of WG per chunk of ROWS rows, NCHUNK
	// workgroups split over y. Writes dx and the chunk's partial dw.
	RMSNormBwd = Kernel{File: "rmsnorm.wgsl", Entry: "rmsnorm_bwd", Workgroup: [3]int{0, 1, 1}, // (WG, 1, 1)
		Bindings: []string{"x: (NROWS, D) read", "w: (D) read", "dy: (NROWS, D) read", "rstd: (NROWS) read",
			"dx: (NROWS, D) read_write", "dwp: (NCHUNK, D) read_write"},
		Constants: []string{"D", "NROWS", "WG", "NC", "ROWS", "NCHUNK", "ACC_DX"}}
	// RMSNormDW: dw += the sum of the partials, ceil(D/32) workgroups.
	RMSNormDW = Kernel{File: "rmsnorm.wgsl", Entry: "rmsnorm_dw", Workgroup: [3]int{256, 1, 1},
		Bindings:  []string{"dwp: (NCHUNK, D) read", "dw: (D) read_write"},
		Constants: []string{"D", "NCHUNK"}}
)
