// null.c: a null WebGPU implementation for dry runs.
//
// It answers every call of the shim as a real implementation would, with
// the adapter, limits and features of a profile (an NVIDIA H200 through
// Dawn, say), but buffers hold no memory and nothing runs: a model of any
// size is "allocated" at once, so that the accounting in package gpu shows
// what it would take on that device. Every callback is invoked before the
// call returns, so every wait finds its operation done.
#include <stdlib.h>
#include <string.h>

#include "shim_types.h"

// Every object starts with its kind and the profile.
typedef struct {
	int kind;
	const mg_null_profile *p;
} nobj;

typedef struct {
	nobj o;
	uint64_t size;
	void *mapped; // host memory for a mapped range, made on demand
} nbuf;

enum { N_INSTANCE = 1, N_ADAPTER, N_DEVICE, N_QUEUE, N_BUFFER, N_OTHER };

static void *mk(int kind, const mg_null_profile *p) {
	nobj *o = calloc(1, kind == N_BUFFER ? sizeof(nbuf) : sizeof(nobj));
	if (!o) return NULL;
	o->kind = kind;
	o->p = p;
	return o;
}

static const mg_null_profile *prof(void *h) { return ((nobj *)h)->p; }

static mg_str nstr(const char *s) { mg_str v = {s, strlen(s)}; return v; }

static mg_future next_future(void) {
	static uint64_t id;
	mg_future f = {__atomic_add_fetch(&id, 1, __ATOMIC_SEQ_CST)};
	return f;
}

typedef void (*cb_request)(uint32_t, void *, mg_str, void *, void *);
typedef void (*cb_status_msg)(uint32_t, mg_str, void *, void *);
typedef void (*cb_pop)(uint32_t, uint32_t, mg_str, void *, void *);

void *mgnull_instance(const mg_null_profile *p) { return mk(N_INSTANCE, p); }

static void *n_create_instance(const void *desc) { (void)desc; return NULL; }

static mg_future n_request_adapter(void *inst, const adapter_options *o, cbinfo c) {
	void *a = NULL;
	if (o->backend == prof(inst)->backend) a = mk(N_ADAPTER, prof(inst));
	((cb_request)c.cb)(a ? 1 : 2, a, nstr(a ? "" : "no adapter of that backend"), c.u1, c.u2);
	return next_future();
}

static uint32_t n_wait_any(void *inst, size_t n, wait_info *w, uint64_t timeout) {
	(void)inst;
	(void)timeout;
	for (size_t i = 0; i < n; i++) w[i].completed = 1;
	return 1; // success
}

static void n_process_events(void *inst) { (void)inst; }

static size_t n_enumerate_adapters(void *inst, const void *opts, void **out) {
	(void)opts;
	if (out) out[0] = mk(N_ADAPTER, prof(inst));
	return 1;
}

static uint32_t n_adapter_info(void *a, adapter_info *ai) {
	const mg_null_profile *p = prof(a);
	memset(ai, 0, sizeof *ai);
	ai->vendor = nstr(p->vendor);
	ai->architecture = nstr(p->architecture);
	ai->device = nstr(p->name);
	ai->description = nstr(p->driver);
	ai->backend = p->backend;
	ai->adapter_type = p->adapter_type;
	ai->vendor_id = p->vendor_id;
	ai->device_id = p->device_id;
	ai->sg_min = 32;
	ai->sg_max = 32;
	return 1;
}

static void n_info_free(adapter_info ai) { (void)ai; }

static uint32_t n_limits(void *h, mg_limits *out) {
	*out = prof(h)->limits;
	return 1;
}

static void n_features(void *h, supported_features *f) {
	const mg_null_profile *p = prof(h);
	f->count = p->nfeatures;
	f->features = p->features;
}

static void n_features_free(supported_features f) { (void)f; }

static mg_future n_request_device(void *a, const device_desc *d, cbinfo c) {
	(void)d;
	((cb_request)c.cb)(1, mk(N_DEVICE, prof(a)), nstr(""), c.u1, c.u2);
	return next_future();
}

static void *n_get_queue(void *dev) { return mk(N_QUEUE, prof(dev)); }

static void n_push_scope(void *dev, uint32_t f) { (void)dev; (void)f; }

static mg_future n_pop_scope(void *dev, cbinfo c) {
	(void)dev;
	((cb_pop)c.cb)(1, 1 /* no error */, nstr(""), c.u1, c.u2);
	return next_future();
}

static void *n_create_buffer(void *dev, const buffer_desc *d) {
	nbuf *b = mk(N_BUFFER, prof(dev));
	if (b) b->size = d->size;
	return b;
}

static void n_write_buffer(void *q, void *b, uint64_t off, const void *data, size_t size) {
	(void)q; (void)b; (void)off; (void)data; (void)size;
}

static mg_future n_map_async(void *b, uint64_t mode, size_t off, size_t size, cbinfo c) {
	(void)b; (void)mode; (void)off; (void)size;
	((cb_status_msg)c.cb)(1, nstr(""), c.u1, c.u2);
	return next_future();
}

static void *n_mapped(void *h, size_t off, size_t size) {
	nbuf *b = h;
	if (off + size > b->size) return NULL;
	if (!b->mapped) b->mapped = calloc(1, b->size ? b->size : 1);
	return b->mapped ? (char *)b->mapped + off : NULL;
}

static const void *n_const_mapped(void *h, size_t off, size_t size) { return n_mapped(h, off, size); }

static void n_unmap(void *h) {
	nbuf *b = h;
	free(b->mapped);
	b->mapped = NULL;
}

static void n_destroy_buffer(void *h) { n_unmap(h); }

static mg_future n_queue_done(void *q, cbinfo c) {
	(void)q;
	((cb_status_msg)c.cb)(1, nstr(""), c.u1, c.u2);
	return next_future();
}

