package gpu

/*
#include <stdlib.h>
#include "shim.h"

// surface.c
typedef struct mg_render mg_render;
mg_render *mg_render_load(const mg_lib *L, char *err, size_t errlen);
void mg_render_free(mg_render *R);
void *mg_surface_create(const mg_render *R, void *inst, uint32_t stype, void *a, void *b,
                        uint64_t window, const char *label);
int mg_surface_caps(const mg_render *R, void *surface, void *adapter, uint64_t *usages,
                    uint32_t *formats, uint32_t *present_modes, uint32_t *alpha_modes,
                    size_t max, size_t *n);
void mg_surface_configure(const mg_render *R, void *surface, void *device, uint32_t format,
                          uint64_t usage, uint32_t width, uint32_t height, uint32_t alpha,
                          uint32_t present);
void mg_surface_unconfigure(const mg_render *R, void *surface);
void mg_device_tick(const mg_render *R, void *device);
void *mg_surface_acquire(const mg_render *R, void *surface, uint32_t *status);
void mg_surface_present(const mg_render *R, void *surface);
void *mg_texture_create(const mg_render *R, void *device, const char *label, uint32_t width,
                        uint32_t height, uint32_t format, uint64_t usage);
void *mg_texture_view(const mg_render *R, void *texture);
void mg_texture_destroy(const mg_render *R, void *texture);
void mg_texture_write(const mg_render *R, void *queue, void *texture, const void *data, size_t size,
                      uint32_t bytes_per_row, uint32_t width, uint32_t height);
void *mg_render_pipeline_create(const mg_render *R, void *device, const char *label, void *module,
                                const char *vs_entry, const char *fs_entry, uint32_t format);
void *mg_render_pipeline_layout(const mg_render *R, void *pipeline, uint32_t group);
void *mg_render_bind_group(const mg_render *R, void *device, void *layout, size_t n,
                           void *const *buffers, const uint64_t *sizes, void *const *views);
void *mg_render_encode(const mg_render *R, void *device, void *target_view, void *pipeline,
                       void *bind_group, uint32_t vertices, const double *clear);
*/
import "C"

import (
	"errors"
	"fmt"
	"sync"
	"time"
	"unsafe"
)

// This file is the presenting side of the binding: surfaces made from native
// windows, textures written from the host, render pipelines and one render
// pass per frame. It serves the live window of package viz; training never
// calls it. Every call into the implementation holds the device's lock, so a
// window and a training loop may share one Device from different goroutines.

// TextureFormat names a texture format as the WebGPU specification does
// ("bgra8unorm-srgb"). The two implementations number formats differently;
// formats outside the table below read as "<runtime>:0x<id>".
type TextureFormat string

// Texture formats the window uses or may be offered by a surface.
const (
	FormatRGBA8Unorm     TextureFormat = "rgba8unorm"
	FormatRGBA8UnormSRGB TextureFormat = "rgba8unorm-srgb"
	FormatBGRA8Unorm     TextureFormat = "bgra8unorm"
	FormatBGRA8UnormSRGB TextureFormat = "bgra8unorm-srgb"
	FormatRGB10A2Unorm   TextureFormat = "rgb10a2unorm"
	FormatRGBA16Float    TextureFormat = "rgba16float"
)

// Dawn 0.1.7 predates the renumbering that wgpu-native 0.32's header has
// (R16Unorm and friends moved into the core range).
var formatIDs = map[Runtime]map[TextureFormat]uint32{
	Dawn: {
		FormatRGBA8Unorm: 0x12, FormatRGBA8UnormSRGB: 0x13, FormatBGRA8Unorm: 0x17,
		FormatBGRA8UnormSRGB: 0x18, FormatRGB10A2Unorm: 0x1A, FormatRGBA16Float: 0x22,
	},
	WGPU: {
		FormatRGBA8Unorm: 0x16, FormatRGBA8UnormSRGB: 0x17, FormatBGRA8Unorm: 0x1B,
		FormatBGRA8UnormSRGB: 0x1C, FormatRGB10A2Unorm: 0x1E, FormatRGBA16Float: 0x28,
	},
}

