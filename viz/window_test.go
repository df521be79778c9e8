package viz

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"log"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-gl/glfw/v3.3/glfw"

	"mom/gpu"
)

// The tests run against every runtime named in $MOM_RUNTIMES (default
// both), each on its own device, opened once.
var (
	devMu   sync.Mutex
	devices = map[gpu.Runtime]*gpu.Device{}
)

func runtimes(t *testing.T) []gpu.Runtime {
	env := os.Getenv("MOM_RUNTIMES")
	if env == "" {
		return []gpu.Runtime{gpu.Dawn, gpu.WGPU}
	}
	var out []gpu.Runtime
	for _, s := range strings.Split(env, ",") {
		rt, err := gpu.ParseRuntime(s)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, rt)
	}
	return out
}

func device(t *testing.T, rt gpu.Runtime) *gpu.Device {
	devMu.Lock()
	defer devMu.Unlock()
	if d, ok := devices[rt]; ok {
		return d
	}
	d, err := gpu.Open(gpu.Options{Runtime: rt, Adapter: -1})
	if err != nil {
		t.Fatalf("opening a %s device: %v", rt, err)
	}
	devices[rt] = d
	return d
}

func closeDevices() {
	for _, d := range devices {
		d.Close()
	}
}

// windowShot draws frames until the screen shows one (the presentation
// reaches Xvfb asynchronously) and returns the window's part of a screenshot.
func windowShot(t *testing.T, w *Window, check func(img *image.RGBA) error) *image.RGBA {
	t.Helper()
	x, y := w.win.GetPos()
	var last error
	var shot *image.RGBA
	for attempt := 0; attempt < 20; attempt++ {
		w.dirty = true
		w.lastDraw = time.Time{}
		if err := w.Frame(); err != nil {
			t.Fatalf("frame: %v", err)
		}
		full := screenshot(t)
		r := image.Rect(x, y, x+w.fbW, y+w.fbH)
		if !r.In(full.Bounds()) {
			t.Fatalf("window %v is not inside the screen %v", r, full.Bounds())
		}
		shot = image.NewRGBA(image.Rect(0, 0, r.Dx(), r.Dy()))
		for yy := 0; yy < r.Dy(); yy++ {
			copy(shot.Pix[yy*shot.Stride:yy*shot.Stride+4*r.Dx()], full.Pix[(r.Min.Y+yy)*full.Stride+4*r.Min.X:])
		}
		if last = check(shot); last == nil {
			return shot
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Errorf("the screen never showed the expected frame: %v", last)
	return shot
}

// hasColor reports whether rect of img has at least n pixels near c.
func hasColor(img image.Image, r image.Rectangle, c color.RGBA, n int) error {
	if k := countColor(img, r.Inset(2), c, 12); k < n {
		return fmt.Errorf("%d pixels of the colour %v in %v, want %d", k, c, r, n)
	}
	return nil
}

func TestWindow(t *testing.T) {
	needDisplay(t)
	dense, err := ReadRun("testdata/dense")
	if err != nil {
		t.Fatal(err)
	}
	mom, err := ReadRun("testdata/mom")
	if err != nil {
		t.Fatal(err)
	}
	for _, rt := range runtimes(t) {
		t.Run(string(rt), func(t *testing.T) {
			d := device(t, rt)
			// The same training loop without a window, for comparison.
			baseSrc := NewSource(RunConfig{Name: "baseline"})
			done, times, errc := fakeTraining(d, baseSrc, 400)
			<-done
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
			base := <-times
			t.Logf("%s: training steps without a window: mean %.2f ms, max %.2f ms", rt, base[0], base[1])
			before := d.LiveObjects()
			live := NewSource(RunConfig{Name: "live", Modalities: []string{"text"}})
			// MOM_VIZ_PRESENT=fifo|immediate|mailbox tries another present mode.
			opts := WindowOptions{Width: 640, Height: 560, Title: "test", PresentMode: gpu.PresentMode(os.Getenv("MOM_VIZ_PRESENT"))}
			w, err := Open(d, opts, RunSource(dense), RunSource(mom), live)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer func() {
				w.Close()
				after := d.LiveObjects()
				for k, n := range after {
					if n != before[k] && k != "shader" {
						t.Errorf("after Close: %d live %s objects, %d before", n, k, before[k])
					}
				}
			}()
			caps, err := w.surf.Capabilities()
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s surface: formats %v, present modes %v, alpha %v; configured %+v",
				rt, caps.Formats, caps.PresentModes, caps.AlphaModes, w.surf.Config())
			w.win.SetPos(0, 0)
			glfw.PollEvents()
			w.v.hasCursor = false // Xvfb's pointer sits mid-screen

			// Every panel shows its modality's colour, the background fills
			// the rest.
			shot := windowShot(t, w, func(img *image.RGBA) error {
				if len(w.panels) != 3 {
					return fmt.Errorf("%d panels", len(w.panels))
				}
				for _, p := range w.panels {
					if err := hasColor(img, p.rect, p.color, 50); err != nil {
						return err
					}
				}
				return nil
			})
			out := filepath.Join(artifactDir(t), fmt.Sprintf("mom-viz-screenshot-%s.png", rt))
			if err := writePNG(out, shot); err != nil {
				t.Fatal(err)
			}
			t.Logf("screenshot written to %s", out)
			mods := modalitiesOf(w.runs)
			checkPanels(t, shot, w.panels, mods, []string{"text", "image", "speech"})

			// Key 2 hides the image panel: orange leaves the screen.
			w.key(glfw.Key2)
			shot = windowShot(t, w, func(img *image.RGBA) error {
				if len(w.panels) != 2 {
					return fmt.Errorf("%d panels after key 2", len(w.panels))
				}
				if n := countColor(img, img.Bounds(), modColor(t, mods, "image"), 12); n > 0 {
					return fmt.Errorf("%d image-coloured pixels after hiding image", n)
				}
				return hasColor(img, w.panels[1].rect, w.panels[1].color, 50)
			})
			checkPanels(t, shot, w.panels, mods, []string{"text", "speech"})
			w.key(glfw.Key2)

			// Mouse: a wheel step in over the text panel narrows the x
			// range about the cursor; a drag pans; a right click resets.
			redraw := func() {
				t.Helper()
				w.lastDraw = time.Time{}
				if err := w.Frame(); err != nil {
					t.Fatal(err)
				}
			}
			redraw()
			p := w.panels[0]
			mid := image.Pt((p.rect.Min.X+p.rect.Max.X)/2, (p.rect.Min.Y+p.rect.Max.Y)/2)
			w.scroll(mid, 4, zoomX|zoomY)
			redraw()
			q := w.panels[0]
			if span, was := q.xmax-q.xmin, p.xmax-p.xmin; math.Abs(span/was-math.Pow(0.85, 4)) > 0.01 {
				t.Errorf("wheel zoom: x span %g, was %g", span, was)
			}
			w.button(glfw.MouseButtonLeft, glfw.Press, mid)
			w.cursorMoved(mid.Add(image.Pt(q.rect.Dx()/4, 0)))
			w.button(glfw.MouseButtonLeft, glfw.Release, mid)
			redraw()
			r := w.panels[0]
			if shift := q.xmin - r.xmin; math.Abs(shift-(q.xmax-q.xmin)/4) > 0.02*(q.xmax-q.xmin) {
				t.Errorf("drag by a quarter width moved x by %g of %g", shift, q.xmax-q.xmin)
			}
			w.key(glfw.KeyX)
			redraw()
			if f := w.panels[0]; f.xmax < 2.9e14 {
				t.Errorf("after X the axis ends at %g, want FLOPs", f.xmax)
			}
			w.key(glfw.KeyX)
			w.key(glfw.KeyX)
			w.button(glfw.MouseButtonRight, glfw.Press, mid)
			redraw()
			if f := w.panels[0]; f.xmin != p.xmin || f.xmax != p.xmax {
				t.Errorf("after reset x is %g..%g, want %g..%g", f.xmin, f.xmax, p.xmin, p.xmax)
			}
			// The readout box follows the cursor.
			w.cursorMoved(mid)
			shot = windowShot(t, w, func(img *image.RGBA) error {
				if n := countColor(img, w.panels[0].rect, readoutColor, 3); n < 1000 {
					return fmt.Errorf("%d readout pixels under the cursor", n)
				}
				return nil
			})
			out = filepath.Join(artifactDir(t), fmt.Sprintf("mom-viz-screenshot-readout-%s.png", rt))
			if err := writePNG(out, shot); err != nil {
				t.Fatal(err)
			}
			t.Logf("screenshot with the readout written to %s", out)
			w.v.hasCursor = false

			// A resize reconfigures the surface and redraws to the new size.
			w.win.SetSize(560, 420)
			deadline := time.Now().Add(5 * time.Second)
			for (w.fbW != 560 || w.fbH != 420) && time.Now().Before(deadline) {
				glfw.WaitEventsTimeout(0.01)
			}
			if w.fbW != 560 || w.fbH != 420 || w.tex.Width != 560 || w.surf.Config().Height != 420 {
				t.Fatalf("after resizing: framebuffer %dx%d, texture %dx%d, surface %+v", w.fbW, w.fbH, w.tex.Width, w.tex.Height, w.surf.Config())
			}
			shot = windowShot(t, w, func(img *image.RGBA) error {
				for _, p := range w.panels {
					if !p.rect.In(image.Rect(0, 0, 560, 420)) {
						return fmt.Errorf("panel %v outside the resized window", p.rect)
					}
					if err := hasColor(img, p.rect, p.color, 30); err != nil {
						return err
					}
				}
				return nil
			})

			// A training loop on the same device in another goroutine: GPU
			// work submitted and waited for each step, a record pushed per
			// step, while the window draws as fast as it is allowed to.
			w.opts.MaxFPS = 1000
			steps, stepTimes, trainErr := fakeTraining(d, live, 400)
			deadline = time.Now().Add(20 * time.Second)
			for time.Now().Before(deadline) {
				if err := w.Frame(); err != nil {
					t.Fatal(err)
				}
				select {
				case <-steps:
					deadline = time.Time{}
				default:
				}
			}
			if err := <-trainErr; err != nil {
				t.Fatalf("the training loop failed beside the window: %v", err)
			}
			for w.runs[2].seen < 400 || w.dirty {
				if err := w.Frame(); err != nil {
					t.Fatal(err)
				}
			}
			if got := w.runs[2].train.len(); got != 400 {
				t.Errorf("the window has %d of the 400 pushed records", got)
			}
			if w.panels[0].xmax != 400 {
				t.Errorf("the x axis ends at %g after the live run reached step 400", w.panels[0].xmax)
			}
			st := <-stepTimes
			t.Logf("%s: training steps beside the window: mean %.2f ms, max %.2f ms", rt, st[0], st[1])
			// Run returns when its context ends, and at once once closed.
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			if err := w.Run(ctx); err != nil {
				t.Errorf("Run: %v", err)
			}
			cancel()
			w.key(glfw.KeyQ) // Q, as the status bar says, closes the window
			if err := w.Run(context.Background()); err != nil {
				t.Errorf("Run after Q: %v", err)
			}
			if e := windowSystemErrors(); e != "" {
				t.Errorf("X errors: %s", e)
			}
			if w.Frames < 2 {
				t.Errorf("%d frames presented", w.Frames)
			}
			t.Logf("%s: %d frames, %d skipped, plot rendering %.1f ms/frame, upload+present %.1f ms/frame",
				rt, w.Frames, w.Skipped, ms(w.RenderTime)/float64(w.Renders), ms(w.PresentTime)/float64(w.Renders))
		})
	}
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

const scaleWGSL = `
@group(0) @binding(0) var<storage, read_write> x: array<f32>; // (n)

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
	if (gid.x < arrayLength(&x)) {
		x[gid.x] = x[gid.x] * 0.999 + 0.001;
	}
}
`

// fakeTraining runs n steps of GPU work on d in a goroutine, pushing a
// record to src after each. done is closed at the end; times receives the
// mean and max step time in ms; errc the first error.
func fakeTraining(d *gpu.Device, src *Source, n int) (done chan struct{}, times chan [2]float64, errc chan error) {
	done, times, errc = make(chan struct{}), make(chan [2]float64, 1), make(chan error, 1)
	go func() {
		defer close(done)
		var sum, worst float64
		err := func() error {
			buf, err := d.NewBuffer("fake training", 4*65536, gpu.UsageTensor)
			if err != nil {
				return err
			}
			defer buf.Release()
			sh, err := d.Shader("viz_test_scale", scaleWGSL)
			if err != nil {
				return err
			}
			p, err := d.Pipeline(sh, "main", nil)
			if err != nil {
				return err
			}
			defer d.ReleaseShader(sh)
			defer d.ReleasePipeline(p)
			g, err := d.BindGroup(p, gpu.Buf(buf))
			if err != nil {
				return err
			}
			for s := 1; s <= n; s++ {
				t0 := time.Now()
				r := d.NewRecorder()
				r.Dispatch(g, 65536/64, 1, 1)
				if err := r.SubmitChecked(); err != nil {
					return err
				}
				el := ms(time.Since(t0))
				sum += el
				worst = math.Max(worst, el)
				src.Push(Record{"step": float64(s), "split": SplitTrain, "flops": float64(s) * 1e12, "wall_s": float64(s) / 100,
					"loss_text": 9 - float64(s)/100})
			}
			return nil
		}()
		times <- [2]float64{sum / float64(n), worst}
		errc <- err
	}()
	return done, times, errc
}

func TestOpenWithoutDisplay(t *testing.T) {
	old, had := os.LookupEnv("DISPLAY")
	oldW, hadW := os.LookupEnv("WAYLAND_DISPLAY")
	os.Unsetenv("DISPLAY")
	os.Unsetenv("WAYLAND_DISPLAY")
	defer func() {
		if had {
			os.Setenv("DISPLAY", old)
		}
		if hadW {
			os.Setenv("WAYLAND_DISPLAY", oldW)
		}
	}()
	// No device is needed to learn that there is no display.
	_, err := Open(&gpu.Device{}, WindowOptions{}, NewSource(RunConfig{}))
	if !errors.Is(err, ErrNoDisplay) {
		t.Fatalf("Open without a display: %v, want ErrNoDisplay", err)
	}
	t.Logf("no display: %v", err)
	// A display that does not answer: GLFW fails to start, and says why
	// in the error, not in a log line of its own before it.
	os.Setenv("DISPLAY", ":999")
	var logged bytes.Buffer
	log.SetOutput(&logged)
	_, err = Open(&gpu.Device{}, WindowOptions{}, NewSource(RunConfig{}))
	log.SetOutput(os.Stderr)
	if !errors.Is(err, ErrNoDisplay) {
		t.Fatalf("Open on a dead display: %v, want ErrNoDisplay", err)
	}
	if logged.Len() > 0 {
		t.Errorf("GLFW logged %q on its own", logged.String())
	}
	if !strings.Contains(err.Error(), ":999") {
		t.Errorf("the error %q does not name the display", err)
	}
	t.Logf("dead display: %v", err)
}

// TestWindowFourModalities: a run with a fourth modality (video, a row of
// the modality table with its own colour and key 4) gets a fourth panel in
// its colour, and key 4 hides it.
func TestWindowFourModalities(t *testing.T) {
	needDisplay(t)
	dir := fourModalityRun(t)
	r, err := ReadRun(dir)
	if err != nil {
		t.Fatal(err)
	}
	d := device(t, runtimes(t)[0])
	w, err := Open(d, WindowOptions{Width: 720, Height: 590, Title: "four"}, RunSource(r))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer w.Close()
	w.win.SetPos(0, 0)
	glfw.PollEvents()
	w.v.hasCursor = false
	video := mustColor("#9467bd")
	shot := windowShot(t, w, func(img *image.RGBA) error {
		if len(w.panels) != 4 {
			return fmt.Errorf("%d panels, want 4", len(w.panels))
		}
		return hasColor(img, w.panels[3].rect, video, 50)
	})
	checkPanels(t, shot, w.panels, modalitiesOf(w.runs), []string{"text", "image", "speech", "video"})
	w.key(glfw.Key4)
	windowShot(t, w, func(img *image.RGBA) error {
		if len(w.panels) != 3 {
			return fmt.Errorf("%d panels after key 4, want 3", len(w.panels))
		}
		if n := countColor(img, img.Bounds(), video, 12); n > 0 {
			return fmt.Errorf("%d video-coloured pixels after hiding video", n)
		}
		return nil
	})
}

// BenchmarkWindowFrame times one full redraw of the window per runtime:
// the plot drawn on the CPU, uploaded, drawn and presented. Needs Xvfb (or
// a display), like TestWindow.
func BenchmarkWindowFrame(b *testing.B) {
	if displayErr != nil || os.Getenv("DISPLAY") == "" {
		b.Skip("no display")
	}
	var t testing.T
	runs := testRuns(&t)
	for _, rt := range []gpu.Runtime{gpu.Dawn, gpu.WGPU} {
		b.Run(string(rt), func(b *testing.B) {
			d, err := gpu.Open(gpu.Options{Runtime: rt, Adapter: -1})
			if err != nil {
				b.Fatal(err)
			}
			defer d.Close()
			w, err := Open(d, WindowOptions{Width: 800, Height: 600, MaxFPS: 1e6}, runs[0].src, runs[1].src)
			if err != nil {
				b.Fatal(err)
			}
			defer w.Close()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				w.dirty, w.lastDraw = true, time.Time{}
				if err := w.Frame(); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(ms(w.RenderTime)/float64(w.Renders), "render-ms/frame")
			b.ReportMetric(ms(w.PresentTime)/float64(w.Renders), "device-ms/frame")
		})
	}
}
