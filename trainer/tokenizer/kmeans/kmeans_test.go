package kmeans

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// blobs draws n vectors around each of the given centres with noise sd.
func blobs(centres [][]float32, n int, sd float64, seed uint64) []float32 {
	rng := rand.New(rand.NewPCG(seed, 1))
	var out []float32
	for i := 0; i < n; i++ {
		for _, c := range centres {
			for _, v := range c {
				out = append(out, v+float32(rng.NormFloat64()*sd))
			}
		}
	}
	return out
}

func TestTrainFindsBlobs(t *testing.T) {
	centres := [][]float32{{0, 0, 0}, {10, 0, 0}, {0, 10, 0}, {0, 0, 10}, {10, 10, 10}}
	data := blobs(centres, 400, 0.5, 7)
	cb, err := Train(data, 3, Config{K: len(centres), Steps: 100, BatchSize: 256, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range centres {
		k, d := cb.Nearest(c)
		if d > 0.1 {
			t.Errorf("centre %v: nearest centroid %d = %v is %.3f away (squared)", c, k, cb.Centroid(k), d)
		}
	}
	codes := make([]int32, len(data)/3)
	mse, err := cb.Assign(data, codes)
	if err != nil {
		t.Fatal(err)
	}
	// The noise has variance 3*0.25 per vector; the fit cannot beat it by
	// much and must not be far above it.
	if mse < 0.5 || mse > 1.0 {
		t.Errorf("mean squared distance %.3f, want about 0.75", mse)
	}
}

func TestTrainDeterministic(t *testing.T) {
	data := blobs([][]float32{{1, 2}, {3, 4}, {5, -1}}, 300, 1, 1)
	a, err := Train(data, 2, Config{K: 8, Steps: 30, BatchSize: 64, Seed: 9})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Train(data, 2, Config{K: 8, Steps: 30, BatchSize: 64, Seed: 9})
	c, _ := Train(data, 2, Config{K: 8, Steps: 30, BatchSize: 64, Seed: 10})
	if !slices.Equal(a.Centroids, b.Centroids) {
		t.Error("the same seed gave different codebooks")
	}
	if slices.Equal(a.Centroids, c.Centroids) {
		t.Error("different seeds gave the same codebook")
	}
}

func TestAssignMatchesBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	for _, dim := range []int{1, 3, 4, 7, 16} {
		k := 13
		cents := make([]float32, k*dim)
		for i := range cents {
			cents[i] = float32(rng.NormFloat64())
		}
		cb, err := New(k, dim, cents)
		if err != nil {
			t.Fatal(err)
		}
		n := 1000
		data := make([]float32, n*dim)
		for i := range data {
			data[i] = float32(rng.NormFloat64())
		}
		codes := make([]int32, n)
		if _, err := cb.Assign(data, codes); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < n; i++ {
			x := data[i*dim : (i+1)*dim]
			best, bestD := -1, math.Inf(1)
			for j := 0; j < k; j++ {
				if d := sqDist(x, cb.Centroid(j)); d < bestD {
					best, bestD = j, d
				}
			}
			// Ties within float32 rounding may pick either centroid.
			if int(codes[i]) != best && math.Abs(sqDist(x, cb.Centroid(int(codes[i])))-bestD) > 1e-4 {
				t.Fatalf("dim %d vector %d: code %d, brute force %d", dim, i, codes[i], best)
			}
		}
	}
}

func TestReseedUsesEveryCode(t *testing.T) {
	// Two tight clusters but 16 codes: no code may stay unused on data
	// that has enough distinct points.
	rng := rand.New(rand.NewPCG(2, 2))
	var data []float32
	for i := 0; i < 4000; i++ {
		data = append(data, float32(rng.NormFloat64()), float32(rng.NormFloat64()))
	}
	cb, err := Train(data, 2, Config{K: 16, Steps: 60, BatchSize: 512, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	codes := make([]int32, len(data)/2)
	cb.Assign(data, codes)
	used := map[int32]bool{}
	for _, c := range codes {
		used[c] = true
	}
	if len(used) != 16 {
		t.Errorf("%d of 16 codes used", len(used))
	}
}

func TestErrors(t *testing.T) {
	nan := float32(math.NaN())
	for _, tc := range []struct {
		name string
		f    func() error
		want string
	}{
		{"ragged", func() error { _, err := Train(make([]float32, 7), 2, Config{K: 1}); return err }, "whole vectors"},
		{"too few", func() error { _, err := Train(make([]float32, 6), 2, Config{K: 4}); return err }, "cannot train 4"},
		{"zero K", func() error { _, err := Train(make([]float32, 6), 2, Config{K: 0}); return err }, "K = 0"},
		{"NaN", func() error { _, err := Train([]float32{0, 1, nan, 2}, 2, Config{K: 1}); return err }, "vector 1 value 0 is NaN"},
		{"New size", func() error { _, err := New(2, 3, make([]float32, 5)); return err }, "needs 6 values"},
		{"New NaN", func() error { _, err := New(1, 2, []float32{1, nan}); return err }, "centroid 0 value 1"},
		{"Assign codes", func() error {
			cb, _ := New(1, 2, []float32{0, 0})
			_, err := cb.Assign(make([]float32, 4), make([]int32, 3))
			return err
		}, "3 codes for 2 vectors"},
	} {
		err := tc.f()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
}
