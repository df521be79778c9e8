package shaders

// EmbedStep embeds the streams' current tokens and finds each token's
// modality from the vocabulary ranges: one thread per output element, 256
// per workgroup.
var EmbedStep = Kernel{
	File:  "embed_step.wgsl",
	Entry: "embed_step",
	Bindings: []string{"ids: (S) u32 read", "e: (V, D) read", "ends: (G) u32 read",
		"out: (S, D) read_write", "grp: (S) u32 read_write", "dims: Dims uniform"},
	Workgroup: [3]int{256, 1, 1},
}

// EmbedStepDimsWords is the size of embed_step.wgsl's uniform Dims in
// 32-bit words.
const EmbedStepDimsWords = 4
