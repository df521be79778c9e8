// shim.c: calls into a WebGPU implementation loaded with dlopen.
//
// Every wait happens here, in C, so Go never receives a callback: each
// callback writes its result into the mg_op passed as userdata1, and the
// waiting function returns once that op is done.
#include "shim.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "shim_types.h"


static const char *release_names[MG_KIND_COUNT] = {
	"wgpuInstanceRelease", "wgpuAdapterRelease", "wgpuDeviceRelease", "wgpuQueueRelease",
	"wgpuBufferRelease", "wgpuShaderModuleRelease", "wgpuComputePipelineRelease",
	"wgpuBindGroupLayoutRelease", "wgpuBindGroupRelease", "wgpuCommandEncoderRelease",
	"wgpuComputePassEncoderRelease", "wgpuCommandBufferRelease", "wgpuQuerySetRelease",
	"wgpuSurfaceRelease", "wgpuTextureRelease", "wgpuTextureViewRelease",
	"wgpuRenderPipelineRelease", "wgpuRenderPassEncoderRelease",
};

static mg_str S(const char *s) { mg_str v = {s, s ? STRLEN_NUL : 0}; return v; }

static void copy_str(char *dst, size_t cap, mg_str s) {
	size_t n = 0;
	if (s.data) n = (s.length == STRLEN_NUL) ? strlen(s.data) : s.length;
	if (n >= cap) n = cap - 1;
	if (n) memcpy(dst, s.data, n);
	dst[n] = 0;
}

#define SYM(field, name, required)                                                  \
	do {                                                                            \
		*(void **)(&L->field) = dlsym(L->dl, name);                                  \
		if (!L->field && (required)) {                                              \
			snprintf(err, errlen, "%s does not export %s", path, name);              \
			dlclose(L->dl);                                                         \
			free(L);                                                                \
			return NULL;                                                            \
		}                                                                           \
	} while (0)

