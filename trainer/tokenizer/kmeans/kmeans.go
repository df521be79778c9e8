package kmeans

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
)

// Config sets up Train.
type Config struct {
	K         int    // number of centroids (codes)
	Steps     int    // mini-batch steps (default 200)
	BatchSize int    // vectors per mini-batch (default 2048)
	Seed      uint64 // the same seed and data give the same codebook
	// Progress, if set, is called after each step with (done, total).
	Progress func(done, total int)
}

// Codebook is K centroids of Dim values, row-major.
type Codebook struct {
	K, Dim    int
	Centroids []float32 // (K, Dim)
	norms     []float32 // (K) squared norms of the centroids
}

// New wraps centroids (K*dim values, row-major) as a codebook, for one
// loaded from a file. It checks the sizes and that every value is finite.
func New(k, dim int, centroids []float32) (*Codebook, error) {
	if k <= 0 || dim <= 0 {
		return nil, fmt.Errorf("kmeans: codebook of %d centroids of %d values: both must be positive", k, dim)
	}
	if len(centroids) != k*dim {
		return nil, fmt.Errorf("kmeans: codebook of %d x %d needs %d values, got %d", k, dim, k*dim, len(centroids))
	}
	for i, v := range centroids {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return nil, fmt.Errorf("kmeans: centroid %d value %d is %v", i/dim, i%dim, v)
		}
	}
	c := &Codebook{K: k, Dim: dim, Centroids: centroids}
	c.updateNorms()
	return c, nil
}

func (c *Codebook) updateNorms() {
	if len(c.norms) != c.K {
		c.norms = make([]float32, c.K)
	}
	for k := range c.K {
		c.norms[k] = dot(c.row(k), c.row(k))
	}
}

func (c *Codebook) row(k int) []float32 { return c.Centroids[k*c.Dim : (k+1)*c.Dim] }

// Centroid returns centroid k (not a copy).
func (c *Codebook) Centroid(k int) []float32 { return c.row(k) }

// Nearest returns the index of the centroid nearest to x (squared
// Euclidean distance; the lowest index on a tie) and that distance.
func (c *Codebook) Nearest(x []float32) (int, float32) {
	xx := dot(x, x)
	best, bestD := 0, float32(math.Inf(1))
	for k := range c.K {
		d := xx - 2*dot(x, c.row(k)) + c.norms[k]
		if d < bestD {
			best, bestD = k, d
		}
	}
	return best, max(bestD, 0)
}

// Assign writes the nearest centroid of each of the n = len(data)/Dim
// vectors into codes (length n) and returns the mean squared distance per
// vector. It runs on all CPUs.
func (c *Codebook) Assign(data []float32, codes []int32) (float64, error) {
	if len(data)%c.Dim != 0 {
		return 0, fmt.Errorf("kmeans: %d values are not whole vectors of %d", len(data), c.Dim)
	}
	n := len(data) / c.Dim
	if len(codes) != n {
		return 0, fmt.Errorf("kmeans: %d codes for %d vectors", len(codes), n)
	}
	workers := min(runtime.GOMAXPROCS(0), max(1, n/256))
	sums := make([]float64, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				k, d := c.Nearest(data[i*c.Dim : (i+1)*c.Dim])
				codes[i] = int32(k)
				sums[w] += float64(d)
			}
		}()
	}
	wg.Wait()
	total := 0.0
	for _, s := range sums {
		total += s
	}
	if n == 0 {
		return 0, nil
	}
	return total / float64(n), nil
}

// Train learns a codebook of cfg.K centroids from n = len(data)/dim vectors
// by mini-batch k-means (Sculley, 2010): k-means++ seeding on a sample,
// then cfg.Steps steps that each move the nearest centroid of every vector
// of a random mini-batch towards it with a per-centroid rate of
// 1/count. Centroids that stop winning vectors are re-seeded from the
// current mini-batch, so that no code is wasted. It is deterministic for a
// seed.
func Train(data []float32, dim int, cfg Config) (*Codebook, error) {
	if dim <= 0 || len(data)%dim != 0 {
		return nil, fmt.Errorf("kmeans: %d values are not whole vectors of %d", len(data), dim)
	}
	n := len(data) / dim
	if cfg.K <= 0 {
		return nil, fmt.Errorf("kmeans: K = %d must be positive", cfg.K)
	}
	if n < cfg.K {
		return nil, fmt.Errorf("kmeans: %d vectors cannot train %d centroids", n, cfg.K)
	}
	for i, v := range data {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return nil, fmt.Errorf("kmeans: vector %d value %d is %v", i/dim, i%dim, v)
		}
	}
	if cfg.Steps <= 0 {
		cfg.Steps = 200
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 2048
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x6b6d65616e73))
	vec := func(i int) []float32 { return data[i*dim : (i+1)*dim] }

	c := &Codebook{K: cfg.K, Dim: dim, Centroids: make([]float32, cfg.K*dim)}
	seedPlusPlus(c, data, dim, rng)
	c.updateNorms()

	counts := make([]float64, cfg.K)
	won := make([]int, cfg.K) // mini-batch wins since the last re-seed check
	bs := min(cfg.BatchSize, n)
	batch := make([]float32, bs*dim)
	codes := make([]int32, bs)
	const reseedEvery = 10
	for step := range cfg.Steps {
		for b := range bs {
			copy(batch[b*dim:(b+1)*dim], vec(rng.IntN(n)))
		}
		if _, err := c.Assign(batch, codes); err != nil {
			return nil, err
		}
		for b, k := range codes {
			counts[k]++
			won[k]++
			eta := float32(1 / counts[k])
			row, x := c.row(int(k)), batch[b*dim:(b+1)*dim]
			for j := range row {
				row[j] += eta * (x[j] - row[j])
			}
		}
		if (step+1)%reseedEvery == 0 && step+1 < cfg.Steps {
			for k := range c.K {
				if won[k] == 0 {
					copy(c.row(k), batch[rng.IntN(bs)*dim:])
					counts[k] = 0
				}
				won[k] = 0
			}
		}
		c.updateNorms()
		if cfg.Progress != nil {
			cfg.Progress(step+1, cfg.Steps)
		}
	}
	return c, nil
}

// seedPlusPlus picks the first centroids by k-means++ (Arthur and
// Vassilvitskii, 2007) over a sample of the data.
func seedPlusPlus(c *Codebook, data []float32, dim int, rng *rand.Rand) {
	n := len(data) / dim
	m := min(n, max(16*c.K, 4096))
	sample := make([]int, m)
	if m == n {
		for i := range sample {
			sample[i] = i
		}
	} else {
		for i := range sample {
			sample[i] = rng.IntN(n)
		}
	}
	vec := func(i int) []float32 { return data[sample[i]*dim : (sample[i]+1)*dim] }
	d2 := make([]float64, m)
	copy(c.row(0), vec(rng.IntN(m)))
	for i := range d2 {
		d2[i] = sqDist(vec(i), c.row(0))
	}
	for k := 1; k < c.K; k++ {
		total := 0.0
		for _, d := range d2 {
			total += d
		}
		pick := rng.IntN(m)
		if total > 0 {
			r := rng.Float64() * total
			for i, d := range d2 {
				r -= d
				if r < 0 {
					pick = i
					break
				}
			}
		}
		copy(c.row(k), vec(pick))
		for i := range d2 {
			d2[i] = math.Min(d2[i], sqDist(vec(i), c.row(k)))
		}
	}
}

func dot(a, b []float32) float32 {
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}

func sqDist(a, b []float32) float64 {
	s := 0.0
	for i := range a {
		d := float64(a[i] - b[i])
		s += d * d
	}
	return s
}
