package shaders

// Elementwise kernels over flat tensors (elementwise.wgsl). Each is
// dispatched over ceil(n/256) workgroups of 256 (n/4 for the vec4 entry
// points, which need n divisible by 4), split over y past the x limit; n is
// the length of the bound range.
var (
	// Add: y = a + b.
	Add = Kernel{File: "elementwise.wgsl", Entry: "add", Workgroup: [3]int{256, 1, 1},
		Bindings: []string{"a: (n) read", "b: (n) read", "y: (n) read_write"}}
	// Add4 is Add on vec4.
	Add4 = Kernel{File: "elementwise.wgsl", Entry: "add4", Workgroup: [3]int{256, 1, 1},
		Bindings: []string{"a: (n/4) read", "b: (n/4) read", "y: (n/4) read_write"}}
	// AXPY: y += ALPHA*x.
	AXPY = Kernel{File: "elementwise.wgsl", Entry: "axpy", Workgroup: [3]int{256, 1, 1},
		Bindings: []string{"x: (n) read", "y: (n) read_write"}, Constants: []string{"ALPHA"}}
	// AXPY4 is AXPY on vec4.
	AXPY4 = Kernel{File: "elementwise.wgsl", Entry: "axpy4", Workgroup: [3]int{256, 1, 1},
		Bindings: []string{"x: (n/4) read", "y: (n/4) read_write"}, Constants: []string{"ALPHA"}}
	// Scale: y *= ALPHA.
	Scale = Kernel{File: "elementwise.wgsl", Entry: "scale", Workgroup: [3]int{256, 1, 1},
		Bindings: []string{"y: (n) read_write"}, Constants: []string{"ALPHA"}}
	// Scale4 is Scale on vec4.
	Scale4 = Kernel{File: "elementwise.wgsl", Entry: "scale4", Workgroup: [3]int{256, 1, 1},
		Bindings: []string{"y: (n/4) read_write"}, Constants: []string{"ALPHA"}}
)
