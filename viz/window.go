package viz

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"log"
	"math"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/go-gl/glfw/v3.3/glfw"

	"mom/gpu"
	"mom/shaders"
)

// ErrNoDisplay says there is no window system to open a window on (DISPLAY
// and WAYLAND_DISPLAY are unset, or GLFW could not start). The caller prints
// a message and carries on headless.
var ErrNoDisplay = errors.New("viz: no display to open a window on")

// ErrNoSurface says a window opened but WebGPU cannot present to it here
// (this system's native window is not wired, or the adapter cannot present
// to the surface). The caller prints a message and carries on headless.
var ErrNoSurface = errors.New("viz: cannot present to a window here")

// WindowOptions configure Open.
type WindowOptions struct {
	Title         string // "" names the runs
	Width, Height int    // window size in screen units; zero: 1100 x 800
	X             XAxis
	LogY          bool
	// MaxFPS caps redraws per second (default 20). The window redraws only
	// when data or the view changed, and waits at least four times the
	// last redraw's cost between redraws; drawing slower than data arrives
	// drops frames, never records.
	MaxFPS float64
	// PresentMode overrides the choice of present mode (default: mailbox,
	// else immediate, else fifo: the modes that do not make the device's
	// lock wait for the display's refresh come first).
	PresentMode gpu.PresentMode
	// SamplePoll is how often the window looks for newer samples in the
	// runs' folders (default DefaultSamplePoll; see samples.go).
	SamplePoll time.Duration
}

// Window is the live loss window: GLFW for the window and input, a WebGPU
// surface on the same device as training for presenting.
//
// GLFW needs one OS thread for all its calls, and on macOS that thread must
// be the process's main thread: call Open, Run (or Frame) and Close from one
// goroutine; Open locks it to its OS thread until Close. The CLI does
//
//	func init() { runtime.LockOSThread() }   // main goroutine on the main thread
//	...
//	w, err := viz.Open(dev, opts, src)        // in main()
//	if errors.Is(err, viz.ErrNoDisplay) || errors.Is(err, viz.ErrNoSurface) {
//		// print err, train headless
//	}
//	go func() { trainer.Run(ctx, ..., func(r viz.Record) { src.Push(r) }); cancel() }()
//	err = w.Run(ctx)  // returns when the window is closed or ctx ends
//	w.Close()
//
// Closing the window does not stop training.
type Window struct {
	dev  *gpu.Device
	opts WindowOptions
	win  *glfw.Window
	surf *gpu.Surface
	pipe *gpu.RenderPipeline
	tex  *gpu.Texture
	bind *gpu.RenderBindGroup

	runs    []*runData
	sources []*Source
	v       *view
	panels  []panel

	samples  []*runSamples // per run, nil without a folder
	lastPoll time.Time

	dirty    bool
	lastDraw time.Time
	lastCost time.Duration // CPU render plus device time of the last redraw
	fbW, fbH int
	winW     int // window width in screen units, for cursor scaling
	winH     int
	srgb     bool

	dragging  bool
	dragStart image.Point
	dragPanel panel

	// Frames counts frames presented; Skipped frames the surface could not
	// give; Renders plot images drawn.
	Frames, Skipped, Renders int
	// RenderTime and PresentTime add up the time spent drawing plots on the
	// CPU and holding the device for upload, draw and present.
	RenderTime, PresentTime time.Duration

	closed bool
}

// hasDisplay tells whether a window system is reachable.
func hasDisplay() bool {
	switch runtime.GOOS {
	case "linux", "freebsd", "netbsd", "openbsd":
		return os.Getenv("DISPLAY") != "" || os.Getenv("WAYLAND_DISPLAY") != ""
	}
	return true
}

func displayName() string {
	if d := os.Getenv("WAYLAND_DISPLAY"); d != "" && windowSystem == "Wayland" {
		return d
	}
	return os.Getenv("DISPLAY")
}

// glfwCall runs fn, turning the panics go-gl/glfw raises for GLFW errors
// into errors.
func glfwCall(what string, fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("viz: %s: %v", what, r)
		}
	}()
	return fn()
}

