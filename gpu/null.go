package gpu

/*
#include <stdlib.h>
#include <string.h>
#include "shim.h"
*/
import "C"

import (
	"fmt"
	"sort"
	"strings"
	"unsafe"
)

// Profile describes a device for dry runs: OpenDryRun makes a device of the
// null implementation that behaves as this adapter would (its runtime,
// type, limits and features drive every choice the engine makes), while
// its buffers hold no memory and nothing runs. The memory accounting of a
// dry run is what mom would allocate on that device.
type Profile struct {
	Name     string
	Runtime  Runtime
	Type     AdapterType // 1 discrete GPU, 2 integrated, 3 CPU
	Backend  Backend
	Limits   Limits
	Features []Feature
}

// Profiles are the devices dry runs know, by name: the NVIDIA H200 through
// Dawn and through wgpu-native (limits as DESIGN.md §3 records them), and
// lavapipe through Dawn.
var Profiles = map[string]Profile{
	"h200": {Name: "NVIDIA H200 (dry run)", Runtime: Dawn, Type: 1, Backend: BackendVulkan, Limits: h200Limits,
		Features: []Feature{FeatureSubgroups, FeatureTimestampQuery, FeatureHostMappedPointer}},
	"h200-wgpu": {Name: "NVIDIA H200 (dry run)", Runtime: WGPU, Type: 1, Backend: BackendVulkan, Limits: h200Limits,
		Features: []Feature{FeatureShaderF16, FeatureSubgroups, FeatureTimestampQuery}},
	"lavapipe": {Name: "llvmpipe (dry run)", Runtime: Dawn, Type: 3, Backend: BackendVulkan, Limits: Limits{
		MaxTextureDimension2D: 16384, MaxBindGroups: 4, MaxBindingsPerBindGroup: 1000,
		MaxDynamicStorageBuffersPerPipelineLayout: 8, MaxStorageBuffersPerShaderStage: 10, MaxUniformBuffersPerShaderStage: 12,
		MaxUniformBufferBindingSize: 64 << 10, MaxStorageBufferBindingSize: 128 << 20,
		MinUniformBufferOffsetAlignment: 256, MinStorageBufferOffsetAlignment: 16, MaxBufferSize: 1<<32 - 1,
		MaxComputeWorkgroupStorageSize: 32 << 10, MaxComputeInvocationsPerWorkgroup: 1024,
		MaxComputeWorkgroupSizeX: 1024, MaxComputeWorkgroupSizeY: 1024, MaxComputeWorkgroupSizeZ: 1024,
		MaxComputeWorkgroupsPerDimension: 65535,
	}, Features: []Feature{FeatureShaderF16, FeatureSubgroups, FeatureTimestampQuery, FeatureHostMappedPointer}},
}

var h200Limits = Limits{
	MaxTextureDimension2D: 16384, MaxBindGroups: 4, MaxBindingsPerBindGroup: 1000,
	MaxDynamicStorageBuffersPerPipelineLayout: 8, MaxStorageBuffersPerShaderStage: 10, MaxUniformBuffersPerShaderStage: 12,
	MaxUniformBufferBindingSize: 64 << 10, MaxStorageBufferBindingSize: 1<<32 - 4,
	MinUniformBufferOffsetAlignment: 256, MinStorageBufferOffsetAlignment: 32, MaxBufferSize: 1 << 40,
	MaxComputeWorkgroupStorageSize: 48 << 10, MaxComputeInvocationsPerWorkgroup: 1024,
	MaxComputeWorkgroupSizeX: 1024, MaxComputeWorkgroupSizeY: 1024, MaxComputeWorkgroupSizeZ: 64,
	MaxComputeWorkgroupsPerDimension: 65535,
}

