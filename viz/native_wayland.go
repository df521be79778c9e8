//go:build (linux || freebsd || netbsd || openbsd) && wayland

package viz

import (
	"unsafe"

	"github.com/go-gl/glfw/v3.3/glfw"

	"mom/gpu"
)

// nativeSurface is the window's Wayland display and surface (GLFW built
// with -tags wayland). Not exercised by the tests, which run under Xvfb.
func nativeSurface(w *glfw.Window) (gpu.SurfaceSource, error) {
	return gpu.WaylandSurface{Display: unsafe.Pointer(glfw.GetWaylandDisplay()), Surface: unsafe.Pointer(w.GetWaylandWindow())}, nil
}

const windowSystem = "Wayland"

// windowSystemErrors describes window-system errors ignored so far.
func windowSystemErrors() string { return "" }