// Open opens the window on dev (the device training uses) showing sources.
// With no display it returns ErrNoDisplay, where WebGPU cannot present
// ErrNoSurface (both wrapped with the reason).
func Open(dev *gpu.Device, opts WindowOptions, sources ...*Source) (*Window, error) {
	if dev == nil {
		return nil, errors.New("viz: Open needs a device")
	}
	if len(sources) == 0 {
		return nil, errors.New("viz: Open needs at least one source")
	}
	if !hasDisplay() {
		return nil, fmt.Errorf("%w (DISPLAY and WAYLAND_DISPLAY are unset)", ErrNoDisplay)
	}
	if opts.Width <= 0 || opts.Height <= 0 {
		opts.Width, opts.Height = 1100, 800
	}
	if opts.MaxFPS <= 0 {
		opts.MaxFPS = 20
	}
	if opts.SamplePoll <= 0 {
		opts.SamplePoll = DefaultSamplePoll
	}
	runtime.LockOSThread()
	w := &Window{dev: dev, opts: opts, sources: sources, v: newView(), dirty: true}
	w.v.x, w.v.logY, w.v.title = opts.X, opts.LogY, opts.Title
	for _, s := range sources {
		w.runs = append(w.runs, newRunData(s))
		var rs *runSamples
		if s.dir != "" {
			rs = newRunSamples(s.dir)
		}
		w.samples = append(w.samples, rs)
	}
	labelRuns(w.runs)
	if err := w.open(); err != nil {
		w.Close()
		return nil, err
	}
	return w, nil
}

func (w *Window) open() error {
	// go-gl/glfw logs a platform error of glfwInit (no X server at
	// $DISPLAY) with the log package instead of returning it: catch that
	// line for the error instead of letting it reach the terminal, then ask
	// GLFW something that needs it started.
	logged := captureLog(func() {
		if err := glfwCall("starting GLFW", glfw.Init); err != nil {
			log.Print(err)
		}
	})
	if err := glfwCall("starting GLFW", func() error { glfw.GetPrimaryMonitor(); return nil }); err != nil || logged != "" {
		why := ""
		if logged != "" {
			why = " (" + logged + ")"
		}
		return fmt.Errorf("%w: GLFW could not start on the %s display %q%s", ErrNoDisplay, windowSystem, displayName(), why)
	}
	title := w.opts.Title
	if title == "" {
		var names []string
		for _, rd := range w.runs {
			names = append(names, rd.cfg.Name)
		}
		title = "mom: " + strings.Join(names, ", ")
	}
	err := glfwCall("creating the window", func() error {
		glfw.WindowHint(glfw.ClientAPI, glfw.NoAPI)
		glfw.WindowHint(glfw.Resizable, glfw.True)
		win, err := glfw.CreateWindow(w.opts.Width, w.opts.Height, title, nil, nil)
		if err != nil {
			return err
		}
		w.win = win
		return nil
	})
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNoDisplay, err)
	}
	var src gpu.SurfaceSource
	err = glfwCall("reading the native window", func() error {
		var err error
		src, err = nativeSurface(w.win)
		return err
	})
	if err != nil {
		if errors.Is(err, ErrNoSurface) {
			return err
		}
		return fmt.Errorf("%w: %v", ErrNoSurface, err)
	}
	w.surf, err = w.dev.NewSurface(src)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNoSurface, err)
	}
	caps, err := w.surf.Capabilities()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNoSurface, err)
	}
	format := caps.Formats[0]
	w.srgb = format.SRGB()
	code, err := shaders.Source("viz_blit.wgsl")
	if err != nil {
		return err
	}
	sh, err := w.dev.Shader("viz_blit.wgsl", code)
	if err != nil {
		return err
	}
	w.pipe, err = w.dev.NewRenderPipeline(sh, "vs_main", "fs_main", format, 1)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNoSurface, err)
	}
	if err := w.configure(); err != nil {
		return fmt.Errorf("%w: %v", ErrNoSurface, err)
	}
	w.callbacks()
	return nil
}