func formatID(rt Runtime, f TextureFormat) (uint32, bool) {
	id, ok := formatIDs[rt][f]
	return id, ok
}

func formatName(rt Runtime, id uint32) TextureFormat {
	for f, v := range formatIDs[rt] {
		if v == id {
			return f
		}
	}
	return TextureFormat(fmt.Sprintf("%s:0x%x", rt, id))
}

// SRGB reports whether the format encodes colours with the sRGB transfer
// function (writes encode, reads decode).
func (f TextureFormat) SRGB() bool {
	return f == FormatRGBA8UnormSRGB || f == FormatBGRA8UnormSRGB
}

// BytesPerPixel is the size of one texel, 0 for formats outside the table.
func (f TextureFormat) BytesPerPixel() int {
	switch f {
	case FormatRGBA8Unorm, FormatRGBA8UnormSRGB, FormatBGRA8Unorm, FormatBGRA8UnormSRGB, FormatRGB10A2Unorm:
		return 4
	case FormatRGBA16Float:
		return 8
	}
	return 0
}

// PresentMode says when presented frames reach the screen.
type PresentMode string

// Present modes of webgpu.h (the same numbers in both implementations).
const (
	PresentFifo        PresentMode = "fifo"
	PresentFifoRelaxed PresentMode = "fifo-relaxed"
	PresentImmediate   PresentMode = "immediate"
	PresentMailbox     PresentMode = "mailbox"
)

var presentIDs = map[PresentMode]uint32{PresentFifo: 1, PresentFifoRelaxed: 2, PresentImmediate: 3, PresentMailbox: 4}

// AlphaMode says how a surface's alpha channel composites with the desktop.
type AlphaMode string

// Composite alpha modes of webgpu.h.
const (
	AlphaAuto            AlphaMode = "auto"
	AlphaOpaque          AlphaMode = "opaque"
	AlphaPremultiplied   AlphaMode = "premultiplied"
	AlphaUnpremultiplied AlphaMode = "unpremultiplied"
	AlphaInherit         AlphaMode = "inherit"
)

var alphaIDs = map[AlphaMode]uint32{AlphaAuto: 0, AlphaOpaque: 1, AlphaPremultiplied: 2, AlphaUnpremultiplied: 3, AlphaInherit: 4}

func nameOf[K comparable](m map[K]uint32, id uint32, unknown func(uint32) K) K {
	for k, v := range m {
		if v == id {
			return k
		}
	}
	return unknown(id)
}

// TextureUsage is a set of WebGPU texture usage flags.
type TextureUsage uint64

// Texture usages of webgpu.h.
const (
	TextureCopySrc          TextureUsage = 0x01
	TextureCopyDst          TextureUsage = 0x02
	TextureBinding          TextureUsage = 0x04
	TextureStorageBinding   TextureUsage = 0x08
	TextureRenderAttachment TextureUsage = 0x10
)

// ErrSurfaceOutdated says the surface no longer matches its window (it was
// resized or lost): configure it again, then draw the next frame.
var ErrSurfaceOutdated = errors.New("gpu: surface outdated or lost: configure it again")

// ErrFrameSkipped says no frame could be acquired this time (a timeout, or
// an occluded window); nothing was drawn and nothing needs doing.
var ErrFrameSkipped = errors.New("gpu: no surface texture available; frame skipped")

// render tables per loaded library, made on first use.
var (
	renderMu     sync.Mutex
	renderTables = map[*Library]*C.mg_render{}
)

func (l *Library) render() (*C.mg_render, error) {
	renderMu.Lock()
	defer renderMu.Unlock()
	if r, ok := renderTables[l]; ok {
		return r, nil
	}
	var buf [256]C.char
	r := C.mg_render_load(l.c, &buf[0], C.size_t(len(buf)))
	if r == nil {
		return nil, fmt.Errorf("%s (%s): cannot present to a window: %s", l.Runtime, l.Path, C.GoString(&buf[0]))
	}
	renderTables[l] = r
	return r, nil
}

