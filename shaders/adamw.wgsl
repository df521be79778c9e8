// adamw.wgsl: one AdamW step with decoupled weight decay over one parameter
// range (a whole tensor, or one binding-sized piece of a large one):
//   g = grad * scale
//   m = BETA1 m + (1 - BETA1) g
//   v = BETA2 v + (1 - BETA2) g²
//   p -= lr * ( (m / bc1) / (sqrt(v / bc2) + EPS) + WD p )
// with lr, bc1 = 1 - BETA1^t and bc2 = 1 - BETA2^t read from the step
// buffer the host writes before each step, and scale the clip scale computed
// on the device (gradnorm.wgsl). A scale of exactly 0 skips the update:
// parameters and moments stay as they are (the step a loss-scaled gradient
// norm found an overflow in; an unscaled clip scale is never 0). One
// element (adamw) or vec4 (adamw4) per thread; dispatch ceil(n/256) (ceil(n/4/256)) workgroups split over y.

override BETA1: f32;
override BETA2: f32;
override EPS: f32;
override WD: f32; // 0 for parameters without decay

// adamw
@group(0) @binding(0) var<storage, read_write> p: array<f32>; // (n) parameters
@group(0) @binding(1) var<storage, read> g: array<f32>;       // (n) gradient
@group(0) @binding(2) var<storage, read_write> m: array<f32>; // (n) first moment
@group(0) @binding(3) var<storage, read_write> v: array<f32>; // (n) second moment
// adamw4
@group(0) @binding(0) var<storage, read_write> p4: array<vec4<f32>>; // (n/4)
@group(0) @binding(1) var<storage, read> g4: array<vec4<f32>>;       // (n/4)
@group(0) @binding(2) var<storage, read_write> m4: array<vec4<f32>>; // (n/4)
@group(0) @binding(3) var<storage, read_write> v4: array<vec4<f32>>; // (n/4)
// both
@group(0) @binding(4) var<storage, read> hp: array<f32>;    // (3) lr, bc1, bc2
@group(0) @binding(5) var<storage, read> scale: array<f32>; // (1) gradient clip scale

@compute @workgroup_size(256)
fn adamw(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
	let i = gid.x + gid.y * nwg.x * 256u;
	let sc = scale[0];
	if (i >= arrayLength(&p) || sc == 0.0) {
		return;
	}
	let lr = hp[0];
	let gi = g[i] * sc;
	let mi = BETA1 * m[i] + (1.0 - BETA1) * gi;
	let vi = BETA2 * v[i] + (1.0 - BETA2) * gi * gi;
	m[i] = mi;
	v[i] = vi;
	let pi = p[i];
	p[i] = pi - lr * ((mi / hp[1]) / (sqrt(vi / hp[2]) + EPS) + WD * pi);
}

@compute @workgroup_size(256)
fn adamw4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
	let i = gid.x + gid.y * nwg.x * 256u;
	let sc = scale[0];
	if (i >= arrayLength(&p4) || sc == 0.0) {
		return;
	}
	let lr = hp[0];
	let gi = g4[i] * sc;
	let mi = BETA1 * m4[i] + (1.0 - BETA1) * gi;
	let vi = BETA2 * v4[i] + (1.0 - BETA2) * gi * gi;
	m4[i] = mi;
	v4[i] = vi;
	let pi = p4[i];
	p4[i] = pi - lr * ((mi / hp[1]) / (sqrt(vi / hp[2]) + EPS) + WD * pi);
}
