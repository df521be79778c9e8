// surface.c: presenting to a window. Surfaces made from native windows,
// textures written from the host, render pipelines with "auto" layouts and
// one render pass per frame.
//
// The declarations are mom's own, written from the webgpu.h documentation.
// Every struct used here has the same layout in Dawn (bun-webgpu 0.1.7) and
// wgpu-native (0.32); the two differ in the numbering of texture formats,
// which the Go side translates (surface.go). Entry points are looked up once
// with mg_sym into an mg_render table.
#include "shim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STRLEN_NUL ((size_t)-1)
#define DEPTH_SLICE_UNDEFINED 0xFFFFFFFFu

enum {
	ST_SURFACE_METAL_LAYER = 0x4,
	ST_SURFACE_WINDOWS_HWND = 0x5,
	ST_SURFACE_XLIB_WINDOW = 0x6,
	ST_SURFACE_WAYLAND_SURFACE = 0x7,
	TEX_DIM_2D = 2,
	VIEW_DIM_2D = 2,
	ASPECT_ALL = 1,
	TOPOLOGY_TRIANGLE_LIST = 4,
	FRONT_CCW = 1,
	CULL_NONE = 1,
	LOAD_CLEAR = 2,
	STORE_STORE = 1,
};

static mg_str sv(const char *s) { mg_str v = {s, s ? STRLEN_NUL : 0}; return v; }

// ---- structs (layouts of webgpu.h) -------------------------------------------

typedef struct { mg_chain *next; mg_str label; } surface_desc;
typedef struct { mg_chain chain; void *display; uint64_t window; } source_xlib;
typedef struct { mg_chain chain; void *display; void *surface; } source_wayland;
typedef struct { mg_chain chain; void *layer; } source_metal;
typedef struct { mg_chain chain; void *hinstance; void *hwnd; } source_hwnd;

typedef struct {
	mg_chain *next; uint64_t usages;
	size_t nformats; const uint32_t *formats;
	size_t npresent; const uint32_t *present_modes;
	size_t nalpha; const uint32_t *alpha_modes;
} surface_caps;

typedef struct {
	mg_chain *next; void *device; uint32_t format; uint64_t usage; uint32_t width, height;
	size_t nview_formats; const uint32_t *view_formats; uint32_t alpha_mode, present_mode;
} surface_config;

typedef struct { mg_chain *next; void *texture; uint32_t status; } surface_texture;

typedef struct { uint32_t width, height, depth; } extent3d;
typedef struct { uint32_t x, y, z; } origin3d;

typedef struct {
	mg_chain *next; mg_str label; uint64_t usage; uint32_t dimension; extent3d size;
	uint32_t format, mip_levels, samples; size_t nview_formats; const uint32_t *view_formats;
} texture_desc;

typedef struct { void *texture; uint32_t mip; origin3d origin; uint32_t aspect; } copy_texture;
typedef struct { uint64_t offset; uint32_t bytes_per_row, rows_per_image; } copy_layout;

typedef struct {
	mg_chain *next; void *module; mg_str entry; size_t nconst; const void *consts;
	size_t nbuffers; const void *buffers;
} vertex_state;
typedef struct {
	mg_chain *next; uint32_t topology, strip_index_format, front_face, cull_mode;
	mg_bool unclipped_depth;
} primitive_state;
typedef struct { mg_chain *next; uint32_t count, mask; mg_bool alpha_to_coverage; } multisample_state;
typedef struct { mg_chain *next; uint32_t format; const void *blend; uint64_t write_mask; } color_target;
typedef struct {
	mg_chain *next; void *module; mg_str entry; size_t nconst; const void *consts;
	size_t ntargets; const color_target *targets;
} fragment_state;
typedef struct {
	mg_chain *next; mg_str label; void *layout; vertex_state vertex; primitive_state primitive;
	const void *depth_stencil; multisample_state multisample; const fragment_state *fragment;
} render_pipeline_desc;

typedef struct {
	mg_chain *next; uint32_t binding; void *buffer; uint64_t offset, size; void *sampler, *view;
} bind_entry;
typedef struct { mg_chain *next; mg_str label; void *layout; size_t n; const bind_entry *entries; } bind_desc;

typedef struct { double r, g, b, a; } color;
typedef struct {
	mg_chain *next; void *view; uint32_t depth_slice; void *resolve_target;
	uint32_t load_op, store_op; color clear;
} color_attachment;
typedef struct {
	mg_chain *next; mg_str label; size_t ncolor; const color_attachment *colors;
	const void *depth_stencil; void *occlusion; const void *timestamps;
} render_pass_desc;
typedef struct { mg_chain *next; mg_str label; } labeled;

