package shaders

// MSE kernels (mse.wgsl).
var (
	// MSE: one workgroup of WG per row, T workgroups split over y.
	MSE = Kernel{File: "mse.wgsl", Entry: "mse", Workgroup: [3]int{0, 1, 1}, // (WG, 1, 1)
		Bindings: []string{"pred: (T, P) read", "target: (T, P) read", "dpred: (T, P) read_write",
			"info: (T+G) read", "rowloss: (T) read_write"},
		Constants: []string{"P", "T", "G", "WG"}}
	// MSESums: one workgroup of WGS; per-group sums of the row losses and counts of
	// the rows of groups with nonzero weight.
	MSESums = Kernel{File: "mse.wgsl", Entry: "mse_sums", Workgroup: [3]int{0, 1, 1}, // (WGS, 1, 1)
		Bindings:  []string{"info: (T+G) read", "rowloss: (T) read", "sums: (G) read_write", "counts: (G) read_write"},
		Constants: []string{"T", "G", "WGS"}}
)