// SurfaceSource is a native window a surface can be made from: XlibWindow,
// WaylandSurface, MetalLayer or WindowsHWND.
type SurfaceSource interface {
	// stype is the WGPUSType of the chained source struct, and its fields.
	source() (stype uint32, a, b unsafe.Pointer, window uint64)
}

// XlibWindow is an X11 window: the Display* and the Window id.
type XlibWindow struct {
	Display unsafe.Pointer
	Window  uint64
}

func (s XlibWindow) source() (uint32, unsafe.Pointer, unsafe.Pointer, uint64) {
	return 0x6, s.Display, nil, s.Window
}

// WaylandSurface is a Wayland wl_display* and wl_surface*.
type WaylandSurface struct {
	Display unsafe.Pointer
	Surface unsafe.Pointer
}

func (s WaylandSurface) source() (uint32, unsafe.Pointer, unsafe.Pointer, uint64) {
	return 0x7, s.Display, s.Surface, 0
}

// MetalLayer is a CAMetalLayer* (macOS).
type MetalLayer struct {
	Layer unsafe.Pointer
}

func (s MetalLayer) source() (uint32, unsafe.Pointer, unsafe.Pointer, uint64) {
	return 0x4, s.Layer, nil, 0
}

// WindowsHWND is a Win32 HINSTANCE and HWND.
type WindowsHWND struct {
	Instance unsafe.Pointer
	HWND     unsafe.Pointer
}

func (s WindowsHWND) source() (uint32, unsafe.Pointer, unsafe.Pointer, uint64) {
	return 0x5, s.Instance, s.HWND, 0
}

// Surface is a WebGPU surface on a native window, presented to with the
// device it was made from. Its methods hold the device's lock; call them
// from one goroutine (the window's).
type Surface struct {
	d       *Device
	r       *C.mg_render
	ptr     unsafe.Pointer
	cfg     SurfaceConfig
	caps    SurfaceCapabilities
	hasCaps bool
}

// SurfaceCapabilities are what a surface supports on the device's adapter.
type SurfaceCapabilities struct {
	Usages       TextureUsage
	Formats      []TextureFormat // the preferred format first
	PresentModes []PresentMode
	AlphaModes   []AlphaMode
}

// SurfaceConfig is how a surface's textures are made.
type SurfaceConfig struct {
	Format      TextureFormat // "" picks the surface's first (preferred) format
	Width       int
	Height      int
	PresentMode PresentMode // "" picks fifo, which every surface supports
	AlphaMode   AlphaMode   // "" picks the surface's first alpha mode
}

// NewSurface makes a surface on a native window.
func (d *Device) NewSurface(src SurfaceSource) (*Surface, error) {
	if src == nil {
		return nil, errors.New("gpu: NewSurface needs a native window")
	}
	r, err := d.Lib.render()
	if err != nil {
		return nil, err
	}
	stype, a, b, win := src.source()
	label := C.CString("mom window")
	defer C.free(unsafe.Pointer(label))
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, errors.New("gpu: device is closed")
	}
	var ptr unsafe.Pointer
	// Surface creation errors are instance errors, not device errors: they
	// show as a null surface.
	ptr = C.mg_surface_create(r, d.inst, C.uint32_t(stype), a, b, C.uint64_t(win), label)
	if ptr == nil {
		return nil, fmt.Errorf("gpu: %s could not make a surface from the %T window", d.Lib.Runtime, src)
	}
	d.created(C.MG_SURFACE)
	return &Surface{d: d, r: r, ptr: ptr}, nil
}

// Capabilities reports what the surface supports on the device's adapter.
// An adapter that cannot present to the surface is an error.
func (s *Surface) Capabilities() (SurfaceCapabilities, error) {
	d := s.d
	d.mu.Lock()
	defer d.mu.Unlock()
	return s.capsLocked()
}