mg_lib *mg_open(const char *path, char *err, size_t errlen) {
	void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!dl) {
		const char *e = dlerror();
		snprintf(err, errlen, "%s", e ? e : "dlopen failed");
		return NULL;
	}
	mg_lib *L = calloc(1, sizeof *L);
	L->dl = dl;
	if (!dlsym(dl, "wgpuCreateInstance")) {
		snprintf(err, errlen, "%s does not export wgpuCreateInstance: it is not a WebGPU implementation", path);
		dlclose(dl);
		free(L);
		return NULL;
	}
	// wgpu-native exports its polling extension; Dawn exports its tick.
	if (dlsym(dl, "wgpuDevicePoll")) L->kind = MG_WGPU;
	else if (dlsym(dl, "wgpuDeviceTick")) L->kind = MG_DAWN;
	else {
		snprintf(err, errlen, "%s exports neither wgpuDevicePoll (wgpu-native) nor wgpuDeviceTick (Dawn): unknown WebGPU implementation", path);
		dlclose(dl);
		free(L);
		return NULL;
	}
	SYM(CreateInstance, "wgpuCreateInstance", 1);
	SYM(InstanceRequestAdapter, "wgpuInstanceRequestAdapter", 1);
	SYM(InstanceWaitAny, "wgpuInstanceWaitAny", 1);
	SYM(InstanceProcessEvents, "wgpuInstanceProcessEvents", 1);
	SYM(InstanceEnumerateAdapters, "wgpuInstanceEnumerateAdapters", 0);
	SYM(AdapterGetInfo, "wgpuAdapterGetInfo", 1);
	SYM(AdapterInfoFreeMembers, "wgpuAdapterInfoFreeMembers", 1);
	SYM(AdapterGetLimits, "wgpuAdapterGetLimits", 1);
	SYM(AdapterGetFeatures, "wgpuAdapterGetFeatures", 1);
	SYM(SupportedFeaturesFreeMembers, "wgpuSupportedFeaturesFreeMembers", 1);
	SYM(AdapterRequestDevice, "wgpuAdapterRequestDevice", 1);
	SYM(DeviceGetLimits, "wgpuDeviceGetLimits", 1);
	SYM(DeviceGetFeatures, "wgpuDeviceGetFeatures", 1);
	SYM(DeviceGetQueue, "wgpuDeviceGetQueue", 1);
	SYM(DevicePushErrorScope, "wgpuDevicePushErrorScope", 1);
	SYM(DevicePopErrorScope, "wgpuDevicePopErrorScope", 1);
	SYM(DeviceCreateBuffer, "wgpuDeviceCreateBuffer", 1);
	SYM(QueueWriteBuffer, "wgpuQueueWriteBuffer", 1);
	SYM(BufferMapAsync, "wgpuBufferMapAsync", 1);
	SYM(BufferGetConstMappedRange, "wgpuBufferGetConstMappedRange", 1);
	SYM(BufferGetMappedRange, "wgpuBufferGetMappedRange", 1);
	SYM(BufferUnmap, "wgpuBufferUnmap", 1);
	SYM(BufferDestroy, "wgpuBufferDestroy", 1);
	SYM(QueueOnSubmittedWorkDone, "wgpuQueueOnSubmittedWorkDone", 1);
	SYM(DeviceCreateShaderModule, "wgpuDeviceCreateShaderModule", 1);
	SYM(DeviceCreateShaderModuleTrusted, "wgpuDeviceCreateShaderModuleTrusted", 0);
	SYM(ShaderModuleGetCompilationInfo, "wgpuShaderModuleGetCompilationInfo", 0);
	SYM(DeviceCreateComputePipeline, "wgpuDeviceCreateComputePipeline", 1);
	SYM(ComputePipelineGetBindGroupLayout, "wgpuComputePipelineGetBindGroupLayout", 1);
	SYM(DeviceCreateBindGroup, "wgpuDeviceCreateBindGroup", 1);
	SYM(DeviceCreateCommandEncoder, "wgpuDeviceCreateCommandEncoder", 1);
	SYM(CommandEncoderBeginComputePass, "wgpuCommandEncoderBeginComputePass", 1);
	SYM(ComputePassEncoderSetPipeline, "wgpuComputePassEncoderSetPipeline", 1);
	SYM(ComputePassEncoderSetBindGroup, "wgpuComputePassEncoderSetBindGroup", 1);
	SYM(ComputePassEncoderDispatchWorkgroups, "wgpuComputePassEncoderDispatchWorkgroups", 1);
	SYM(ComputePassEncoderEnd, "wgpuComputePassEncoderEnd", 1);
	SYM(CommandEncoderCopyBufferToBuffer, "wgpuCommandEncoderCopyBufferToBuffer", 1);
	SYM(CommandEncoderClearBuffer, "wgpuCommandEncoderClearBuffer", 1);
	SYM(CommandEncoderResolveQuerySet, "wgpuCommandEncoderResolveQuerySet", 1);
	SYM(CommandEncoderFinish, "wgpuCommandEncoderFinish", 1);
	SYM(QueueSubmit, "wgpuQueueSubmit", 1);
	SYM(DeviceCreateQuerySet, "wgpuDeviceCreateQuerySet", 1);
	SYM(DeviceDestroy, "wgpuDeviceDestroy", 1);
	SYM(DevicePoll, "wgpuDevicePoll", L->kind == MG_WGPU);
	SYM(DeviceTick, "wgpuDeviceTick", 0);
	SYM(QueueGetTimestampPeriod, "wgpuQueueGetTimestampPeriod", 0);
	for (int k = 0; k < MG_KIND_COUNT; k++) SYM(release[k], release_names[k], 1);
	return L;
}

int mg_kind(const mg_lib *L) { return L->kind; }

void *mg_sym(const mg_lib *L, const char *name) { return L->dl ? dlsym(L->dl, name) : NULL; }

void mg_close(mg_lib *L) {
	// The implementations keep process-wide state (Vulkan instances, worker
	// threads) that does not survive dlclose cleanly: keep the code mapped.
	free(L);
}

// ---- waiting ---------------------------------------------------------------

static void sleep_us(long us) {
	struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
	nanosleep(&ts, NULL);
}

