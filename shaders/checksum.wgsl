// checksum.wgsl: a checksum of a tensor's bits, for checking that
// data-parallel ranks hold identical parameters. Element i (a float's bit
// pattern as u32) contributes bits(x_i) * (2i + 1), all summed with
// wrapping u32 arithmetic. Wrapping addition is associative and
// commutative, so the sum does not depend on the order workgroups finish
// in: it is exact and deterministic. A change of any one element changes
// it (2i + 1 is odd, hence invertible modulo 2^32).
//
// checksum runs once per tensor range: workgroup w sums the elements
// w*256 + tid + k*(num_workgroups*256) and adds its sum atomically to
// sum[0] (the sum binding is that range's own slot, cleared beforehand).

const WG: u32 = 256u;
var<workgroup> red: array<u32, WG>;

@group(0) @binding(0) var<storage, read> x: array<u32>;                // (n) one tensor range, as bits
@group(0) @binding(1) var<storage, read_write> sum: array<atomic<u32>>; // (1) this range's checksum

@compute @workgroup_size(256)
fn checksum(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
	@builtin(local_invocation_index) tid: u32) {
	let n = arrayLength(&x);
	let stride = nwg.x * WG;
	var s = 0u;
	for (var i = wid.x * WG + tid; i < n; i += stride) {
		s += x[i] * (2u * i + 1u);
	}
	red[tid] = s;
	workgroupBarrier();
	for (var k = WG / 2u; k > 0u; k >>= 1u) {
		if (tid < k) {
			red[tid] += red[tid + k];
		}
		workgroupBarrier();
	}
	if (tid == 0u) {
		atomicAdd(&sum[0], red[0]);
	}
}
