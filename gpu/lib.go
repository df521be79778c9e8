package gpu

/*
#cgo LDFLAGS: -ldl -lpthread
#include <stdlib.h>
#include "shim.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"unsafe"
)

// Runtime names a WebGPU implementation.
type Runtime string

const (
	// Dawn is Google's implementation, shipped in the npm packages bun-webgpu-<platform>.
	Dawn Runtime = "dawn"
	// WGPU is wgpu-native, shipped inside the PyPI wheel "wgpu" (wgpu/resources/).
	WGPU Runtime = "wgpu"
)

// EnvLib names the environment variable that points at a WebGPU library.
const EnvLib = "MOM_WEBGPU_LIB"

// EnvDeps names the environment variable that overrides the project's
// dependency folder (by default .deps beside go.mod).
const EnvDeps = "MOM_DEPS"

// ParseRuntime accepts "dawn" or "wgpu" (and "" for the default, Dawn).
func ParseRuntime(s string) (Runtime, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "dawn":
		return Dawn, nil
	case "wgpu", "wgpu-native":
		return WGPU, nil
	}
	return "", fmt.Errorf("unknown WebGPU runtime %q: want dawn or wgpu", s)
}

// Library is a loaded WebGPU implementation.
type Library struct {
	Runtime Runtime
	Path    string
	c       *C.mg_lib

	pinMu sync.Mutex
	pin   unsafe.Pointer // the instance kept for the life of the process (keepOrRelease)
}

// keepOrRelease releases inst, an instance whose device has closed, except
// the first: that one the library keeps for the life of the process, so
// that the Vulkan loader never unloads the driver between one device and
// the next. NVIDIA's driver (580, on an H200) failed to load again after
// about 32 such unloads ("libnvidia-tls.so: cannot allocate memory in
// static TLS block"), which stopped mom bench kernels (a device per case).
func (l *Library) keepOrRelease(inst unsafe.Pointer) {
	l.pinMu.Lock()
	defer l.pinMu.Unlock()
	if l.pin == nil {
		l.pin = inst
		return
	}
	C.mg_release(l.c, C.MG_INSTANCE, inst)
}

var (
	libMu    sync.Mutex
	libCache = map[string]*Library{}
)

// libFileNames lists, per runtime and OS, the file names an implementation
// ships under: first the name inside our dependency folder, then the usual
// system names.
func libFileNames(rt Runtime) (deps string, system []string) {
	switch rt {
	case WGPU:
		switch runtime.GOOS {
		case "darwin":
			return "wgpu/libwgpu_native.dylib", []string{"libwgpu_native.dylib"}
		case "windows":
			return "wgpu/wgpu_native.dll", []string{"wgpu_native.dll"}
		}
		return "wgpu/libwgpu_native-release.so", []string{"libwgpu_native.so"}
	default:
		switch runtime.GOOS {
		case "darwin":
			return "dawn/libwebgpu_wrapper.dylib", []string{"libwebgpu_dawn.dylib", "libwebgpu.dylib"}
		case "windows":
			return "dawn/webgpu_wrapper.dll", []string{"webgpu_dawn.dll", "webgpu.dll"}
		}
		return "dawn/libwebgpu_wrapper.so", []string{"libwebgpu_dawn.so", "libwebgpu.so"}
	}
}

// DepsDir returns the project's dependency folder: $MOM_DEPS, else the first
// .deps folder found walking up from the working directory or from the
// executable's directory.
func DepsDir() string {
	if d := os.Getenv(EnvDeps); d != "" {
		return d
	}
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if exe, err := os.Executable(); err == nil {
		starts = append(starts, filepath.Dir(exe))
	}
	for _, s := range starts {
		for dir := s; ; dir = filepath.Dir(dir) {
			cand := filepath.Join(dir, ".deps")
			if st, err := os.Stat(cand); err == nil && st.IsDir() {
				return cand
			}
			if filepath.Dir(dir) == dir {
				break
			}
		}
	}
	return ""
}

// howToGet explains how to obtain a WebGPU library.
func howToGet(rt Runtime) string {
	return fmt.Sprintf("run `make deps` in the mom checkout (it fetches Dawn with `npm pack bun-webgpu-linux-x64@0.1.7` "+
		"and wgpu-native with `pip download wgpu==0.32.0` into .deps/), or set %s to the path of a WebGPU library "+
		"(Dawn: libwebgpu_wrapper.so/.dylib/.dll from the npm package bun-webgpu-<platform>; wgpu-native: "+
		"libwgpu_native from the PyPI wheel wgpu, folder wgpu/resources/); --runtime was %s", EnvLib, rt)
}

// Load finds and opens the WebGPU implementation for rt. The lookup order is
// $MOM_WEBGPU_LIB, the project's dependency folder, then the usual system
// names. A library named by $MOM_WEBGPU_LIB is used whatever rt says; its
// runtime is recognised from the symbols it exports.
func Load(rt Runtime) (*Library, error) {
	if env := os.Getenv(EnvLib); env != "" {
		lib, err := open(env)
		if err != nil {
			deps, _ := libFileNames(rt)
			return nil, fmt.Errorf("%s=%s: %w (expected a WebGPU implementation such as %s)",
				EnvLib, env, err, filepath.Base(deps))
		}
		return lib, nil
	}
	depsName, system := libFileNames(rt)
	var tried []string
	if d := DepsDir(); d != "" {
		p := filepath.Join(d, depsName)
		if _, err := os.Stat(p); err == nil {
			lib, err := open(p)
			if err != nil {
				return nil, fmt.Errorf("loading %s from the dependency folder: %w", p, err)
			}
			return checkRuntime(lib, rt)
		}
		tried = append(tried, p)
	}
	for _, name := range system {
		lib, err := open(name)
		if err == nil {
			return checkRuntime(lib, rt)
		}
		tried = append(tried, name)
	}
	return nil, fmt.Errorf("no %s WebGPU library found (tried %s): %s", rt, strings.Join(tried, ", "), howToGet(rt))
}

func checkRuntime(lib *Library, rt Runtime) (*Library, error) {
	if lib.Runtime != rt {
		return nil, fmt.Errorf("%s is a %s library, not %s", lib.Path, lib.Runtime, rt)
	}
	return lib, nil
}

func open(path string) (*Library, error) {
	libMu.Lock()
	defer libMu.Unlock()
	if l, ok := libCache[path]; ok {
		return l, nil
	}
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	var errbuf [1024]C.char
	h := C.mg_open(cpath, &errbuf[0], C.size_t(len(errbuf)))
	if h == nil {
		msg := C.GoString(&errbuf[0])
		if msg == "" {
			msg = "cannot load"
		}
		return nil, errors.New(msg)
	}
	rt := Dawn
	if C.mg_kind(h) == C.MG_WGPU {
		rt = WGPU
	}
	l := &Library{Runtime: rt, Path: path, c: h}
	libCache[path] = l
	return l, nil
}

// cStrings copies ss into a C array of C strings (NULL-terminated, so that
// an empty list is still a valid pointer) and returns it with its length
// and a function freeing it.
func cStrings(ss []string) (**C.char, C.size_t, func()) {
	arr := (**C.char)(C.calloc(C.size_t(len(ss)+1), C.size_t(unsafe.Sizeof(uintptr(0)))))
	view := unsafe.Slice(arr, len(ss)+1)
	for i, s := range ss {
		view[i] = C.CString(s)
	}
	return arr, C.size_t(len(ss)), func() {
		for i := range ss {
			C.free(unsafe.Pointer(view[i]))
		}
		C.free(unsafe.Pointer(arr))
	}
}
