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

func TestEmbedding(t *testing.T) {
	ktest.ForEachDevice(t, func(t *testing.T, d *gpu.Device) {
		rng := rand.New(rand.NewSource(50))
		for _, c := range []struct {
			t, v, d int
			same    bool // every id the same
		}{
			{1, 1, 1, false},
			{63, 10, 7, false},
			{64, 100, 64, false},
			{65, 3, 130, false},
			{2049, 300, 12, false},
			{2049, 40, 5, true},
			{33, 70000, 4, false}, // ids above 65535
		} {
			t.Run(fmt.Sprint(c.t, c.v, c.d, c.same), func(t *testing.T) {
				ev := ktest.Rand(rng, c.v*c.d, 1)
				de0 := ktest.Rand(rng, c.v*c.d, 1)
				e := ktest.Tensor(t, d, "E", ev, c.v, c.d)
				out := ktest.Tensor(t, d, "out", nil, c.t, c.d)
				dout := ktest.Tensor(t, d, "dout", nil, c.t, c.d)
				de := ktest.Tensor(t, d, "dE", de0, c.v, c.d)
				op, err := nn.NewEmbedding(d, nn.EmbeddingArgs{E: e, Out: out, DOut: dout, DE: de})
				if err != nil {
					t.Fatal(err)
				}
				defer op.Release()
				want := ktest.F64(de0)
				for batch := 0; batch < 2; batch++ { // a second batch: the index is rebuilt
					ids := make([]uint32, c.t)
					for i := range ids {
						switch {
						case c.same:
							ids[i] = uint32(c.v - 1)
						case c.v == 70000:
							ids[i] = uint32(65530 + rng.Intn(c.v-65530))
						default:
							ids[i] = uint32(rng.Intn(c.v))
						}
					}
					dv := ktest.Rand(rng, c.t*c.d, 1)
					if err := dout.Upload(dv); err != nil {
						t.Fatal(err)
					}
					if err := op.Update(ids); err != nil {
						t.Fatal(err)
					}
					ktest.Poison(t, out)
					ktest.Run(t, d, func(r *gpu.Recorder) { op.RecordForward(r); op.RecordBackward(r) })
					wantOut := make([]float64, c.t*c.d)
					ref.Embedding(wantOut, ktest.F64(ev), ids, c.t, c.d)
					ref.EmbeddingBackward(want, ktest.F64(dv), ids, c.t, c.d)
					ktest.Close(t, "out", ktest.Download(t, out), wantOut, ktest.Tol{})
					ktest.Close(t, "dE", ktest.Download(t, de), want, ktest.Tol{Abs: 1e-5, Rel: 1e-5})
				}
			})
		}
	})
}

func TestEmbeddingForwardOnlyAndErrors(t *testing.T) {
	ktest.ForEachDevice(t, func(t *testing.T, d *gpu.Device) {
		ev := []float32{1, 2, 3, 4, 5, 6}
		e := ktest.Tensor(t, d, "E", ev, 3, 2)
		out := ktest.Tensor(t, d, "out", nil, 4, 2)
		op, err := nn.NewEmbedding(d, nn.EmbeddingArgs{E: e, Out: out})
		if err != nil {
			t.Fatal(err)
		}
		defer op.Release()
		ids := []uint32{2, 0, 2, 1}
		if err := op.Update(ids); err != nil {
			t.Fatal(err)
		}
		ktest.Run(t, d, func(r *gpu.Recorder) { op.RecordForward(r); op.RecordBackward(r) })
		ktest.Close(t, "out", ktest.Download(t, out), []float64{5, 6, 1, 2, 5, 6, 3, 4}, ktest.Tol{})

		err = op.Update([]uint32{0, 1, 3, 0})
		if err == nil || !strings.Contains(err.Error(), "ids[2] = 3") {
			t.Errorf("bad id: error %v, want one naming ids[2] = 3", err)
		}
		if err := op.Update([]uint32{0, 1}); err == nil {
			t.Error("2 ids for T = 4: no error")
		}
		// The failed updates uploaded nothing: the last good batch stands.
		ktest.Poison(t, out)
		ktest.Run(t, d, op.RecordForward)
		ktest.Close(t, "out after errors", ktest.Download(t, out), []float64{5, 6, 1, 2, 5, 6, 3, 4}, ktest.Tol{})

		// Backward-only (no Out): T from DOut; the forward records nothing.
		dout := ktest.Tensor(t, d, "dout", []float32{1, 2, 3, 4, 5, 6, 7, 8}, 4, 2)
		de := ktest.Tensor(t, d, "dE", []float32{0, 0, 0, 0, 100, 100}, 3, 2)
		bo, err := nn.NewEmbedding(d, nn.EmbeddingArgs{E: e, DOut: dout, DE: de})
		if err != nil {
			t.Fatal(err)
		}
		defer bo.Release()
		if err := bo.Update(ids); err != nil {
			t.Fatal(err)
		}
		ktest.Run(t, d, func(r *gpu.Recorder) { bo.RecordForward(r); bo.RecordBackward(r) })
		want := []float64{0, 0, 0, 0, 100, 100}
		ref.EmbeddingBackward(want, []float64{1, 2, 3, 4, 5, 6, 7, 8}, ids, 4, 2)
		ktest.Close(t, "backward-only dE", ktest.Download(t, de), want, ktest.Tol{})

		bad := ktest.Tensor(t, d, "bad", nil, 4, 3)
		for name, a := range map[string]nn.EmbeddingArgs{
			"no out, no dout":  {E: e, DE: ktest.Tensor(t, d, "dE2", nil, 3, 2)},
			"no out, dout 1-D": {E: e, DOut: ktest.Tensor(t, d, "dout1", nil, 8), DE: ktest.Tensor(t, d, "dE3", nil, 3, 2)},
			"out width":        {E: e, Out: bad},
			"dout shape":       {E: e, Out: out, DOut: bad, DE: ktest.Tensor(t, d, "dE", nil, 3, 2)},
			"de missing":       {E: e, Out: out, DOut: ktest.Tensor(t, d, "dout", nil, 4, 2)},
			"table 1-D":        {E: ktest.Tensor(t, d, "flat", nil, 6), Out: out},
			"out is table":     {E: e, Out: e},
		} {
			if _, err := nn.NewEmbedding(d, a); err == nil {
				t.Errorf("%s: no error", name)
			}
		}
	})
}
