package trainer

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"mom/gpu"
	"mom/gpu/gputest"
	"mom/mom"
	"mom/nn"
)

// f16Device is the device the mixed-precision training tests run on: the
// first runtime of $MOM_RUNTIMES. The loop is the same on every runtime;
// the kernels it adds are tested against their twins on both (package nn).
func f16Device(t *testing.T) *gpu.Device {
	return gputest.Must(t, gputest.Runtimes()[0])
}

// trainRecords trains o and returns its training records by step.
func trainRecords(t *testing.T, d *gpu.Device, o Options) (*Result, map[int]Record) {
	t.Helper()
	res, err := Train(context.Background(), d, o)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := ReadMetrics(filepath.Join(o.Out, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]Record{}
	for _, r := range recs {
		if r["split"] == "train" {
			out[int(r["step"].(float64))] = r
		}
	}
	return res, out
}

// f16TrackSteps and f16TrackTol: TestF16TracksF32 trains 200 steps, as few
// as cover the steep part of the tiny model's curve (the loss falls from
// 6.3 to about 3.3 nats) and, with the loss scale doubling every 25 clean
// steps, several rounds of natural overflow, skip and back-off. Measured on
// lavapipe: the 25-step window means of f16 stay within 0.016 nats of
// f32's (identical to 4 digits before the first skip), and the last
// window's per-modality means within 0.02. The tolerance leaves 3x.
const (
	f16TrackSteps = 200
	f16TrackTol   = 0.05 // nats, on 25-step means
)

// TestF16TracksF32: the tiny Transfusion MoM model (discrete text, and
// diffusion on continuous image patches: every float16 path, the scaled
// loss gradients of both losses) trained in mixed precision follows the
// float32 run's loss curve within f16TrackTol, the loss scale grows and
// backs off (some steps skipped, never many), and the curve falls.
func TestF16TracksF32(t *testing.T) {
	d := f16Device(t)
	root := t.TempDir()
	curves := map[string]map[int]Record{}
	var res16 *Result
	for _, prec := range []string{"f32", "f16"} {
		o := tinyOptions(t, mom.Transfusion, mom.AllSplits, filepath.Join(root, prec))
		o.Steps, o.EvalEvery, o.CkptEvery = f16TrackSteps, 0, 0
		o.Precision = prec
		if prec == "f16" {
			o.LossScaleGrowth = 25
		}
		res, recs := trainRecords(t, d, o)
		curves[prec] = recs
		if prec == "f16" {
			res16 = res
		}
	}
	const win = 25
	mean := func(prec, key string, from int) float64 {
		s := 0.0
		for k := from; k < from+win; k++ {
			v, ok := curves[prec][k][key].(float64)
			if !ok {
				t.Fatalf("%s step %d has no %s", prec, k, key)
			}
			s += v
		}
		return s / win
	}
	worst := 0.0
	for from := 1; from+win-1 <= f16TrackSteps; from += win {
		keys := []string{"loss"}
		if from+win-1 == f16TrackSteps {
			keys = append(keys, "loss_text", "loss_image")
		}
		for _, k := range keys {
			a, b := mean("f32", k, from), mean("f16", k, from)
			worst = math.Max(worst, math.Abs(a-b))
			if math.Abs(a-b) > f16TrackTol {
				t.Errorf("steps %d-%d: mean %s %.4f in f16, %.4f in f32 (tolerance %g)", from, from+win-1, k, b, a, f16TrackTol)
			}
		}
	}
	first, last := mean("f32", "loss", 1), mean("f32", "loss", f16TrackSteps-win+1)
	t.Logf("loss %.3f -> %.3f (f32); f16 within %.3g nats on 25-step means; %d of %d f16 steps skipped", first, last, worst, res16.Skipped, f16TrackSteps)
	if !(last < first-2) {
		t.Errorf("the f32 loss fell from %.3f to %.3f only: the comparison says little", first, last)
	}
	if res16.Skipped < 1 || res16.Skipped > f16TrackSteps/20 {
		t.Errorf("%d steps skipped: want some (the scale grows into overflow) and few", res16.Skipped)
	}
	scales := map[float64]bool{}
	for _, r := range curves["f16"] {
		scales[r["loss_scale"].(float64)] = true
	}
	if len(scales) < 3 {
		t.Errorf("the loss scale took %d values, want it to move", len(scales))
	}
}

// snapshot downloads every parameter and both AdamW moments.
func snapshot(t *testing.T, tr *trainer) map[string][]float32 {
	out := map[string][]float32{}
	for i, p := range tr.m.Params {
		for _, x := range []struct {
			k string
			t *nn.Tensor
		}{{p.Spec.Name, p.W}, {"m." + p.Spec.Name, tr.mstate[i]}, {"v." + p.Spec.Name, tr.vstate[i]}} {
			v, err := x.t.Download()
			if err != nil {
				t.Error(err)
			}
			out[x.k] = v
		}
	}
	return out
}

func sameBits(a, b map[string][]float32) string {
	for k, v := range a {
		for i := range v {
			if math.Float32bits(v[i]) != math.Float32bits(b[k][i]) {
				return fmt.Sprintf("%s[%d] %g -> %g", k, i, v[i], b[k][i])
			}
		}
	}
	return ""
}

// TestF16SkipsOverflow: an overflow skips the step on the device: with the
// loss scale at 2^24 the first steps' scaled gradients leave the float16
// range, and each of them leaves the parameters and AdamW moments exactly
// as initialised while the scale halves, until a step is clean; a flag
// forced up mid-run (as a cast raises it) skips that step alike. The
// metrics record each skip and the scale of every step, the gradient
// norm only for clean steps, and the run goes on to lower the loss.
func TestF16SkipsOverflow(t *testing.T) {
	d := f16Device(t)
	o := tinyOptions(t, mom.ThreeModal, mom.AllSplits, t.TempDir())
	o.Steps, o.EvalEvery, o.CkptEvery, o.Warmup = 30, 0, 0, 2
	o.Precision, o.LossScale = "f16", nn.MaxLossScale
	// The parameters as initialised.
	m, err := mom.NewModel(d, o.Config, 1, 8)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.InitParams(o.Seed); err != nil {
		t.Fatal(err)
	}
	init := map[string][]float32{}
	for _, p := range m.Params {
		v, err := p.W.Download()
		if err != nil {
			t.Fatal(err)
		}
		init[p.Spec.Name] = v
	}
	m.Release()
	const forced = 20
	var prev map[string][]float32
	var snaps []map[string][]float32
	testHookAfterStep = func(tr *trainer, s int) {
		cur := snapshot(t, tr)
		snaps = append(snaps, cur)
		if s == forced-1 {
			if err := tr.ls.Overflow().UploadU32([]uint32{1}); err != nil {
				t.Error(err)
			}
			prev = cur
		}
		if s == forced {
			if diff := sameBits(prev, cur); diff != "" {
				t.Errorf("the forced skip at step %d changed %s", s, diff)
			}
		}
	}
	defer func() { testHookAfterStep = nil }()
	res, recs := trainRecords(t, d, o)
	skippedAtStart := 0
	for s := 1; recs[s]["skipped"] == 1.0; s++ {
		skippedAtStart++
		if want := nn.MaxLossScale / math.Pow(2, float64(s-1)); recs[s]["loss_scale"] != want {
			t.Errorf("step %d: loss scale %v, want %g", s, recs[s]["loss_scale"], want)
		}
		if _, ok := recs[s]["grad_norm"]; ok {
			t.Errorf("step %d was skipped but has a gradient norm", s)
		}
		for name, v := range init {
			if diff := sameBits(map[string][]float32{name: v}, snaps[s-1]); diff != "" {
				t.Fatalf("skipped step %d changed the initial parameters: %s", s, diff)
			}
			for _, x := range snaps[s-1]["m."+name] {
				if x != 0 {
					t.Fatalf("skipped step %d moved AdamW's moment of %s", s, name)
				}
			}
		}
	}
	if skippedAtStart < 1 || skippedAtStart > 12 {
		t.Fatalf("%d steps skipped at the start at scale 2^24, want 1 to 12", skippedAtStart)
	}
	k := skippedAtStart + 1 // the first clean step
	if recs[k]["skipped"] != 0.0 || recs[k]["grad_norm"] == nil {
		t.Errorf("step %d: %v, want a clean step with a gradient norm", k, recs[k])
	}
	if diff := sameBits(snaps[k-2], snaps[k-1]); diff == "" {
		t.Errorf("the first clean step %d changed nothing", k)
	}
	if recs[forced]["skipped"] != 1.0 {
		t.Errorf("step %d (flag forced): skipped %v, want 1", forced, recs[forced]["skipped"])
	}
	if a, b := recs[forced]["loss_scale"].(float64), recs[forced+1]["loss_scale"].(float64); b != a/2 {
		t.Errorf("loss scale %g at the forced skip, %g after it: want halved", a, b)
	}
	skipped := 0
	for _, r := range recs {
		if r["skipped"] == 1.0 {
			skipped++
		}
	}
	if res.Skipped != skipped || skipped < skippedAtStart+1 {
		t.Errorf("Result.Skipped %d, %d skipped records, want them equal and at least %d", res.Skipped, skipped, skippedAtStart+1)
	}
	if a, b := recs[1]["loss"].(float64), recs[o.Steps]["loss"].(float64); !(b < a) {
		t.Errorf("loss %.3f -> %.3f: not lowered after the skips", a, b)
	}
}

// TestF16ResumeEqualsUninterrupted: a mixed-precision run stopped and
// resumed from a checkpoint gives the uninterrupted run's records bit for
// bit, its loss scale and skips included (the checkpoint holds the scale's
// state; here it doubles every 3 clean steps, so it moves inside the run).
func TestF16ResumeEqualsUninterrupted(t *testing.T) {
	d := f16Device(t)
	root := t.TempDir()
	a := tinyOptions(t, mom.ThreeModal, mom.AllSplits, filepath.Join(root, "a"))
	a.Steps, a.EvalEvery, a.CkptEvery, a.Warmup = 16, 8, 8, 2
	a.Precision, a.LossScale, a.LossScaleGrowth = "f16", 1<<20, 3
	_, ra := trainRecords(t, d, a)
	b := a
	b.Out = filepath.Join(root, "b")
	b.StopAfter = 8
	trainRecords(t, d, b)
	b.StopAfter, b.Resume = 0, true
	b.Precision, b.LossScale, b.LossScaleGrowth = "", 0, 3 // the precision comes from the run folder, the scale from the checkpoint
	if o, err := ResumeOptions(b, map[string]bool{}); err != nil {
		t.Fatal(err)
	} else if o.Precision != "f16" {
		t.Fatalf("resumed precision %q, want the run's f16", o.Precision)
	} else {
		b = o
	}
	_, rb := trainRecords(t, d, b)
	scales := map[any]bool{}
	for s := 1; s <= a.Steps; s++ {
		for _, k := range []string{"loss", "grad_norm", "loss_scale", "skipped", "lr"} {
			if fmt.Sprint(ra[s][k]) != fmt.Sprint(rb[s][k]) {
				t.Errorf("step %d %s: uninterrupted %v, resumed %v", s, k, ra[s][k], rb[s][k])
			}
		}
		scales[ra[s]["loss_scale"]] = true
	}
	if len(scales) < 2 {
		t.Errorf("the loss scale never moved (%v): the test checks little", scales)
	}
}

// TestF16RefusedWithoutShaderF16: on a device without shader-f16 (here
// lavapipe opened without the feature; Dawn on NVIDIA is such an
// adapter) --precision f16 is refused with an error that names the
// feature, before the run folder is made.
func TestF16RefusedWithoutShaderF16(t *testing.T) {
	d, err := gpu.Open(gpu.Options{Runtime: gputest.Runtimes()[0], Adapter: -1, Features: []gpu.Feature{}})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d.Has(gpu.FeatureShaderF16) {
		t.Fatal("the device has shader-f16 although not asked for it")
	}
	o := tinyOptions(t, mom.ThreeModal, mom.AllSplits, filepath.Join(t.TempDir(), "run"))
	o.Precision = "f16"
	_, err = Train(context.Background(), d, o)
	if err == nil || !strings.Contains(err.Error(), string(gpu.FeatureShaderF16)) || !strings.Contains(err.Error(), "--precision f16") {
		t.Fatalf("got %v, want an error naming --precision f16 and %s", err, gpu.FeatureShaderF16)
	}
	if _, err := os.Stat(o.Out); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the run folder was made: %v", err)
	}
	if _, err := BenchStepsWith(d, []mom.Config{o.Config}, BenchOptions{Batch: 2, Len: 16, Steps: 1, Rounds: 1, Precision: "f16"}); err == nil ||
		!strings.Contains(err.Error(), string(gpu.FeatureShaderF16)) {
		t.Errorf("bench step: got %v, want an error naming %s", err, gpu.FeatureShaderF16)
	}
}
