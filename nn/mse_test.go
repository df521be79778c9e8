package nn_test

import (
	"fmt"
	"math/rand"
	"strings"
	"testing"

	"mom/gpu"
	"mom/nn"
	"mom/nn/internal/ktest"
	"mom/nn/ref"
)

func TestMSE(t *testing.T) {
	ktest.ForEachDevice(t, func(t *testing.T, d *gpu.Device) {
		rng := rand.New(rand.NewSource(70))
		for _, c := range []struct{ t, p int }{{1, 1}, {63, 7}, {64, 64}, {65, 130}, {2049, 48}, {5, 1000}} {
			t.Run(fmt.Sprint(c.t, c.p), func(t *testing.T) {
				const groups = 3 // 0: weight 0 (text), 1: image, 2: no rows
				n := c.t * c.p
				pv, tv := ktest.Rand(rng, n, 1), ktest.Rand(rng, n, 1)
				pred := ktest.Tensor(t, d, "pred", pv, c.t, c.p)
				target := ktest.Tensor(t, d, "target", tv, c.t, c.p)
				dpred := ktest.Tensor(t, d, "dpred", nil, c.t, c.p)
				ktest.Poison(t, dpred)
				op, err := nn.NewMSE(d, nn.MSEArgs{Pred: pred, Target: target, DPred: dpred, Groups: groups})
				if err != nil {
					t.Fatal(err)
				}
				defer op.Release()
				modality := make([]uint32, c.t)
				for i := range modality {
					modality[i] = uint32(rng.Intn(2))
				}
				modality[0] = 1
				weights := []float32{0, 0.3, 2}
				if err := op.Update(modality, weights); err != nil {
					t.Fatal(err)
				}
				ktest.Poison(t, op.LossSums())
				ktest.Poison(t, op.Counts())
				ktest.Run(t, d, op.Record)
				wantD := make([]float64, n)
				wantL := make([]float64, c.t)
				sums := make([]float64, groups)
				counts := make([]float64, groups)
				ref.MSE(wantD, wantL, sums, counts, ktest.F64(pv), ktest.F64(tv), modality, ktest.F64(weights), c.t, c.p, groups)
				ktest.Close(t, "dpred", ktest.Download(t, dpred), wantD, ktest.Tol{Abs: 1e-7, Rel: 1e-5})
				ktest.Close(t, "row losses", ktest.Download(t, op.RowLosses()), wantL, ktest.Tol{Abs: 1e-6, Rel: 1e-5})
				ktest.Close(t, "loss sums", ktest.Download(t, op.LossSums()), sums, ktest.Tol{Abs: 1e-5, Rel: 1e-5})
				ktest.Close(t, "counts", ktest.Download(t, op.Counts()), counts, ktest.Tol{})
			})
		}
	})
}

func TestMSEErrors(t *testing.T) {
	ktest.ForEachDevice(t, func(t *testing.T, d *gpu.Device) {
		pred := ktest.Tensor(t, d, "pred", nil, 2, 3)
		target := ktest.Tensor(t, d, "target", nil, 2, 3)
		dpred := ktest.Tensor(t, d, "dpred", nil, 2, 3)
		op, err := nn.NewMSE(d, nn.MSEArgs{Pred: pred, Target: target, DPred: dpred, Groups: 2})
		if err != nil {
			t.Fatal(err)
		}
		defer op.Release()
		for name, c := range map[string]struct {
			m    []uint32
			w    []float32
			want string
		}{
			"modality": {[]uint32{0, 2}, []float32{1, 1}, "modality[1] = 2"},
			"lengths":  {[]uint32{0}, []float32{1, 1}, "1 modalities"},
			"weights":  {[]uint32{0, 1}, []float32{1}, "1 weights"},
		} {
			if err := op.Update(c.m, c.w); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%s: error %v, want one containing %q", name, err, c.want)
			}
		}
		bad := ktest.Tensor(t, d, "bad", nil, 3, 2)
		for name, a := range map[string]nn.MSEArgs{
			"target shape": {Pred: pred, Target: bad, DPred: dpred, Groups: 1},
			"dpred shape":  {Pred: pred, Target: target, DPred: bad, Groups: 1},
			"aliased":      {Pred: pred, Target: target, DPred: pred, Groups: 1},
			"no groups":    {Pred: pred, Target: target, DPred: dpred},
		} {
			if _, err := nn.NewMSE(d, a); err == nil {
				t.Errorf("%s: no error", name)
			}
		}
	})
}
