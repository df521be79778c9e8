// Package ktest is the harness for kernel tests: a device per WebGPU runtime,
// random inputs, and comparison of GPU float32 results against float64
// reference results with a per-tensor tolerance.
package ktest

import (
	"fmt"
	"math"
	"math/rand"
	"testing"

	"mom/gpu"
	"mom/gpu/gputest"
	"mom/nn"
)

// Runtimes are those named in $MOM_RUNTIMES, default both (see gputest).
func Runtimes() []gpu.Runtime { return gputest.Runtimes() }

// Device returns the shared device of runtime rt.
func Device(rt gpu.Runtime) (*gpu.Device, error) { return gputest.Device(rt) }

// ForEachDevice runs fn as a subtest per runtime with its shared device.
func ForEachDevice(t *testing.T, fn func(t *testing.T, d *gpu.Device)) {
	t.Helper()
	gputest.ForEachDevice(t, fn)
}

// Rand returns n values drawn uniformly from [-scale, scale).
func Rand(rng *rand.Rand, n int, scale float64) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = float32((2*rng.Float64() - 1) * scale)
	}
	return out
}

// F64 widens float32 values.
func F64(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

// F32 narrows float64 values.
func F32(v []float64) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x)
	}
	return out
}

// Tol is a per-tensor tolerance: an element passes when
// |got-want| <= Abs + Rel*|want|.
type Tol struct{ Abs, Rel float64 }

// Close fails the test if got and want differ beyond tol anywhere, or if got
// has a NaN or Inf. It reports the worst element and the relative L2 error.
func Close(t testing.TB, name string, got []float32, want []float64, tol Tol) {
	t.Helper()
	if err := Compare(got, want, tol); err != nil {
		t.Errorf("%s: %v", name, err)
	}
}

// Compare is Close as an error.
func Compare(got []float32, want []float64, tol Tol) error {
	if len(got) != len(want) {
		return fmt.Errorf("%d values, want %d", len(got), len(want))
	}
	worst, worstI := 0.0, -1
	var num, den float64
	for i := range got {
		g := float64(got[i])
		if math.IsNaN(g) || math.IsInf(g, 0) {
			return fmt.Errorf("element %d is %v (want %g)", i, g, want[i])
		}
		diff := math.Abs(g - want[i])
		num += diff * diff
		den += want[i] * want[i]
		if excess := diff / (tol.Abs + tol.Rel*math.Abs(want[i])); excess > worst {
			worst, worstI = excess, i
		}
	}
	if worst > 1 {
		rel := math.Sqrt(num / math.Max(den, 1e-300))
		return fmt.Errorf("element %d = %g, want %g (|diff| %.3g is %.2fx the tolerance %+v); relative L2 error %.3g",
			worstI, got[worstI], want[worstI], math.Abs(float64(got[worstI])-want[worstI]), worst, tol, rel)
	}
	return nil
}

// Tensor makes a tensor holding v.
func Tensor(t testing.TB, d *gpu.Device, name string, v []float32, shape ...int) *nn.Tensor {
	t.Helper()
	x, err := nn.NewTensor(d, name, shape...)
	if err != nil {
		t.Fatal(err)
	}
	if v != nil {
		if err := x.Upload(v); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(x.Release)
	return x
}

// Poison fills a tensor with NaN so that an element a kernel fails to write
// shows up as NaN in the comparison.
func Poison(t testing.TB, x *nn.Tensor) {
	t.Helper()
	v := make([]float32, x.Len())
	for i := range v {
		v[i] = float32(math.NaN())
	}
	if err := x.Upload(v); err != nil {
		t.Fatal(err)
	}
}

// Run records fn onto a new recorder, submits it and fails the test on any error.
func Run(t testing.TB, d *gpu.Device, fn func(r *gpu.Recorder)) {
	t.Helper()
	r := d.NewRecorder()
	fn(r)
	if err := r.Submit(); err != nil {
		t.Fatal(err)
	}
}

// Download reads a tensor or fails the test.
func Download(t testing.TB, x *nn.Tensor) []float32 {
	t.Helper()
	v, err := x.Download()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// CloseRMS is Close with the absolute tolerance scaled by the RMS of want
// (at least 1e-6), so that it follows the tensor's magnitude: an element
// passes when |got-want| <= abs*rms(want) + rel*|want|.
func CloseRMS(t testing.TB, name string, got []float32, want []float64, abs, rel float64) {
	t.Helper()
	var ss float64
	for _, w := range want {
		ss += w * w
	}
	scale := 1e-6
	if len(want) > 0 {
		scale = math.Max(math.Sqrt(ss/float64(len(want))), 1e-6)
	}
	Close(t, name, got, want, Tol{Abs: abs * scale, Rel: rel})
}

// Start prepares an output: with accumulate it holds start (the kernel adds
// to it), otherwise it is poisoned (the kernel must overwrite every element).
func Start(t testing.TB, x *nn.Tensor, start []float32, accumulate bool) {
	t.Helper()
	if !accumulate {
		Poison(t, x)
		return
	}
	if err := x.Upload(start); err != nil {
		t.Fatal(err)
	}
}
