package shaders

// SSMStep is the selective state update of the recurrent step mode: one
// step of the scan's recurrence for many streams, with softplus, the D skip
// and the SiLU(z) gate; one thread per (stream, channel), 256 per
// workgroup.
var SSMStep = Kernel{
	File:  "ssm_step.wgsl",
	Entry: "ssm_step",
	Bindings: []string{"u: (S, ED) read", "delta: (S, ED) read", "z: (S, ED) or (1) read", "a_log: (ED, N) read",
		"bc: (S, W) read, B and C column windows", "dskip: (ED) read", "y: (S, ED) read_write",
		"st: (S, ED, N) read_write", "dims: Dims uniform"},
	Workgroup: [3]int{256, 1, 1},
	Constants: []string{"N", "GATE"},
}

// SSMStepDimsWords is the size of ssm_step.wgsl's uniform Dims in 32-bit
// words.
const SSMStepDimsWords = 8
