// shim_types.h: the layouts of the webgpu.h structs the shim passes, and
// the table of entry points it looks up; shared by shim.c (the real
// implementations) and null.c (the null implementation of dry runs).
#ifndef MOM_GPU_SHIM_TYPES_H
#define MOM_GPU_SHIM_TYPES_H

#include "shim.h"

// Enum values shared by both implementations.
enum {
	CB_WAIT_ANY_ONLY = 1,
	CB_ALLOW_PROCESS_EVENTS = 2,
	CB_ALLOW_SPONTANEOUS = 3,
	STYPE_WGSL = 2,
	STYPE_DAWN_TOGGLES = 0x0005000A,
	STYPE_DAWN_BUFFER_HOST_MAPPED_POINTER = 0x00050012,
	QUERY_TIMESTAMP = 2,
	WAIT_SUCCESS = 1,
	WAIT_TIMED_OUT = 2,
};
#define U32_UNDEF 0xFFFFFFFFu
#define STRLEN_NUL ((size_t)-1)

// Callback-info structs: passed by value, same layout for every callback kind.
typedef struct { mg_chain *next; uint32_t mode; void *cb; void *u1; void *u2; } cbinfo;
typedef struct { mg_chain *next; void *cb; void *u1; void *u2; } cbinfo_nomode;

typedef struct { mg_future future; mg_bool completed; } wait_info;

typedef struct {
	mg_chain *next;
	mg_str vendor, architecture, device, description;
	uint32_t backend, adapter_type, vendor_id, device_id, sg_min, sg_max;
	uint32_t pad[8]; // room for fields a newer implementation may append
} adapter_info;

typedef struct { size_t count; const uint32_t *features; } supported_features;

typedef struct { mg_chain *next; mg_bool timed_wait_any; size_t timed_wait_max; } dawn_instance_caps;
typedef struct { mg_chain *next; dawn_instance_caps caps; } dawn_instance_desc;

typedef struct {
	mg_chain *next; uint32_t feature_level, power; mg_bool fallback; uint32_t backend;
	void *surface;
} adapter_options;

typedef struct {
	mg_chain chain; size_t n_enabled; const char *const *enabled; size_t n_disabled;
	const char *const *disabled;
} dawn_toggles;

typedef struct {
	mg_chain *next; mg_str label; size_t nfeatures; const uint32_t *features;
	const mg_limits *limits; struct { mg_chain *next; mg_str label; } queue;
	cbinfo lost; cbinfo_nomode uncaptured;
} device_desc;

typedef struct { mg_chain *next; mg_str label; uint64_t usage, size; mg_bool mapped; } buffer_desc;
// Dawn's BufferHostMappedPointer, chained in the buffer descriptor.
typedef struct { mg_chain chain; void *pointer; void (*dispose)(void *); void *userdata; } host_mapped_desc;
typedef struct { mg_chain chain; mg_str code; } wgsl_source;
typedef struct { mg_chain *next; mg_str label; } labeled_desc;
typedef struct { mg_chain *next; mg_str key; double value; } constant_entry;
typedef struct {
	mg_chain *next; mg_str label; void *layout;
	struct { mg_chain *next; void *module; mg_str entry; size_t nconst; const constant_entry *consts; } compute;
} pipeline_desc;
typedef struct {
	mg_chain *next; uint32_t binding; void *buffer; uint64_t offset, size; void *sampler, *view;
} bind_entry;
typedef struct { mg_chain *next; mg_str label; void *layout; size_t n; const bind_entry *entries; } bind_desc;
typedef struct { mg_chain *next; void *query_set; uint32_t begin, end; } pass_timestamps;
typedef struct { mg_chain *next; mg_str label; const pass_timestamps *ts; } pass_desc;
typedef struct { mg_chain *next; mg_str label; uint32_t type, count; } query_set_desc;
typedef struct {
	mg_chain *next; mg_str message; uint32_t type; uint64_t line, col, offset, length;
} compile_message;
typedef struct { mg_chain *next; size_t n; const compile_message *msgs; } compile_info;

typedef mg_future (*fut3)(void *, const void *, cbinfo);

