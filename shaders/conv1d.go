package shaders

// convConstants are the override constants of the conv1d kernels: the taps
// K (1..8), the SiLU switch and the tiling (LT steps per thread; backward CW
// channels x RW row tiles per workgroup, WGB = CW*RW). The sizes come in the
// uniform Dims (see conv1d.wgsl), bound last.
var convConstants = []string{"K", "SILU", "LT", "CW", "RW", "WGB"}

// ConvForward is the causal depthwise conv's forward: one thread per
// (batch, tile of LT steps, channel), 256 per workgroup.
var ConvForward = Kernel{
	File:      "conv1d.wgsl",
	Entry:     "conv_fwd",
	Bindings:  []string{"x: (B, L, C) read", "w: (C, K) read", "bias: (C) read", "y: (B, L, C) read_write", "dims: Dims uniform"},
	Workgroup: [3]int{256, 1, 1},
	Constants: convConstants,
	Half:      []int{0, 1}, // x, w
}

// ConvBackward writes dx and per-row-block partial sums of dw and dbias:
// workgroups of CW channels x RW row tiles.
var ConvBackward = Kernel{
	File:  "conv1d.wgsl",
	Entry: "conv_bwd",
	Bindings: []string{"x: (B, L, C) read", "w: (C, K) read", "bias: (C) read", "dy: (B, L, C) read",
		"dx: (B, L, C) read_write", "part: (NRB, C, K+1) read_write", "dims: Dims uniform"},
	Workgroup: [3]int{0, 1, 1}, // WGB = CW*RW
	Constants: convConstants,
	Half:      []int{0, 1}, // x, w
}

// ConvReduce adds the partials to dw and dbias (+=): one thread per
// (channel, tap or bias), 256 per workgroup.
var ConvReduce = Kernel{
	File:      "conv1d.wgsl",
	Entry:     "conv_reduce",
	Bindings:  []string{"part: (NRB, C, K+1) read", "dw: (C, K) read_write", "dbias: (C) read_write", "dims: Dims uniform"},
	Workgroup: [3]int{256, 1, 1},
	Constants: convConstants,
}

// ConvMaxTaps is the widest filter conv1d.wgsl supports (KMAX).
const ConvMaxTaps = 8

// ConvDimsWords is the size of conv1d.wgsl's uniform Dims in 32-bit words,
// padded to 16 bytes.
const ConvDimsWords = 8
