// shim.h: mom's own minimal declarations of the WebGPU C API (webgpu.h).
//
// Only what the engine calls is declared. Struct layouts follow the
// standard header's documented layouts; where the two implementations we
// load differ (Dawn as shipped in bun-webgpu 0.1.7, wgpu-native as shipped
// in the wgpu 0.32 wheel) the shim branches on mg_lib.kind at run time.
// Nothing here links against an implementation: every entry point is looked
// up with dlsym after dlopen, so the package builds on machines without one.
#ifndef MOM_GPU_SHIM_H
#define MOM_GPU_SHIM_H

#include <stddef.h>
#include <stdint.h>
#include <pthread.h>

enum { MG_DAWN = 1, MG_WGPU = 2 };

typedef uint32_t mg_bool;
typedef struct { const char *data; size_t length; } mg_str;
typedef struct mg_chain { struct mg_chain *next; uint32_t stype; } mg_chain;
typedef struct { uint64_t id; } mg_future;

// Limits: the prefix shared by both implementations, then a tail that each
// fills differently (Dawn: four per-stage storage limits; wgpu-native:
// maxImmediateSize). The tail is set to "undefined" when limits are required.
typedef struct {
	mg_chain *next;
	uint32_t maxTextureDimension1D, maxTextureDimension2D, maxTextureDimension3D;
	uint32_t maxTextureArrayLayers, maxBindGroups, maxBindGroupsPlusVertexBuffers;
	uint32_t maxBindingsPerBindGroup;
	uint32_t maxDynamicUniformBuffersPerPipelineLayout, maxDynamicStorageBuffersPerPipelineLayout;
	uint32_t maxSampledTexturesPerShaderStage, maxSamplersPerShaderStage;
	uint32_t maxStorageBuffersPerShaderStage, maxStorageTexturesPerShaderStage;
	uint32_t maxUniformBuffersPerShaderStage;
	uint64_t maxUniformBufferBindingSize, maxStorageBufferBindingSize;
	uint32_t minUniformBufferOffsetAlignment, minStorageBufferOffsetAlignment;
	uint32_t maxVertexBuffers;
	uint64_t maxBufferSize;
	uint32_t maxVertexAttributes, maxVertexBufferArrayStride, maxInterStageShaderVariables;
	uint32_t maxColorAttachments, maxColorAttachmentBytesPerSample;
	uint32_t maxComputeWorkgroupStorageSize, maxComputeInvocationsPerWorkgroup;
	uint32_t maxComputeWorkgroupSizeX, maxComputeWorkgroupSizeY, maxComputeWorkgroupSizeZ;
	uint32_t maxComputeWorkgroupsPerDimension;
	uint32_t tail[8];
} mg_limits;

// Adapter facts copied out of WGPUAdapterInfo into fixed buffers.
typedef struct {
	char vendor[256], architecture[256], device[256], description[256];
	uint32_t backend, adapter_type, vendor_id, device_id;
	uint32_t subgroup_min, subgroup_max;
} mg_adapter_info;

// One asynchronous operation: its callback writes here (userdata1).
typedef struct {
	mg_future future;
	volatile int done;
	uint32_t status;   // the callback's status enum
	uint32_t kind;     // error type for error scopes
	void *handle;      // adapter or device for request callbacks
	char msg[4096];
} mg_op;

// Errors the device reports outside any scope, and device loss.
#define MG_MAX_PENDING 16
typedef struct {
	pthread_mutex_t mu;
	int count;          // pending uncaptured errors (capped)
	int dropped;        // errors beyond the cap
	uint32_t types[MG_MAX_PENDING];
	char msgs[MG_MAX_PENDING][1024];
	int lost;
	uint32_t lost_reason;
	char lost_msg[1024];
} mg_device_state;

// One WGSL compile message.
typedef struct {
	uint32_t type;
	uint64_t line, col;
	char msg[2048];
} mg_compile_msg;

typedef struct mg_lib mg_lib;

// A device the null implementation pretends to be (dry runs: every call
// succeeds, buffers hold no memory, nothing runs).
typedef struct {
	int kind; // MG_DAWN or MG_WGPU: the runtime whose behaviour it takes
	char name[256], vendor[256], architecture[256], driver[256];
	uint32_t backend, adapter_type, vendor_id, device_id;
	mg_limits limits;
	uint32_t features[64];
	size_t nfeatures;
} mg_null_profile;

// mg_open_null makes a library of the null implementation (it copies p).
mg_lib *mg_open_null(const mg_null_profile *p);

// Loading.
mg_lib *mg_open(const char *path, char *err, size_t errlen);
int mg_kind(const mg_lib *L);
// mg_sym looks up any other entry point of the loaded implementation.
void *mg_sym(const mg_lib *L, const char *name);
void mg_close(mg_lib *L);

// Instance and adapters.
void *mg_create_instance(const mg_lib *L);
int mg_request_adapter(const mg_lib *L, void *inst, uint32_t backend, uint32_t power,
                       mg_bool fallback, uint32_t feature_level, const char *const *toggles,
                       size_t ntoggles, mg_op *op);
size_t mg_enumerate_adapters(const mg_lib *L, void *inst, void **out, size_t max);
int mg_adapter_info_get(const mg_lib *L, void *adapter, mg_adapter_info *out);
int mg_adapter_limits(const mg_lib *L, void *adapter, mg_limits *out);
size_t mg_adapter_features(const mg_lib *L, void *adapter, uint32_t *out, size_t max);

