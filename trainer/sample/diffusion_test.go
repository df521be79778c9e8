package sample

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"mom/mom"
)

func TestLevels(t *testing.T) {
	cases := []struct {
		steps int
		want  []int
	}{
		{1, []int{31}},
		{2, []int{31, 0}},
		{4, []int{31, 21, 10, 0}},
	}
	for _, c := range cases {
		got, err := Levels(c.steps)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("Levels(%d) = %v, %v; want %v", c.steps, got, err, c.want)
		}
	}
	all, err := Levels(mom.TimestepBuckets)
	if err != nil || len(all) != mom.TimestepBuckets {
		t.Fatalf("Levels(%d) = %v, %v", mom.TimestepBuckets, all, err)
	}
	for i, b := range all {
		if b != mom.TimestepBuckets-1-i {
			t.Fatalf("Levels(%d) = %v: every level from the noisiest down", mom.TimestepBuckets, all)
		}
	}
	for _, bad := range []int{0, -1, mom.TimestepBuckets + 1} {
		if _, err := Levels(bad); err == nil {
			t.Errorf("Levels(%d): no error", bad)
		}
	}
	// The trainer's schedule: abar(b) = cos²(π/2·(b+0.5)/B), falling.
	for b := 0; b < mom.TimestepBuckets; b++ {
		u := (float64(b) + 0.5) / mom.TimestepBuckets
		if want := math.Pow(math.Cos(math.Pi/2*u), 2); math.Abs(Abar(b)-want) > 1e-15 || (b > 0 && Abar(b) >= Abar(b-1)) {
			t.Fatalf("Abar(%d) = %v, want %v, falling", b, Abar(b), want)
		}
	}
}

// TestDenoiseOracle: with the true noise as the prediction, DDIM and DDPM
// both end at x0 exactly (up to float32 rounding), and each DDPM step
// leaves x distributed as the trainer's noising at the next level: the
// residual (x - sqrt(abar')·x0) / sqrt(1-abar') has mean 0 and variance 1.
func TestDenoiseOracle(t *testing.T) {
	const n = 20000
	rng := rand.New(rand.NewPCG(1, 2))
	x0 := make([]float32, n)
	for i := range x0 {
		x0[i] = float32(rng.Float64()*1.8 - 0.9)
	}
	for _, ddpm := range []bool{false, true} {
		for _, steps := range []int{3, 8, 32} {
			levels, _ := Levels(steps)
			x := make([]float32, n)
			for i := range x {
				x[i] = float32(rng.NormFloat64())
			}
			eps := make([]float32, n)
			for k, b := range levels {
				ab := Abar(b)
				for i := range x { // the oracle: the noise x holds at level b
					eps[i] = float32((float64(x[i]) - math.Sqrt(ab)*float64(x0[i])) / math.Sqrt(1-ab))
				}
				next := -1
				if k+1 < len(levels) {
					next = levels[k+1]
				}
				denoise(x, eps, b, next, ddpm, rng)
				if next < 0 || !ddpm {
					continue
				}
				abN := Abar(next)
				var sum, ss float64
				for i := range x {
					r := (float64(x[i]) - math.Sqrt(abN)*float64(x0[i])) / math.Sqrt(1-abN)
					sum += r
					ss += r * r
				}
				mean, v := sum/n, ss/n-(sum/n)*(sum/n)
				if math.Abs(mean) > 0.05 || math.Abs(v-1) > 0.05 {
					t.Errorf("ddpm %d steps, level %d -> %d: residual mean %.3f variance %.3f, want 0 and 1", steps, b, next, mean, v)
				}
			}
			worst := 0.0
			for i := range x {
				worst = math.Max(worst, math.Abs(float64(x[i]-x0[i])))
			}
			if worst > 1e-5 {
				t.Errorf("ddpm=%v, %d steps: x0 recovered within %.3g, want 1e-5", ddpm, steps, worst)
			}
		}
	}
}
