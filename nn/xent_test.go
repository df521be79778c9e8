package nn_test

import (
	"fmt"
	"math"
	"math/rand"
	"strings"
	"testing"

	"mom/gpu"
	"mom/nn"
	"mom/nn/internal/ktest"
	"mom/nn/ref"
)

func TestCrossEntropy(t *testing.T) {
	ktest.ForEachDevice(t, func(t *testing.T, d *gpu.Device) {
		rng := rand.New(rand.NewSource(60))
		for _, c := range []struct {
			t, v    int
			inplace bool
			limit   uint64 // a lowered storage binding limit: logits bound in row spans
		}{
			{1, 1, false, 0},
			{63, 7, true, 0},
			{64, 64, false, 0},
			{65, 130, true, 0},
			{2049, 33, false, 0},
			{2049, 12, true, 0},
			{3, 65536, false, 0},
			{2, 65536, true, 0},
			{2, 65535, false, 0},
			{130, 33, false, 64 * 33 * 4},     // spans of 64, 64 and 2 rows
			{130, 36, true, 64*36*4 + 100},    // vec4, in place
			{200, 20, false, 128*20*4 + 5000}, // spans of 128 and 72 rows
		} {
			t.Run(fmt.Sprint(c.t, c.v, c.inplace, c.limit), func(t *testing.T) {
				if c.limit > 0 {
					old := d.Limits.MaxStorageBufferBindingSize
					d.Limits.MaxStorageBufferBindingSize = c.limit
					defer func() { d.Limits.MaxStorageBufferBindingSize = old }()
				}
				const groups = 3 // group 2 never appears
				n := c.t * c.v
				lv := ktest.Rand(rng, n, 5)
				logits := ktest.Tensor(t, d, "logits", lv, c.t, c.v)
				dlogits := logits
				if !c.inplace {
					dlogits = ktest.Tensor(t, d, "dlogits", nil, c.t, c.v)
					ktest.Poison(t, dlogits)
				}
				op, err := nn.NewCrossEntropy(d, nn.CrossEntropyArgs{Logits: logits, DLogits: dlogits, Groups: groups})
				if err != nil {
					t.Fatal(err)
				}
				defer op.Release()
				targets := make([]uint32, c.t)
				modality := make([]uint32, c.t)
				for i := range targets {
					targets[i] = uint32(rng.Intn(c.v))
					modality[i] = uint32(rng.Intn(2))
				}
				if c.t > 1 {
					targets[c.t/2] = nn.IgnoreIndex
				}
				if c.t > 3 {
					targets[c.t-1] = uint32(c.v - 1)
					targets[0] = 0
				}
				weights := []float32{0.25, 1.5, 7}
				if err := op.Update(targets, modality, weights); err != nil {
					t.Fatal(err)
				}
				ktest.Poison(t, op.LossSums())
				ktest.Poison(t, op.Counts())
				ktest.Run(t, d, op.Record)

				wantD := make([]float64, n)
				wantL := make([]float64, c.t)
				sums := make([]float64, groups)
				counts := make([]float64, groups)
				ref.CrossEntropy(wantD, wantL, sums, counts, ktest.F64(lv), targets, modality, ktest.F64(weights), c.t, c.v, groups)
				ktest.Close(t, "dlogits", ktest.Download(t, dlogits), wantD, ktest.Tol{Abs: 1e-6, Rel: 1e-4})
				ktest.Close(t, "row losses", ktest.Download(t, op.RowLosses()), wantL, ktest.Tol{Abs: 2e-5, Rel: 1e-5})
				ktest.Close(t, "loss sums", ktest.Download(t, op.LossSums()), sums, ktest.Tol{Abs: 1e-4, Rel: 1e-5})
				ktest.Close(t, "counts", ktest.Download(t, op.Counts()), counts, ktest.Tol{})
				if sums[2] != 0 || counts[2] != 0 {
					t.Fatalf("reference: empty group has sum %g count %g", sums[2], counts[2])
				}
			})
		}
	})
}

