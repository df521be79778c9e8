package viz

import (
	"errors"
	"fmt"
	"image"
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
func hasColor(img image.Image, r image.Rectangle, m int, n int) error {
	if c := countColor(img, r.Inset(2), ModalityColors[m], 12); c < n {
		return fmt.Errorf("%d pixels of the %s colour in %v, want %d", c, Modalities[m], r, n)
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
			before := d.LiveObjects()
			live := NewSource(RunConfig{Name: "live", Modalities: []string{"text"}})
			w, err := Open(d, WindowOptions{Width: 640, Height: 560, Title: "test"}, RunSource(dense), RunSource(mom), live)
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
					if err := hasColor(img, p.rect, p.mod, 50); err != nil {
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
			checkPanels(t, shot, w.panels, []int{0, 1, 2})

			// Key 2 hides the image panel: orange leaves the screen.
			w.key(glfw.Key2)
			shot = windowShot(t, w, func(img *image.RGBA) error {
				if len(w.panels) != 2 {
					return fmt.Errorf("%d panels after key 2", len(w.panels))
				}
				if n := countColor(img, img.Bounds(), ModalityColors[1], 12); n > 0 {
					return fmt.Errorf("%d image-coloured pixels after hiding image", n)
				}
				return hasColor(img, w.panels[1].rect, 2, 50)
			})
			checkPanels(t, shot, w.panels, []int{0, 2})
			w.key(glfw.Key2)

			// Records pushed from another goroutine reach the window.
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				for s := 1; s <= 500; s++ {
					r := Record{Step: int64(s), Split: SplitTrain, FLOPs: float64(s) * 1e12, WallS: float64(s) / 100}
					r.ModalityLoss = [NumModalities]float64{9 - float64(s)/100, math.NaN(), math.NaN()}
					live.Push(r)
				}
			}()
			wg.Wait()
			deadline := time.Now().Add(5 * time.Second)
			for w.runs[2].seen < 500 && time.Now().Before(deadline) {
				if err := w.Frame(); err != nil {
					t.Fatal(err)
				}
			}
			if got := w.runs[2].train.len(); got != 500 {
				t.Errorf("the window has %d of the 500 pushed records", got)
			}
			if w.panels[0].xmax != 500 {
				t.Errorf("the x axis ends at %g after the live run reached step 500", w.panels[0].xmax)
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
}
