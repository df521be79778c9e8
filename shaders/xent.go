package shaders

// Cross-entropy kernels (xent.wgsl).
var (
	// XEnt: one workgroup of WG per row of a span of TS rows from ROW0, TS
	// workgroups split over y. With INPLACE, src is a placeholder and dst
	// holds the logits on entry.
	XEnt = Kernel{File: "xent.wgsl", Entry: "xent", Workgroup: [3]int{0, 1, 1}, // (WG, 1, 1)
		Bindings:  []string{"src: (T, V) read", "dst: (T, V) read_write", "info: (2T+G) read", "rowloss: (T) read_write"},
		Constants: []string{"V", "T", "G", "WG", "INPLACE"}}
	// XEnt4 is XEnt on vec4 (V divisible by 4).
	XEnt4 = Kernel{File: "xent.wgsl", Entry: "xent4", Workgroup: [3]int{0, 1, 1}, // (WG, 1, 1)
		Bindings:  []string{"src: (T, V/4) read", "dst: (T, V/4) read_write", "info: (2T+G) read", "rowloss: (T) read_write"},
		Constants: []string{"V", "T", "G", "WG", "INPLACE"}}
	// XEntSums: one workgroup of WGS; per-group sums of the valid rows' losses and
	// their counts.
	XEntSums = Kernel{File: "xent.wgsl", Entry: "xent_sums", Workgroup: [3]int{0, 1, 1}, // (WGS, 1, 1)
		Bindings:  []string{"info: (2T+G) read", "rowloss: (T) read", "sums: (G) read_write", "counts: (G) read_write"},
		Constants: []string{"T", "G", "WGS"}}
)