struct mg_lib {
	void *dl;
	int kind;
	void *(*CreateInstance)(const void *);
	mg_future (*InstanceRequestAdapter)(void *, const adapter_options *, cbinfo);
	uint32_t (*InstanceWaitAny)(void *, size_t, wait_info *, uint64_t);
	void (*InstanceProcessEvents)(void *);
	size_t (*InstanceEnumerateAdapters)(void *, const void *, void **);
	uint32_t (*AdapterGetInfo)(void *, adapter_info *);
	void (*AdapterInfoFreeMembers)(adapter_info);
	uint32_t (*AdapterGetLimits)(void *, mg_limits *);
	void (*AdapterGetFeatures)(void *, supported_features *);
	void (*SupportedFeaturesFreeMembers)(supported_features);
	mg_future (*AdapterRequestDevice)(void *, const device_desc *, cbinfo);
	uint32_t (*DeviceGetLimits)(void *, mg_limits *);
	void (*DeviceGetFeatures)(void *, supported_features *);
	void *(*DeviceGetQueue)(void *);
	void (*DevicePushErrorScope)(void *, uint32_t);
	mg_future (*DevicePopErrorScope)(void *, cbinfo);
	void *(*DeviceCreateBuffer)(void *, const buffer_desc *);
	void (*QueueWriteBuffer)(void *, void *, uint64_t, const void *, size_t);
	mg_future (*BufferMapAsync)(void *, uint64_t, size_t, size_t, cbinfo);
	const void *(*BufferGetConstMappedRange)(void *, size_t, size_t);
	void *(*BufferGetMappedRange)(void *, size_t, size_t);
	void (*BufferUnmap)(void *);
	void (*BufferDestroy)(void *);
	mg_future (*QueueOnSubmittedWorkDone)(void *, cbinfo);
	void *(*DeviceCreateShaderModule)(void *, const labeled_desc *);
	// wgpu-native's extension: the module without the runtime checks named
	// by the flags (WGPUShaderRuntimeChecks) left out of its last argument.
	void *(*DeviceCreateShaderModuleTrusted)(void *, const labeled_desc *, uint64_t);
	mg_future (*ShaderModuleGetCompilationInfo)(void *, cbinfo);
	void *(*DeviceCreateComputePipeline)(void *, const pipeline_desc *);
	void *(*ComputePipelineGetBindGroupLayout)(void *, uint32_t);
	void *(*DeviceCreateBindGroup)(void *, const bind_desc *);
	void *(*DeviceCreateCommandEncoder)(void *, const labeled_desc *);
	void *(*CommandEncoderBeginComputePass)(void *, const pass_desc *);
	void (*ComputePassEncoderSetPipeline)(void *, void *);
	void (*ComputePassEncoderSetBindGroup)(void *, uint32_t, void *, size_t, const uint32_t *);
	void (*ComputePassEncoderDispatchWorkgroups)(void *, uint32_t, uint32_t, uint32_t);
	void (*ComputePassEncoderEnd)(void *);
	void (*CommandEncoderCopyBufferToBuffer)(void *, void *, uint64_t, void *, uint64_t, uint64_t);
	void (*CommandEncoderClearBuffer)(void *, void *, uint64_t, uint64_t);
	void (*CommandEncoderResolveQuerySet)(void *, void *, uint32_t, uint32_t, void *, uint64_t);
	void *(*CommandEncoderFinish)(void *, const labeled_desc *);
	void (*QueueSubmit)(void *, size_t, void *const *);
	void *(*DeviceCreateQuerySet)(void *, const query_set_desc *);
	void (*DeviceDestroy)(void *);
	// Dawn extension: frees what waits for finished GPU work
	void (*DeviceTick)(void *);
	// wgpu-native extensions
	uint32_t (*DevicePoll)(void *, mg_bool, const uint64_t *);
	float (*QueueGetTimestampPeriod)(void *);
	void (*release[MG_KIND_COUNT])(void *);
	// The null implementation's profile (null.c); NULL for a real library.
	const mg_null_profile *null;
};

// null.c: the null implementation's instance.
void *mgnull_instance(const mg_null_profile *p);

#endif
