// Package gpu binds the standard WebGPU C API (webgpu.h) with cgo and runs
// WGSL compute shaders on whatever implementation it finds at run time.
//
// Nothing is linked at build time: Load opens Dawn (the npm package
// bun-webgpu-<platform>) or wgpu-native (the PyPI wheel wgpu) with dlopen,
// looking at $MOM_WEBGPU_LIB, then the project's .deps folder, then the usual
// system names. The declarations in shim.h are mom's own, written from the
// webgpu.h documentation; where the two implementations' headers differ
// (instance descriptor, feature numbering, the work-done callback, waiting
// on futures) shim.c branches on the implementation it loaded.
//
// The package owns adapters and devices, buffers with upload and
// (asynchronous) readback, WGSL modules whose compile errors come back as
// *CompileError with the line, compute pipelines cached by shader, entry
// point and override constants, bind groups, a Recorder that records many
// dispatches into one command buffer and one submit, GPU timestamps per
// dispatch, and error scopes, uncaptured errors and device loss as Go errors.
// HostReadBuffer is a map-readable buffer reused for downloads read in place
// (the data-parallel trainer's gradient buckets), HostWriteBuffer its
// map-writable twin for uploads (the summed buckets); waiting for either
// waits for that map only (on wgpu-native a non-blocking poll, as its
// blocking poll waits for every submission). The runtimes' shader bounds
// checks are off unless Options.Robust (Dawn's disable_robustness toggle;
// wgpu-native's trusted shader modules, which also drop its loop counters):
// mom's kernels check their own bounds, and the checks cost about 20% of
// the GEMMs' time on an H200 (wgpu-native's scan 2.7x). For several GPUs in one
// host, BestKind lists the adapters ranks share out and UniqueIDs names the
// GPU behind each by its PCI address or UUID, asked from the Vulkan loader
// (vkid.c; neither WebGPU implementation exposes them).
// It knows nothing about models.
//
// Transfers: large Buffer.Write and Read calls (and WriteWith and ReadWith,
// which fill or drain staging in place) go through a Stager on the
// device's fastest TransferPath: Dawn's host-mapped-pointer buffers (asked
// for with the allow_unsafe_apis toggle), else mapped staging buffers, else
// the queue; two slots per direction let the host fill one while the device
// copies the other.
//
// Memory: every buffer is counted under a MemCategory (parameters,
// gradients, optimizer, activations, scratch, staging); Device.Memory gives
// the live and peak bytes by category and the largest groups of buffers.
// Dawn frees a released buffer only after a later submit has completed and
// the device has been ticked: until then the memory counts as released
// (in the peak too), and Device.Collect frees it (creating a buffer does
// so by itself when 64 MiB or more wait).
// OpenDryRun opens a device of a null implementation (null.c) that takes a
// Profile's limits and features (an H200, say) but allocates nothing and
// runs nothing, so that the accounting says what mom would take there.
package gpu