// Device.
int mg_request_device(const mg_lib *L, void *inst, void *adapter, const uint32_t *features,
                      size_t nfeatures, const mg_limits *limits, mg_device_state *state,
                      const char *const *toggles, size_t ntoggles,
                      const char *const *disabled, size_t ndisabled, mg_op *op);
int mg_device_limits(const mg_lib *L, void *device, mg_limits *out);
size_t mg_device_features(const mg_lib *L, void *device, uint32_t *out, size_t max);
void *mg_device_queue(const mg_lib *L, void *device);
mg_device_state *mg_state_new(void);
void mg_state_free(mg_device_state *s);
int mg_state_take(mg_device_state *s, uint32_t *type, char *msg, size_t msglen);
void mg_push_error_scope(const mg_lib *L, void *device, uint32_t filter);
int mg_pop_error_scope(const mg_lib *L, void *inst, void *device, mg_op *op);

// Waiting.
int mg_wait(const mg_lib *L, void *inst, void *device, mg_op *op, uint64_t timeout_ns);
int mg_poll(const mg_lib *L, void *inst, void *device, mg_op *op);
void mg_process_events(const mg_lib *L, void *inst, void *device);

// Buffers.
void *mg_create_buffer(const mg_lib *L, void *device, const char *label, uint64_t usage,
                       uint64_t size, mg_bool mapped);
void mg_queue_write(const mg_lib *L, void *queue, void *buffer, uint64_t offset,
                    const void *data, size_t size);
int mg_map_async(const mg_lib *L, void *buffer, uint64_t mode, size_t offset, size_t size,
                 mg_op *op);
const void *mg_mapped_range(const mg_lib *L, void *buffer, size_t offset, size_t size);
void mg_unmap(const mg_lib *L, void *buffer);
void *mg_mapped_range_rw(const mg_lib *L, void *buffer, size_t offset, size_t size);
void *mg_host_alloc(size_t align, size_t size);
void mg_host_free(void *p);
long mg_host_live(void);
void *mg_create_buffer_host(const mg_lib *L, void *device, const char *label, uint64_t usage,
                            uint64_t size, void *host, int own_memory);
int mg_queue_done(const mg_lib *L, void *queue, mg_op *op);

// Shaders and pipelines.
void *mg_create_shader(const mg_lib *L, void *device, const char *label, const char *code,
                       size_t len, mg_bool unchecked);
int mg_has_unchecked_shaders(const mg_lib *L);
int mg_compilation_info(const mg_lib *L, void *inst, void *device, void *module, mg_op *op,
                        mg_compile_msg *out, size_t max, size_t *n);
void *mg_create_pipeline(const mg_lib *L, void *device, const char *label, void *module,
                         const char *entry, const char *const *keys, const double *values,
                         size_t nconst);
void *mg_pipeline_layout(const mg_lib *L, void *pipeline, uint32_t group);
void *mg_create_bind_group(const mg_lib *L, void *device, void *layout, size_t n,
                           const uint32_t *bindings, void *const *buffers,
                           const uint64_t *offsets, const uint64_t *sizes);

// Recording.
void *mg_create_encoder(const mg_lib *L, void *device);
void *mg_begin_pass(const mg_lib *L, void *encoder, void *query_set, uint32_t begin,
                    uint32_t end);
void mg_pass_pipeline(const mg_lib *L, void *pass, void *pipeline);
void mg_pass_bind(const mg_lib *L, void *pass, uint32_t group, void *bind_group);
void mg_pass_dispatch(const mg_lib *L, void *pass, uint32_t x, uint32_t y, uint32_t z);
void mg_pass_end(const mg_lib *L, void *pass);
void mg_encoder_copy(const mg_lib *L, void *encoder, void *src, uint64_t src_off, void *dst,
                     uint64_t dst_off, uint64_t size);
void mg_encoder_clear(const mg_lib *L, void *encoder, void *buffer, uint64_t off, uint64_t size);
void mg_encoder_resolve(const mg_lib *L, void *encoder, void *query_set, uint32_t first,
                        uint32_t count, void *dst, uint64_t dst_off);
void *mg_encoder_finish(const mg_lib *L, void *encoder);
void mg_queue_submit(const mg_lib *L, void *queue, void *cmd);
void *mg_create_query_set(const mg_lib *L, void *device, uint32_t count);
float mg_timestamp_period(const mg_lib *L, void *queue);

// Release: kinds below.
enum {
	MG_INSTANCE, MG_ADAPTER, MG_DEVICE, MG_QUEUE, MG_BUFFER, MG_SHADER, MG_PIPELINE,
	MG_BGL, MG_BIND_GROUP, MG_ENCODER, MG_PASS, MG_COMMAND_BUFFER, MG_QUERY_SET,
	MG_SURFACE, MG_TEXTURE, MG_TEXTURE_VIEW, MG_RENDER_PIPELINE, MG_RENDER_PASS,
	MG_KIND_COUNT
};
void mg_release(const mg_lib *L, int kind, void *handle);
void mg_buffer_destroy(const mg_lib *L, void *buffer);
void mg_device_destroy(const mg_lib *L, void *device);
// mg_force_loss simulates device loss where the implementation can (Dawn's
// wgpuDeviceForceLoss); returns 0 where it cannot.
int mg_force_loss(const mg_lib *L, void *device);

#endif
