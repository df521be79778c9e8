package trainer

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"
)

// fakeClock advances by the step set before each call.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func newTestProgress(total int, terminal bool) (*Progress, *bytes.Buffer, *fakeClock) {
	var buf bytes.Buffer
	clk := &fakeClock{t: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	p := NewProgress(&buf, total, terminal)
	p.now = clk.now
	p.Modalities = []string{"text", "image", "speech"}
	return p, &buf, clk
}

func TestProgressTerminal(t *testing.T) {
	p, buf, clk := newTestProgress(1000, true)
	losses := map[string]float64{"image": 5.2214, "text": 3.4119, "aux": 0.5}
	p.Update(0, losses, 0)
	clk.t = clk.t.Add(50 * time.Millisecond)
	p.Update(1, losses, 1000) // within Redraw: not drawn
	clk.t = clk.t.Add(60 * time.Second)
	p.Update(120, losses, 12345)
	p.Log("eval at step %d: loss %.2f", 120, 3.0)
	clk.t = clk.t.Add(440 * time.Second)
	p.Update(1000, map[string]float64{"text": 1}, 2.5e6)
	p.Done()
	p.Done()
	want := "" +
		"\rstep    0/1000 [........................]   0% | text 3.412 image 5.221 aux 0.500 | 0 tok/s | ETA --\x1b[K" +
		"\rstep  120/1000 [##......................]  12% | text 3.412 image 5.221 aux 0.500 | 12.3k tok/s | ETA 7m20s\x1b[K" +
		"\r\x1b[Keval at step 120: loss 3.00\n" +
		"\rstep  120/1000 [##......................]  12% | text 3.412 image 5.221 aux 0.500 | 12.3k tok/s | ETA 7m20s\x1b[K" +
		"\rstep 1000/1000 [########################] 100% | text 1.000 | 2.5M tok/s | ETA 0s\x1b[K" +
		"\rstep 1000/1000 [########################] 100% | text 1.000 | 2.5M tok/s | ETA 0s\x1b[K\n"
	if got := buf.String(); got != want {
		t.Errorf("terminal output:\n got %q\nwant %q", got, want)
	}
}

func TestProgressTerminalWidth(t *testing.T) {
	p, buf, _ := newTestProgress(10, true)
	p.Width = 31
	p.Update(5, nil, 0)
	want := "\rstep  5/10  50% | 0 tok/s | ET\x1b[K" // no room even without the bar: cut
	if got := buf.String(); got != want {
		t.Errorf("cut line:\n got %q\nwant %q", got, want)
	}
}

// TestProgressFitsWidth: on a 100-column terminal the line of a run with
// four modalities keeps every loss and the ETA (the bar gives way).
func TestProgressFitsWidth(t *testing.T) {
	for _, width := range []int{100} {
		p, buf, clk := newTestProgress(100000, true)
		p.Modalities = []string{"text", "image", "speech", "video"}
		p.Width = width
		losses := map[string]float64{"text": 3.4119, "image": 5.2214, "speech": 4.1234, "video": 6.5432}
		p.Update(1, losses, 1000)
		clk.t = clk.t.Add(time.Minute)
		p.Update(12000, losses, 123456)
		lines := strings.Split(strings.ReplaceAll(buf.String(), "\x1b[K", ""), "\r")
		last := lines[len(lines)-1]
		if len(last) > width-1 {
			t.Errorf("width %d: the line has %d columns: %q", width, len(last), last)
		}
		for _, want := range []string{"text", "image", "speech", "video", "tok/s", "ETA 7m2"} {
			if !strings.Contains(last, want) {
				t.Errorf("width %d: the line %q lost %q", width, last, want)
			}
		}
	}
}

func TestProgressPlain(t *testing.T) {
	p, buf, clk := newTestProgress(100, false)
	p.EverySteps = 25
	p.Every = time.Minute
	losses := map[string]float64{"text": 2, "speech": 4}
	for s := 1; s <= 99; s++ {
		clk.t = clk.t.Add(time.Second)
		if s == 60 {
			clk.t = clk.t.Add(2 * time.Minute) // a slow step: the time limit prints
		}
		p.Update(s, losses, 1500)
		if s == 30 {
			p.Log("a message")
		}
	}
	p.Done()
	want := "" +
		"step 1/100 (1%) | text 2.000 speech 4.000 | 1.5k tok/s | elapsed 0s | ETA --\n" +
		"step 26/100 (26%) | text 2.000 speech 4.000 | 1.5k tok/s | elapsed 25s | ETA 1m14s\n" +
		"a message\n" +
		"step 51/100 (51%) | text 2.000 speech 4.000 | 1.5k tok/s | elapsed 50s | ETA 49s\n" +
		"step 60/100 (60%) | text 2.000 speech 4.000 | 1.5k tok/s | elapsed 2m59s | ETA 2m01s\n" +
		"step 85/100 (85%) | text 2.000 speech 4.000 | 1.5k tok/s | elapsed 3m24s | ETA 36s\n" +
		"step 99/100 (99%) | text 2.000 speech 4.000 | 1.5k tok/s | elapsed 3m38s | ETA 2s\n"
	if got := buf.String(); got != want {
		t.Errorf("plain output:\n got %q\nwant %q", got, want)
	}
}

func TestProgressUnknownTotal(t *testing.T) {
	p, buf, _ := newTestProgress(0, false)
	p.Update(7, nil, 950)
	p.Done()
	if got, want := buf.String(), "step 7 | 950 tok/s | elapsed 0s\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestHumanFormats(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0s", 59 * time.Second: "59s", 61 * time.Second: "1m01s", 3599 * time.Second: "59m59s",
		3600 * time.Second: "1h00m", 26 * time.Hour: "1d02h", -time.Second: "0s",
	} {
		if got := humanDuration(d); got != want {
			t.Errorf("humanDuration(%v) = %s, want %s", d, got, want)
		}
	}
	for x, want := range map[float64]string{0: "0", 999: "999", 1000: "1k", 12345: "12.3k", 1.234e6: "1.23M", 4.5e9: "4.5G"} {
		if got := humanCount(x); got != want {
			t.Errorf("humanCount(%g) = %s, want %s", x, got, want)
		}
	}
}

func TestIsTerminal(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "x")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if IsTerminal(f) {
		t.Error("a regular file is a terminal")
	}
	if IsTerminal(nil) {
		t.Error("nil is a terminal")
	}
}
