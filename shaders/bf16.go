package shaders

// bfloat16 packing (bf16.wgsl): the gradients data-parallel ranks exchange
// in 16 bits, rounded on the bits to the nearest, ties to even.
var (
	// ToBF16: y = bf16(x), one thread per pair of elements; dispatch
	// ceil(ceil(n/2)/256) workgroups (nn.Grid).
	ToBF16 = Kernel{File: "bf16.wgsl", Entry: "to_bf16", Workgroup: [3]int{256, 1, 1},
		Bindings: []string{"x: (n) f32 bits read", "y: (ceil(n/2)) bf16 pairs read_write"}}
	// FromBF16: x = float32(y), one thread per pair; the same grid.
	FromBF16 = Kernel{File: "bf16.wgsl", Entry: "from_bf16", Workgroup: [3]int{256, 1, 1},
		Bindings: []string{"y: (ceil(n/2)) bf16 pairs read", "x: (n) f32 bits read_write"}}
)
