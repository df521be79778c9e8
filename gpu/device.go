package gpu

/*
#include <stdlib.h>
#include "shim.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"unsafe"
)

// ErrDeviceLost wraps every error reported after the device was lost.
var ErrDeviceLost = errors.New("webgpu device lost")

// ErrorKind classifies an error the implementation reported.
type ErrorKind uint32

// Error types of webgpu.h.
const (
	ErrNone        ErrorKind = 1
	ErrValidation  ErrorKind = 2
	ErrOutOfMemory ErrorKind = 3
	ErrInternal    ErrorKind = 4
	ErrUnknown     ErrorKind = 5
)

func (k ErrorKind) String() string {
	switch k {
	case ErrValidation:
		return "validation error"
	case ErrOutOfMemory:
		return "out of memory"
	case ErrInternal:
		return "internal error"
	case ErrNone:
		return "no error"
	}
	return "error"
}

// DeviceError is an error the WebGPU implementation reported, with what mom
// was doing when it happened.
type DeviceError struct {
	Kind    ErrorKind
	Context string // e.g. "pipeline gemm.wgsl:main" or "submit [gemm x4, adamw]"
	Message string
}

func (e *DeviceError) Error() string {
	return fmt.Sprintf("%s: %s: %s", e.Context, e.Kind, strings.TrimSpace(e.Message))
}

// Options select the implementation, the adapter and the device's features.
type Options struct {
	Runtime Runtime
	// Adapter is the index in the list `mom devices` prints; -1 picks the
	// best one (discrete GPU first, CPU last).
	Adapter int
	// Features to enable where the adapter offers them; nil means the engine's
	// set (shader-f16, subgroups, timestamp-query).
	Features []Feature
	// Toggles are Dawn toggles to enable (e.g. "allow_unsafe_apis").
	Toggles []string
	// DisabledToggles are Dawn toggles to disable; nil means
	// "timestamp_quantization", which otherwise rounds GPU timestamps so
	// coarsely that short kernels time as zero.
	DisabledToggles []string
	// Robust keeps the bounds checks the runtime adds to every shader
	// access. By default Dawn's are turned off (its disable_robustness
	// toggle, with allow_unsafe_apis): mom's kernels check their own
	// bounds (tests compare every kernel with its reference at edge sizes),
	// and on the H200 Dawn's checks cost about 20% of the GEMMs' time.
	// wgpu-native's shaders are created through its trusted-module
	// extension (wgpuDeviceCreateShaderModuleTrusted) without its bounds
	// checks and loop bounding, where the library exports it.
	Robust bool
	// Transfer is the path large Buffer.Write and Read calls take (the
	// staging of checkpoints, initial parameters, batches and readbacks);
	// PathAuto picks the fastest the device offers. On Dawn, PathAuto and
	// PathHostMapped turn on the allow_unsafe_apis toggle, without which
	// Dawn hides its host-mapped-pointer feature.
	Transfer TransferPath
}

// DefaultFeatures are the optional features the engine uses when offered.
var DefaultFeatures = []Feature{FeatureShaderF16, FeatureSubgroups, FeatureTimestampQuery}

// Device is an open WebGPU device with its queue, caches and error state.
// Its methods may be called from several goroutines; calls into the
// implementation are serialised.
type Device struct {
	Lib      *Library
	Info     AdapterInfo
	Limits   Limits    // the device's limits (raised to the adapter's)
	Features []Feature // the features enabled on the device
	// DryRun marks a device of the null implementation (OpenDryRun):
	// buffers hold no memory and nothing runs.
	DryRun bool

	mu      sync.Mutex
	inst    unsafe.Pointer
	adapter unsafe.Pointer
	dev     unsafe.Pointer
	queue   unsafe.Pointer
	state   *C.mg_device_state
	op      *C.mg_op
	closed  bool // Close has begun: no new work
	dead    bool // Close has finished: handles are gone, releases are no-ops
	lost    error

	shaders   map[string]*Shader
	pipelines map[string]*Pipeline
	staging   map[int64][]*Buffer
	live      [C.MG_KIND_COUNT]int
	tsPeriod  float64
	mem       memStats
	xfer      *Stager // the transfer path Buffer.Write and Read use for large sizes
	xferOpt   TransferPath
	// unchecked: the runtime adds no bounds checks to shaders: Dawn's
	// disable_robustness toggle, or wgpu-native's trusted shader modules
	// (no bounds checks, no loop bounding), which Shader asks for.
	unchecked bool
}

// Open loads the implementation and opens a device on the chosen adapter.
func Open(o Options) (*Device, error) {
	lib, err := Load(o.Runtime)
	if err != nil {
		return nil, err
	}
	return lib.Open(o)
}

// EnvDawnToggles names the environment variable with more Dawn toggles to
// enable, comma-separated, for experiments: e.g. disable_robustness, which
// drops the bounds checks Dawn adds to every shader (needs
// allow_unsafe_apis, which the default transfer path turns on). Other
// runtimes ignore it.
const EnvDawnToggles = "MOM_DAWN_TOGGLES"

// Open opens a device of this implementation.
func (l *Library) Open(o Options) (*Device, error) {
	inst := C.mg_create_instance(l.c)
	if inst == nil {
		return nil, fmt.Errorf("%s: wgpuCreateInstance returned null", l.Runtime)
	}
	o = o.withTransfer(l.Runtime)
	if l.Runtime == Dawn && !o.Robust {
		for _, t := range []string{"allow_unsafe_apis", "disable_robustness"} {
			if !containsString(o.Toggles, t) {
				o.Toggles = append(append([]string(nil), o.Toggles...), t)
			}
		}
	}
	if e := os.Getenv(EnvDawnToggles); e != "" && l.Runtime == Dawn {
		for _, t := range strings.Split(e, ",") {
			if t = strings.TrimSpace(t); t != "" && !containsString(o.Toggles, t) {
				o.Toggles = append(append([]string(nil), o.Toggles...), t)
			}
		}
	}
	hs, err := l.adapters(inst, o.Toggles)
	if err != nil {
		C.mg_release(l.c, C.MG_INSTANCE, inst)
		return nil, err
	}
	if len(hs) == 0 {
		C.mg_release(l.c, C.MG_INSTANCE, inst)
		return nil, fmt.Errorf("%s (%s): no WebGPU adapter found; on a machine without a GPU install Mesa's lavapipe "+
			"(mesa-vulkan-drivers 25 from bookworm-backports, `make deps`)", l.Runtime, l.Path)
	}
	pick := o.Adapter
	if pick < 0 {
		pick = bestAdapter(hs)
	}
	if pick >= len(hs) {
		for _, h := range hs {
			C.mg_release(l.c, C.MG_ADAPTER, h.ptr)
		}
		C.mg_release(l.c, C.MG_INSTANCE, inst)
		return nil, fmt.Errorf("%s: adapter %d does not exist (there are %d; see `mom devices --runtime %s`)", l.Runtime, pick, len(hs), l.Runtime)
	}
	for i, h := range hs {
		if i != pick {
			C.mg_release(l.c, C.MG_ADAPTER, h.ptr)
		}
	}
	d := &Device{
		Lib:       l,
		Info:      hs[pick].info,
		inst:      inst,
		adapter:   hs[pick].ptr,
		state:     C.mg_state_new(),
		op:        l.newOp(),
		shaders:   map[string]*Shader{},
		pipelines: map[string]*Pipeline{},
		staging:   map[int64][]*Buffer{},
	}
	d.mem.deferFree = l.Runtime == Dawn
	d.unchecked = !o.Robust && (l.Runtime == Dawn || l.Runtime == WGPU && C.mg_has_unchecked_shaders(l.c) != 0)
	if err := d.request(o); err != nil {
		d.Close()
		return nil, err
	}
	d.xferOpt = o.Transfer
	if o.Transfer == PathHostMapped && !d.Has(FeatureHostMappedPointer) {
		d.Close()
		return nil, fmt.Errorf("%s: --transfer %s needs the %s feature, which %s does not offer", l.Runtime, PathHostMapped, FeatureHostMappedPointer, d.Info.Name)
	}
	return d, nil
}

// withTransfer adds what the transfer path needs: on Dawn the
// allow_unsafe_apis toggle and the host-mapped-pointer feature.
func (o Options) withTransfer(rt Runtime) Options {
	if rt != Dawn || (o.Transfer != PathAuto && o.Transfer != PathHostMapped) {
		return o
	}
	if !containsString(o.Toggles, "allow_unsafe_apis") {
		o.Toggles = append(append([]string(nil), o.Toggles...), "allow_unsafe_apis")
	}
	want := o.Features
	if want == nil {
		want = DefaultFeatures
	}
	o.Features = append(append([]Feature(nil), want...), FeatureHostMappedPointer)
	return o
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// bestAdapter prefers a discrete GPU, then an integrated one, then anything
// but a CPU, and a modern backend over OpenGL.
func bestAdapter(hs []adapterHandle) int {
	best := 0
	for i, h := range hs {
		if adapterScore(h.info) > adapterScore(hs[best].info) {
			best = i
		}
	}
	return best
}

// adapterScore ranks adapters for bestAdapter: its kind, then its backend.
func adapterScore(a AdapterInfo) int {
	s := 0
	switch a.adapterType {
	case 1:
		s += 300
	case 2:
		s += 200
	case 4:
		s += 100
	}
	switch a.backend {
	case BackendVulkan, BackendMetal, BackendD3D12:
		s += 10
	}
	return s
}

func (d *Device) request(o Options) error {
	l := d.Lib
	want := o.Features
	if want == nil {
		want = DefaultFeatures
	}
	var ids []C.uint32_t
	for _, f := range want {
		if !d.Info.Has(f) && f == FeatureSubgroups && d.Info.Has(wgpuNativeSubgroup) {
			// wgpu-native offers subgroup operations as its own feature.
			f = wgpuNativeSubgroup
		}
		if !d.Info.Has(f) {
			continue
		}
		if id, ok := featureID(l.Runtime, f); ok {
			ids = append(ids, C.uint32_t(id))
		}
	}
	// Ask for every limit the adapter offers, not the WebGPU defaults.
	var lim C.mg_limits
	if C.mg_adapter_limits(l.c, d.adapter, &lim) == 0 {
		return fmt.Errorf("%s: reading the adapter's limits failed", l.Runtime)
	}
	for i := range lim.tail {
		lim.tail[i] = 0xFFFFFFFF
	}
	cfeat := (*C.uint32_t)(C.calloc(C.size_t(len(ids)+1), 4))
	defer C.free(unsafe.Pointer(cfeat))
	copy(unsafe.Slice(cfeat, len(ids)+1), ids)
	ctog := make([]*C.char, len(o.Toggles)+1)
	for i, t := range o.Toggles {
		ctog[i] = C.CString(t)
		defer C.free(unsafe.Pointer(ctog[i]))
	}
	ctogArr := (**C.char)(C.calloc(C.size_t(len(ctog)), C.size_t(unsafe.Sizeof(uintptr(0)))))
	defer C.free(unsafe.Pointer(ctogArr))
	copy(unsafe.Slice(ctogArr, len(ctog)), ctog)
	disabled := o.DisabledToggles
	if disabled == nil {
		disabled = []string{"timestamp_quantization"}
	}
	cdis := make([]*C.char, len(disabled)+1)
	for i, t := range disabled {
		cdis[i] = C.CString(t)
		defer C.free(unsafe.Pointer(cdis[i]))
	}
	cdisArr := (**C.char)(C.calloc(C.size_t(len(cdis)), C.size_t(unsafe.Sizeof(uintptr(0)))))
	defer C.free(unsafe.Pointer(cdisArr))
	copy(unsafe.Slice(cdisArr, len(cdis)), cdis)
	r := C.mg_request_device(l.c, d.inst, d.adapter, cfeat, C.size_t(len(ids)), &lim, d.state,
		ctogArr, C.size_t(len(o.Toggles)), cdisArr, C.size_t(len(disabled)), d.op)
	if r != 1 || d.op.status != 1 || d.op.handle == nil {
		return fmt.Errorf("%s: requesting a device on %q failed: %s", l.Runtime, d.Info.Name, C.GoString(&d.op.msg[0]))
	}
	d.dev = d.op.handle
	d.queue = C.mg_device_queue(l.c, d.dev)
	var dl C.mg_limits
	if C.mg_device_limits(l.c, d.dev, &dl) == 0 {
		return fmt.Errorf("%s: reading the device's limits failed", l.Runtime)
	}
	d.Limits = limitsFromC(&dl)
	var fids [256]C.uint32_t
	n := int(C.mg_device_features(l.c, d.dev, &fids[0], C.size_t(len(fids))))
	for i := 0; i < n; i++ {
		d.Features = append(d.Features, featureName(l.Runtime, uint32(fids[i])))
	}
	d.tsPeriod = float64(C.mg_timestamp_period(l.c, d.queue))
	return nil
}

// wgpuNativeSubgroup is wgpu-native's own subgroup feature (wgpu.h).
const wgpuNativeSubgroup Feature = "wgpu:subgroup"

// Has reports whether the device has feature f enabled (subgroups counts
// wgpu-native's own subgroup feature).
func (d *Device) Has(f Feature) bool {
	for _, g := range d.Features {
		if g == f || (f == FeatureSubgroups && g == wgpuNativeSubgroup) {
			return true
		}
	}
	return false
}

// String names the device for logs: "llvmpipe (Vulkan, CPU) via dawn".
func (d *Device) String() string {
	return fmt.Sprintf("%s (%s, %s) via %s", d.Info.Name, d.Info.Backend, d.Info.Type, d.Lib.Runtime)
}

// errLocked drains errors the device reported outside any scope. It must be
// called with d.mu held.
func (d *Device) errLocked(context string) error {
	if d.lost != nil {
		return d.lost
	}
	var errs []error
	var buf [1024]C.char
	for {
		var typ C.uint32_t
		r := C.mg_state_take(d.state, &typ, &buf[0], C.size_t(len(buf)))
		if r == 0 {
			break
		}
		msg := C.GoString(&buf[0])
		if r == 2 {
			d.lost = fmt.Errorf("%w during %s (reason %d): %s", ErrDeviceLost, context, uint32(typ), msg)
			return errors.Join(append(errs, d.lost)...)
		}
		errs = append(errs, &DeviceError{Kind: ErrorKind(typ), Context: context, Message: msg})
	}
	return errors.Join(errs...)
}

// Check returns the errors the device reported since the last check.
func (d *Device) Check(context string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return errors.New("gpu: device is closed")
	}
	C.mg_process_events(d.Lib.c, d.inst, d.dev)
	return d.errLocked(context)
}

// scopeLocked runs fn inside validation and out-of-memory error scopes and
// returns what they caught. It must be called with d.mu held.
func (d *Device) scopeLocked(context string, fn func()) error {
	if d.lost != nil {
		return d.lost
	}
	C.mg_push_error_scope(d.Lib.c, d.dev, 2) // out of memory
	C.mg_push_error_scope(d.Lib.c, d.dev, 1) // validation
	fn()
	var errs []error
	for i := 0; i < 2; i++ {
		r := C.mg_pop_error_scope(d.Lib.c, d.inst, d.dev, d.op)
		if r != 1 {
			errs = append(errs, fmt.Errorf("%s: waiting for the error scope failed", context))
			continue
		}
		if d.op.status == 1 && d.op.kind != 0 && ErrorKind(d.op.kind) != ErrNone {
			errs = append(errs, &DeviceError{Kind: ErrorKind(d.op.kind), Context: context, Message: C.GoString(&d.op.msg[0])})
		}
	}
	if err := d.errLocked(context); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// LiveObjects returns how many objects this device has created and not yet
// released, by kind name. Used to prove that nothing leaks.
func (d *Device) LiveObjects() map[string]int {
	names := []string{"instance", "adapter", "device", "queue", "buffer", "shader", "pipeline",
		"bind group layout", "bind group", "encoder", "pass", "command buffer", "query set",
		"surface", "texture", "texture view", "render pipeline", "render pass"}
	d.mu.Lock()
	defer d.mu.Unlock()
	out := map[string]int{}
	for k, n := range d.live {
		if n != 0 {
			out[names[k]] = n
		}
	}
	return out
}

func (d *Device) created(kind C.int) { d.live[kind]++ }

func (d *Device) release(kind C.int, p unsafe.Pointer) {
	if p == nil || d.dead {
		return
	}
	C.mg_release(d.Lib.c, kind, p)
	d.live[kind]--
}

// Close releases the device and everything cached on it; on a nil Device
// it does nothing.
func (d *Device) Close() {
	if d == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return
	}
	d.closed = true
	if d.xfer != nil {
		s := d.xfer
		d.xfer = nil
		d.mu.Unlock()
		s.Release()
		d.mu.Lock()
	}
	for _, p := range d.pipelines {
		p.releaseLocked()
	}
	for _, s := range d.shaders {
		d.release(C.MG_SHADER, s.ptr)
	}
	for _, list := range d.staging {
		for _, b := range list {
			b.destroyLocked()
		}
	}
	l := d.Lib.c
	if d.queue != nil {
		C.mg_release(l, C.MG_QUEUE, d.queue)
	}
	if d.dev != nil {
		C.mg_device_destroy(l, d.dev)
		C.mg_release(l, C.MG_DEVICE, d.dev)
		C.mg_process_events(l, d.inst, nil)
	}
	if d.adapter != nil {
		C.mg_release(l, C.MG_ADAPTER, d.adapter)
	}
	if d.inst != nil {
		d.Lib.keepOrRelease(d.inst)
	}
	C.mg_state_free(d.state)
	freeOp(d.op)
	d.dead = true
}

// Handles exposes the raw instance, adapter, device and queue pointers and the
// loaded library for code in this package that drives other parts of the
// API (surfaces for the window).
func (d *Device) handles() (inst, adapter, dev, queue unsafe.Pointer) {
	return d.inst, d.adapter, d.dev, d.queue
}

// forceLoss makes the device lost where the implementation supports it
// (tests of the loss path).
func (d *Device) forceLoss() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	ok := C.mg_force_loss(d.Lib.c, d.dev) == 1
	C.mg_process_events(d.Lib.c, d.inst, d.dev)
	return ok
}
