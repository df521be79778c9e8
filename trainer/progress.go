package trainer

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"
)

// IsTerminal reports whether f is a terminal (no cgo).
func IsTerminal(f *os.File) bool {
	return f != nil && term.IsTerminal(int(f.Fd()))
}

// Progress reports training progress: on a terminal, one status line
// redrawn in place (step/total, a bar, per-modality losses, tokens/s,
// ETA); otherwise plain log lines, one every EverySteps steps or Every
// time, whichever comes first, plus the first and last steps. It is safe
// for concurrent use (Log may come from another goroutine).
//
// Terminal line:
//
//	step  120/1000 [##........................]  12% | text 3.412 image 5.221 | 12.3k tok/s | ETA 4m12s
//
// Plain line:
//
//	step 120/1000 (12%) | text 3.412 image 5.221 | 12.3k tok/s | elapsed 1m03s | ETA 4m12s
type Progress struct {
	// Modalities orders the losses shown (the model's modality names);
	// other keys follow, sorted.
	Modalities []string
	// EverySteps, when > 0, prints a plain line every that many steps.
	EverySteps int
	// Every, when > 0, prints a plain line once that much time has passed
	// since the last one (default 10 s).
	Every time.Duration
	// Redraw is the least time between two redraws of the terminal line
	// (default 100 ms); the last step is always drawn.
	Redraw time.Duration
	// Width, when > 0, keeps the terminal line within Width-1 columns so it
	// never wraps (which would break redrawing in place): a narrower bar,
	// then none, then two decimals per loss, and only as a last resort a
	// cut. NewProgress sets it from the terminal's size when w is one.
	Width int

	mu       sync.Mutex
	w        io.Writer
	total    int
	terminal bool
	now      func() time.Time // time.Now; tests replace it

	started    bool
	start      time.Time
	startStep  int
	step       int
	losses     map[string]float64
	tps        float64
	line       string // the last status line
	drawn      bool   // a status line is on the screen (terminal mode)
	lastDraw   time.Time
	printed    bool
	lastPrint  time.Time
	printedAt  int // step of the last plain line
	done       bool
	lastUpdate time.Time
}

// NewProgress reports to w about a run of total steps (total <= 0: unknown,
// no bar or ETA). terminal selects the redrawn status line (use
// IsTerminal(os.Stderr)); otherwise plain log lines are written.
func NewProgress(w io.Writer, total int, terminal bool) *Progress {
	p := &Progress{
		Every:    10 * time.Second,
		Redraw:   100 * time.Millisecond,
		w:        w,
		total:    total,
		terminal: terminal,
		now:      time.Now,
	}
	if f, ok := w.(*os.File); ok && terminal && IsTerminal(f) {
		if cols, _, err := term.GetSize(int(f.Fd())); err == nil && cols > 0 {
			p.Width = cols
		}
	}
	return p
}

// Update reports that step steps are done (step counts from the run's
// start, so a resumed run continues its numbering; the ETA is measured
// from the first Update), with the latest loss per modality (keys such as
// "text", "image"; shown in modality order, others after in name order)
// and the throughput.
func (p *Progress) Update(step int, losses map[string]float64, tokensPerS float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	if !p.started {
		p.started, p.start, p.startStep = true, now, step
	}
	p.step, p.tps, p.lastUpdate = step, tokensPerS, now
	p.losses = make(map[string]float64, len(losses))
	for k, v := range losses {
		p.losses[k] = v
	}
	last := p.total > 0 && step >= p.total
	if p.terminal {
		if !p.drawn || last || p.Redraw <= 0 || now.Sub(p.lastDraw) >= p.Redraw {
			p.line = p.fit(now)
			p.draw()
			p.lastDraw = now
		}
		return
	}
	due := !p.printed || last ||
		(p.EverySteps > 0 && step-p.printedAt >= p.EverySteps) ||
		(p.Every > 0 && now.Sub(p.lastPrint) >= p.Every)
	if due {
		p.printLine(now)
	}
}

// Log writes a line of text (a newline is added if missing) without
// garbling the status line: on a terminal the status line is cleared, the
// text written, and the status line drawn again below it.
func (p *Progress) Log(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	msg := fmt.Sprintf(format, args...)
	if !strings.HasSuffix(msg, "\n") {
		msg += "\n"
	}
	if p.terminal && p.drawn {
		io.WriteString(p.w, "\r\x1b[K"+msg)
		p.drawn = false
		p.draw()
		return
	}
	io.WriteString(p.w, msg)
}