// presentMode picks the mode: the option, else one that does not block on
// the display's refresh while holding the device.
func (w *Window) presentMode(caps gpu.SurfaceCapabilities) gpu.PresentMode {
	if w.opts.PresentMode != "" {
		return w.opts.PresentMode
	}
	for _, m := range []gpu.PresentMode{gpu.PresentMailbox, gpu.PresentImmediate} {
		for _, c := range caps.PresentModes {
			if c == m {
				return m
			}
		}
	}
	return gpu.PresentFifo
}

// configure sizes the surface and the plot texture to the framebuffer.
func (w *Window) configure() error {
	fw, fh := w.win.GetFramebufferSize()
	ww, wh := w.win.GetSize()
	w.winW, w.winH = ww, wh
	if fw <= 0 || fh <= 0 { // minimised
		w.fbW, w.fbH = 0, 0
		return nil
	}
	caps, err := w.surf.Capabilities()
	if err != nil {
		return err
	}
	err = w.surf.Configure(gpu.SurfaceConfig{Format: w.pipe.Target, Width: fw, Height: fh, PresentMode: w.presentMode(caps)})
	if err != nil {
		return err
	}
	if w.tex == nil || w.tex.Width != fw || w.tex.Height != fh {
		w.bind.Release()
		w.tex.Release()
		w.bind, w.tex = nil, nil
		format := gpu.FormatRGBA8Unorm
		if w.srgb {
			format = gpu.FormatRGBA8UnormSRGB
		}
		w.tex, err = w.dev.NewTexture("viz plot", fw, fh, format, gpu.TextureBinding|gpu.TextureCopyDst)
		if err != nil {
			return err
		}
		w.bind, err = w.dev.NewRenderBindGroup(w.pipe, gpu.RenderBinding{Texture: w.tex})
		if err != nil {
			return err
		}
	}
	w.fbW, w.fbH = fw, fh
	w.dirty = true
	return nil
}

// toFramebuffer converts window coordinates to framebuffer pixels.
func (w *Window) toFramebuffer(x, y float64) image.Point {
	sx, sy := 1.0, 1.0
	if w.winW > 0 && w.winH > 0 {
		sx, sy = float64(w.fbW)/float64(w.winW), float64(w.fbH)/float64(w.winH)
	}
	return image.Pt(int(math.Floor(x*sx)), int(math.Floor(y*sy)))
}

func (w *Window) callbacks() {
	w.win.SetRefreshCallback(func(*glfw.Window) { w.dirty = true })
	w.win.SetFramebufferSizeCallback(func(*glfw.Window, int, int) {
		if err := w.configure(); err != nil {
			w.fbW = 0 // retried by the next frame
		}
	})
	w.win.SetKeyCallback(func(_ *glfw.Window, key glfw.Key, _ int, action glfw.Action, mods glfw.ModifierKey) {
		if action == glfw.Release {
			return
		}
		w.key(key)
	})
	w.win.SetScrollCallback(func(_ *glfw.Window, _, yoff float64) {
		x, y := w.win.GetCursorPos()
		axes := zoomX | zoomY
		if w.win.GetKey(glfw.KeyLeftShift) == glfw.Press || w.win.GetKey(glfw.KeyRightShift) == glfw.Press {
			axes = zoomX
		} else if w.win.GetKey(glfw.KeyLeftControl) == glfw.Press || w.win.GetKey(glfw.KeyRightControl) == glfw.Press {
			axes = zoomY
		}
		w.scroll(w.toFramebuffer(x, y), yoff, axes)
	})
	w.win.SetCursorPosCallback(func(_ *glfw.Window, x, y float64) { w.cursorMoved(w.toFramebuffer(x, y)) })
	w.win.SetCursorEnterCallback(func(_ *glfw.Window, entered bool) {
		if !entered {
			w.v.hasCursor = false
			w.dirty = true
		}
	})
	w.win.SetMouseButtonCallback(func(_ *glfw.Window, b glfw.MouseButton, action glfw.Action, _ glfw.ModifierKey) {
		x, y := w.win.GetCursorPos()
		w.button(b, action, w.toFramebuffer(x, y))
	})
}

