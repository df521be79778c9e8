package gpu

/*
#include <stdlib.h>
#include "shim.h"
*/
import "C"

import (
	"fmt"
	"sort"
	"unsafe"
)

// Backend is the native graphics API under an adapter.
type Backend uint32

// Backend values of webgpu.h (the same in both implementations).
const (
	BackendUndefined Backend = 0
	BackendNull      Backend = 1
	BackendWebGPU    Backend = 2
	BackendD3D11     Backend = 3
	BackendD3D12     Backend = 4
	BackendMetal     Backend = 5
	BackendVulkan    Backend = 6
	BackendOpenGL    Backend = 7
	BackendOpenGLES  Backend = 8
)

func (b Backend) String() string {
	switch b {
	case BackendNull:
		return "Null"
	case BackendWebGPU:
		return "WebGPU"
	case BackendD3D11:
		return "D3D11"
	case BackendD3D12:
		return "D3D12"
	case BackendMetal:
		return "Metal"
	case BackendVulkan:
		return "Vulkan"
	case BackendOpenGL:
		return "OpenGL"
	case BackendOpenGLES:
		return "OpenGLES"
	}
	return fmt.Sprintf("backend(%d)", uint32(b))
}

// AdapterType says whether an adapter is a discrete or integrated GPU or a CPU.
type AdapterType uint32

func (t AdapterType) String() string {
	switch t {
	case 1:
		return "discrete GPU"
	case 2:
		return "integrated GPU"
	case 3:
		return "CPU"
	}
	return "unknown"
}

// Limits are the adapter's or device's limits (the fields of WGPULimits that
// both implementations share).
type Limits struct {
	MaxTextureDimension2D                     uint32 `json:"maxTextureDimension2D"`
	MaxBindGroups                             uint32 `json:"maxBindGroups"`
	MaxBindingsPerBindGroup                   uint32 `json:"maxBindingsPerBindGroup"`
	MaxDynamicStorageBuffersPerPipelineLayout uint32 `json:"maxDynamicStorageBuffersPerPipelineLayout"`
	MaxStorageBuffersPerShaderStage           uint32 `json:"maxStorageBuffersPerShaderStage"`
	MaxUniformBuffersPerShaderStage           uint32 `json:"maxUniformBuffersPerShaderStage"`
	MaxUniformBufferBindingSize               uint64 `json:"maxUniformBufferBindingSize"`
	MaxStorageBufferBindingSize               uint64 `json:"maxStorageBufferBindingSize"`
	MinUniformBufferOffsetAlignment           uint32 `json:"minUniformBufferOffsetAlignment"`
	MinStorageBufferOffsetAlignment           uint32 `json:"minStorageBufferOffsetAlignment"`
	MaxBufferSize                             uint64 `json:"maxBufferSize"`
	MaxComputeWorkgroupStorageSize            uint32 `json:"maxComputeWorkgroupStorageSize"`
	MaxComputeInvocationsPerWorkgroup         uint32 `json:"maxComputeInvocationsPerWorkgroup"`
	MaxComputeWorkgroupSizeX                  uint32 `json:"maxComputeWorkgroupSizeX"`
	MaxComputeWorkgroupSizeY                  uint32 `json:"maxComputeWorkgroupSizeY"`
	MaxComputeWorkgroupSizeZ                  uint32 `json:"maxComputeWorkgroupSizeZ"`
	MaxComputeWorkgroupsPerDimension          uint32 `json:"maxComputeWorkgroupsPerDimension"`
}

func limitsFromC(l *C.mg_limits) Limits {
	return Limits{
		MaxTextureDimension2D:                     uint32(l.maxTextureDimension2D),
		MaxBindGroups:                             uint32(l.maxBindGroups),
		MaxBindingsPerBindGroup:                   uint32(l.maxBindingsPerBindGroup),
		MaxDynamicStorageBuffersPerPipelineLayout: uint32(l.maxDynamicStorageBuffersPerPipelineLayout),
		MaxStorageBuffersPerShaderStage:           uint32(l.maxStorageBuffersPerShaderStage),
		MaxUniformBuffersPerShaderStage:           uint32(l.maxUniformBuffersPerShaderStage),
		MaxUniformBufferBindingSize:               uint64(l.maxUniformBufferBindingSize),
		MaxStorageBufferBindingSize:               uint64(l.maxStorageBufferBindingSize),
		MinUniformBufferOffsetAlignment:           uint32(l.minUniformBufferOffsetAlignment),
		MinStorageBufferOffsetAlignment:           uint32(l.minStorageBufferOffsetAlignment),
		MaxBufferSize:                             uint64(l.maxBufferSize),
		MaxComputeWorkgroupStorageSize:            uint32(l.maxComputeWorkgroupStorageSize),
		MaxComputeInvocationsPerWorkgroup:         uint32(l.maxComputeInvocationsPerWorkgroup),
		MaxComputeWorkgroupSizeX:                  uint32(l.maxComputeWorkgroupSizeX),
		MaxComputeWorkgroupSizeY:                  uint32(l.maxComputeWorkgroupSizeY),
		MaxComputeWorkgroupSizeZ:                  uint32(l.maxComputeWorkgroupSizeZ),
		MaxComputeWorkgroupsPerDimension:          uint32(l.maxComputeWorkgroupsPerDimension),
	}
}