// Done ends the report: on a terminal the status line is drawn a last time
// with the latest state and left in place; in plain mode a last line is
// printed unless the latest step was already. Done twice is harmless.
func (p *Progress) Done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done {
		return
	}
	p.done = true
	if !p.started {
		return
	}
	if p.terminal {
		p.line = p.fit(p.lastUpdate)
		p.draw()
		io.WriteString(p.w, "\n")
		p.drawn = false
		return
	}
	if !p.printed || p.printedAt != p.step {
		p.printLine(p.lastUpdate)
	}
}

// draw redraws the status line in place.
func (p *Progress) draw() {
	if p.line == "" {
		return
	}
	line := p.line
	if p.Width > 1 && len(line) > p.Width-1 {
		line = line[:p.Width-1]
	}
	io.WriteString(p.w, "\r"+line+"\x1b[K")
	p.drawn = true
}

func (p *Progress) printLine(now time.Time) {
	io.WriteString(p.w, p.status(now, -1, 3)+"\n")
	p.printed, p.lastPrint, p.printedAt = true, now, p.step
}

// barWidth is the number of cells of the terminal bar.
const barWidth = 24

// fit is the terminal line: the fullest form that fits the width.
func (p *Progress) fit(now time.Time) string {
	var s string
	for _, f := range []struct{ cells, prec int }{{barWidth, 3}, {barWidth / 2, 3}, {0, 3}, {0, 2}} {
		s = p.status(now, f.cells, f.prec)
		if p.Width <= 1 || len(s) <= p.Width-1 {
			break
		}
	}
	return s
}

// status formats the current state as one line: the terminal's, with a bar
// of cells cells (0: none), or (cells < 0) a plain log line; losses with
// prec decimals.
func (p *Progress) status(now time.Time, cells, prec int) string {
	var b strings.Builder
	bar := cells >= 0
	if p.total > 0 {
		if bar {
			digits := len(fmt.Sprint(p.total))
			fmt.Fprintf(&b, "step %*d/%d", digits, p.step, p.total)
			frac := min(max(float64(p.step)/float64(p.total), 0), 1)
			full := int(frac * float64(cells))
			if cells > 0 {
				fmt.Fprintf(&b, " [%s%s]", strings.Repeat("#", full), strings.Repeat(".", cells-full))
			}
			fmt.Fprintf(&b, " %3d%%", int(frac*100))
		} else {
			fmt.Fprintf(&b, "step %d/%d (%d%%)", p.step, p.total, int(min(max(float64(p.step)/float64(p.total), 0), 1)*100))
		}
	} else {
		fmt.Fprintf(&b, "step %d", p.step)
	}
	if len(p.losses) > 0 {
		b.WriteString(" |")
		for _, k := range lossOrder(p.losses, p.Modalities) {
			fmt.Fprintf(&b, " %s %.*f", k, prec, p.losses[k])
		}
	}
	fmt.Fprintf(&b, " | %s tok/s", humanCount(p.tps))
	if !bar {
		fmt.Fprintf(&b, " | elapsed %s", humanDuration(now.Sub(p.start)))
	}
	if p.total > 0 {
		b.WriteString(" | ETA ")
		done := p.step - p.startStep
		if done > 0 && p.step <= p.total {
			eta := time.Duration(float64(now.Sub(p.start)) / float64(done) * float64(p.total-p.step))
			b.WriteString(humanDuration(eta))
		} else if p.step >= p.total {
			b.WriteString(humanDuration(0))
		} else {
			b.WriteString("--")
		}
	}
	return b.String()
}

// lossOrder lists the keys of losses: the names in order, then the others
// sorted.
func lossOrder(losses map[string]float64, order []string) []string {
	var keys, rest []string
	known := map[string]bool{}
	for _, n := range order {
		known[n] = true
		if _, ok := losses[n]; ok {
			keys = append(keys, n)
		}
	}
	for k := range losses {
		if !known[k] {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	return append(keys, rest...)
}

// humanCount formats a rate: 950, 12.3k, 1.23M, 4.56G.
func humanCount(x float64) string {
	switch {
	case x >= 1e9:
		return fmt.Sprintf("%.3gG", x/1e9)
	case x >= 1e6:
		return fmt.Sprintf("%.3gM", x/1e6)
	case x >= 1e3:
		return fmt.Sprintf("%.3gk", x/1e3)
	}
	return fmt.Sprintf("%.0f", x)
}

// humanDuration formats a duration to the second: 12s, 4m12s, 1h02m (and
// d for days).
func humanDuration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	s := int64((d + time.Second/2) / time.Second)
	switch {
	case s < 60:
		return fmt.Sprintf("%ds", s)
	case s < 3600:
		return fmt.Sprintf("%dm%02ds", s/60, s%60)
	case s < 86400:
		return fmt.Sprintf("%dh%02dm", s/3600, s%3600/60)
	}
	return fmt.Sprintf("%dd%02dh", s/86400, s%86400/3600)
}