typedef struct mg_render mg_render;

struct mg_render {
	const mg_lib *L;
	void *(*InstanceCreateSurface)(void *, const surface_desc *);
	uint32_t (*SurfaceGetCapabilities)(void *, void *, surface_caps *);
	void (*SurfaceCapabilitiesFreeMembers)(surface_caps);
	void (*SurfaceConfigure)(void *, const surface_config *);
	void (*SurfaceUnconfigure)(void *);
	void (*SurfaceGetCurrentTexture)(void *, surface_texture *);
	// Returns WGPUStatus in the current header and void in older ones: the
	// result is never read.
	void (*SurfacePresent)(void *);
	void *(*DeviceCreateTexture)(void *, const texture_desc *);
	void *(*TextureCreateView)(void *, const void *);
	void (*TextureDestroy)(void *);
	void (*QueueWriteTexture)(void *, const copy_texture *, const void *, size_t,
	                          const copy_layout *, const extent3d *);
	void *(*DeviceCreateRenderPipeline)(void *, const render_pipeline_desc *);
	void *(*RenderPipelineGetBindGroupLayout)(void *, uint32_t);
	void *(*DeviceCreateBindGroup)(void *, const bind_desc *);
	void *(*DeviceCreateCommandEncoder)(void *, const labeled *);
	void *(*CommandEncoderBeginRenderPass)(void *, const render_pass_desc *);
	void (*RenderPassEncoderSetPipeline)(void *, void *);
	void (*RenderPassEncoderSetBindGroup)(void *, uint32_t, void *, size_t, const uint32_t *);
	void (*RenderPassEncoderDraw)(void *, uint32_t, uint32_t, uint32_t, uint32_t);
	void (*RenderPassEncoderEnd)(void *);
	void *(*CommandEncoderFinish)(void *, const labeled *);
	void (*DeviceTick)(void *); // Dawn only
};

#define RSYM(field, name)                                                            \
	do {                                                                             \
		*(void **)(&R->field) = mg_sym(L, name);                                      \
		if (!R->field) {                                                             \
			snprintf(err, errlen, "the WebGPU library does not export %s", name);     \
			free(R);                                                                 \
			return NULL;                                                             \
		}                                                                            \
	} while (0)

mg_render *mg_render_load(const mg_lib *L, char *err, size_t errlen) {
	mg_render *R = calloc(1, sizeof *R);
	R->L = L;
	RSYM(InstanceCreateSurface, "wgpuInstanceCreateSurface");
	RSYM(SurfaceGetCapabilities, "wgpuSurfaceGetCapabilities");
	RSYM(SurfaceCapabilitiesFreeMembers, "wgpuSurfaceCapabilitiesFreeMembers");
	RSYM(SurfaceConfigure, "wgpuSurfaceConfigure");
	RSYM(SurfaceUnconfigure, "wgpuSurfaceUnconfigure");
	RSYM(SurfaceGetCurrentTexture, "wgpuSurfaceGetCurrentTexture");
	RSYM(SurfacePresent, "wgpuSurfacePresent");
	RSYM(DeviceCreateTexture, "wgpuDeviceCreateTexture");
	RSYM(TextureCreateView, "wgpuTextureCreateView");
	RSYM(TextureDestroy, "wgpuTextureDestroy");
	RSYM(QueueWriteTexture, "wgpuQueueWriteTexture");
	RSYM(DeviceCreateRenderPipeline, "wgpuDeviceCreateRenderPipeline");
	RSYM(RenderPipelineGetBindGroupLayout, "wgpuRenderPipelineGetBindGroupLayout");
	RSYM(DeviceCreateBindGroup, "wgpuDeviceCreateBindGroup");
	RSYM(DeviceCreateCommandEncoder, "wgpuDeviceCreateCommandEncoder");
	RSYM(CommandEncoderBeginRenderPass, "wgpuCommandEncoderBeginRenderPass");
	RSYM(RenderPassEncoderSetPipeline, "wgpuRenderPassEncoderSetPipeline");
	RSYM(RenderPassEncoderSetBindGroup, "wgpuRenderPassEncoderSetBindGroup");
	RSYM(RenderPassEncoderDraw, "wgpuRenderPassEncoderDraw");
	RSYM(RenderPassEncoderEnd, "wgpuRenderPassEncoderEnd");
	RSYM(CommandEncoderFinish, "wgpuCommandEncoderFinish");
	*(void **)(&R->DeviceTick) = mg_sym(L, "wgpuDeviceTick");
	return R;
}

