//go:build !linux && !freebsd && !netbsd && !openbsd

package viz

import (
	"fmt"
	"runtime"

	"github.com/go-gl/glfw/v3.3/glfw"

	"mom/gpu"
)

// nativeSurface is not wired on this system yet: macOS needs a CAMetalLayer
// attached to the window's NSView (gpu.MetalLayer), Windows the HINSTANCE and
// HWND (gpu.WindowsHWND). The gpu side accepts both.
func nativeSurface(w *glfw.Window) (gpu.SurfaceSource, error) {
	return nil, fmt.Errorf("%w: the live window is implemented for X11 and Wayland, not %s yet", ErrNoSurface, runtime.GOOS)
}

const windowSystem = "native"

// windowSystemErrors describes window-system errors ignored so far.
func windowSystemErrors() string { return "" }
