// elementwise.wgsl: y = a + b, y += alpha*x, y *= alpha over flat tensors.
// Each op has a scalar entry point and a vec4 one (for lengths divisible by
// 4). A tensor larger than the device's storage binding limit is bound in
// ranges, one dispatch each; n is the bound range's length (arrayLength).
// Dispatch ceil(n/256) workgroups (ceil(n/4/256) for the vec4 entry points),
// split over y when above the x limit.

override ALPHA: f32 = 1.0; // axpy's alpha, scale's factor

// add: y = a + b
@group(0) @binding(0) var<storage, read> add_a: array<f32>;       // (n)
@group(0) @binding(1) var<storage, read> add_b: array<f32>;       // (n)
@group(0) @binding(2) var<storage, read_write> add_y: array<f32>; // (n)
// add4: the same as vec4
@group(0) @binding(0) var<storage, read> add_a4: array<vec4<f32>>;       // (n/4)
@group(0) @binding(1) var<storage, read> add_b4: array<vec4<f32>>;       // (n/4)
@group(0) @binding(2) var<storage, read_write> add_y4: array<vec4<f32>>; // (n/4)
// axpy: y += ALPHA * x
@group(0) @binding(0) var<storage, read> axpy_x: array<f32>;       // (n)
@group(0) @binding(1) var<storage, read_write> axpy_y: array<f32>; // (n)
@group(0) @binding(0) var<storage, read> axpy_x4: array<vec4<f32>>;       // (n/4)
@group(0) @binding(1) var<storage, read_write> axpy_y4: array<vec4<f32>>; // (n/4)
// scale: y *= ALPHA
@group(0) @binding(0) var<storage, read_write> scale_y: array<f32>;        // (n)
@group(0) @binding(0) var<storage, read_write> scale_y4: array<vec4<f32>>; // (n/4)

fn flat(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
	return gid.x + gid.y * nwg.x * 256u;
}

@compute @workgroup_size(256)
fn add(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
	let i = flat(gid, nwg);
	if (i < arrayLength(&add_y)) {
		add_y[i] = add_a[i] + add_b[i];
	}
}

@compute @workgroup_size(256)
fn add4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
	let i = flat(gid, nwg);
	if (i < arrayLength(&add_y4)) {
		add_y4[i] = add_a4[i] + add_b4[i];
	}
}

@compute @workgroup_size(256)
fn axpy(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
	let i = flat(gid, nwg);
	if (i < arrayLength(&axpy_y)) {
		axpy_y[i] += ALPHA * axpy_x[i];
	}
}

@compute @workgroup_size(256)
fn axpy4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
	let i = flat(gid, nwg);
	if (i < arrayLength(&axpy_y4)) {
		axpy_y4[i] += ALPHA * axpy_x4[i];
	}
}

@compute @workgroup_size(256)
fn scale(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
	let i = flat(gid, nwg);
	if (i < arrayLength(&scale_y)) {
		scale_y[i] *= ALPHA;
	}
}

@compute @workgroup_size(256)
fn scale4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
	let i = flat(gid, nwg);
	if (i < arrayLength(&scale_y4)) {
		scale_y4[i] *= ALPHA;
	}
}