// captureLog runs fn with the standard logger writing into a string
// (without its time stamp), and returns what was logged.
func captureLog(fn func()) string {
	var buf bytes.Buffer
	out, flags, prefix := log.Writer(), log.Flags(), log.Prefix()
	log.SetOutput(&buf)
	log.SetFlags(0)
	log.SetPrefix("")
	defer func() {
		log.SetOutput(out)
		log.SetFlags(flags)
		log.SetPrefix(prefix)
	}()
	fn()
	return strings.TrimSpace(buf.String())
}

// key applies a key press.
func (w *Window) key(key glfw.Key) {
	switch {
	case key >= glfw.Key1 && key <= glfw.Key9:
		k := string(rune('1' + key - glfw.Key1))
		for _, m := range modalitiesOf(w.runs) {
			if m.Key == k {
				w.v.toggleModality(m.Name)
			}
		}
	case key >= glfw.KeyF1 && key <= glfw.KeyF12:
		w.v.toggleRun(int(key - glfw.KeyF1))
	case key == glfw.KeyL:
		w.v.toggleLog()
	case key == glfw.KeyX:
		w.v.cycleX()
	case key == glfw.KeyT:
		w.v.hideTrain = !w.v.hideTrain
	case key == glfw.KeyE:
		w.v.hideEval = !w.v.hideEval
	case key == glfw.KeyS:
		w.v.hideSamples = !w.v.hideSamples
	case key == glfw.KeyA || key == glfw.Key0 || key == glfw.KeyHome:
		w.v.reset()
	case key == glfw.KeyEscape || key == glfw.KeyQ:
		w.win.SetShouldClose(true)
	default:
		return
	}
	w.dirty = true
}

// scroll zooms around pt: each wheel step in zooms by 15%.
func (w *Window) scroll(pt image.Point, steps float64, axes int) {
	if w.v.zoom(w.panels, pt, math.Pow(0.85, steps), axes) {
		w.dirty = true
	}
}

func (w *Window) cursorMoved(pt image.Point) {
	w.v.cursor, w.v.hasCursor = pt, true
	if w.dragging {
		w.v.pan(w.dragPanel, float64(pt.X-w.dragStart.X), float64(pt.Y-w.dragStart.Y))
	}
	w.dirty = true
}

func (w *Window) button(b glfw.MouseButton, action glfw.Action, pt image.Point) {
	switch {
	case b == glfw.MouseButtonLeft && action == glfw.Press:
		if p, ok := panelAt(w.panels, pt); ok {
			w.dragging, w.dragStart, w.dragPanel = true, pt, p
		}
	case b == glfw.MouseButtonLeft && action == glfw.Release:
		w.dragging = false
	case b == glfw.MouseButtonRight && action == glfw.Press:
		w.v.reset()
		w.dirty = true
	}
}

const help = "keys: 1-9 modalities, F1-F12 runs, T/E train/eval, S samples, L log, X axis, A reset, Q close; wheel zoom (shift x, ctrl y), drag pan"

// Frame handles pending input, takes new records and, when something
// changed and the frame-rate cap allows, draws and presents a frame. Run
// calls it in a loop; tests call it directly.
func (w *Window) Frame() error {
	if w.closed {
		return errors.New("viz: window is closed")
	}
	glfw.PollEvents()
	return w.frame()
}

func (w *Window) frame() error {
	for _, rd := range w.runs {
		if rd.update() {
			w.dirty = true
		}
	}
	if time.Since(w.lastPoll) >= w.opts.SamplePoll {
		w.lastPoll = time.Now()
		if w.pollSamples() {
			w.dirty = true
		}
	}
	if w.fbW == 0 {
		if err := w.configure(); err != nil {
			return err
		}
		if w.fbW == 0 {
			return nil // minimised
		}
	}
	if !w.dirty || time.Since(w.lastDraw) < w.minGap() {
		return nil
	}
	return w.draw()
}

