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