func (s *Surface) capsLocked() (SurfaceCapabilities, error) {
	if s.hasCaps {
		return s.caps, nil
	}
	d := s.d
	if d.closed || s.ptr == nil {
		return SurfaceCapabilities{}, errors.New("gpu: surface or device is closed")
	}
	const max = 64
	var usages C.uint64_t
	var formats, modes, alphas [max]C.uint32_t
	var n [3]C.size_t
	if C.mg_surface_caps(s.r, s.ptr, d.adapter, &usages, &formats[0], &modes[0], &alphas[0], max, &n[0]) == 0 {
		return SurfaceCapabilities{}, fmt.Errorf("gpu: %s: the adapter %q cannot present to this surface (wgpuSurfaceGetCapabilities failed)",
			d.Lib.Runtime, d.Info.Name)
	}
	rt := d.Lib.Runtime
	c := SurfaceCapabilities{Usages: TextureUsage(usages)}
	for _, f := range formats[:n[0]] {
		c.Formats = append(c.Formats, formatName(rt, uint32(f)))
	}
	for _, m := range modes[:n[1]] {
		c.PresentModes = append(c.PresentModes, nameOf(presentIDs, uint32(m), func(id uint32) PresentMode {
			return PresentMode(fmt.Sprintf("present(%d)", id))
		}))
	}
	for _, a := range alphas[:n[2]] {
		c.AlphaModes = append(c.AlphaModes, nameOf(alphaIDs, uint32(a), func(id uint32) AlphaMode {
			return AlphaMode(fmt.Sprintf("alpha(%d)", id))
		}))
	}
	if len(c.Formats) == 0 {
		return c, fmt.Errorf("gpu: %s: the adapter %q offers no format for this surface", rt, d.Info.Name)
	}
	s.caps, s.hasCaps = c, true
	return c, nil
}

// Configure (re)configures the surface for a size, format and present mode;
// zero fields take the defaults SurfaceConfig describes. Call it again after
// the window is resized or a draw returned ErrSurfaceOutdated.
func (s *Surface) Configure(cfg SurfaceConfig) error {
	d := s.d
	d.mu.Lock()
	defer d.mu.Unlock()
	caps, err := s.capsLocked()
	if err != nil {
		return err
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return fmt.Errorf("gpu: surface size %dx%d must be positive", cfg.Width, cfg.Height)
	}
	if max := int(d.Limits.MaxTextureDimension2D); max > 0 && (cfg.Width > max || cfg.Height > max) {
		return fmt.Errorf("gpu: surface size %dx%d exceeds the device's maxTextureDimension2D (%d)", cfg.Width, cfg.Height, max)
	}
	if cfg.Format == "" {
		cfg.Format = caps.Formats[0]
	}
	fid, ok := formatID(d.Lib.Runtime, cfg.Format)
	if !ok || !contains(caps.Formats, cfg.Format) {
		return fmt.Errorf("gpu: surface format %q is not supported (the surface offers %v)", cfg.Format, caps.Formats)
	}
	if cfg.PresentMode == "" {
		cfg.PresentMode = PresentFifo
	}
	if !contains(caps.PresentModes, cfg.PresentMode) {
		return fmt.Errorf("gpu: present mode %q is not supported (the surface offers %v)", cfg.PresentMode, caps.PresentModes)
	}
	if cfg.AlphaMode == "" {
		cfg.AlphaMode = AlphaAuto
		if len(caps.AlphaModes) > 0 {
			cfg.AlphaMode = caps.AlphaModes[0]
		}
	}
	aid, ok := alphaIDs[cfg.AlphaMode]
	if !ok {
		return fmt.Errorf("gpu: unknown alpha mode %q", cfg.AlphaMode)
	}
	err = d.scopeLocked("configure surface", func() {
		C.mg_surface_configure(s.r, s.ptr, d.dev, C.uint32_t(fid), C.uint64_t(TextureRenderAttachment),
			C.uint32_t(cfg.Width), C.uint32_t(cfg.Height), C.uint32_t(aid), C.uint32_t(presentIDs[cfg.PresentMode]))
	})
	if err != nil {
		return fmt.Errorf("gpu: configuring the surface (%dx%d %s %s): %w", cfg.Width, cfg.Height, cfg.Format, cfg.PresentMode, err)
	}
	s.cfg = cfg
	return nil
}

