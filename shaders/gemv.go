package shaders

// Gemv is the linear layer of the recurrent step mode: a few rows (the
// streams), each with its modality's weight set when ROUTED, reading and
// writing column windows of wider matrices. Workgroups of WG = TK*TR
// threads own TR outputs of one weight set: ceil(N/TR)*G of them (G = 1
// unrouted), split over y when above the x limit.
var Gemv = Kernel{
	File:  "gemv.wgsl",
	Entry: "gemv",
	Bindings: []string{"x: (S, LDX) read", "w: (G, N, K) read", "bias: (G, N) or (1) read",
		"grp: (S) u32 read", "y: (S, LDY) read_write", "dims: Dims uniform"},
	Workgroup: [3]int{0, 1, 1}, // WG = TK*TR
	Constants: []string{"ROUTED", "ACCUM", "HAS_BIAS", "TK", "TR"},
}

// GemvDimsWords is the size of gemv.wgsl's uniform Dims in 32-bit words.
const GemvDimsWords = 12

// GemvSB is the streams one pass of a gemv workgroup handles (SB).
const GemvSB = 8