void mg_render_free(mg_render *R) { free(R); }

// ---- surfaces --------------------------------------------------------------

// mg_surface_create makes a surface from the native window that stype names
// (the SurfaceSource* sType): a is the display, layer or HINSTANCE, b the
// Wayland surface or HWND, window the X11 window.
void *mg_surface_create(const mg_render *R, void *inst, uint32_t stype, void *a, void *b,
                        uint64_t window, const char *label) {
	source_xlib xlib;
	source_wayland wl;
	source_metal metal;
	source_hwnd hwnd;
	surface_desc d = {NULL, sv(label)};
	switch (stype) {
	case ST_SURFACE_XLIB_WINDOW:
		xlib.chain.next = NULL;
		xlib.chain.stype = ST_SURFACE_XLIB_WINDOW;
		xlib.display = a;
		xlib.window = window;
		d.next = &xlib.chain;
		break;
	case ST_SURFACE_WAYLAND_SURFACE:
		wl.chain.next = NULL;
		wl.chain.stype = ST_SURFACE_WAYLAND_SURFACE;
		wl.display = a;
		wl.surface = b;
		d.next = &wl.chain;
		break;
	case ST_SURFACE_METAL_LAYER:
		metal.chain.next = NULL;
		metal.chain.stype = ST_SURFACE_METAL_LAYER;
		metal.layer = a;
		d.next = &metal.chain;
		break;
	case ST_SURFACE_WINDOWS_HWND:
		hwnd.chain.next = NULL;
		hwnd.chain.stype = ST_SURFACE_WINDOWS_HWND;
		hwnd.hinstance = a;
		hwnd.hwnd = b;
		d.next = &hwnd.chain;
		break;
	default:
		return NULL;
	}
	return R->InstanceCreateSurface(inst, &d);
}

// mg_surface_caps copies the surface's capabilities on adapter into the
// arrays (max entries each) and their counts into n[3]. Returns 0 on failure.
int mg_surface_caps(const mg_render *R, void *surface, void *adapter, uint64_t *usages,
                    uint32_t *formats, uint32_t *present_modes, uint32_t *alpha_modes,
                    size_t max, size_t *n) {
	surface_caps c;
	memset(&c, 0, sizeof c);
	n[0] = n[1] = n[2] = 0;
	if (R->SurfaceGetCapabilities(surface, adapter, &c) != 1) return 0;
	*usages = c.usages;
	n[0] = c.nformats < max ? c.nformats : max;
	for (size_t i = 0; i < n[0]; i++) formats[i] = c.formats[i];
	n[1] = c.npresent < max ? c.npresent : max;
	for (size_t i = 0; i < n[1]; i++) present_modes[i] = c.present_modes[i];
	n[2] = c.nalpha < max ? c.nalpha : max;
	for (size_t i = 0; i < n[2]; i++) alpha_modes[i] = c.alpha_modes[i];
	R->SurfaceCapabilitiesFreeMembers(c);
	return 1;
}

void mg_surface_configure(const mg_render *R, void *surface, void *device, uint32_t format,
                          uint64_t usage, uint32_t width, uint32_t height, uint32_t alpha,
                          uint32_t present) {
	surface_config c;
	memset(&c, 0, sizeof c);
	c.device = device;
	c.format = format;
	c.usage = usage;
	c.width = width;
	c.height = height;
	c.alpha_mode = alpha;
	c.present_mode = present;
	R->SurfaceConfigure(surface, &c);
}

void mg_surface_unconfigure(const mg_render *R, void *surface) { R->SurfaceUnconfigure(surface); }

// mg_device_tick lets Dawn run its deferred work: an unconfigured surface's
// Vulkan swapchain is only destroyed once the device has ticked past the
// serial that last used it. Does nothing on wgpu-native.
void mg_device_tick(const mg_render *R, void *device) {
	if (R->DeviceTick) R->DeviceTick(device);
}

void *mg_surface_acquire(const mg_render *R, void *surface, uint32_t *status) {
	surface_texture t;
	memset(&t, 0, sizeof t);
	R->SurfaceGetCurrentTexture(surface, &t);
	*status = t.status;
	return t.texture;
}

void mg_surface_present(const mg_render *R, void *surface) { R->SurfacePresent(surface); }

// ---- textures --------------------------------------------------------------

void *mg_texture_create(const mg_render *R, void *device, const char *label, uint32_t width,
                        uint32_t height, uint32_t format, uint64_t usage) {
	texture_desc d;
	memset(&d, 0, sizeof d);
	d.label = sv(label);
	d.usage = usage;
	d.dimension = TEX_DIM_2D;
	d.size.width = width;
	d.size.height = height;
	d.size.depth = 1;
	d.format = format;
	d.mip_levels = 1;
	d.samples = 1;
	return R->DeviceCreateTexture(device, &d);
}