// Feature is an optional capability, named as in the WebGPU specification.
type Feature string

// Features the engine uses when the adapter offers them.
const (
	FeatureShaderF16      Feature = "shader-f16"
	FeatureSubgroups      Feature = "subgroups"
	FeatureTimestampQuery Feature = "timestamp-query"
)

// The two implementations number features differently: Dawn 0.1.7 predates
// the renumbering that wgpu-native 0.32's header has.
var featureIDs = map[Runtime]map[uint32]Feature{
	Dawn: {
		0x01: "depth-clip-control", 0x02: "depth32float-stencil8", 0x03: FeatureTimestampQuery,
		0x04: "texture-compression-bc", 0x05: "texture-compression-bc-sliced-3d",
		0x06: "texture-compression-etc2", 0x07: "texture-compression-astc",
		0x08: "texture-compression-astc-sliced-3d", 0x09: "indirect-first-instance",
		0x0A: FeatureShaderF16, 0x0B: "rg11b10ufloat-renderable", 0x0C: "bgra8unorm-storage",
		0x0D: "float32-filterable", 0x0E: "float32-blendable", 0x0F: "clip-distances",
		0x10: "dual-source-blending", 0x11: FeatureSubgroups, 0x12: "core-features-and-limits",
		0x50002: "dawn-native", 0x50010: FeatureHostMappedPointer, 0x50003: "chromium-experimental-timestamp-query-inside-passes",
		0x50004: "implicit-device-synchronization", 0x50008: "subgroups-f16",
		0x50016: "adapter-properties-memory-heaps", 0x50018: "adapter-properties-vk",
		0x50019: "r8unorm-storage", 0x50038: "chromium-experimental-subgroup-matrix",
	},
	WGPU: {
		0x01: "core-features-and-limits", 0x02: "depth-clip-control", 0x03: "depth32float-stencil8",
		0x04: "texture-compression-bc", 0x05: "texture-compression-bc-sliced-3d",
		0x06: "texture-compression-etc2", 0x07: "texture-compression-astc",
		0x08: "texture-compression-astc-sliced-3d", 0x09: FeatureTimestampQuery,
		0x0A: "indirect-first-instance", 0x0B: FeatureShaderF16, 0x0C: "rg11b10ufloat-renderable",
		0x0D: "bgra8unorm-storage", 0x0E: "float32-filterable", 0x0F: "float32-blendable",
		0x10: "clip-distances", 0x11: "dual-source-blending", 0x12: FeatureSubgroups,
		0x13: "texture-formats-tier1", 0x14: "texture-formats-tier2", 0x15: "primitive-index",
		0x16: "texture-component-swizzle",
		// wgpu-native's own features (wgpu.h, WGPUNativeFeature)
		0x00030001: "wgpu:immediates",
		0x00030002: "wgpu:texture-adapter-specific-format-features",
		0x00030004: "wgpu:multi-draw-indirect-count",
		0x00030005: "wgpu:vertex-writable-storage",
		0x00030006: "wgpu:texture-binding-array",
		0x00030007: "wgpu:sampled-texture-and-storage-buffer-array-non-uniform-indexing",
		0x00030008: "wgpu:pipeline-statistics-query",
		0x00030009: "wgpu:storage-resource-binding-array",
		0x0003000A: "wgpu:partially-bound-binding-array",
		0x0003000B: "wgpu:texture-format16bit-norm",
		0x0003000C: "wgpu:texture-compression-astc-hdr",
		0x0003000E: "wgpu:mappable-primary-buffers",
		0x0003000F: "wgpu:buffer-binding-array",
		0x00030010: "wgpu:storage-texture-array-non-uniform-indexing",
		0x00030011: "wgpu:address-mode-clamp-to-zero",
		0x00030012: "wgpu:address-mode-clamp-to-border",
		0x00030013: "wgpu:polygon-mode-line",
		0x00030014: "wgpu:polygon-mode-point",
		0x00030015: "wgpu:conservative-rasterization",
		0x00030016: "wgpu:clear-texture",
		0x00030018: "wgpu:multiview",
		0x00030019: "wgpu:vertex-attribute64bit",
		0x0003001A: "wgpu:texture-format-nv12",
		0x0003001C: "wgpu:ray-query",
		0x0003001D: "wgpu:shader-f64",
		0x0003001E: "wgpu:shader-i16",
		0x00030020: "wgpu:shader-early-depth-test",
		0x00030021: "wgpu:subgroup",
		0x00030022: "wgpu:subgroup-vertex",
		0x00030023: "wgpu:subgroup-barrier",
		0x00030024: "wgpu:timestamp-query-inside-encoders",
		0x00030025: "wgpu:timestamp-query-inside-passes",
		0x00030026: "wgpu:shader-int64",
		0x00030027: "wgpu:shader-float32-atomic",
		0x00030028: "wgpu:texture-atomic",
		0x00030029: "wgpu:texture-format-p010",
		0x0003002A: "wgpu:external-texture",
		0x0003002B: "wgpu:pipeline-cache",
		0x0003002C: "wgpu:shader-int64-atomic-min-max",
		0x0003002D: "wgpu:shader-int64-atomic-all-ops",
		0x0003002E: "wgpu:vulkan-google-display-timing",
		0x0003002F: "wgpu:vulkan-external-memory-win32",
		0x00030030: "wgpu:texture-int64-atomic",
		0x00030031: "wgpu:uniform-buffer-binding-arrays",
		0x00030032: "wgpu:mesh-shader",
		0x00030033: "wgpu:ray-hit-vertex-return",
		0x00030034: "wgpu:mesh-shader-multiview",
		0x00030035: "wgpu:extended-acceleration-structure-vertex-formats",
		0x00030036: "wgpu:passthrough-shaders",
		0x00030037: "wgpu:shader-barycentrics",
		0x00030038: "wgpu:selective-multiview",
		0x00030039: "wgpu:mesh-shader-points",
		0x0003003A: "wgpu:multisample-array",
		0x0003003B: "wgpu:cooperative-matrix",
		0x0003003C: "wgpu:shader-per-vertex",
		0x0003003D: "wgpu:shader-draw-index",
		0x0003003E: "wgpu:acceleration-structure-binding-array",
		0x0003003F: "wgpu:memory-decoration-coherent",
		0x00030040: "wgpu:memory-decoration-volatile",
		0x7FFFFFFF: "wgpu:force32",
	},
}

