package shaders

// Embedding kernels (embedding.wgsl).
var (
	// EmbeddingFwd gathers rows: ceil(T*D/256) workgroups split over y.
	EmbeddingFwd = Kernel{File: "embedding.wgsl", Entry: "embedding_fwd", Workgroup: [3]int{256, 1, 1},
		Bindings: []string{"ids: (T) read", "e: (V, D) read", "out: (T, D) read_write"}, Constants: []string{"D", "T"}}
	// EmbeddingFwd4 is EmbeddingFwd on vec4 (D divisible by 4): ceil(T*D/4/256) workgroups.
	EmbeddingFwd4 = Kernel{File: "embedding.wgsl", Entry: "embedding_fwd4", Workgroup: [3]int{256, 1, 1},
		Bindings: []string{"ids: (T) read", "e: (V, D/4) read", "out: (T, D/4) read_write"}, Constants: []string{"D", "T"}}
	// EmbeddingBwd adds each distinct id's summed rows to de: T workgroups
	// of WG (those past the batch's distinct-id count return at once).
	EmbeddingBwd = Kernel{File: "embedding.wgsl", Entry: "embedding_bwd", Workgroup: [3]int{0, 1, 1}, // (WG, 1, 1)
		Bindings: []string{"index: (3T+2) read", "dout: (T, D) read", "de: (V, D) read_write"}, Constants: []string{"D", "T", "WG"}}
	// EmbeddingBwd4 is EmbeddingBwd on vec4 (D divisible by 4).
	EmbeddingBwd4 = Kernel{File: "embedding.wgsl", Entry: "embedding_bwd4", Workgroup: [3]int{0, 1, 1}, // (WG, 1, 1)
		Bindings: []string{"index: (3T+2) read", "dout: (T, D/4) read", "de: (V, D/4) read_write"}, Constants: []string{"D", "T", "WG"}}
)