// minGap is the least time between redraws: 1/MaxFPS, and at least four
// times the last redraw's cost, so that drawing takes at most a fifth of a
// core however long the runs grow.
func (w *Window) minGap() time.Duration {
	return max(time.Duration(float64(time.Second)/w.opts.MaxFPS), 4*w.lastCost)
}

// pollSamples looks for newer samples in the runs' folders; it reports
// whether any changed.
func (w *Window) pollSamples() bool {
	changed := false
	for i, s := range w.samples {
		if s == nil {
			continue
		}
		text := ""
		if rows := w.runs[i].rows; len(rows) > 0 {
			text = rows[0].Name
		}
		changed = s.poll(text) || changed
	}
	return changed
}

// sampleViews are the shown runs' samples, for render.
func (w *Window) sampleViews() []sampleView {
	var out []sampleView
	for i, s := range w.samples {
		if s != nil && !w.v.hideRun[i] && (s.step >= 0 || s.err != nil) {
			out = append(out, sampleView{label: w.runs[i].label, s: s})
		}
	}
	return out
}

func (w *Window) draw() error {
	t0 := time.Now()
	w.v.footer = w.footer()
	w.v.samples = w.sampleViews()
	img, panels, err := render(w.fbW, w.fbH, w.runs, w.v)
	if err != nil {
		return err
	}
	w.panels = panels
	w.Renders++
	t1 := time.Now()
	w.RenderTime += t1.Sub(t0)
	if err := w.tex.Write(img.Pix, img.Stride); err != nil {
		return err
	}
	err = w.surf.DrawFrame(w.pipe, w.bind, 3, [4]float64{1, 1, 1, 1})
	w.PresentTime += time.Since(t1)
	w.lastDraw = time.Now()
	w.lastCost = w.lastDraw.Sub(t0)
	switch {
	case errors.Is(err, gpu.ErrFrameSkipped):
		w.Skipped++
		return nil
	case errors.Is(err, gpu.ErrSurfaceOutdated):
		w.Skipped++
		return w.configure()
	case err != nil:
		return err
	}
	w.Frames++
	w.dirty = false
	return nil
}

func (w *Window) footer() string {
	mode := "y linear"
	if w.v.logY {
		mode = "y log"
	}
	s := fmt.Sprintf("x %s, %s | %s", w.v.x, mode, help)
	if e := windowSystemErrors(); e != "" {
		s = e + " | " + s
	}
	for _, src := range w.sources {
		if err := src.Err(); err != nil {
			s = fmt.Sprintf("%s stopped updating: %v | %s", src.cfg.Name, err, s)
		}
	}
	return s
}

// Run shows the window until it is closed or ctx ends, redrawing as
// records arrive (at most MaxFPS times a second). It returns nil then, or
// the error that stopped drawing. Call it from the goroutine that called
// Open.
func (w *Window) Run(ctx context.Context) error {
	if w.closed {
		return errors.New("viz: window is closed")
	}
	wait := 1 / w.opts.MaxFPS
	for !w.win.ShouldClose() {
		if ctx.Err() != nil {
			return nil
		}
		glfw.WaitEventsTimeout(wait)
		if err := w.frame(); err != nil {
			return err
		}
	}
	return nil
}

// Panels returns the modalities drawn last, top to bottom, with their data
// areas in framebuffer pixels.
func (w *Window) Panels() (mods []string, areas []image.Rectangle) {
	for _, p := range w.panels {
		mods = append(mods, p.mod)
		areas = append(areas, p.rect)
	}
	return mods, areas
}

// Close releases the surface and its resources and closes the window. The
// device stays open for training.
func (w *Window) Close() {
	if w.closed {
		return
	}
	w.closed = true
	w.bind.Release()
	w.tex.Release()
	w.pipe.Release()
	w.surf.Release()
	// Let the implementation finish presenting (Mesa's X11 swapchain may
	// still be putting an image) before the window goes away.
	if w.surf != nil {
		_ = w.dev.Sync()
	}
	if w.win != nil {
		_ = glfwCall("closing the window", func() error { w.win.Destroy(); return nil })
	}
	_ = glfwCall("stopping GLFW", func() error { glfw.Terminate(); return nil })
	runtime.UnlockOSThread()
}
