package mom

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"mom/gpu"
	"mom/nn"
)

// gradError is the worst element error of got against want, relative to
// the tensor's largest |want|, and the relative L2 error.
func gradError(got []float32, want []float64) (worst, l2 float64) {
	scale := 1e-30
	for _, w := range want {
		scale = math.Max(scale, math.Abs(w))
	}
	var num, den float64
	for i := range want {
		diff := math.Abs(float64(got[i]) - want[i])
		if math.IsNaN(diff) {
			return math.Inf(1), math.Inf(1)
		}
		worst = math.Max(worst, diff/scale)
		num += diff * diff
		den += want[i] * want[i]
	}
	return worst, math.Sqrt(num / math.Max(den, 1e-300))
}

// The tolerances of a mixed-precision step against the float64 reference:
// every GEMM and conv input rounded to half (relative error up to 2^-11
// each), and every dY entering a GEMM's backward too, carrying a loss
// scale of 2^12 as training does (without it the small gradients of
// dt_proj and x_proj's dt part lose digits in float16's subnormals).
// Measured on lavapipe in the cases below: losses within 2e-5 relative,
// gradients within 3.2e-3 of the tensor's largest element, relative L2
// error below 2e-3 (without the loss scale: 1e-2 and 1.3e-2). The bounds
// leave about 3x (5x for the losses).
const (
	f16LossTol  = 1e-4 // relative
	f16WorstTol = 1e-2
	f16L2Tol    = 6e-3
	f16Scale    = 4096
)

// f16RefCase is one reference step, computed once for both runtimes.
type f16RefCase struct {
	c        Config
	b        *Batch
	params   map[string][]float64
	wantLoss []float64
	want     map[string][]float64
}

// TestModelF16MatchesReference: one mixed-precision step of the tiny model
// (float16 copies into every GEMM and the conv, float32 everywhere else,
// the loss gradient scaled by 2^12 and the gradients unscaled here) gives
// the float64 reference model's losses and every parameter gradient within
// the float16 tolerances above: MoM with continuous patches, and dense
// with three modalities.
func TestModelF16MatchesReference(t *testing.T) {
	const B, L = 2, 24
	var cases []f16RefCase
	for _, cs := range []struct {
		setting Setting
		splits  Splits
	}{{Transfusion, AllSplits}, {ThreeModal, Splits{}}} {
		c, err := Preset("tiny", cs.setting, cs.splits)
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(31, uint64(len(cs.setting))))
		k := f16RefCase{c: c, b: randomBatch(c, B, L, rng), params: float32Params(c, rng)}
		if k.wantLoss, k.want, err = RefStep(c, k.params, k.b, B, L, 1); err != nil {
			t.Fatal(err)
		}
		cases = append(cases, k)
	}
	forEachDevice(t, func(t *testing.T, d *gpu.Device) {
		for _, k := range cases {
			t.Run(fmt.Sprintf("%s/%s", k.c.Setting, k.c.Splits), func(t *testing.T) {
				ls, err := nn.NewLossScale(d, nn.LossScaleArgs{Init: f16Scale})
				if err != nil {
					t.Fatal(err)
				}
				defer ls.Release()
				gotLoss, gotGrads := gpuStepWith(t, d, k.c, ModelOptions{Precision: nn.F16, LossScale: ls}, k.params, k.b, B, L)
				lossErr := 0.0
				for i := range k.wantLoss {
					e := math.Abs(float64(gotLoss[i]) - k.wantLoss[i])
					if e > f16LossTol*math.Abs(k.wantLoss[i])+1e-5 {
						t.Errorf("loss record[%d] = %g, reference %g", i, gotLoss[i], k.wantLoss[i])
					}
					lossErr = math.Max(lossErr, e/math.Max(math.Abs(k.wantLoss[i]), 1e-3))
				}
				maxWorst, maxL2 := 0.0, 0.0
				for _, s := range k.c.ParamSpecs() {
					g := gotGrads[s.Name]
					for i := range g {
						g[i] /= f16Scale
					}
					worst, l2 := gradError(g, k.want[s.Name])
					maxWorst, maxL2 = math.Max(maxWorst, worst), math.Max(maxL2, l2)
					if worst > f16WorstTol || l2 > f16L2Tol {
						t.Errorf("%s: worst element %.3g of the largest, relative L2 error %.3g (tolerances %g, %g)", s.Name, worst, l2, f16WorstTol, f16L2Tol)
					}
				}
				t.Logf("losses within %.2g relative; worst gradient element %.2g of its tensor's largest, worst relative L2 error %.2g", lossErr, maxWorst, maxL2)
			})
		}
	})
}

// TestModelF16Recompute: in mixed precision too, recomputing the conv and
// dt_proj outputs in the backward gives the same losses and gradients bit
// for bit.
func TestModelF16Recompute(t *testing.T) {
	forEachDevice(t, func(t *testing.T, d *gpu.Device) {
		c, err := Preset("tiny", ThreeModal, AllSplits)
		if err != nil {
			t.Fatal(err)
		}
		const B, L = 2, 40
		rng := rand.New(rand.NewPCG(7, 8))
		b := randomBatch(c, B, L, rng)
		params := float32Params(c, rng)
		keepLoss, keepGrads := gpuStepWith(t, d, c, ModelOptions{Precision: nn.F16}, params, b, B, L)
		recLoss, recGrads := gpuStepWith(t, d, c, ModelOptions{Precision: nn.F16, Recompute: true}, params, b, B, L)
		for i := range keepLoss {
			if math.Float32bits(keepLoss[i]) != math.Float32bits(recLoss[i]) {
				t.Errorf("loss record[%d]: %g recomputing, %g keeping", i, recLoss[i], keepLoss[i])
			}
		}
		for name, g := range keepGrads {
			for i := range g {
				if math.Float32bits(g[i]) != math.Float32bits(recGrads[name][i]) {
					t.Errorf("%s[%d]: %g recomputing, %g keeping", name, i, recGrads[name][i], g[i])
					break
				}
			}
		}
	})
}