void *mg_texture_view(const mg_render *R, void *texture) { return R->TextureCreateView(texture, NULL); }

void mg_texture_destroy(const mg_render *R, void *texture) { R->TextureDestroy(texture); }

void mg_texture_write(const mg_render *R, void *queue, void *texture, const void *data, size_t size,
                      uint32_t bytes_per_row, uint32_t width, uint32_t height) {
	copy_texture dst;
	memset(&dst, 0, sizeof dst);
	dst.texture = texture;
	dst.aspect = ASPECT_ALL;
	copy_layout layout = {0, bytes_per_row, height};
	extent3d ext = {width, height, 1};
	R->QueueWriteTexture(queue, &dst, data, size, &layout, &ext);
}

// ---- render pipelines and bind groups ------------------------------------------

void *mg_render_pipeline_create(const mg_render *R, void *device, const char *label, void *module,
                                const char *vs_entry, const char *fs_entry, uint32_t format) {
	color_target target;
	memset(&target, 0, sizeof target);
	target.format = format;
	target.write_mask = 0xF;
	fragment_state fs;
	memset(&fs, 0, sizeof fs);
	fs.module = module;
	fs.entry = sv(fs_entry);
	fs.ntargets = 1;
	fs.targets = &target;
	render_pipeline_desc d;
	memset(&d, 0, sizeof d);
	d.label = sv(label);
	d.layout = NULL; // "auto"
	d.vertex.module = module;
	d.vertex.entry = sv(vs_entry);
	d.primitive.topology = TOPOLOGY_TRIANGLE_LIST;
	d.primitive.front_face = FRONT_CCW;
	d.primitive.cull_mode = CULL_NONE;
	d.multisample.count = 1;
	d.multisample.mask = 0xFFFFFFFFu;
	d.fragment = &fs;
	return R->DeviceCreateRenderPipeline(device, &d);
}

void *mg_render_pipeline_layout(const mg_render *R, void *pipeline, uint32_t group) {
	return R->RenderPipelineGetBindGroupLayout(pipeline, group);
}

void *mg_render_bind_group(const mg_render *R, void *device, void *layout, size_t n,
                           void *const *buffers, const uint64_t *sizes, void *const *views) {
	bind_entry e[16];
	if (n > 16) return NULL;
	memset(e, 0, sizeof e);
	for (size_t i = 0; i < n; i++) {
		e[i].binding = (uint32_t)i;
		e[i].buffer = buffers[i];
		e[i].size = buffers[i] ? sizes[i] : 0;
		e[i].view = views[i];
	}
	bind_desc d = {NULL, sv(NULL), layout, n, e};
	return R->DeviceCreateBindGroup(device, &d);
}

// ---- one frame ---------------------------------------------------------------

void *mg_render_encode(const mg_render *R, void *device, void *target_view, void *pipeline,
                       void *bind_group, uint32_t vertices, const double *clear) {
	labeled ed = {NULL, sv(NULL)};
	void *enc = R->DeviceCreateCommandEncoder(device, &ed);
	color_attachment ca;
	memset(&ca, 0, sizeof ca);
	ca.view = target_view;
	ca.depth_slice = DEPTH_SLICE_UNDEFINED;
	ca.load_op = LOAD_CLEAR;
	ca.store_op = STORE_STORE;
	ca.clear.r = clear[0];
	ca.clear.g = clear[1];
	ca.clear.b = clear[2];
	ca.clear.a = clear[3];
	render_pass_desc pd;
	memset(&pd, 0, sizeof pd);
	pd.label = sv("mom frame");
	pd.ncolor = 1;
	pd.colors = &ca;
	void *pass = R->CommandEncoderBeginRenderPass(enc, &pd);
	if (pipeline && vertices > 0) {
		R->RenderPassEncoderSetPipeline(pass, pipeline);
		if (bind_group) R->RenderPassEncoderSetBindGroup(pass, 0, bind_group, 0, NULL);
		R->RenderPassEncoderDraw(pass, vertices, 1, 0, 0);
	}
	R->RenderPassEncoderEnd(pass);
	mg_release(R->L, MG_RENDER_PASS, pass);
	labeled fd = {NULL, sv(NULL)};
	void *cmd = R->CommandEncoderFinish(enc, &fd);
	mg_release(R->L, MG_ENCODER, enc);
	return cmd;
}