static void *n_create_shader(void *dev, const labeled_desc *d) { (void)d; return mk(N_OTHER, prof(dev)); }
static void *n_create_pipeline(void *dev, const pipeline_desc *d) { (void)d; return mk(N_OTHER, prof(dev)); }
static void *n_pipeline_layout(void *p, uint32_t g) { (void)g; return mk(N_OTHER, prof(p)); }
static void *n_create_bind_group(void *dev, const bind_desc *d) { (void)d; return mk(N_OTHER, prof(dev)); }
static void *n_create_encoder(void *dev, const labeled_desc *d) { (void)d; return mk(N_OTHER, prof(dev)); }
static void *n_begin_pass(void *enc, const pass_desc *d) { (void)d; return mk(N_OTHER, prof(enc)); }
static void n_set_pipeline(void *pass, void *p) { (void)pass; (void)p; }
static void n_set_bind(void *pass, uint32_t g, void *bg, size_t n, const uint32_t *o) {
	(void)pass; (void)g; (void)bg; (void)n; (void)o;
}
static void n_dispatch(void *pass, uint32_t x, uint32_t y, uint32_t z) { (void)pass; (void)x; (void)y; (void)z; }
static void n_end(void *pass) { (void)pass; }
static void n_copy(void *enc, void *s, uint64_t so, void *d, uint64_t dofs, uint64_t n) {
	(void)enc; (void)s; (void)so; (void)d; (void)dofs; (void)n;
}
static void n_clear(void *enc, void *b, uint64_t off, uint64_t n) { (void)enc; (void)b; (void)off; (void)n; }
static void n_resolve(void *enc, void *qs, uint32_t first, uint32_t n, void *dst, uint64_t off) {
	(void)enc; (void)qs; (void)first; (void)n; (void)dst; (void)off;
}
static void *n_finish(void *enc, const labeled_desc *d) { (void)d; return mk(N_OTHER, prof(enc)); }
static void n_submit(void *q, size_t n, void *const *cmds) { (void)q; (void)n; (void)cmds; }
static void *n_query_set(void *dev, const query_set_desc *d) { (void)d; return mk(N_OTHER, prof(dev)); }
static void n_device_destroy(void *dev) { (void)dev; }
static uint32_t n_poll(void *dev, mg_bool wait, const uint64_t *idx) { (void)dev; (void)wait; (void)idx; return 1; }
static float n_ts_period(void *q) { (void)q; return 1.0f; }
static void n_release(void *h) { free(h); }
static void n_release_buffer(void *h) {
	if (h) n_unmap(h);
	free(h);
}

mg_lib *mg_open_null(const mg_null_profile *p) {
	mg_lib *L = calloc(1, sizeof *L);
	mg_null_profile *copy = malloc(sizeof *copy);
	if (!L || !copy) {
		free(L);
		free(copy);
		return NULL;
	}
	*copy = *p;
	L->null = copy;
	L->kind = p->kind;
	L->CreateInstance = n_create_instance;
	L->InstanceRequestAdapter = n_request_adapter;
	L->InstanceWaitAny = n_wait_any;
	L->InstanceProcessEvents = n_process_events;
	L->InstanceEnumerateAdapters = n_enumerate_adapters;
	L->AdapterGetInfo = n_adapter_info;
	L->AdapterInfoFreeMembers = n_info_free;
	L->AdapterGetLimits = n_limits;
	L->AdapterGetFeatures = n_features;
	L->SupportedFeaturesFreeMembers = n_features_free;
	L->AdapterRequestDevice = n_request_device;
	L->DeviceGetLimits = n_limits;
	L->DeviceGetFeatures = n_features;
	L->DeviceGetQueue = n_get_queue;
	L->DevicePushErrorScope = n_push_scope;
	L->DevicePopErrorScope = n_pop_scope;
	L->DeviceCreateBuffer = n_create_buffer;
	L->QueueWriteBuffer = n_write_buffer;
	L->BufferMapAsync = n_map_async;
	L->BufferGetConstMappedRange = n_const_mapped;
	L->BufferGetMappedRange = n_mapped;
	L->BufferUnmap = n_unmap;
	L->BufferDestroy = n_destroy_buffer;
	L->QueueOnSubmittedWorkDone = n_queue_done;
	L->DeviceCreateShaderModule = n_create_shader;
	L->ShaderModuleGetCompilationInfo = NULL;
	L->DeviceCreateComputePipeline = n_create_pipeline;
	L->ComputePipelineGetBindGroupLayout = n_pipeline_layout;
	L->DeviceCreateBindGroup = n_create_bind_group;
	L->DeviceCreateCommandEncoder = n_create_encoder;
	L->CommandEncoderBeginComputePass = n_begin_pass;
	L->ComputePassEncoderSetPipeline = n_set_pipeline;
	L->ComputePassEncoderSetBindGroup = n_set_bind;
	L->ComputePassEncoderDispatchWorkgroups = n_dispatch;
	L->ComputePassEncoderEnd = n_end;
	L->CommandEncoderCopyBufferToBuffer = n_copy;
	L->CommandEncoderClearBuffer = n_clear;
	L->CommandEncoderResolveQuerySet = n_resolve;
	L->CommandEncoderFinish = n_finish;
	L->QueueSubmit = n_submit;
	L->DeviceCreateQuerySet = n_query_set;
	L->DeviceDestroy = n_device_destroy;
	L->DeviceTick = NULL;
	L->DevicePoll = n_poll;
	L->QueueGetTimestampPeriod = n_ts_period;
	for (int k = 0; k < MG_KIND_COUNT; k++) L->release[k] = n_release;
	L->release[MG_BUFFER] = n_release_buffer;
	return L;
}
