package gpu

import (
	"fmt"
	"io"
	"sort"
	"strings"
)

// MemCategory says what a buffer holds, for the device's memory accounting.
type MemCategory string

// The categories of mom's allocations. Staging is host-visible memory for
// transfers (system memory on a discrete GPU): it is reported apart from
// the device memory.
const (
	MemParameters  MemCategory = "parameters"
	MemGradients   MemCategory = "gradients"
	MemOptimizer   MemCategory = "optimizer"
	MemActivations MemCategory = "activations"
	MemScratch     MemCategory = "scratch"
	MemStaging     MemCategory = "staging"
)

// MemCategories lists the categories in report order.
var MemCategories = []MemCategory{MemParameters, MemGradients, MemOptimizer, MemActivations, MemScratch, MemStaging}

// memStats counts the bytes of the live buffers by category and label
// pattern, and remembers the peak of the device memory (staging left out)
// with its breakdown. It is guarded by the device's mutex.
type memStats struct {
	live      map[MemCategory]int64
	total     int64 // device memory live (staging excluded)
	peak      int64
	atPeak    map[MemCategory]int64
	staging   int64
	stagePeak int64
	byLabel   map[memKey]MemItem
	topAtPeak map[memKey]MemItem
}

type memKey struct {
	label string
	cat   MemCategory
}

func (m *memStats) init() {
	if m.live == nil {
		m.live = map[MemCategory]int64{}
		m.atPeak = map[MemCategory]int64{}
		m.byLabel = map[memKey]MemItem{}
		m.topAtPeak = map[memKey]MemItem{}
	}
}

func (m *memStats) add(b *Buffer) {
	m.init()
	m.live[b.Category] += b.Size
	k := memKey{labelPattern(b.Label), b.Category}
	it := m.byLabel[k]
	it.Label, it.Category = k.label, k.cat
	it.Count++
	it.Bytes += b.Size
	m.byLabel[k] = it
	if b.Category == MemStaging {
		m.staging += b.Size
		m.stagePeak = max(m.stagePeak, m.staging)
		return
	}
	m.total += b.Size
	if m.total > m.peak {
		m.peak = m.total
		clear(m.atPeak)
		for c, n := range m.live {
			if c != MemStaging {
				m.atPeak[c] = n
			}
		}
		clear(m.topAtPeak)
		for k, it := range m.byLabel {
			if k.cat != MemStaging {
				m.topAtPeak[k] = it
			}
		}
	}
}

func (m *memStats) remove(b *Buffer) {
	m.init()
	m.live[b.Category] -= b.Size
	k := memKey{labelPattern(b.Label), b.Category}
	it := m.byLabel[k]
	it.Count--
	it.Bytes -= b.Size
	if it.Count <= 0 {
		delete(m.byLabel, k)
	} else {
		m.byLabel[k] = it
	}
	if b.Category == MemStaging {
		m.staging -= b.Size
	} else {
		m.total -= b.Size
	}
}

// labelPattern names the same tensor of every layer alike: a dot-separated
// part of a label that is a number, or "l" and a number (mom's layer
// prefix), has its number replaced by N ("layers.12.w" -> "layers.N.w",
// "l12.x1" -> "lN.x1").
func labelPattern(s string) string {
	parts := strings.Split(s, ".")
	for i, p := range parts {
		q := strings.TrimPrefix(p, "l")
		if q != "" && strings.Trim(q, "0123456789") == "" {
			parts[i] = p[:len(p)-len(q)] + "N"
		}
	}
	return strings.Join(parts, ".")
}

// MemItem is the memory of the buffers whose labels share a pattern.
type MemItem struct {
	Label    string
	Category MemCategory
	Count    int
	Bytes    int64
}

// MemoryReport is what mom allocated on a device: device memory now and at
// its peak, by category, and the largest groups of buffers at the peak.
// Memory the WebGPU implementation allocates for itself (its own staging,
// pipelines, descriptor pools) is not in it.
type MemoryReport struct {
	Device      string
	Live, Peak  int64                 // device memory (staging excluded)
	LiveBy      map[MemCategory]int64 // now
	PeakBy      map[MemCategory]int64 // at the peak
	Staging     int64                 // host-visible staging now
	StagingPeak int64
	Top         []MemItem // at the peak, largest first
}

