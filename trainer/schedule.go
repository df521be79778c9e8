package trainer

import "math"

// LR is the learning rate for optimizer step step (0-based: the first step
// is step 0) of a run of total steps: a linear warmup from 0 at step 0 to
// peak at step warmup, then a cosine decay from peak at step warmup to
// minLR at step total:
//
//	step < warmup:           peak * step / warmup
//	warmup <= step < total:  minLR + (peak-minLR) * (1 + cos(pi*(step-warmup)/(total-warmup))) / 2
//	step >= total:           minLR
//
// Edge cases: step >= total gives minLR, whatever the warmup (so a run with
// total <= warmup has no decay phase: it warms up linearly and ends at
// minLR); warmup <= 0 means no warmup (step 0 gets peak); a negative step
// counts as step 0; total <= 0 gives minLR everywhere. Note that the
// first step of a run with warmup gets learning rate 0 (AdamW still
// accumulates its moments on it).
func LR(step, warmup, total int, peak, minLR float64) float64 {
	if step < 0 {
		step = 0
	}
	if step >= total {
		return minLR
	}
	if warmup > 0 && step < warmup {
		return peak * float64(step) / float64(warmup)
	}
	// Here warmup <= step < total.
	w := max(warmup, 0)
	p := float64(step-w) / float64(total-w)
	return minLR + (peak-minLR)*0.5*(1+math.Cos(math.Pi*p))
}

// Learning-rate schedule kinds: after the warmup, the rate goes from the
// peak (or, in a later segment, from where it was) to the minimum along a
// cosine or a straight line, or stays.
const (
	ScheduleCosine   = "cosine"
	ScheduleLinear   = "linear"
	ScheduleConstant = "constant"
)

// ScheduleKinds lists the schedule kinds.
var ScheduleKinds = []string{ScheduleCosine, ScheduleLinear, ScheduleConstant}

// validSchedule reports whether kind names a schedule ("" is cosine).
func validSchedule(kind string) bool {
	switch kind {
	case "", ScheduleCosine, ScheduleLinear, ScheduleConstant:
		return true
	}
	return false
}

// ScheduleSegment continues a schedule from step Start on (a resumed run
// that changed its length or its schedule kind): the run now ends at
// Total.
type ScheduleSegment struct {
	Start, Total int
	Kind         string
}

// Schedule is a run's learning rate over its steps. The first segment is
// a linear warmup from 0 to Peak over Warmup steps, then Kind from Peak to
// Min at Total (Kind cosine is LR). Each later segment starts at its Start
// step from the rate the schedule had reached there and goes by its own
// kind to Min at its Total, so extending a run never warms it up again or
// jumps the rate: a cosine run that ended at Min and is extended stays at
// Min; one stopped half way decays from where it was over the new length.
// A segment that starts inside the warmup keeps the warmup and decays from
// Peak to Min over its new Total.
type Schedule struct {
	Kind      string
	Peak, Min float64
	Warmup    int
	Total     int
	Segments  []ScheduleSegment // by increasing Start
}

// At returns the learning rate of step step (the loop's steps count from 1).
func (s Schedule) At(step int) float64 { return s.at(step, len(s.Segments)) }

// at evaluates the schedule with only its first n segments.
func (s Schedule) at(step, n int) float64 {
	k := -1
	for i := 0; i < n; i++ {
		if s.Segments[i].Start < step {
			k = i
		}
	}
	if k < 0 {
		return base(s.Kind, step, s.Warmup, s.Total, s.Peak, s.Min)
	}
	seg := s.Segments[k]
	if seg.Start < s.Warmup {
		return base(seg.Kind, step, s.Warmup, seg.Total, s.Peak, s.Min)
	}
	l0 := s.at(seg.Start, k)
	return decay(seg.Kind, step-seg.Start, seg.Total-seg.Start, l0, s.Min)
}

// base is the first segment: warmup, then kind from peak to minLR.
func base(kind string, step, warmup, total int, peak, minLR float64) float64 {
	if kind == "" || kind == ScheduleCosine {
		return LR(step, warmup, total, peak, minLR)
	}
	if step < 0 {
		step = 0
	}
	if warmup > 0 && step < warmup && step < total {
		return peak * float64(step) / float64(warmup)
	}
	w := max(warmup, 0)
	return decay(kind, step-w, total-w, peak, minLR)
}

// decay goes from from to to over n steps (i = 0 .. n) by kind.
func decay(kind string, i, n int, from, to float64) float64 {
	if i >= n || n <= 0 {
		if kind == ScheduleConstant {
			return from
		}
		return to
	}
	if i < 0 {
		i = 0
	}
	p := float64(i) / float64(n)
	switch kind {
	case ScheduleLinear:
		return from + (to-from)*p
	case ScheduleConstant:
		return from
	}
	return to + (from-to)*0.5*(1+math.Cos(math.Pi*p))
}