// ProfileNames lists the dry-run profiles.
func ProfileNames() []string {
	var out []string
	for k := range Profiles {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// LookupProfile returns the dry-run profile called name.
func LookupProfile(name string) (Profile, error) {
	p, ok := Profiles[strings.ToLower(name)]
	if !ok {
		return Profile{}, fmt.Errorf("unknown device profile %q (have %s)", name, strings.Join(ProfileNames(), ", "))
	}
	return p, nil
}

// OpenDryRun opens a device of the null implementation that pretends to be
// p. Every call succeeds; buffers hold no memory (reads give zeros); shaders
// are not compiled and dispatches do not run. It is for counting what mom
// would allocate on p (Device.Memory).
func OpenDryRun(p Profile) (*Device, error) {
	var cp C.mg_null_profile
	cp.kind = C.MG_DAWN
	if p.Runtime == WGPU {
		cp.kind = C.MG_WGPU
	}
	put := func(dst []C.char, s string) {
		b := unsafe.Slice((*byte)(unsafe.Pointer(&dst[0])), len(dst))
		n := copy(b[:len(b)-1], s)
		b[n] = 0
	}
	put(cp.name[:], p.Name)
	put(cp.vendor[:], "dry run")
	put(cp.architecture[:], "none")
	put(cp.driver[:], "mom's null implementation: nothing runs")
	cp.backend = C.uint32_t(p.Backend)
	cp.adapter_type = C.uint32_t(p.Type)
	l := p.Limits
	cl := &cp.limits
	cl.maxTextureDimension1D, cl.maxTextureDimension2D, cl.maxTextureDimension3D = C.uint32_t(l.MaxTextureDimension2D), C.uint32_t(l.MaxTextureDimension2D), 2048
	cl.maxTextureArrayLayers, cl.maxBindGroups, cl.maxBindGroupsPlusVertexBuffers = 256, C.uint32_t(l.MaxBindGroups), 24
	cl.maxBindingsPerBindGroup = C.uint32_t(l.MaxBindingsPerBindGroup)
	cl.maxDynamicUniformBuffersPerPipelineLayout = 8
	cl.maxDynamicStorageBuffersPerPipelineLayout = C.uint32_t(l.MaxDynamicStorageBuffersPerPipelineLayout)
	cl.maxSampledTexturesPerShaderStage, cl.maxSamplersPerShaderStage = 16, 16
	cl.maxStorageBuffersPerShaderStage = C.uint32_t(l.MaxStorageBuffersPerShaderStage)
	cl.maxStorageTexturesPerShaderStage = 4
	cl.maxUniformBuffersPerShaderStage = C.uint32_t(l.MaxUniformBuffersPerShaderStage)
	cl.maxUniformBufferBindingSize = C.uint64_t(l.MaxUniformBufferBindingSize)
	cl.maxStorageBufferBindingSize = C.uint64_t(l.MaxStorageBufferBindingSize)
	cl.minUniformBufferOffsetAlignment = C.uint32_t(l.MinUniformBufferOffsetAlignment)
	cl.minStorageBufferOffsetAlignment = C.uint32_t(l.MinStorageBufferOffsetAlignment)
	cl.maxVertexBuffers, cl.maxBufferSize = 8, C.uint64_t(l.MaxBufferSize)
	cl.maxVertexAttributes, cl.maxVertexBufferArrayStride, cl.maxInterStageShaderVariables = 16, 2048, 16
	cl.maxColorAttachments, cl.maxColorAttachmentBytesPerSample = 8, 32
	cl.maxComputeWorkgroupStorageSize = C.uint32_t(l.MaxComputeWorkgroupStorageSize)
	cl.maxComputeInvocationsPerWorkgroup = C.uint32_t(l.MaxComputeInvocationsPerWorkgroup)
	cl.maxComputeWorkgroupSizeX = C.uint32_t(l.MaxComputeWorkgroupSizeX)
	cl.maxComputeWorkgroupSizeY = C.uint32_t(l.MaxComputeWorkgroupSizeY)
	cl.maxComputeWorkgroupSizeZ = C.uint32_t(l.MaxComputeWorkgroupSizeZ)
	cl.maxComputeWorkgroupsPerDimension = C.uint32_t(l.MaxComputeWorkgroupsPerDimension)
	for _, f := range p.Features {
		id, ok := featureID(p.Runtime, f)
		if !ok {
			return nil, fmt.Errorf("gpu: dry-run profile %s: %s has no feature %s", p.Name, p.Runtime, f)
		}
		if int(cp.nfeatures) == len(cp.features) {
			return nil, fmt.Errorf("gpu: dry-run profile %s: too many features", p.Name)
		}
		cp.features[cp.nfeatures] = C.uint32_t(id)
		cp.nfeatures++
	}
	c := C.mg_open_null(&cp)
	if c == nil {
		return nil, fmt.Errorf("gpu: dry run of %s: out of memory", p.Name)
	}
	lib := &Library{Runtime: p.Runtime, Path: "(dry run)", c: c}
	d, err := lib.Open(Options{Runtime: p.Runtime, Adapter: -1})
	if err != nil {
		return nil, fmt.Errorf("gpu: dry run of %s: %w", p.Name, err)
	}
	d.DryRun = true
	return d, nil
}
