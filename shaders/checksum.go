package shaders

// Checksum (checksum.wgsl) adds, over its grid-strided elements of x (read
// as u32 bit patterns), x_i * (2i + 1) with wrapping arithmetic, and adds
// each workgroup's sum atomically to sum[0].
var Checksum = Kernel{File: "checksum.wgsl", Entry: "checksum", Workgroup: [3]int{256, 1, 1},
	Bindings: []string{"x: (n) read", "sum: (1) read_write"}}