func contains[T comparable](list []T, v T) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// Config is the surface's current configuration (zero before Configure).
func (s *Surface) Config() SurfaceConfig { return s.cfg }

// DrawFrame acquires the surface's next texture, clears it to clear (RGBA in
// 0..1, as stored in the surface's format) and, when p is not nil, draws
// vertices vertices with p and g in one render pass; then it submits and
// presents. It returns ErrSurfaceOutdated when the surface must be
// configured again and ErrFrameSkipped when no texture was available.
func (s *Surface) DrawFrame(p *RenderPipeline, g *RenderBindGroup, vertices int, clear [4]float64) error {
	d := s.d
	if s.cfg.Width == 0 {
		return errors.New("gpu: DrawFrame before Configure")
	}
	if p != nil && p.Target != s.cfg.Format {
		return fmt.Errorf("gpu: render pipeline %s draws %s, the surface is %s", p.Label, p.Target, s.cfg.Format)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed || s.ptr == nil {
		return errors.New("gpu: surface or device is closed")
	}
	if d.lost != nil {
		return d.lost
	}
	var status C.uint32_t
	tex := C.mg_surface_acquire(s.r, s.ptr, &status)
	if tex != nil {
		d.created(C.MG_TEXTURE)
		defer d.release(C.MG_TEXTURE, tex)
	}
	switch status {
	case 1, 2: // success (optimal, suboptimal)
	case 3, 0x30001: // timeout; wgpu-native's "occluded"
		return ErrFrameSkipped
	case 4, 5: // outdated, lost
		return ErrSurfaceOutdated
	default:
		return errors.Join(fmt.Errorf("gpu: acquiring the surface texture failed (status %d)", uint32(status)), d.errLocked("acquire surface texture"))
	}
	if tex == nil {
		return fmt.Errorf("gpu: the surface returned no texture (status %d)", uint32(status))
	}
	view := C.mg_texture_view(s.r, tex)
	if view == nil {
		return errors.New("gpu: a view of the surface texture returned null")
	}
	d.created(C.MG_TEXTURE_VIEW)
	defer d.release(C.MG_TEXTURE_VIEW, view)
	var pp, gp unsafe.Pointer
	if p != nil {
		pp = p.ptr
		if g != nil {
			gp = g.ptr
		}
	}
	cclear := (*C.double)(C.calloc(4, 8))
	defer C.free(unsafe.Pointer(cclear))
	copy(unsafe.Slice(cclear, 4), []C.double{C.double(clear[0]), C.double(clear[1]), C.double(clear[2]), C.double(clear[3])})
	var cmd unsafe.Pointer
	label := "draw frame"
	if p != nil {
		label = "draw frame with " + p.Label
	}
	// Finish inside error scopes and submit only a valid command buffer
	// (wgpu-native aborts on an invalid one).
	err := d.scopeLocked(label, func() {
		cmd = C.mg_render_encode(s.r, d.dev, view, pp, gp, C.uint32_t(vertices), cclear)
	})
	if cmd != nil {
		d.created(C.MG_COMMAND_BUFFER)
		defer d.release(C.MG_COMMAND_BUFFER, cmd)
	}
	if err != nil {
		return err
	}
	C.mg_queue_submit(d.Lib.c, d.queue, cmd)
	C.mg_surface_present(s.r, s.ptr)
	// Let the implementation retire finished work (wgpu-native polls).
	C.mg_process_events(d.Lib.c, d.inst, d.dev)
	return d.errLocked(label)
}

// Release unconfigures and frees the surface, and waits until the
// implementation has let go of the native window: afterwards the window may
// be destroyed and its display connection closed. Release it before its
// device.
func (s *Surface) Release() {
	if s == nil || s.ptr == nil {
		return
	}
	d := s.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.closed {
		if s.cfg.Width != 0 {
			C.mg_surface_unconfigure(s.r, s.ptr)
		}
		d.release(C.MG_SURFACE, s.ptr)
		// Dawn destroys the swapchain (which presents to the window from
		// its own thread on Mesa's X11 WSI) only once the GPU has finished
		// the next submission after the surface let go of it: submit an
		// empty command buffer, wait for the queue, tick; twice.
		for i := 0; i < 2; i++ {
			enc := C.mg_create_encoder(d.Lib.c, d.dev)
			cmd := C.mg_encoder_finish(d.Lib.c, enc)
			C.mg_release(d.Lib.c, C.MG_ENCODER, enc)
			C.mg_queue_submit(d.Lib.c, d.queue, cmd)
			C.mg_release(d.Lib.c, C.MG_COMMAND_BUFFER, cmd)
			C.mg_queue_done(d.Lib.c, d.queue, d.op)
			C.mg_wait(d.Lib.c, d.inst, d.dev, d.op, C.uint64_t(time.Second))
			C.mg_device_tick(s.r, d.dev)
			C.mg_process_events(d.Lib.c, d.inst, d.dev)
		}
	}
	s.ptr = nil
}

// Texture is a 2D texture with one mip level, with its default view.
type Texture struct {
	d      *Device
	r      *C.mg_render
	ptr    unsafe.Pointer
	view   unsafe.Pointer
	Label  string
	Width  int
	Height int
	Format TextureFormat
	Usage  TextureUsage
}

// NewTexture creates a width x height texture.
func (d *Device) NewTexture(label string, width, height int, format TextureFormat, usage TextureUsage) (*Texture, error) {
	r, err := d.Lib.render()
	if err != nil {
		return nil, err
	}
	if width <= 0 || height <= 0 {
		return nil, fmt.Errorf("gpu: texture %q: size %dx%d must be positive", label, width, height)
	}
	if max := int(d.Limits.MaxTextureDimension2D); max > 0 && (width > max || height > max) {
		return nil, fmt.Errorf("gpu: texture %q: size %dx%d exceeds the device's maxTextureDimension2D (%d)", label, width, height, max)
	}
	fid, ok := formatID(d.Lib.Runtime, format)
	if !ok {
		return nil, fmt.Errorf("gpu: texture %q: unknown format %q", label, format)
	}
	clabel := C.CString(label)
	defer C.free(unsafe.Pointer(clabel))
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, errors.New("gpu: device is closed")
	}
	t := &Texture{d: d, r: r, Label: label, Width: width, Height: height, Format: format, Usage: usage}
	err = d.scopeLocked("texture "+label, func() {
		t.ptr = C.mg_texture_create(r, d.dev, clabel, C.uint32_t(width), C.uint32_t(height), C.uint32_t(fid), C.uint64_t(usage))
		if t.ptr != nil {
			t.view = C.mg_texture_view(r, t.ptr)
		}
	})
	if t.ptr != nil {
		d.created(C.MG_TEXTURE)
	}
	if t.view != nil {
		d.created(C.MG_TEXTURE_VIEW)
	}
	if err != nil || t.ptr == nil || t.view == nil {
		t.releaseLocked()
		if err == nil {
			err = errors.New("returned null")
		}
		return nil, fmt.Errorf("gpu: creating texture %q (%dx%d %s): %w", label, width, height, format, err)
	}
	return t, nil
}