// TestModelF16LossScale: the backward's gradients carry the loss scale:
// at 2^10 and 2^14 (both keep the small dY values out of float16's
// subnormals) they agree, divided by their scales, within 1e-3 of each
// tensor's largest element; the losses are the same bit for bit, and no
// cast overflows. At 2^24 the scaled loss gradient leaves the float16
// range and the casts raise the overflow flag.
func TestModelF16LossScale(t *testing.T) {
	forEachDevice(t, func(t *testing.T, d *gpu.Device) {
		c, err := Preset("tiny", Transfusion, AllSplits)
		if err != nil {
			t.Fatal(err)
		}
		const B, L = 2, 24
		rng := rand.New(rand.NewPCG(41, 42))
		b := randomBatch(c, B, L, rng)
		params := float32Params(c, rng)
		var firstLoss []float32
		var first map[string][]float32
		for _, sc := range []struct {
			scale    float64
			overflow bool
		}{{1 << 10, false}, {1 << 14, false}, {1 << 24, true}} {
			ls, err := nn.NewLossScale(d, nn.LossScaleArgs{Init: sc.scale})
			if err != nil {
				t.Fatal(err)
			}
			loss, grads := gpuStepWith(t, d, c, ModelOptions{Precision: nn.F16, LossScale: ls}, params, b, B, L)
			flag, err := ls.Overflow().DownloadU32()
			ls.Release()
			if err != nil {
				t.Fatal(err)
			}
			if (flag[0] != 0) != sc.overflow {
				t.Errorf("scale %g: overflow flag %d, want overflow %v", sc.scale, flag[0], sc.overflow)
			}
			if sc.overflow {
				continue
			}
			for name, g := range grads {
				for i := range g {
					g[i] = float32(float64(g[i]) / sc.scale)
				}
				grads[name] = g
			}
			if first == nil {
				firstLoss, first = loss, grads
				continue
			}
			for i := range loss {
				if math.Float32bits(loss[i]) != math.Float32bits(firstLoss[i]) {
					t.Errorf("scale %g: loss record[%d] %g, at the first scale %g", sc.scale, i, loss[i], firstLoss[i])
				}
			}
			for name, g := range grads {
				want := make([]float64, len(g))
				for i, x := range first[name] {
					want[i] = float64(x)
				}
				if worst, _ := gradError(g, want); worst > 1e-3 {
					t.Errorf("scale %g: %s / scale differs from the first scale's by %.3g of its largest element", sc.scale, name, worst)
				}
			}
		}
	})
}

// TestModelF16ReleaseFreesEverything: mixed-precision models (with a loss
// scale) created and released many times leave the live object counts
// where they started.
func TestModelF16ReleaseFreesEverything(t *testing.T) {
	forEachDevice(t, func(t *testing.T, d *gpu.Device) {
		c, err := Preset("tiny", Transfusion, AllSplits)
		if err != nil {
			t.Fatal(err)
		}
		ls, err := nn.NewLossScale(d, nn.LossScaleArgs{})
		if err != nil {
			t.Fatal(err)
		}
		defer ls.Release()
		cycle := func() {
			m, err := NewModelWith(d, c, 4, 128, ModelOptions{Precision: nn.F16, LossScale: ls, Recompute: true})
			if err != nil {
				t.Fatal(err)
			}
			m.Release()
			m.Release()
		}
		cycle()
		before := d.LiveObjects()
		for i := 0; i < 20; i++ {
			cycle()
		}
		after := d.LiveObjects()
		for _, k := range []string{"buffer", "bind group", "pipeline", "shader", "texture"} {
			if after[k] != before[k] {
				t.Errorf("after 20 models %d live %s objects, %d before", after[k], k, before[k])
			}
		}
	})
}

// TestModelF16NeedsShaderF16: on an adapter without shader-f16 (Dawn on
// the H200, here its dry-run profile) a mixed-precision model is refused
// with an error that names the feature, before anything is allocated.
func TestModelF16NeedsShaderF16(t *testing.T) {
	d, err := gpu.OpenDryRun(gpu.Profiles["h200"])
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	c, err := Preset("tiny", ThreeModal, AllSplits)
	if err != nil {
		t.Fatal(err)
	}
	before := d.LiveObjects()
	m, err := NewModelWith(d, c, 2, 16, ModelOptions{Precision: nn.F16})
	if err == nil {
		m.Release()
		t.Fatal("no error")
	}
	if !strings.Contains(err.Error(), string(gpu.FeatureShaderF16)) {
		t.Errorf("error %q does not name %s", err, gpu.FeatureShaderF16)
	}
	if after := d.LiveObjects(); fmt.Sprint(before) != fmt.Sprint(after) {
		t.Errorf("live objects %v -> %v", before, after)
	}
	// float32 is fine there.
	m, err = NewModelWith(d, c, 2, 16, ModelOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m.Release()
}
