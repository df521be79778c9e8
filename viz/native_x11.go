//go:build (linux || freebsd || netbsd || openbsd) && !wayland

package viz

import (
	"unsafe"

	"github.com/go-gl/glfw/v3.3/glfw"

	"mom/gpu"
)

// nativeSurface is the window's X11 display and window id (GLFW's X11
// build; build with -tags wayland for a Wayland-only desktop).
func nativeSurface(w *glfw.Window) (gpu.SurfaceSource, error) {
	return gpu.XlibWindow{Display: unsafe.Pointer(glfw.GetX11Display()), Window: uint64(w.GetX11Window())}, nil
}

const windowSystem = "X11"
