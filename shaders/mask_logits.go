package shaders

// MaskLogits restricts every stream's logits to its id set (NaN outside it)
// before the sampler: one workgroup of WG threads per stream.
var MaskLogits = Kernel{
	File:  "mask_logits.wgsl",
	Entry: "mask_logits",
	Bindings: []string{"logits: (S, V) read_write", "mask: (G, ceil(V/32)) u32 read", "sel: (S) u32 read",
		"allowed: (S, 2) u32 read"},
	Workgroup: [3]int{0, 1, 1}, // WG
	Constants: []string{"WG", "V", "G"},
}
