package shaders

// ConvStep is one step of the causal depthwise conv1d for many streams,
// fused with SiLU, updating the conv state in place: one thread per
// (stream, channel), 256 per workgroup.
var ConvStep = Kernel{
	File:  "conv_step.wgsl",
	Entry: "conv_step",
	Bindings: []string{"x: (S, C) read", "w: (C, K) read", "bias: (C) read",
		"st: (S, C, K-1) or (1) read_write", "y: (S, C) read_write", "dims: Dims uniform"},
	Workgroup: [3]int{256, 1, 1},
	Constants: []string{"K", "SILU"},
}

// ConvTail extracts the conv state of a sequence (its last K-1 inputs):
// one thread per (row, channel, tap), 256 per workgroup.
var ConvTail = Kernel{
	File:      "conv_step.wgsl",
	Entry:     "conv_tail",
	Bindings:  []string{"xs: (B, L, C) read", "tail: (B, C, K-1) read_write", "dims: Dims uniform"},
	Workgroup: [3]int{256, 1, 1},
	Constants: []string{"K"},
}

// ConvStepDimsWords is the size of conv_step.wgsl's uniform Dims in 32-bit
// words.
const ConvStepDimsWords = 4