static uint64_t now_ns(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint32_t cb_mode(const mg_lib *L) {
	return L->kind == MG_DAWN ? CB_WAIT_ANY_ONLY : CB_ALLOW_PROCESS_EVENTS;
}

void mg_process_events(const mg_lib *L, void *inst, void *device) {
	if (L->kind == MG_WGPU && device) L->DevicePoll(device, 0, NULL);
	if (L->kind == MG_DAWN && device && L->DeviceTick) L->DeviceTick(device);
	L->InstanceProcessEvents(inst);
}

// mg_wait blocks until op is done or timeout_ns passes. Returns 1 when done,
// 0 on timeout, -1 when the implementation reports an error.
int mg_wait(const mg_lib *L, void *inst, void *device, mg_op *op, uint64_t timeout_ns) {
	if (op->done) return 1;
	if (L->kind == MG_DAWN) {
		wait_info w = {op->future, 0};
		uint32_t st = L->InstanceWaitAny(inst, 1, &w, timeout_ns);
		if (st == WAIT_SUCCESS) return op->done ? 1 : -1;
		if (st == WAIT_TIMED_OUT) return 0;
		return -1;
	}
	// wgpu-native: a non-blocking poll, again and again. A blocking poll
	// (wait = true) would wait for every submission, not just the one op
	// needs: a map of the first gradient bucket would wait for the whole
	// backward behind it, and nothing could overlap with the GPU.
	uint64_t start = now_ns();
	long nap = 5;
	for (;;) {
		if (device) L->DevicePoll(device, 0, NULL);
		L->InstanceProcessEvents(inst);
		if (op->done) return 1;
		if (timeout_ns != UINT64_MAX && now_ns() - start > timeout_ns) return 0;
		sleep_us(nap);
		if (nap < 100) nap *= 2;
	}
}

// mg_poll reports whether op is done without blocking.
int mg_poll(const mg_lib *L, void *inst, void *device, mg_op *op) {
	if (op->done) return 1;
	if (L->kind == MG_DAWN) {
		wait_info w = {op->future, 0};
		L->InstanceWaitAny(inst, 1, &w, 0);
	} else {
		if (device) L->DevicePoll(device, 0, NULL);
		L->InstanceProcessEvents(inst);
	}
	return op->done;
}

// ---- callbacks -------------------------------------------------------------

static void on_request(uint32_t status, void *handle, mg_str msg, void *u1, void *u2) {
	(void)u2;
	mg_op *op = u1;
	op->status = status;
	op->handle = handle;
	copy_str(op->msg, sizeof op->msg, msg);
	op->done = 1;
}

static void on_status_msg(uint32_t status, mg_str msg, void *u1, void *u2) {
	(void)u2;
	mg_op *op = u1;
	op->status = status;
	copy_str(op->msg, sizeof op->msg, msg);
	op->done = 1;
}

static void on_status_only(uint32_t status, void *u1, void *u2) {
	(void)u2;
	mg_op *op = u1;
	op->status = status;
	op->msg[0] = 0;
	op->done = 1;
}

static void on_pop_scope(uint32_t status, uint32_t type, mg_str msg, void *u1, void *u2) {
	(void)u2;
	mg_op *op = u1;
	op->status = status;
	op->kind = type;
	copy_str(op->msg, sizeof op->msg, msg);
	op->done = 1;
}

static void on_uncaptured(void *const *device, uint32_t type, mg_str msg, void *u1, void *u2) {
	(void)device;
	(void)u2;
	mg_device_state *s = u1;
	pthread_mutex_lock(&s->mu);
	if (s->count < MG_MAX_PENDING) {
		s->types[s->count] = type;
		copy_str(s->msgs[s->count], sizeof s->msgs[0], msg);
		s->count++;
	} else {
		s->dropped++;
	}
	pthread_mutex_unlock(&s->mu);
}

static void on_lost(void *const *device, uint32_t reason, mg_str msg, void *u1, void *u2) {
	(void)device;
	(void)u2;
	mg_device_state *s = u1;
	pthread_mutex_lock(&s->mu);
	s->lost = 1;
	s->lost_reason = reason;
	copy_str(s->lost_msg, sizeof s->lost_msg, msg);
	pthread_mutex_unlock(&s->mu);
}

static cbinfo cb(const mg_lib *L, void *fn, mg_op *op) {
	cbinfo c = {NULL, cb_mode(L), fn, op, NULL};
	op->done = 0;
	op->msg[0] = 0;
	return c;
}

// ---- instance and adapters -------------------------------------------------

void *mg_create_instance(const mg_lib *L) {
	if (L->null) return mgnull_instance(L->null);
	if (L->kind == MG_DAWN) {
		dawn_instance_desc d = {NULL, {NULL, 1, 64}};
		return L->CreateInstance(&d);
	}
	return L->CreateInstance(NULL);
}

int mg_request_adapter(const mg_lib *L, void *inst, uint32_t backend, uint32_t power,
                       mg_bool fallback, uint32_t feature_level, const char *const *toggles,
                       size_t ntoggles, mg_op *op) {
	adapter_options o = {NULL, feature_level, power, fallback, backend, NULL};
	// Dawn shows its experimental features (host-mapped-pointer, subgroup
	// matrices) only on adapters requested with allow_unsafe_apis.
	dawn_toggles t;
	memset(&t, 0, sizeof t);
	if (L->kind == MG_DAWN && ntoggles > 0) {
		t.chain.stype = STYPE_DAWN_TOGGLES;
		t.n_enabled = ntoggles;
		t.enabled = toggles;
		o.next = &t.chain;
	}
	op->future = L->InstanceRequestAdapter(inst, &o, cb(L, (void *)on_request, op));
	return mg_wait(L, inst, NULL, op, UINT64_MAX);
}

size_t mg_enumerate_adapters(const mg_lib *L, void *inst, void **out, size_t max) {
	if (!L->InstanceEnumerateAdapters) return 0;
	size_t n = L->InstanceEnumerateAdapters(inst, NULL, NULL);
	if (n == 0 || out == NULL) return n;
	void **all = calloc(n, sizeof(void *));
	n = L->InstanceEnumerateAdapters(inst, NULL, all);
	size_t k = n < max ? n : max;
	memcpy(out, all, k * sizeof(void *));
	for (size_t i = k; i < n; i++) L->release[MG_ADAPTER](all[i]);
	free(all);
	return k;
}

int mg_adapter_info_get(const mg_lib *L, void *adapter, mg_adapter_info *out) {
	adapter_info ai;
	memset(&ai, 0, sizeof ai);
	if (L->AdapterGetInfo(adapter, &ai) != 1) return 0;
	copy_str(out->vendor, sizeof out->vendor, ai.vendor);
	copy_str(out->architecture, sizeof out->architecture, ai.architecture);
	copy_str(out->device, sizeof out->device, ai.device);
	copy_str(out->description, sizeof out->description, ai.description);
	out->backend = ai.backend;
	out->adapter_type = ai.adapter_type;
	out->vendor_id = ai.vendor_id;
	out->device_id = ai.device_id;
	out->subgroup_min = ai.sg_min;
	out->subgroup_max = ai.sg_max;
	L->AdapterInfoFreeMembers(ai);
	return 1;
}

int mg_adapter_limits(const mg_lib *L, void *adapter, mg_limits *out) {
	memset(out, 0, sizeof *out);
	return L->AdapterGetLimits(adapter, out) == 1;
}

static size_t copy_features(const mg_lib *L, supported_features *f, uint32_t *out, size_t max) {
	size_t n = f->count < max ? f->count : max;
	if (out && n) memcpy(out, f->features, n * sizeof(uint32_t));
	size_t total = f->count;
	L->SupportedFeaturesFreeMembers(*f);
	return total < max ? total : max;
}

size_t mg_adapter_features(const mg_lib *L, void *adapter, uint32_t *out, size_t max) {
	supported_features f = {0, NULL};
	L->AdapterGetFeatures(adapter, &f);
	return copy_features(L, &f, out, max);
}

// ---- device ----------------------------------------------------------------

mg_device_state *mg_state_new(void) {
	mg_device_state *s = calloc(1, sizeof *s);
	pthread_mutex_init(&s->mu, NULL);
	return s;
}

void mg_state_free(mg_device_state *s) {
	if (!s) return;
	pthread_mutex_destroy(&s->mu);
	free(s);
}

// mg_state_take pops the oldest uncaptured error. Returns 1 if there was one,
// 2 if the device is lost (type holds the reason), 0 otherwise.
int mg_state_take(mg_device_state *s, uint32_t *type, char *msg, size_t msglen) {
	int r = 0;
	pthread_mutex_lock(&s->mu);
	if (s->count > 0) {
		*type = s->types[0];
		snprintf(msg, msglen, "%s", s->msgs[0]);
		for (int i = 1; i < s->count; i++) {
			s->types[i - 1] = s->types[i];
			memcpy(s->msgs[i - 1], s->msgs[i], sizeof s->msgs[0]);
		}
		s->count--;
		r = 1;
	} else if (s->lost) {
		*type = s->lost_reason;
		snprintf(msg, msglen, "%s", s->lost_msg);
		r = 2;
	}
	pthread_mutex_unlock(&s->mu);
	return r;
}

int mg_request_device(const mg_lib *L, void *inst, void *adapter, const uint32_t *features,
                      size_t nfeatures, const mg_limits *limits, mg_device_state *state,
                      const char *const *toggles, size_t ntoggles,
                      const char *const *disabled, size_t ndisabled, mg_op *op) {
	device_desc d;
	memset(&d, 0, sizeof d);
	dawn_toggles t;
	memset(&t, 0, sizeof t);
	if (L->kind == MG_DAWN && (ntoggles > 0 || ndisabled > 0)) {
		t.chain.stype = STYPE_DAWN_TOGGLES;
		t.n_enabled = ntoggles;
		t.enabled = toggles;
		t.n_disabled = ndisabled;
		t.disabled = disabled;
		d.next = &t.chain;
	}
	d.label = S("mom");
	d.nfeatures = nfeatures;
	d.features = features;
	d.limits = limits;
	d.queue.label = S("mom queue");
	d.lost.mode = CB_ALLOW_SPONTANEOUS;
	d.lost.cb = (void *)on_lost;
	d.lost.u1 = state;
	d.uncaptured.cb = (void *)on_uncaptured;
	d.uncaptured.u1 = state;
	op->future = L->AdapterRequestDevice(adapter, &d, cb(L, (void *)on_request, op));
	return mg_wait(L, inst, NULL, op, UINT64_MAX);
}

int mg_device_limits(const mg_lib *L, void *device, mg_limits *out) {
	memset(out, 0, sizeof *out);
	return L->DeviceGetLimits(device, out) == 1;
}

size_t mg_device_features(const mg_lib *L, void *device, uint32_t *out, size_t max) {
	supported_features f = {0, NULL};
	L->DeviceGetFeatures(device, &f);
	return copy_features(L, &f, out, max);
}

void *mg_device_queue(const mg_lib *L, void *device) { return L->DeviceGetQueue(device); }

void mg_push_error_scope(const mg_lib *L, void *device, uint32_t filter) {
	L->DevicePushErrorScope(device, filter);
}

int mg_pop_error_scope(const mg_lib *L, void *inst, void *device, mg_op *op) {
	op->kind = 0;
	op->future = L->DevicePopErrorScope(device, cb(L, (void *)on_pop_scope, op));
	return mg_wait(L, inst, device, op, UINT64_MAX);
}

// ---- buffers ---------------------------------------------------------------

void *mg_create_buffer(const mg_lib *L, void *device, const char *label, uint64_t usage,
                       uint64_t size, mg_bool mapped) {
	buffer_desc d = {NULL, S(label), usage, size, mapped};
	return L->DeviceCreateBuffer(device, &d);
}

// Host memory handed to host-mapped buffers, counted so that tests can see
// Dawn's dispose callback free it.
static volatile long host_live;

static void host_dispose(void *p) {
	__atomic_sub_fetch(&host_live, 1, __ATOMIC_SEQ_CST);
	free(p);
}

void *mg_host_alloc(size_t align, size_t size) {
	void *p = NULL;
	if (posix_memalign(&p, align, size) != 0) return NULL;
	__atomic_add_fetch(&host_live, 1, __ATOMIC_SEQ_CST);
	return p;
}

void mg_host_free(void *p) {
	__atomic_sub_fetch(&host_live, 1, __ATOMIC_SEQ_CST);
	free(p);
}

long mg_host_live(void) { return __atomic_load_n(&host_live, __ATOMIC_SEQ_CST); }

// mg_create_buffer_host wraps host memory (page-aligned, a whole number of
// pages) in a buffer through Dawn's host-mapped-pointer feature. Dawn calls
// the dispose callback, which frees the memory, once the buffer no longer
// uses it; own_memory 0 leaves the memory to the caller.
void *mg_create_buffer_host(const mg_lib *L, void *device, const char *label, uint64_t usage,
                            uint64_t size, void *host, int own_memory) {
	host_mapped_desc h = {{NULL, STYPE_DAWN_BUFFER_HOST_MAPPED_POINTER}, host,
	                      own_memory ? host_dispose : NULL, host};
	buffer_desc d = {&h.chain, S(label), usage, size, 0};
	return L->DeviceCreateBuffer(device, &d);
}

void *mg_mapped_range_rw(const mg_lib *L, void *buffer, size_t offset, size_t size) {
	return L->BufferGetMappedRange(buffer, offset, size);
}

void mg_queue_write(const mg_lib *L, void *queue, void *buffer, uint64_t offset,
                    const void *data, size_t size) {
	L->QueueWriteBuffer(queue, buffer, offset, data, size);
}

int mg_map_async(const mg_lib *L, void *buffer, uint64_t mode, size_t offset, size_t size,
                 mg_op *op) {
	op->future = L->BufferMapAsync(buffer, mode, offset, size, cb(L, (void *)on_status_msg, op));
	return 1;
}

const void *mg_mapped_range(const mg_lib *L, void *buffer, size_t offset, size_t size) {
	return L->BufferGetConstMappedRange(buffer, offset, size);
}

void mg_unmap(const mg_lib *L, void *buffer) { L->BufferUnmap(buffer); }

// The work-done callback gained a message argument in the newer header
// (wgpu-native 0.32); Dawn 0.1.7 calls it with status and userdata only.
int mg_queue_done(const mg_lib *L, void *queue, mg_op *op) {
	void *fn = (void *)on_status_msg;
	op->future = L->QueueOnSubmittedWorkDone(queue, cb(L, fn, op));
	return 1;
}

// ---- shaders and pipelines -------------------------------------------------

void *mg_create_shader(const mg_lib *L, void *device, const char *label, const char *code,
                       size_t len, mg_bool unchecked) {
	wgsl_source src = {{NULL, STYPE_WGSL}, {code, len}};
	labeled_desc d = {&src.chain, S(label)};
	// WGPUShaderRuntimeChecks_None: neither bounds checks nor loop bounding.
	if (unchecked && L->DeviceCreateShaderModuleTrusted)
		return L->DeviceCreateShaderModuleTrusted(device, &d, 0);
	return L->DeviceCreateShaderModule(device, &d);
}

int mg_has_unchecked_shaders(const mg_lib *L) { return L->DeviceCreateShaderModuleTrusted != NULL; }

typedef struct { mg_compile_msg *out; size_t max, *n; } compile_sink;

static void on_compile_info(uint32_t status, const compile_info *info, void *u1, void *u2) {
	mg_op *op = u1;
	compile_sink *sink = u2;
	op->status = status;
	size_t n = 0;
	if (info && status == 1) {
		for (size_t i = 0; i < info->n && n < sink->max; i++, n++) {
			mg_compile_msg *m = &sink->out[n];
			m->type = info->msgs[i].type;
			m->line = info->msgs[i].line;
			m->col = info->msgs[i].col;
			copy_str(m->msg, sizeof m->msg, info->msgs[i].message);
		}
	}
	*sink->n = n;
	op->done = 1;
}

// mg_compilation_info fills out with the module's compile messages. Only
// Dawn implements the call; returns 0 where it is missing.
int mg_compilation_info(const mg_lib *L, void *inst, void *device, void *module, mg_op *op,
                        mg_compile_msg *out, size_t max, size_t *n) {
	*n = 0;
	if (L->kind != MG_DAWN || !L->ShaderModuleGetCompilationInfo) return 0;
	compile_sink sink = {out, max, n};
	cbinfo c = cb(L, (void *)on_compile_info, op);
	c.u2 = &sink;
	op->future = L->ShaderModuleGetCompilationInfo(module, c);
	return mg_wait(L, inst, device, op, UINT64_MAX);
}

void *mg_create_pipeline(const mg_lib *L, void *device, const char *label, void *module,
                         const char *entry, const char *const *keys, const double *values,
                         size_t nconst) {
	constant_entry *c = nconst ? calloc(nconst, sizeof *c) : NULL;
	for (size_t i = 0; i < nconst; i++) {
		c[i].key = S(keys[i]);
		c[i].value = values[i];
	}
	pipeline_desc d;
	memset(&d, 0, sizeof d);
	d.label = S(label);
	d.layout = NULL; // "auto": derived from the shader
	d.compute.module = module;
	d.compute.entry = S(entry);
	d.compute.nconst = nconst;
	d.compute.consts = c;
	void *p = L->DeviceCreateComputePipeline(device, &d);
	free(c);
	return p;
}

void *mg_pipeline_layout(const mg_lib *L, void *pipeline, uint32_t group) {
	return L->ComputePipelineGetBindGroupLayout(pipeline, group);
}

void *mg_create_bind_group(const mg_lib *L, void *device, void *layout, size_t n,
                           const uint32_t *bindings, void *const *buffers,
                           const uint64_t *offsets, const uint64_t *sizes) {
	bind_entry e[64];
	if (n > 64) return NULL;
	memset(e, 0, sizeof e);
	for (size_t i = 0; i < n; i++) {
		e[i].binding = bindings[i];
		e[i].buffer = buffers[i];
		e[i].offset = offsets[i];
		e[i].size = sizes[i];
	}
	bind_desc d = {NULL, S(NULL), layout, n, e};
	return L->DeviceCreateBindGroup(device, &d);
}

// ---- recording -------------------------------------------------------------

void *mg_create_encoder(const mg_lib *L, void *device) {
	labeled_desc d = {NULL, S(NULL)};
	return L->DeviceCreateCommandEncoder(device, &d);
}

void *mg_begin_pass(const mg_lib *L, void *encoder, void *query_set, uint32_t begin,
                    uint32_t end) {
	pass_timestamps ts = {NULL, query_set, begin, end};
	pass_desc d = {NULL, S(NULL), query_set ? &ts : NULL};
	return L->CommandEncoderBeginComputePass(encoder, &d);
}

void mg_pass_pipeline(const mg_lib *L, void *pass, void *pipeline) {
	L->ComputePassEncoderSetPipeline(pass, pipeline);
}

void mg_pass_bind(const mg_lib *L, void *pass, uint32_t group, void *bind_group) {
	L->ComputePassEncoderSetBindGroup(pass, group, bind_group, 0, NULL);
}

void mg_pass_dispatch(const mg_lib *L, void *pass, uint32_t x, uint32_t y, uint32_t z) {
	L->ComputePassEncoderDispatchWorkgroups(pass, x, y, z);
}

void mg_pass_end(const mg_lib *L, void *pass) { L->ComputePassEncoderEnd(pass); }

void mg_encoder_copy(const mg_lib *L, void *encoder, void *src, uint64_t src_off, void *dst,
                     uint64_t dst_off, uint64_t size) {
	L->CommandEncoderCopyBufferToBuffer(encoder, src, src_off, dst, dst_off, size);
}

void mg_encoder_clear(const mg_lib *L, void *encoder, void *buffer, uint64_t off, uint64_t size) {
	L->CommandEncoderClearBuffer(encoder, buffer, off, size);
}

void mg_encoder_resolve(const mg_lib *L, void *encoder, void *query_set, uint32_t first,
                        uint32_t count, void *dst, uint64_t dst_off) {
	L->CommandEncoderResolveQuerySet(encoder, query_set, first, count, dst, dst_off);
}

void *mg_encoder_finish(const mg_lib *L, void *encoder) {
	labeled_desc d = {NULL, S(NULL)};
	return L->CommandEncoderFinish(encoder, &d);
}

void mg_queue_submit(const mg_lib *L, void *queue, void *cmd) {
	void *cmds[1] = {cmd};
	L->QueueSubmit(queue, 1, cmds);
}

void *mg_create_query_set(const mg_lib *L, void *device, uint32_t count) {
	query_set_desc d = {NULL, S("mom timestamps"), QUERY_TIMESTAMP, count};
	return L->DeviceCreateQuerySet(device, &d);
}

// Nanoseconds per timestamp tick: Dawn writes nanoseconds already.
float mg_timestamp_period(const mg_lib *L, void *queue) {
	if (L->kind == MG_WGPU && L->QueueGetTimestampPeriod) return L->QueueGetTimestampPeriod(queue);
	return 1.0f;
}

void mg_release(const mg_lib *L, int kind, void *handle) {
	if (handle && kind >= 0 && kind < MG_KIND_COUNT) L->release[kind](handle);
}

void mg_buffer_destroy(const mg_lib *L, void *buffer) { L->BufferDestroy(buffer); }

void mg_device_destroy(const mg_lib *L, void *device) { L->DeviceDestroy(device); }

int mg_force_loss(const mg_lib *L, void *device) {
	void (*force)(void *, uint32_t, mg_str) = (void (*)(void *, uint32_t, mg_str))mg_sym(L, "wgpuDeviceForceLoss");
	if (!force) return 0;
	force(device, 1 /* Unknown */, S("mom test: forced device loss"));
	return 1;
}
