package sample

import (
	"fmt"
	"math"
	"math/rand/v2"

	"mom/mom"
)

// The diffusion samplers of continuous spans (Transfusion's image patches).
//
// The trainer noises a span at one of mom.TimestepBuckets noise levels b,
// with the cosine schedule abar(b) = cos²(π/2 · (b+0.5)/B) (B buckets), as
// x_b = sqrt(abar)·x0 + sqrt(1-abar)·eps, and conditions every position of
// the span on b through the input id range start + b; the model predicts
// eps at each position. Sampling walks the levels down from the noisiest,
// b = B-1, to the cleanest, b = 0, in S steps (evenly spaced levels; S = B
// visits every level). At each visited level b, with the model's eps_hat
// for the span:
//
//	x0_hat = clip((x - sqrt(1-abar_b)·eps_hat) / sqrt(abar_b), -1, 1)
//	eps'   = (x - sqrt(abar_b)·x0_hat) / sqrt(1-abar_b)
//
// and, with abar' the next level's (1 after the last: x = x0_hat),
//
//	DDIM (deterministic):  x = sqrt(abar')·x0_hat + sqrt(1-abar')·eps'
//	DDPM (ancestral):      x = mean + sqrt(var)·z, z ~ N(0, I), the
//	                       posterior q(x' | x, x0_hat) of the two levels:
//	                       alpha = abar_b/abar', beta = 1 - alpha,
//	                       mean = sqrt(abar')·beta/(1-abar_b)·x0_hat
//	                            + sqrt(alpha)·(1-abar')/(1-abar_b)·x,
//	                       var  = beta·(1-abar')/(1-abar_b)
//
// (DDPM with fewer levels than B is the respaced DDPM of Nichol &
// Dhariwal.) The walk starts from x ~ N(0, I) (abar at b = B-1 is 6e-4).
// The patches are normalised to [-1, 1] (data), hence the clip.

// Samplers are the diffusion samplers' names.
var Samplers = []string{"ddpm", "ddim"}

// Abar is the cosine schedule's signal level at noise bucket b, as the
// trainer noises.
func Abar(b int) float64 {
	u := (float64(b) + 0.5) / mom.TimestepBuckets
	c := math.Cos(math.Pi / 2 * u)
	return c * c
}

// Levels are the noise buckets a sampler of steps steps visits, from the
// noisiest down: steps evenly spaced levels from TimestepBuckets-1 to 0
// (steps = 1 visits the noisiest only and predicts x0 from it).
func Levels(steps int) ([]int, error) {
	B := mom.TimestepBuckets
	if steps < 1 || steps > B {
		return nil, fmt.Errorf("sample: %d diffusion steps: want 1 to %d (one per noise level at most)", steps, B)
	}
	if steps == 1 {
		return []int{B - 1}, nil
	}
	out := make([]int, steps)
	for k := range out {
		out[k] = int(math.Round(float64(B-1) * float64(steps-1-k) / float64(steps-1)))
	}
	return out, nil
}

// denoise moves x (one span's patches, flattened) from level b to the next
// level (next < 0: to x0) given the predicted noise eps, in place. rng
// draws DDPM's noise.
func denoise(x, eps []float32, b, next int, ddpm bool, rng *rand.Rand) {
	ab := Abar(b)
	sa, sn := math.Sqrt(ab), math.Sqrt(1-ab)
	abN := 1.0
	if next >= 0 {
		abN = Abar(next)
	}
	for i := range x {
		xi := float64(x[i])
		x0 := (xi - sn*float64(eps[i])) / sa
		x0 = math.Min(math.Max(x0, -1), 1)
		switch {
		case next < 0:
			x[i] = float32(x0)
		case ddpm:
			alpha := ab / abN
			beta := 1 - alpha
			mean := math.Sqrt(abN)*beta/(1-ab)*x0 + math.Sqrt(alpha)*(1-abN)/(1-ab)*xi
			v := beta * (1 - abN) / (1 - ab)
			x[i] = float32(mean + math.Sqrt(v)*rng.NormFloat64())
		default:
			e := (xi - sa*x0) / sn
			x[i] = float32(math.Sqrt(abN)*x0 + math.Sqrt(1-abN)*e)
		}
	}
}
