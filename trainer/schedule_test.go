package trainer

import (
	"math"
	"testing"
)

func TestLR(t *testing.T) {
	const peak, lo = 1e-3, 1e-4
	mid := lo + (peak-lo)/2
	cases := []struct {
		step, warmup, total int
		want                float64
	}{
		{0, 10, 110, 0},             // warmup starts at 0
		{-5, 10, 110, 0},            // negative step counts as 0
		{1, 10, 110, peak / 10},     // linear
		{5, 10, 110, peak / 2},      // linear
		{9, 10, 110, peak * 9 / 10}, // last warmup step
		{10, 10, 110, peak},         // warmup done: peak
		{60, 10, 110, mid},          // half way through the decay
		{35, 10, 110, lo + (peak-lo)*(1+math.Cos(math.Pi/4))/2},
		{109, 10, 110, lo + (peak-lo)*(1+math.Cos(math.Pi*99/100))/2},
		{110, 10, 110, lo},    // total: min
		{1000, 10, 110, lo},   // past total: min
		{0, 0, 100, peak},     // no warmup: peak at once
		{50, 0, 100, mid},     // no warmup: decay over all steps
		{0, -3, 100, peak},    // negative warmup is none
		{5, 20, 10, peak / 4}, // total <= warmup: warmup still linear
		{10, 20, 10, lo},      // and min at total
		{10, 10, 10, lo},      // warmup == total
		{0, 0, 0, lo},         // total 0: min
	}
	for _, c := range cases {
		got := LR(c.step, c.warmup, c.total, peak, lo)
		if math.Abs(got-c.want) > 1e-15 {
			t.Errorf("LR(%d, %d, %d) = %g, want %g", c.step, c.warmup, c.total, got, c.want)
		}
	}
	// Monotone: up during warmup, down after.
	prev := -1.0
	for s := 0; s <= 10; s++ {
		v := LR(s, 10, 110, peak, lo)
		if v <= prev {
			t.Errorf("warmup not increasing at %d", s)
		}
		prev = v
	}
	for s := 11; s <= 110; s++ {
		v := LR(s, 10, 110, peak, lo)
		if v >= prev {
			t.Errorf("decay not decreasing at %d", s)
		}
		prev = v
	}
}
