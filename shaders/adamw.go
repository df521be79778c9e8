package shaders

// AdamW kernels (adamw.wgsl): one dispatch per parameter range, ceil(n/256)
// workgroups (n/4 for AdamW4) split over y.
var (
	// AdamW updates p, m and v in place from g, the step buffer
	// (lr, 1-BETA1^t, 1-BETA2^t) and the clip scale.
	AdamW = Kernel{File: "adamw.wgsl", Entry: "adamw", Workgroup: [3]int{256, 1, 1},
		Bindings: []string{"p: (n) read_write", "g: (n) read", "m: (n) read_write", "v: (n) read_write",
			"hp: (3) read", "scale: (1) read"},
		Constants: []string{"BETA1", "BETA2", "EPS", "WD"}}
	// AdamW4 is AdamW on vec4 (n divisible by 4).
	AdamW4 = Kernel{File: "adamw.wgsl", Entry: "adamw4", Workgroup: [3]int{256, 1, 1},
		Bindings: []string{"p: (n/4) read_write", "g: (n/4) read", "m: (n/4) read_write", "v: (n/4) read_write",
			"hp: (3) read", "scale: (1) read"},
		Constants: []string{"BETA1", "BETA2", "EPS", "WD"}}
)
