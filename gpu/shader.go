package gpu

/*
#include <stdlib.h>
#include <string.h>
#include "shim.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"hash/fnv"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unsafe"
)

// CompileError is a WGSL compile error with the line it points at.
type CompileError struct {
	Shader  string // the file of the error, e.g. "gemm.wgsl" or "shared/gemm_tile.wgsl"
	Line    int    // 1-based; 0 when the implementation gave none
	Column  int
	Message string
	Text    string // the offending source line
	Via     string // the shader that imported Shader ("" if none)
}

func (e *CompileError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "WGSL compile error in %s", e.Shader)
	if e.Via != "" {
		fmt.Fprintf(&b, " (imported by %s)", e.Via)
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, " at line %d", e.Line)
		if e.Column > 0 {
			fmt.Fprintf(&b, ", column %d", e.Column)
		}
	}
	fmt.Fprintf(&b, ": %s", firstLine(e.Message))
	if e.Text != "" {
		fmt.Fprintf(&b, "\n  %d | %s", e.Line, e.Text)
	}
	return b.String()
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return strings.TrimSpace(s[:i])
	}
	return s
}

// Shader is a compiled WGSL module.
type Shader struct {
	Name string
	Code string
	key  string // name and a hash of the code
	ptr  unsafe.Pointer
}

// Pipeline is a compute pipeline: one entry point of a shader with its
// override constants fixed.
type Pipeline struct {
	d      *Device
	Shader *Shader
	Entry  string
	Key    string // shader, entry and constants, as cached
	ptr    unsafe.Pointer
	layout unsafe.Pointer // bind group layout 0 (derived from the shader)
	// bind groups made for this pipeline, released with it
	groups []*BindGroup
}

// BindGroup binds buffers to a pipeline's group 0.
type BindGroup struct {
	p   *Pipeline
	ptr unsafe.Pointer
	// Bytes bound, for bandwidth accounting.
	Bytes int64
}

var lineColRe = regexp.MustCompile(`(?:wgsl|:)\s*:?(\d+):(\d+)`)

// Shader compiles WGSL code under name (cached by name and code).
func (d *Device) Shader(name, code string) (*Shader, error) {
	h := fnv.New64a()
	h.Write([]byte(code))
	key := fmt.Sprintf("%s#%x", name, h.Sum64())
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, errors.New("gpu: device is closed")
	}
	if s, ok := d.shaders[key]; ok {
		return s, nil
	}
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	ccode := C.CString(d.adaptWGSL(code))
	defer C.free(unsafe.Pointer(ccode))
	var ptr unsafe.Pointer
	scopeErr := d.scopeLocked("compile "+name, func() {
		ptr = C.mg_create_shader(d.Lib.c, d.dev, cname, ccode, C.size_t(C.strlen(ccode)), C.mg_bool(b2u(d.unchecked && d.Lib.Runtime == WGPU)))
	})
	if ptr != nil {
		d.created(C.MG_SHADER)
	}
	if errors.Is(scopeErr, ErrDeviceLost) {
		if ptr != nil {
			d.release(C.MG_SHADER, ptr)
		}
		return nil, fmt.Errorf("gpu: compiling %s: %w", name, scopeErr)
	}
	// Dawn gives structured messages with line numbers.
	var cerr *CompileError
	if ptr != nil {
		msgs := (*C.mg_compile_msg)(C.calloc(16, C.size_t(unsafe.Sizeof(C.mg_compile_msg{}))))
		var n C.size_t
		C.mg_compilation_info(d.Lib.c, d.inst, d.dev, ptr, d.op, msgs, 16, &n)
		for _, m := range unsafe.Slice(msgs, int(n)) {
			if m._type == 1 { // error
				cerr = &CompileError{Shader: name, Line: int(m.line), Column: int(m.col), Message: C.GoString(&m.msg[0])}
				break
			}
		}
		C.free(unsafe.Pointer(msgs))
	}
	if cerr == nil && scopeErr != nil {
		cerr = &CompileError{Shader: name, Message: scopeErr.Error()}
		var de *DeviceError
		if errors.As(scopeErr, &de) {
			cerr.Message = de.Message
		}
		if m := lineColRe.FindStringSubmatch(cerr.Message); m != nil {
			cerr.Line, _ = strconv.Atoi(m[1])
			cerr.Column, _ = strconv.Atoi(m[2])
		}
	}
	if cerr != nil {
		lines := strings.Split(code, "\n")
		if cerr.Line >= 1 && cerr.Line <= len(lines) {
			cerr.Text = strings.TrimRight(lines[cerr.Line-1], "\r")
		}
		d.release(C.MG_SHADER, ptr)
		return nil, cerr
	}
	if ptr == nil {
		return nil, fmt.Errorf("gpu: compiling %s returned null", name)
	}
	s := &Shader{Name: name, Code: code, key: key, ptr: ptr}
	d.shaders[key] = s
	return s, nil
}

// adaptWGSL hides a difference between the implementations: wgpu-native
// (naga) enables subgroup operations through its own device feature and
// rejects the `enable subgroups;` directive that Dawn requires, so the
// directive is blanked out (keeping line numbers) on wgpu-native.
func (d *Device) adaptWGSL(code string) string {
	if d.Lib.Runtime != WGPU || !strings.Contains(code, "enable subgroups") {
		return code
	}
	lines := strings.Split(code, "\n")
	for i, l := range lines {
		if strings.TrimSpace(l) == "enable subgroups;" {
			lines[i] = ""
		}
	}
	return strings.Join(lines, "\n")
}

// Constants are WGSL override constants by name.
type Constants map[string]float64

func (c Constants) key() string {
	names := make([]string, 0, len(c))
	for k := range c {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, k := range names {
		fmt.Fprintf(&b, "%s=%g;", k, c[k])
	}
	return b.String()
}

// Pipeline returns the compute pipeline for entry of s with constants,
// creating it on first use (cached by shader, entry point and constants).
func (d *Device) Pipeline(s *Shader, entry string, consts Constants) (*Pipeline, error) {
	key := s.key + ":" + entry + "{" + consts.key() + "}"
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, errors.New("gpu: device is closed")
	}
	if p, ok := d.pipelines[key]; ok {
		return p, nil
	}
	centry := C.CString(entry)
	defer C.free(unsafe.Pointer(centry))
	clabel := C.CString(key)
	defer C.free(unsafe.Pointer(clabel))
	n := len(consts)
	keys := (**C.char)(C.calloc(C.size_t(n+1), C.size_t(unsafe.Sizeof(uintptr(0)))))
	defer C.free(unsafe.Pointer(keys))
	vals := (*C.double)(C.calloc(C.size_t(n+1), 8))
	defer C.free(unsafe.Pointer(vals))
	ks, vs := unsafe.Slice(keys, n+1), unsafe.Slice(vals, n+1)
	i := 0
	for k, v := range consts {
		ks[i] = C.CString(k)
		defer C.free(unsafe.Pointer(ks[i]))
		vs[i] = C.double(v)
		i++
	}
	var ptr, layout unsafe.Pointer
	err := d.scopeLocked("pipeline "+key, func() {
		ptr = C.mg_create_pipeline(d.Lib.c, d.dev, clabel, s.ptr, centry, keys, vals, C.size_t(n))
		if ptr != nil {
			layout = C.mg_pipeline_layout(d.Lib.c, ptr, 0)
		}
	})
	if ptr != nil {
		d.created(C.MG_PIPELINE)
	}
	if layout != nil {
		d.created(C.MG_BGL)
	}
	if err != nil || ptr == nil {
		d.release(C.MG_BGL, layout)
		d.release(C.MG_PIPELINE, ptr)
		if err == nil {
			err = errors.New("returned null")
		}
		return nil, fmt.Errorf("gpu: creating pipeline %s: %w", key, err)
	}
	p := &Pipeline{d: d, Shader: s, Entry: entry, Key: key, ptr: ptr, layout: layout}
	d.pipelines[key] = p
	return p, nil
}

func (p *Pipeline) releaseLocked() {
	for _, g := range p.groups {
		p.d.release(C.MG_BIND_GROUP, g.ptr)
		g.ptr = nil
	}
	p.groups = nil
	p.d.release(C.MG_BGL, p.layout)
	p.d.release(C.MG_PIPELINE, p.ptr)
	p.ptr, p.layout = nil, nil
}

// Binding is one buffer range bound at a binding slot.
type Binding struct {
	Buffer *Buffer
	Offset int64
	Size   int64 // 0: to the end of the buffer
}

// Buf binds a whole buffer.
func Buf(b *Buffer) Binding { return Binding{Buffer: b} }

// BindGroup binds buffers to slots 0, 1, 2, ... of the pipeline's group 0.
// Each bound range must fit the device's maxStorageBufferBindingSize.
func (d *Device) BindGroup(p *Pipeline, bindings ...Binding) (*BindGroup, error) {
	n := len(bindings)
	if n > 64 {
		return nil, fmt.Errorf("gpu: bind group for %s: %d bindings (at most 64)", p.Key, n)
	}
	cb := (*C.uint32_t)(C.calloc(C.size_t(n+1), 4))
	defer C.free(unsafe.Pointer(cb))
	cbuf := (*unsafe.Pointer)(C.calloc(C.size_t(n+1), C.size_t(unsafe.Sizeof(uintptr(0)))))
	defer C.free(unsafe.Pointer(cbuf))
	coff := (*C.uint64_t)(C.calloc(C.size_t(n+1), 8))
	defer C.free(unsafe.Pointer(coff))
	csz := (*C.uint64_t)(C.calloc(C.size_t(n+1), 8))
	defer C.free(unsafe.Pointer(csz))
	bs, bufs, offs, szs := unsafe.Slice(cb, n+1), unsafe.Slice(cbuf, n+1), unsafe.Slice(coff, n+1), unsafe.Slice(csz, n+1)
	var total int64
	for i, b := range bindings {
		if b.Buffer == nil || b.Buffer.ptr == nil {
			return nil, fmt.Errorf("gpu: bind group for %s: binding %d has no buffer", p.Key, i)
		}
		size := b.Size
		if size == 0 {
			size = b.Buffer.Size - b.Offset
		}
		if b.Offset < 0 || size <= 0 || b.Offset+size > b.Buffer.Size {
			return nil, fmt.Errorf("gpu: bind group for %s: binding %d range [%d, %d) outside buffer %q of %d bytes",
				p.Key, i, b.Offset, b.Offset+size, b.Buffer.Label, b.Buffer.Size)
		}
		if uint64(size) > d.Limits.MaxStorageBufferBindingSize {
			return nil, fmt.Errorf("gpu: bind group for %s: binding %d (%q) is %d bytes, over the device's maxStorageBufferBindingSize limit (%d bytes)",
				p.Key, i, b.Buffer.Label, size, d.Limits.MaxStorageBufferBindingSize)
		}
		if align := int64(d.Limits.MinStorageBufferOffsetAlignment); align > 0 && b.Offset%align != 0 {
			return nil, fmt.Errorf("gpu: bind group for %s: binding %d offset %d is not a multiple of minStorageBufferOffsetAlignment (%d)",
				p.Key, i, b.Offset, align)
		}
		bs[i] = C.uint32_t(i)
		bufs[i] = b.Buffer.ptr
		offs[i] = C.uint64_t(b.Offset)
		szs[i] = C.uint64_t(size)
		total += size
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, errors.New("gpu: device is closed")
	}
	var ptr unsafe.Pointer
	err := d.scopeLocked("bind group for "+p.Key, func() {
		ptr = C.mg_create_bind_group(d.Lib.c, d.dev, p.layout, C.size_t(n), cb, cbuf, coff, csz)
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
	g := &BindGroup{p: p, ptr: ptr, Bytes: total}
	p.groups = append(p.groups, g)
	return g, nil
}

// Release frees the bind group before its pipeline is released.
func (g *BindGroup) Release() {
	if g == nil || g.ptr == nil {
		return
	}
	d := g.p.d
	d.mu.Lock()
	defer d.mu.Unlock()
	d.release(C.MG_BIND_GROUP, g.ptr)
	g.ptr = nil
	for i, h := range g.p.groups {
		if h == g {
			g.p.groups = append(g.p.groups[:i], g.p.groups[i+1:]...)
			break
		}
	}
}

// ReleasePipeline drops a pipeline (and its bind groups) from the cache.
func (d *Device) ReleasePipeline(p *Pipeline) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.pipelines[p.Key] == p {
		delete(d.pipelines, p.Key)
	}
	p.releaseLocked()
}

// ReleaseShader drops a shader module from the cache. Pipelines made from it
// keep working.
func (d *Device) ReleaseShader(s *Shader) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for k, v := range d.shaders {
		if v == s {
			delete(d.shaders, k)
		}
	}
	d.release(C.MG_SHADER, s.ptr)
	s.ptr = nil
}

// ShaderChecks reports whether the runtime adds bounds checks to the
// device's shaders: with Options.Robust, or through a wgpu-native library
// without the trusted-module extension.
func (d *Device) ShaderChecks() bool { return !d.unchecked }
