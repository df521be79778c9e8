package shaders

// Fill sets every element of x to the override constant VALUE. Dispatch
// ceil(n/256) workgroups, split over y when above the x limit.
var Fill = Kernel{
	File:      "fill.wgsl",
	Entry:     "fill",
	Bindings:  []string{"x: (n) read_write"},
	Workgroup: [3]int{256, 1, 1},
	Constants: []string{"VALUE"},
}
