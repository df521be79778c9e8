package shaders

// Gradient norm kernels (gradnorm.wgsl).
var (
	// SumSq writes the sums of squares of up to 6 gradient ranges g0..g5
	// (a group of fewer binds a one-element zero tensor in the rest): range
	// j gets clamp(ceil(n_j/2048), 1, 1024) workgroups, after those of the
	// ranges before it, and each writes its sum to part[its workgroup].
	// Dispatch the sum of the ranges' workgroups in x.
	SumSq = Kernel{File: "gradnorm.wgsl", Entry: "sumsq", Workgroup: [3]int{256, 1, 1},
		Bindings: []string{"g0: (n0) read", "g1: (n1) read", "g2: (n2) read", "g3: (n3) read", "g4: (n4) read", "g5: (n5) read",
			"part: (workgroups) read_write"}}
	// GradNormFinish sums all partials (one workgroup): norm = sqrt(sum),
	// scale = min(1, MAX_NORM/(norm+1e-6)), or 1 when MAX_NORM <= 0.
	GradNormFinish = Kernel{File: "gradnorm.wgsl", Entry: "finish", Workgroup: [3]int{256, 1, 1},
		Bindings: []string{"parts: (P) read", "norm: (1) read_write", "scale: (1) read_write"}, Constants: []string{"MAX_NORM"}}
	// GradNormFinishScaled is GradNormFinish for gradients multiplied by
	// the dynamic loss scale st[0]: it unscales the norm, folds 1/st[0] into
	// the clip scale, detects an overflow (the casts' flag, or a sum that is
	// not finite), then skips the step (scale 0) and halves the loss scale,
	// or counts a clean step and doubles the scale after GROWTH_EVERY of
	// them; the flag is cleared (see gradnorm.wgsl).
	GradNormFinishScaled = Kernel{File: "gradnorm.wgsl", Entry: "finish_scaled", Workgroup: [3]int{256, 1, 1},
		Bindings: []string{"parts: (P) read", "norm: (1) read_write", "scale: (1) read_write",
			"st: (8) loss-scale state read_write", "ovf: (1) u32 read_write"},
		Constants: []string{"MAX_NORM", "GROWTH_EVERY", "MIN_SCALE", "MAX_SCALE"}}
)
