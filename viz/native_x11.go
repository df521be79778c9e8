//go:build (linux || freebsd || netbsd || openbsd) && !wayland

package viz

/*
#cgo LDFLAGS: -lX11
#include <X11/Xlib.h>

// Xlib's default error handler prints the error and exits the process: one
// stray request to a window that just went away would end a training run.
// This one counts the error and carries on. GLFW installs its own handler
// around the calls whose errors it checks and restores this one after.
static volatile int mom_x_errors;
static volatile int mom_x_last_code, mom_x_last_request;

static int mom_x_error(Display *d, XErrorEvent *e) {
	(void)d;
	mom_x_errors++;
	mom_x_last_code = e->error_code;
	mom_x_last_request = e->request_code;
	return 0;
}

static void mom_x_install(void) { XSetErrorHandler(mom_x_error); }
static int mom_x_count(void) { return mom_x_errors; }
static int mom_x_code(void) { return mom_x_last_code; }
static int mom_x_request(void) { return mom_x_last_request; }
*/
import "C"

import (
	"fmt"
	"sync"
	"unsafe"

	"github.com/go-gl/glfw/v3.3/glfw"

	"mom/gpu"
)

var xHandlerOnce sync.Once

// nativeSurface is the window's X11 display and window id (GLFW's X11
// build; build with -tags wayland for a Wayland-only desktop). It also
// makes X errors non-fatal for the process.
func nativeSurface(w *glfw.Window) (gpu.SurfaceSource, error) {
	xHandlerOnce.Do(func() { C.mom_x_install() })
	return gpu.XlibWindow{Display: unsafe.Pointer(glfw.GetX11Display()), Window: uint64(w.GetX11Window())}, nil
}

// windowSystemErrors describes the X errors ignored so far ("" for none).
func windowSystemErrors() string {
	n := int(C.mom_x_count())
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("%d X errors ignored (last: code %d, request %d)", n, int(C.mom_x_code()), int(C.mom_x_request()))
}

const windowSystem = "X11"
