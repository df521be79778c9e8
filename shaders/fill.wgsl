// fill.wgsl: set every element of a buffer to one value.
override VALUE: f32 = 0.0;

@group(0) @binding(0) var<storage, read_write> x: array<f32>; // (n)

@compute @workgroup_size(256)
fn fill(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
	let i = gid.x + gid.y * nwg.x * 256u;
	if (i < arrayLength(&x)) {
		x[i] = VALUE;
	}
}