// Write copies pixels into the whole texture through the queue: rows of
// bytesPerRow bytes, top row first, in the texture's format.
func (t *Texture) Write(pix []byte, bytesPerRow int) error {
	if t == nil || t.ptr == nil {
		return errors.New("gpu: write to a released texture")
	}
	bpp := t.Format.BytesPerPixel()
	row := t.Width * bpp
	if bytesPerRow < row {
		return fmt.Errorf("gpu: texture %q: bytesPerRow %d is below one row (%d bytes)", t.Label, bytesPerRow, row)
	}
	need := bytesPerRow*(t.Height-1) + row
	if len(pix) < need {
		return fmt.Errorf("gpu: texture %q: %d bytes given, %dx%d %s needs %d", t.Label, len(pix), t.Width, t.Height, t.Format, need)
	}
	d := t.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return errors.New("gpu: device is closed")
	}
	if d.lost != nil {
		return d.lost
	}
	C.mg_texture_write(t.r, d.queue, t.ptr, unsafe.Pointer(&pix[0]), C.size_t(need), C.uint32_t(bytesPerRow),
		C.uint32_t(t.Width), C.uint32_t(t.Height))
	return d.errLocked("write texture " + t.Label)
}

func (t *Texture) releaseLocked() {
	d := t.d
	if d.closed {
		t.ptr, t.view = nil, nil
		return
	}
	d.release(C.MG_TEXTURE_VIEW, t.view)
	if t.ptr != nil {
		C.mg_texture_destroy(t.r, t.ptr)
	}
	d.release(C.MG_TEXTURE, t.ptr)
	t.ptr, t.view = nil, nil
}