func featureName(rt Runtime, id uint32) Feature {
	if f, ok := featureIDs[rt][id]; ok {
		return f
	}
	return Feature(fmt.Sprintf("%s:0x%05x", rt, id))
}

func featureID(rt Runtime, f Feature) (uint32, bool) {
	for id, name := range featureIDs[rt] {
		if name == f {
			return id, true
		}
	}
	return 0, false
}

// AdapterInfo describes one adapter: what `mom devices` prints.
type AdapterInfo struct {
	Index        int       `json:"index"`
	Runtime      Runtime   `json:"runtime"`
	Name         string    `json:"name"`
	Vendor       string    `json:"vendor"`
	Architecture string    `json:"architecture"`
	Driver       string    `json:"driver"`
	VendorID     uint32    `json:"vendorID"`
	DeviceID     uint32    `json:"deviceID"`
	Backend      string    `json:"backend"`
	Type         string    `json:"type"`
	SubgroupMin  uint32    `json:"subgroupMinSize"`
	SubgroupMax  uint32    `json:"subgroupMaxSize"`
	Limits       Limits    `json:"limits"`
	Features     []Feature `json:"features"`
	backend      Backend
	adapterType  AdapterType
}

func (a AdapterInfo) key() string {
	return fmt.Sprintf("%d/%d/%d/%s", a.backend, a.VendorID, a.DeviceID, a.Name)
}

// Has reports whether the adapter offers f.
func (a AdapterInfo) Has(f Feature) bool {
	for _, g := range a.Features {
		if g == f {
			return true
		}
	}
	return false
}

func (l *Library) newOp() *C.mg_op {
	return (*C.mg_op)(C.calloc(1, C.size_t(unsafe.Sizeof(C.mg_op{}))))
}

func freeOp(op *C.mg_op) { C.free(unsafe.Pointer(op)) }