// Memory returns the device's memory accounting.
func (d *Device) Memory() MemoryReport {
	d.mu.Lock()
	defer d.mu.Unlock()
	m := &d.mem
	m.init()
	r := MemoryReport{Device: d.String(), Live: m.total, Peak: m.peak, LiveBy: map[MemCategory]int64{},
		PeakBy: map[MemCategory]int64{}, Staging: m.staging, StagingPeak: m.stagePeak}
	for c, n := range m.live {
		if c != MemStaging && n != 0 {
			r.LiveBy[c] = n
		}
	}
	for c, n := range m.atPeak {
		if n != 0 {
			r.PeakBy[c] = n
		}
	}
	for _, it := range m.topAtPeak {
		r.Top = append(r.Top, it)
	}
	sort.Slice(r.Top, func(i, j int) bool {
		if r.Top[i].Bytes != r.Top[j].Bytes {
			return r.Top[i].Bytes > r.Top[j].Bytes
		}
		return r.Top[i].Label < r.Top[j].Label
	})
	return r
}

// ResetPeak starts a new peak from the memory live now.
func (d *Device) ResetPeak() {
	d.mu.Lock()
	defer d.mu.Unlock()
	m := &d.mem
	m.init()
	m.peak, m.stagePeak = m.total, m.staging
	clear(m.atPeak)
	for c, n := range m.live {
		if c != MemStaging {
			m.atPeak[c] = n
		}
	}
	clear(m.topAtPeak)
	for k, it := range m.byLabel {
		if k.cat != MemStaging {
			m.topAtPeak[k] = it
		}
	}
}

// GiB formats bytes in GiB (MiB below one GiB, KiB below one MiB).
func GiB(n int64) string {
	if n < 1<<20 && n > -(1<<20) {
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	if n < 1<<30 && n > -(1<<30) {
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
}

// Summary is the peak in one line: "peak 7.40 GiB (parameters 1.2 GiB, ...)".
func (r MemoryReport) Summary() string {
	var parts []string
	for _, c := range MemCategories {
		if n := r.PeakBy[c]; n != 0 {
			parts = append(parts, fmt.Sprintf("%s %s", c, GiB(n)))
		}
	}
	s := fmt.Sprintf("peak GPU memory mom allocated: %s (%s)", GiB(r.Peak), strings.Join(parts, ", "))
	if r.StagingPeak > 0 {
		s += fmt.Sprintf("; host staging %s", GiB(r.StagingPeak))
	}
	return s
}

// Write prints the report with the top largest groups of buffers.
func (r MemoryReport) Write(w io.Writer, top int) {
	fmt.Fprintf(w, "%s\n", r.Summary())
	for _, c := range MemCategories {
		if c == MemStaging {
			continue
		}
		fmt.Fprintf(w, "  %-12s %12s  (%5.1f%%)\n", c, GiB(r.PeakBy[c]), 100*frac(r.PeakBy[c], r.Peak))
	}
	if top > 0 && len(r.Top) > 0 {
		fmt.Fprintf(w, "largest at the peak (digits in names read N: one per layer):\n")
		for i, it := range r.Top {
			if i == top {
				break
			}
			fmt.Fprintf(w, "  %-40s %-12s x%-4d %12s\n", it.Label, it.Category, it.Count, GiB(it.Bytes))
		}
	}
}

func frac(a, b int64) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// Minus is what was allocated since base (a report taken earlier on the
// same device): the live memory by category, as the peak too; the largest
// groups are left out.
func (r MemoryReport) Minus(base MemoryReport) MemoryReport {
	out := MemoryReport{Device: r.Device, Live: r.Live - base.Live, LiveBy: map[MemCategory]int64{},
		Staging: r.Staging - base.Staging}
	for c, n := range r.LiveBy {
		if d := n - base.LiveBy[c]; d != 0 {
			out.LiveBy[c] = d
		}
	}
	out.Peak, out.PeakBy, out.StagingPeak = out.Live, out.LiveBy, out.Staging
	return out
}