// Release destroys the texture. Release bind groups that use it first.
func (t *Texture) Release() {
	if t == nil || t.ptr == nil {
		return
	}
	t.d.mu.Lock()
	defer t.d.mu.Unlock()
	t.releaseLocked()
}

// RenderPipeline draws to one colour target of a given format with a
// vertex and a fragment entry point of one shader, no vertex buffers
// (vertices come from @builtin(vertex_index)), triangle lists, and the
// "auto" layout.
type RenderPipeline struct {
	d      *Device
	r      *C.mg_render
	ptr    unsafe.Pointer
	layout unsafe.Pointer // bind group layout 0, nil when the shader binds nothing
	Label  string
	Target TextureFormat
}

// NewRenderPipeline makes a render pipeline from s (compiled with
// Device.Shader). bindings says how many bindings group 0 has (0 for none).
func (d *Device) NewRenderPipeline(s *Shader, vertexEntry, fragmentEntry string, target TextureFormat, bindings int) (*RenderPipeline, error) {
	r, err := d.Lib.render()
	if err != nil {
		return nil, err
	}
	if s == nil || s.ptr == nil {
		return nil, errors.New("gpu: NewRenderPipeline needs a compiled shader")
	}
	fid, ok := formatID(d.Lib.Runtime, target)
	if !ok {
		return nil, fmt.Errorf("gpu: render pipeline %s: unknown target format %q", s.Name, target)
	}
	label := s.Name + ":" + vertexEntry + "/" + fragmentEntry
	clabel := C.CString(label)
	defer C.free(unsafe.Pointer(clabel))
	cvs := C.CString(vertexEntry)
	defer C.free(unsafe.Pointer(cvs))
	cfs := C.CString(fragmentEntry)
	defer C.free(unsafe.Pointer(cfs))
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, errors.New("gpu: device is closed")
	}
	p := &RenderPipeline{d: d, r: r, Label: label, Target: target}
	err = d.scopeLocked("render pipeline "+label, func() {
		p.ptr = C.mg_render_pipeline_create(r, d.dev, clabel, s.ptr, cvs, cfs, C.uint32_t(fid))
		if p.ptr != nil && bindings > 0 {
			p.layout = C.mg_render_pipeline_layout(r, p.ptr, 0)
		}
	})
	if p.ptr != nil {
		d.created(C.MG_RENDER_PIPELINE)
	}
	if p.layout != nil {
		d.created(C.MG_BGL)
	}
	if err != nil || p.ptr == nil || (bindings > 0 && p.layout == nil) {
		p.releaseLocked()
		if err == nil {
			err = errors.New("returned null")
		}
		return nil, fmt.Errorf("gpu: %w", err)
	}
	return p, nil
}

