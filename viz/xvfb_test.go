package viz

import (
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/color"
	"math/bits"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The window tests need an X server: the one in $DISPLAY, else an Xvfb
// started by TestMain (installed by `make deps`: packages xvfb and
// x11-apps). Screenshots are taken with `xwd -root -silent` and parsed here.

var (
	xvfb       *exec.Cmd
	xvfbExited chan struct{} // closed when xvfb has exited
	displayErr error         // why no display could be had
)

func TestMain(m *testing.M) {
	// Xvfb is started with a parent-death signal, which Linux sends when
	// the starting thread ends: keep this goroutine on its thread.
	runtime.LockOSThread()
	if os.Getenv("DISPLAY") == "" && runtime.GOOS == "linux" {
		displayErr = startXvfb()
	}
	code := m.Run()
	closeDevices()
	stopXvfb()
	os.Exit(code)
}

// stopXvfb ends the Xvfb this process started; SIGTERM lets it remove its
// lock file and socket.
func stopXvfb() {
	if xvfb == nil {
		return
	}
	xvfb.Process.Signal(syscall.SIGTERM)
	select {
	case <-xvfbExited:
	case <-time.After(5 * time.Second):
		xvfb.Process.Kill()
		<-xvfbExited
	}
}

// startXvfb starts Xvfb on a free display number and points DISPLAY at it.
func startXvfb() error {
	bin, err := exec.LookPath("Xvfb")
	if err != nil {
		return errors.New("DISPLAY is unset and Xvfb is not installed (run `make deps`, or apt-get install xvfb x11-apps)")
	}
	for n := 90 + os.Getpid()%50; n < 140+os.Getpid()%50; n++ {
		lock := fmt.Sprintf("/tmp/.X%d-lock", n)
		sock := fmt.Sprintf("/tmp/.X11-unix/X%d", n)
		if _, err := os.Stat(lock); err == nil {
			continue
		}
		if _, err := os.Stat(sock); err == nil {
			continue
		}
		cmd := exec.Command(bin, fmt.Sprintf(":%d", n), "-screen", "0", "800x600x24", "-nolisten", "tcp")
		// If this test process dies (a crash in C), Xvfb goes with it.
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("starting Xvfb: %w", err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		started := false
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
			select {
			case <-exited: // display taken meanwhile: try the next
				deadline = time.Time{}
				continue
			default:
			}
			if _, err := os.Stat(sock); err == nil {
				started = true
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if started {
			xvfb, xvfbExited = cmd, exited
			os.Setenv("DISPLAY", fmt.Sprintf(":%d", n))
			return nil
		}
		cmd.Process.Signal(syscall.SIGTERM)
		<-exited
	}
	return errors.New("could not start Xvfb on any display :90..:190")
}

// needDisplay fails the test when no X server is available (skips off Linux).
func needDisplay(t *testing.T) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skipf("the window tests run under Xvfb on Linux; this is %s", runtime.GOOS)
	}
	if displayErr != nil {
		t.Fatal(displayErr)
	}
	if os.Getenv("DISPLAY") == "" {
		t.Fatal("no DISPLAY")
	}
}

// screenshot captures the X screen with xwd and decodes it.
func screenshot(t *testing.T) *image.RGBA {
	t.Helper()
	out, err := exec.Command("xwd", "-root", "-silent").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("xwd: %v: %s", err, ee.Stderr)
		}
		t.Fatalf("xwd (package x11-apps): %v", err)
	}
	img, err := decodeXWD(out)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// decodeXWD decodes an X Window Dump of a TrueColor screen with 24 or 32
// bits per pixel. The header is 25 big-endian 32-bit fields followed by the
// window name, then ncolors 12-byte colour entries, then the pixel rows.
func decodeXWD(b []byte) (*image.RGBA, error) {
	if len(b) < 100 {
		return nil, errors.New("xwd: short header")
	}
	f := func(i int) uint32 { return binary.BigEndian.Uint32(b[4*i:]) }
	headerSize, version := f(0), f(1)
	if version != 7 {
		return nil, fmt.Errorf("xwd: file version %d, want 7", version)
	}
	format, width, height := f(2), int(f(4)), int(f(5))
	byteOrder, bpp, bytesPerLine := f(7), int(f(11)), int(f(12))
	visualClass, rmask, gmask, bmask := f(13), f(14), f(15), f(16)
	ncolors := int(f(19))
	if format != 2 { // ZPixmap
		return nil, fmt.Errorf("xwd: pixmap format %d, want ZPixmap (2)", format)
	}
	if visualClass != 4 && visualClass != 5 { // TrueColor, DirectColor
		return nil, fmt.Errorf("xwd: visual class %d, want TrueColor", visualClass)
	}
	if bpp != 32 && bpp != 24 {
		return nil, fmt.Errorf("xwd: %d bits per pixel, want 24 or 32", bpp)
	}
	off := int(headerSize) + 12*ncolors
	if off+height*bytesPerLine > len(b) {
		return nil, fmt.Errorf("xwd: %d bytes, want %d", len(b), off+height*bytesPerLine)
	}
	chan8 := func(p, mask uint32) uint8 {
		shift := bits.TrailingZeros32(mask)
		v := (p & mask) >> shift
		width := bits.OnesCount32(mask)
		return uint8(v << (8 - width) >> 0)
	}
	img := image.NewRGBA(image.Rect(0, 0, width, height))
	step := bpp / 8
	for y := 0; y < height; y++ {
		row := b[off+y*bytesPerLine:]
		for x := 0; x < width; x++ {
			px := row[x*step : x*step+step]
			var p uint32
			if byteOrder == 0 { // LSBFirst
				for i := step - 1; i >= 0; i-- {
					p = p<<8 | uint32(px[i])
				}
			} else {
				for i := 0; i < step; i++ {
					p = p<<8 | uint32(px[i])
				}
			}
			img.SetRGBA(x, y, color.RGBA{R: chan8(p, rmask), G: chan8(p, gmask), B: chan8(p, bmask), A: 255})
		}
	}
	return img, nil
}

func TestDecodeXWD(t *testing.T) {
	// A 2x1 dump: header of 100 bytes plus a 4-byte name, no colours, two
	// LSBFirst 32-bit pixels (pure red, then 0x123456).
	h := make([]byte, 104)
	put := func(i int, v uint32) { binary.BigEndian.PutUint32(h[4*i:], v) }
	put(0, 104)
	put(1, 7)
	put(2, 2)
	put(3, 24)
	put(4, 2)
	put(5, 1)
	put(7, 0)
	put(11, 32)
	put(12, 8)
	put(13, 4)
	put(14, 0xff0000)
	put(15, 0x00ff00)
	put(16, 0x0000ff)
	copy(h[100:], "win\x00")
	pix := []byte{0, 0, 0xff, 0, 0x56, 0x34, 0x12, 0}
	img, err := decodeXWD(append(h, pix...))
	if err != nil {
		t.Fatal(err)
	}
	if got := img.RGBAAt(0, 0); got != (color.RGBA{255, 0, 0, 255}) {
		t.Errorf("pixel 0 = %v, want red", got)
	}
	if got := img.RGBAAt(1, 0); got != (color.RGBA{0x12, 0x34, 0x56, 255}) {
		t.Errorf("pixel 1 = %v, want 123456", got)
	}
	if _, err := decodeXWD(h[:50]); err == nil || !strings.Contains(err.Error(), "short") {
		t.Errorf("short input: %v", err)
	}
}