func (l *Library) describe(adapter unsafe.Pointer) (AdapterInfo, error) {
	var ci C.mg_adapter_info
	if C.mg_adapter_info_get(l.c, adapter, &ci) == 0 {
		return AdapterInfo{}, fmt.Errorf("%s: wgpuAdapterGetInfo failed", l.Runtime)
	}
	var cl C.mg_limits
	if C.mg_adapter_limits(l.c, adapter, &cl) == 0 {
		return AdapterInfo{}, fmt.Errorf("%s: wgpuAdapterGetLimits failed", l.Runtime)
	}
	var ids [256]C.uint32_t
	n := int(C.mg_adapter_features(l.c, adapter, &ids[0], C.size_t(len(ids))))
	info := AdapterInfo{
		Runtime:      l.Runtime,
		Name:         C.GoString(&ci.device[0]),
		Vendor:       C.GoString(&ci.vendor[0]),
		Architecture: C.GoString(&ci.architecture[0]),
		Driver:       C.GoString(&ci.description[0]),
		VendorID:     uint32(ci.vendor_id),
		DeviceID:     uint32(ci.device_id),
		SubgroupMin:  uint32(ci.subgroup_min),
		SubgroupMax:  uint32(ci.subgroup_max),
		Limits:       limitsFromC(&cl),
		backend:      Backend(ci.backend),
		adapterType:  AdapterType(ci.adapter_type),
	}
	info.Backend = info.backend.String()
	info.Type = info.adapterType.String()
	for i := 0; i < n; i++ {
		info.Features = append(info.Features, featureName(l.Runtime, uint32(ids[i])))
	}
	sort.Slice(info.Features, func(i, j int) bool { return info.Features[i] < info.Features[j] })
	return info, nil
}

// adapterHandle is an adapter with its description.
type adapterHandle struct {
	ptr  unsafe.Pointer
	info AdapterInfo
}

// adapters lists every adapter the implementation offers. wgpu-native can
// enumerate, and lists every GPU, identical ones too (several H200s); Dawn's
// C API cannot, so it is asked once per backend (Vulkan, Metal, D3D12,
// D3D11), power preference and fallback flag, and the answers are
// deduplicated: Dawn shows one adapter per kind of GPU.
func (l *Library) adapters(inst unsafe.Pointer, toggles []string) ([]adapterHandle, error) {
	var out []adapterHandle
	seen := map[string]bool{}
	add := func(p unsafe.Pointer) error {
		info, err := l.describe(p)
		if err != nil {
			C.mg_release(l.c, C.MG_ADAPTER, p)
			return err
		}
		if l.Runtime != WGPU && seen[info.key()] {
			C.mg_release(l.c, C.MG_ADAPTER, p)
			return nil
		}
		seen[info.key()] = true
		info.Index = len(out)
		out = append(out, adapterHandle{p, info})
		return nil
	}
	if l.Runtime == WGPU {
		var ptrs [32]unsafe.Pointer
		n := int(C.mg_enumerate_adapters(l.c, inst, &ptrs[0], C.size_t(len(ptrs))))
		for i := 0; i < n; i++ {
			if err := add(ptrs[i]); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	op := l.newOp()
	defer freeOp(op)
	ctog, ntog, freeTog := cStrings(toggles)
	defer freeTog()
	type ask struct {
		backend Backend
		level   uint32 // 1 compatibility, 2 core
	}
	// Dawn's OpenGL backends are left out: they are no place for compute
	// work, and probing them without a display prints EGL warnings.
	asks := []ask{{BackendVulkan, 2}, {BackendMetal, 2}, {BackendD3D12, 2}, {BackendD3D11, 1}}
	for _, a := range asks {
		for _, power := range []uint32{2, 1} { // high performance, low power
			for _, fallback := range []C.mg_bool{0, 1} {
				r := C.mg_request_adapter(l.c, inst, C.uint32_t(a.backend), C.uint32_t(power), fallback, C.uint32_t(a.level), ctog, ntog, op)
				if r != 1 || op.status != 1 || op.handle == nil {
					continue
				}
				if err := add(op.handle); err != nil {
					return nil, err
				}
			}
		}
	}
	return out, nil
}

// Adapters lists the adapters of this implementation with their limits and
// features.
func (l *Library) Adapters() ([]AdapterInfo, error) {
	inst := C.mg_create_instance(l.c)
	if inst == nil {
		return nil, fmt.Errorf("%s (%s): wgpuCreateInstance returned null", l.Runtime, l.Path)
	}
	defer C.mg_release(l.c, C.MG_INSTANCE, inst)
	hs, err := l.adapters(inst, nil)
	if err != nil {
		return nil, err
	}
	infos := make([]AdapterInfo, len(hs))
	for i, h := range hs {
		infos[i] = h.info
		C.mg_release(l.c, C.MG_ADAPTER, h.ptr)
	}
	return infos, nil
}