func TestCrossEntropyDeterministic(t *testing.T) {
	ktest.ForEachDevice(t, func(t *testing.T, d *gpu.Device) {
		rng := rand.New(rand.NewSource(61))
		const rows, v = 300, 1000
		logits := ktest.Tensor(t, d, "logits", ktest.Rand(rng, rows*v, 3), rows, v)
		dl := ktest.Tensor(t, d, "dlogits", nil, rows, v)
		op, err := nn.NewCrossEntropy(d, nn.CrossEntropyArgs{Logits: logits, DLogits: dl, Groups: 2})
		if err != nil {
			t.Fatal(err)
		}
		defer op.Release()
		tg, m := make([]uint32, rows), make([]uint32, rows)
		for i := range tg {
			tg[i], m[i] = uint32(rng.Intn(v)), uint32(i%2)
		}
		if err := op.Update(tg, m, []float32{1, 1}); err != nil {
			t.Fatal(err)
		}
		var first []float32
		for run := 0; run < 3; run++ {
			ktest.Run(t, d, op.Record)
			got := ktest.Download(t, op.LossSums())
			if first == nil {
				first = got
			}
			for g := range got {
				if math.Float32bits(got[g]) != math.Float32bits(first[g]) {
					t.Fatalf("run %d: loss sums %v, first run %v", run, got, first)
				}
			}
		}
	})
}

func TestCrossEntropyErrors(t *testing.T) {
	ktest.ForEachDevice(t, func(t *testing.T, d *gpu.Device) {
		logits := ktest.Tensor(t, d, "logits", make([]float32, 8), 2, 4)
		dl := ktest.Tensor(t, d, "dlogits", nil, 2, 4)
		op, err := nn.NewCrossEntropy(d, nn.CrossEntropyArgs{Logits: logits, DLogits: dl, Groups: 2})
		if err != nil {
			t.Fatal(err)
		}
		defer op.Release()
		if err := op.Update([]uint32{1, 3}, []uint32{0, 1}, []float32{0.5, 0.5}); err != nil {
			t.Fatal(err)
		}
		for name, c := range map[string]struct {
			tg, m []uint32
			w     []float32
			want  string
		}{
			"target":   {[]uint32{1, 4}, []uint32{0, 0}, []float32{1, 1}, "targets[1] = 4"},
			"modality": {[]uint32{1, 2}, []uint32{0, 2}, []float32{1, 1}, "modality[1] = 2"},
			"weight":   {[]uint32{1, 2}, []uint32{0, 1}, []float32{1, float32(math.Inf(1))}, "weights[1]"},
			"lengths":  {[]uint32{1}, []uint32{0, 1}, []float32{1, 1}, "1 targets"},
			"groups":   {[]uint32{1, 2}, []uint32{0, 1}, []float32{1}, "1 weights"},
		} {
			err := op.Update(c.tg, c.m, c.w)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%s: error %v, want one containing %q", name, err, c.want)
			}
		}
		// Nothing was uploaded by the failed updates.
		ktest.Run(t, d, op.Record)
		ktest.Close(t, "counts", ktest.Download(t, op.Counts()), []float64{1, 1}, ktest.Tol{})
		ktest.Close(t, "sums", ktest.Download(t, op.LossSums()), []float64{math.Log(4), math.Log(4)}, ktest.Tol{Rel: 1e-6})
		ktest.Close(t, "dlogits", ktest.Download(t, dl), []float64{0.125, -0.375, 0.125, 0.125, 0.125, 0.125, 0.125, -0.375}, ktest.Tol{Abs: 1e-7})

		bad := ktest.Tensor(t, d, "bad", nil, 4, 2)
		for name, a := range map[string]nn.CrossEntropyArgs{
			"dlogits shape": {Logits: logits, DLogits: bad, Groups: 1},
			"no groups":     {Logits: logits, DLogits: dl},
			"1-D logits":    {Logits: ktest.Tensor(t, d, "flat", nil, 8), DLogits: dl, Groups: 1},
			"vocabulary":    {Logits: ktest.Tensor(t, d, "big", nil, 1, 65537), DLogits: ktest.Tensor(t, d, "bigd", nil, 1, 65537), Groups: 1},
		} {
			if _, err := nn.NewCrossEntropy(d, a); err == nil {
				t.Errorf("%s: no error", name)
			}
		}
	})
}
