package shaders

// Sample chooses every stream's next token from its logits on the GPU
// (greedy, or temperature with top-k and top-p, seeded): one workgroup of
// WG threads per stream.
var Sample = Kernel{
	File:  "sample.wgsl",
	Entry: "sample",
	Bindings: []string{"logits: (S, V) read", "ex: (S, V) scratch read_write", "allowed: (S, 2) u32 read",
		"pos: (S) u32 read_write", "ids: (S) u32 read_write", "prm: Params uniform"},
	Workgroup: [3]int{0, 1, 1}, // WG
	Constants: []string{"WG"},
}

// SampleParamsWords is the size of sample.wgsl's uniform Params in 32-bit
// words.
const SampleParamsWords = 8
