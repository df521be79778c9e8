package shaders

// Float16 casts (cast.wgsl): the float16 copies of mixed precision, rounded
// on the bits (no shader-f16 needed), optionally multiplied by the loss
// scale, with an overflow flag. SCALED and FLAG default to false.
var (
	// Cast: y = half(x [* ls[0]]), one thread per pair of elements;
	// dispatch ceil(ceil(n/2)/256) workgroups (nn.Grid).
	Cast = Kernel{File: "cast.wgsl", Entry: "to_half", Workgroup: [3]int{256, 1, 1},
		Bindings: []string{"x: (n) f32 bits read", "y: (ceil(n/2)) f16 pairs read_write", "ls: (>=1) read", "flag: (1) u32 atomic read_write"}}
	// Cast4 is Cast on four elements per thread (n divisible by 4).
	Cast4 = Kernel{File: "cast.wgsl", Entry: "to_half4", Workgroup: [3]int{256, 1, 1},
		Bindings: []string{"x: (n/4) vec4 f32 bits read", "y: (n/4) four f16 read_write", "ls: (>=1) read", "flag: (1) u32 atomic read_write"}}
)
