package gpu

/*
#include "shim.h"
*/
import "C"

import (
	"errors"
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
	// MemReleased is memory mom has released that the implementation has
	// not yet freed: Dawn frees a destroyed buffer only once a later submit
	// has completed and the device has been ticked (Device.Collect). It is
	// reported at the peak, never live by a tensor of mom's.
	MemReleased MemCategory = "released"
)

// MemCategories lists the categories in report order.
var MemCategories = []MemCategory{MemParameters, MemGradients, MemOptimizer, MemActivations, MemScratch, MemReleased, MemStaging}

// memStats counts the bytes of the live buffers by category and label
// pattern, and remembers the peak of the device memory (staging left out)
// with its breakdown. Where the implementation defers frees (deferFree),
// released buffers count as MemReleased until collect: the peak is of
// what the implementation holds. It is guarded by the device's mutex.
type memStats struct {
	live      map[MemCategory]int64
	total     int64 // device memory live (staging excluded)
	deferFree bool  // released memory stays held until collect (Dawn)
	pending   int64 // device memory released, not yet freed (deferFree)
	pendStage int64 // staging released, not yet freed (deferFree)
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
	if m.total+m.pending > m.peak {
		m.markPeak()
	}
}

// markPeak makes the memory held now the peak.
func (m *memStats) markPeak() {
	m.peak = m.total + m.pending
	clear(m.atPeak)
	for c, n := range m.live {
		if c != MemStaging {
			m.atPeak[c] = n
		}
	}
	if m.pending != 0 {
		m.atPeak[MemReleased] = m.pending
	}
	clear(m.topAtPeak)
	for k, it := range m.byLabel {
		if k.cat != MemStaging {
			m.topAtPeak[k] = it
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
		if m.deferFree {
			m.pendStage += b.Size
		}
	} else {
		m.total -= b.Size
		if m.deferFree {
			m.pending += b.Size
		}
	}
}

// collected notes that the implementation has freed what was released.
func (m *memStats) collected() { m.pending, m.pendStage = 0, 0 }

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
	Device     string
	Live, Peak int64 // device memory (staging excluded; Peak counts MemReleased)
	// Released is device memory released but not yet freed by the
	// implementation (Dawn, until Device.Collect), now.
	Released    int64
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
	r := MemoryReport{Device: d.String(), Live: m.total, Released: m.pending, Peak: m.peak, LiveBy: map[MemCategory]int64{},
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
	m.stagePeak = m.staging
	m.markPeak()
}

// collectMin is the device memory released and not yet freed above which
// creating a buffer collects it first (Device.Collect), so that memory
// released during set-up is reused instead of piling up beside the new.
const collectMin = 64 << 20

// Collect makes the implementation free the memory of the buffers released
// so far and returns once it has: it waits until the GPU has finished all
// submitted work. Dawn frees a destroyed buffer only after a later submit
// has completed and the device has been ticked (seen with Dawn 0.1.7 on
// lavapipe: without both, released memory stays held for good); Collect
// submits an empty command buffer, waits for the queue and ticks the
// device, twice. wgpu-native frees at destroy; Collect polls it. Creating a
// buffer collects by itself when more than 64 MiB wait (collectMin); call
// Collect where a phase ends (a model released before the next is built).
func (d *Device) Collect() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return errors.New("gpu: device is closed")
	}
	return d.collectLocked()
}

func (d *Device) collectLocked() error {
	if d.lost != nil {
		return d.lost
	}
	l := d.Lib.c
	rounds := 1
	if d.mem.deferFree {
		rounds = 2
	}
	for i := 0; i < rounds; i++ {
		if d.mem.deferFree {
			enc := C.mg_create_encoder(l, d.dev)
			d.created(C.MG_ENCODER)
			cmd := C.mg_encoder_finish(l, enc)
			d.created(C.MG_COMMAND_BUFFER)
			C.mg_queue_submit(l, d.queue, cmd)
			d.release(C.MG_COMMAND_BUFFER, cmd)
			d.release(C.MG_ENCODER, enc)
		}
		C.mg_queue_done(l, d.queue, d.op)
		if C.mg_wait(l, d.inst, d.dev, d.op, C.UINT64_MAX) != 1 {
			return errors.Join(errors.New("gpu: collect: waiting for the queue failed"), d.errLocked("collect"))
		}
		C.mg_process_events(l, d.inst, d.dev)
	}
	d.mem.collected()
	return d.errLocked("collect")
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
		if c == MemStaging || (c == MemReleased && r.PeakBy[c] == 0) {
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