func (p *RenderPipeline) releaseLocked() {
	if !p.d.closed {
		p.d.release(C.MG_BGL, p.layout)
		p.d.release(C.MG_RENDER_PIPELINE, p.ptr)
	}
	p.ptr, p.layout = nil, nil
}

// Release frees the pipeline. Release its bind groups first.
func (p *RenderPipeline) Release() {
	if p == nil || p.ptr == nil {
		return
	}
	p.d.mu.Lock()
	defer p.d.mu.Unlock()
	p.releaseLocked()
}

// RenderBinding is one resource of a render bind group: a texture (bound
// as its default view) or a whole buffer.
type RenderBinding struct {
	Texture *Texture
	Buffer  *Buffer
}

// RenderBindGroup binds resources to slots 0, 1, ... of a render
// pipeline's group 0.
type RenderBindGroup struct {
	d   *Device
	ptr unsafe.Pointer
}

// NewRenderBindGroup binds textures and buffers to p's group 0.
func (d *Device) NewRenderBindGroup(p *RenderPipeline, bindings ...RenderBinding) (*RenderBindGroup, error) {
	if p == nil || p.layout == nil {
		return nil, errors.New("gpu: NewRenderBindGroup needs a render pipeline made with bindings > 0")
	}
	n := len(bindings)
	if n == 0 || n > 16 {
		return nil, fmt.Errorf("gpu: render bind group for %s: %d bindings (1 to 16)", p.Label, n)
	}
	cbuf := (*unsafe.Pointer)(C.calloc(C.size_t(n), C.size_t(unsafe.Sizeof(uintptr(0)))))
	defer C.free(unsafe.Pointer(cbuf))
	cview := (*unsafe.Pointer)(C.calloc(C.size_t(n), C.size_t(unsafe.Sizeof(uintptr(0)))))
	defer C.free(unsafe.Pointer(cview))
	csz := (*C.uint64_t)(C.calloc(C.size_t(n), 8))
	defer C.free(unsafe.Pointer(csz))
	bufs, views, szs := unsafe.Slice(cbuf, n), unsafe.Slice(cview, n), unsafe.Slice(csz, n)
	for i, b := range bindings {
		switch {
		case b.Texture != nil && b.Buffer == nil:
			if b.Texture.view == nil {
				return nil, fmt.Errorf("gpu: render bind group for %s: binding %d: texture %q is released", p.Label, i, b.Texture.Label)
			}
			views[i] = b.Texture.view
		case b.Buffer != nil && b.Texture == nil:
			if b.Buffer.ptr == nil {
				return nil, fmt.Errorf("gpu: render bind group for %s: binding %d: buffer %q is released", p.Label, i, b.Buffer.Label)
			}
			bufs[i] = b.Buffer.ptr
			szs[i] = C.uint64_t(b.Buffer.Size)
		default:
			return nil, fmt.Errorf("gpu: render bind group for %s: binding %d needs exactly one texture or buffer", p.Label, i)
		}
	}
	r, err := d.Lib.render()
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, errors.New("gpu: device is closed")
	}
	var ptr unsafe.Pointer
	err = d.scopeLocked("render bind group for "+p.Label, func() {
		ptr = C.mg_render_bind_group(r, d.dev, p.layout, C.size_t(n), cbuf, csz, cview)
	})
	if ptr != nil {
		d.created(C.MG_BIND_GROUP)
	}
	if err != nil || ptr == nil {
		d.release(C.MG_BIND_GROUP, ptr)
		if err == nil {
			err = errors.New("returned null")
		}
		return nil, fmt.Errorf("gpu: %w", err)
	}
	return &RenderBindGroup{d: d, ptr: ptr}, nil
}

// Release frees the bind group.
func (g *RenderBindGroup) Release() {
	if g == nil || g.ptr == nil {
		return
	}
	g.d.mu.Lock()
	defer g.d.mu.Unlock()
	if !g.d.closed {
		g.d.release(C.MG_BIND_GROUP, g.ptr)
	}
	g.ptr = nil
}
