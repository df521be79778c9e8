package gpu

import (
	"errors"
	"fmt"
	"math"
	"math/rand"
	"os"
	"runtime"
	"strings"
	"testing"
	"unsafe"
)

// The tests run against every runtime named in $MOM_RUNTIMES (default: both).
// A runtime whose library is missing fails the tests: install it with
// `make deps`.
var devices = map[Runtime]*Device{}

func runtimes() []Runtime {
	env := os.Getenv("MOM_RUNTIMES")
	if env == "" {
		return []Runtime{Dawn, WGPU}
	}
	var out []Runtime
	for _, s := range strings.Split(env, ",") {
		rt, err := ParseRuntime(s)
		if err != nil {
			panic(err)
		}
		out = append(out, rt)
	}
	return out
}

func TestMain(m *testing.M) {
	code := m.Run()
	for _, d := range devices {
		d.Close()
	}
	os.Exit(code)
}

// forEach runs fn once per runtime with that runtime's shared device.
func forEach(t *testing.T, fn func(t *testing.T, d *Device)) {
	t.Helper()
	for _, rt := range runtimes() {
		t.Run(string(rt), func(t *testing.T) {
			d, ok := devices[rt]
			if !ok {
				var err error
				d, err = Open(Options{Runtime: rt, Adapter: -1})
				if err != nil {
					t.Fatalf("opening a %s device: %v", rt, err)
				}
				devices[rt] = d
			}
			fn(t, d)
		})
	}
}

const scaleWGSL = `
override SCALE: f32 = 2.0;
@group(0) @binding(0) var<storage, read> x: array<f32>;        // (n)
@group(0) @binding(1) var<storage, read_write> y: array<f32>;  // (n)

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
	let i = gid.x;
	if (i < arrayLength(&y)) {
		y[i] = x[i] * SCALE;
	}
}
`

const incWGSL = `
@group(0) @binding(0) var<storage, read_write> x: array<u32>;  // (n)

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
	if (gid.x < arrayLength(&x)) {
		x[gid.x] = x[gid.x] + 1u;
	}
}
`

func mustPipeline(t testing.TB, d *Device, name, code string, c Constants) *Pipeline {
	t.Helper()
	s, err := d.Shader(name, code)
	if err != nil {
		t.Fatal(err)
	}
	p, err := d.Pipeline(s, "main", c)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func mustBuffer(t testing.TB, d *Device, label string, size int64) *Buffer {
	t.Helper()
	b, err := d.NewBuffer(label, size, UsageTensor)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRoundTripMillionFloats(t *testing.T) {
	forEach(t, func(t *testing.T, d *Device) {
		const n = 1 << 20
		rng := rand.New(rand.NewSource(1))
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(rng.NormFloat64())
		}
		for _, scale := range []float64{1, 2, -0.5} {
			y := scaleOn(t, d, x, scale)
			for i := range x {
				// Scaling by a power of two (or 1) is exact in float32.
				if want := x[i] * float32(scale); math.Float32bits(y[i]) != math.Float32bits(want) {
					t.Fatalf("scale %g: y[%d] = %g, want %g exactly", scale, i, y[i], want)
				}
			}
		}
	})
}

// scaleOn runs scaleWGSL on d over x (one invocation per value, the last
// workgroup partly past the end) and returns what it wrote.
func scaleOn(t *testing.T, d *Device, x []float32, scale float64) []float32 {
	t.Helper()
	n := int64(len(x))
	p := mustPipeline(t, d, "scale.wgsl", scaleWGSL, Constants{"SCALE": scale})
	bx, by := mustBuffer(t, d, "x", 4*n), mustBuffer(t, d, "y", 4*n)
	defer bx.Release()
	defer by.Release()
	if err := bx.WriteFloat32(0, x); err != nil {
		t.Fatal(err)
	}
	g, err := d.BindGroup(p, Buf(bx), Buf(by))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Release()
	r := d.NewRecorder()
	r.Dispatch(g, int((n+255)/256), 1, 1)
	if err := r.SubmitChecked(); err != nil {
		t.Fatal(err)
	}
	y, err := by.ReadFloat32(0, int(n))
	if err != nil {
		t.Fatal(err)
	}
	return y
}

func TestCompileErrorNamesLine(t *testing.T) {
	forEach(t, func(t *testing.T, d *Device) {
		code := "@group(0) @binding(0) var<storage, read_write> x: array<f32>;\n" +
			"@compute @workgroup_size(1)\n" +
			"fn main() {\n" +
			"\tx[0] = 1.0 +;\n" + // line 4: syntax error
			"}\n"
		_, err := d.Shader("broken.wgsl", code)
		var ce *CompileError
		if !errors.As(err, &ce) {
			t.Fatalf("got %v, want a *CompileError", err)
		}
		if ce.Line != 4 {
			t.Errorf("error line = %d, want 4 (%v)", ce.Line, err)
		}
		if !strings.Contains(err.Error(), "broken.wgsl") || !strings.Contains(err.Error(), "line 4") {
			t.Errorf("message %q should name the shader and line 4", err)
		}
		// A type error is reported with its line too.
		code2 := "@compute @workgroup_size(1)\nfn main() {\n  let a: f32 = 1u;\n}\n"
		_, err = d.Shader("typed.wgsl", code2)
		if !errors.As(err, &ce) || ce.Line != 3 {
			t.Errorf("type error: got %v, want a CompileError at line 3", err)
		}
	})
}

func TestBufferOverLimit(t *testing.T) {
	forEach(t, func(t *testing.T, d *Device) {
		_, err := d.NewBuffer("huge", int64(d.Limits.MaxBufferSize)+4, UsageTensor)
		if err == nil || !strings.Contains(err.Error(), "maxBufferSize") {
			t.Fatalf("got %v, want an error naming maxBufferSize", err)
		}
		// A buffer that fits but is bound beyond the binding limit.
		size := int64(d.Limits.MaxStorageBufferBindingSize) + 256
		if uint64(size) > d.Limits.MaxBufferSize {
			t.Skipf("maxStorageBufferBindingSize equals maxBufferSize on %s", d.Info.Name)
		}
		b := mustBuffer(t, d, "wide", size)
		defer b.Release()
		p := mustPipeline(t, d, "inc.wgsl", incWGSL, nil)
		_, err = d.BindGroup(p, Buf(b))
		if err == nil || !strings.Contains(err.Error(), "maxStorageBufferBindingSize") {
			t.Fatalf("got %v, want an error naming maxStorageBufferBindingSize", err)
		}
	})
}

func TestBadLibraryEnv(t *testing.T) {
	for _, path := range []string{"/nonexistent/libwebgpu.so", "/etc/hostname"} {
		t.Setenv(EnvLib, path)
		_, err := Load(Dawn)
		if err == nil {
			t.Fatalf("%s=%s: loading succeeded", EnvLib, path)
		}
		msg := err.Error()
		if !strings.Contains(msg, EnvLib) || !strings.Contains(msg, "libwebgpu_wrapper") {
			t.Errorf("error %q should name %s and the expected library", msg, EnvLib)
		}
	}
	// A real shared object that is not WebGPU.
	if runtime.GOOS == "linux" {
		t.Setenv(EnvLib, "libm.so.6")
		_, err := Load(WGPU)
		if err == nil || !strings.Contains(err.Error(), "wgpuCreateInstance") {
			t.Errorf("libm: got %v, want an error saying wgpuCreateInstance is missing", err)
		}
	}
}

func TestTenThousandDispatchesOneSubmit(t *testing.T) {
	forEach(t, func(t *testing.T, d *Device) {
		const n, reps = 1000, 10000
		p := mustPipeline(t, d, "inc.wgsl", incWGSL, nil)
		b := mustBuffer(t, d, "counter", 4*n)
		defer b.Release()
		start := make([]uint32, n)
		for i := range start {
			start[i] = uint32(i)
		}
		if err := b.WriteUint32(0, start); err != nil {
			t.Fatal(err)
		}
		g, err := d.BindGroup(p, Buf(b))
		if err != nil {
			t.Fatal(err)
		}
		defer g.Release()
		r := d.NewRecorder()
		for i := 0; i < reps; i++ {
			r.Dispatch(g, (n+63)/64, 1, 1)
		}
		if r.Len() != reps {
			t.Fatalf("recorded %d dispatches, want %d", r.Len(), reps)
		}
		if err := r.Submit(); err != nil {
			t.Fatal(err)
		}
		got, err := b.ReadUint32(0, n)
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range got {
			if v != uint32(i+reps) {
				t.Fatalf("x[%d] = %d, want %d: dispatches were lost or reordered", i, v, i+reps)
			}
		}
	})
}

func TestDispatchOverLimit(t *testing.T) {
	forEach(t, func(t *testing.T, d *Device) {
		p := mustPipeline(t, d, "inc.wgsl", incWGSL, nil)
		b := mustBuffer(t, d, "x", 256)
		defer b.Release()
		g, err := d.BindGroup(p, Buf(b))
		if err != nil {
			t.Fatal(err)
		}
		defer g.Release()
		r := d.NewRecorder()
		r.Dispatch(g, int(d.Limits.MaxComputeWorkgroupsPerDimension)+1, 1, 1)
		err = r.Submit()
		if err == nil || !strings.Contains(err.Error(), "maxComputeWorkgroupsPerDimension") || !strings.Contains(err.Error(), "inc.wgsl") {
			t.Fatalf("got %v, want an error naming the kernel and maxComputeWorkgroupsPerDimension", err)
		}
	})
}

func TestValidationErrorNamesKernel(t *testing.T) {
	forEach(t, func(t *testing.T, d *Device) {
		// The same buffer bound read-only and read-write in one dispatch.
		p := mustPipeline(t, d, "scale.wgsl", scaleWGSL, nil)
		b := mustBuffer(t, d, "x", 1024)
		defer b.Release()
		g, err := d.BindGroup(p, Buf(b), Buf(b))
		if err != nil {
			// Some implementations reject this already at bind group creation.
			if !strings.Contains(err.Error(), "scale.wgsl") {
				t.Fatalf("bind group error %q does not name the kernel", err)
			}
			return
		}
		defer g.Release()
		r := d.NewRecorder()
		r.Dispatch(g, 1, 1, 1)
		err = r.SubmitChecked()
		if err == nil {
			t.Fatal("binding one buffer read-only and read-write in one dispatch was accepted")
		}
		if !strings.Contains(err.Error(), "scale.wgsl") {
			t.Errorf("error %q does not name the kernel", err)
		}
		if err := d.Check("after"); err != nil {
			t.Errorf("error left over after the checked submit: %v", err)
		}
	})
}

func TestAsyncReadbackSeesEarlierWork(t *testing.T) {
	forEach(t, func(t *testing.T, d *Device) {
		p := mustPipeline(t, d, "inc.wgsl", incWGSL, nil)
		b := mustBuffer(t, d, "x", 4*64)
		defer b.Release()
		if err := b.WriteUint32(0, make([]uint32, 64)); err != nil {
			t.Fatal(err)
		}
		g, err := d.BindGroup(p, Buf(b))
		if err != nil {
			t.Fatal(err)
		}
		defer g.Release()
		var pending []*Readback
		for step := 1; step <= 3; step++ {
			r := d.NewRecorder()
			r.Dispatch(g, 1, 1, 1)
			if err := r.Submit(); err != nil {
				t.Fatal(err)
			}
			rb, err := b.ReadAsync(0, 4*64)
			if err != nil {
				t.Fatal(err)
			}
			pending = append(pending, rb)
		}
		for i, rb := range pending {
			raw, err := rb.Wait()
			if err != nil {
				t.Fatal(err)
			}
			if v := uint32(raw[0]) | uint32(raw[1])<<8; v != uint32(i+1) {
				t.Errorf("readback %d saw %d, want %d", i, v, i+1)
			}
		}
	})
}

func TestPipelineCache(t *testing.T) {
	forEach(t, func(t *testing.T, d *Device) {
		a := mustPipeline(t, d, "scale.wgsl", scaleWGSL, Constants{"SCALE": 3})
		b := mustPipeline(t, d, "scale.wgsl", scaleWGSL, Constants{"SCALE": 3})
		c := mustPipeline(t, d, "scale.wgsl", scaleWGSL, Constants{"SCALE": 4})
		if a != b {
			t.Error("same shader, entry and constants gave two pipelines")
		}
		if a == c {
			t.Error("different constants gave the same pipeline")
		}
	})
}

func TestTimestamps(t *testing.T) {
	forEach(t, func(t *testing.T, d *Device) {
		if !d.Has(FeatureTimestampQuery) {
			t.Skipf("%s lacks timestamp-query", d)
		}
		const n = 1 << 18
		p := mustPipeline(t, d, "scale.wgsl", scaleWGSL, nil)
		x, y := mustBuffer(t, d, "x", 4*n), mustBuffer(t, d, "y", 4*n)
		defer x.Release()
		defer y.Release()
		g, err := d.BindGroup(p, Buf(x), Buf(y))
		if err != nil {
			t.Fatal(err)
		}
		defer g.Release()
		r, err := d.NewProfiledRecorder(4)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Release()
		for i := 0; i < 3; i++ {
			r.Dispatch(g, n/256, 1, 1)
		}
		if err := r.Submit(); err != nil {
			t.Fatal(err)
		}
		ts, err := r.Timings()
		if err != nil {
			t.Fatal(err)
		}
		if len(ts) != 3 {
			t.Fatalf("%d timings, want 3", len(ts))
		}
		for _, tm := range ts {
			if !(tm.Ns > 0 && tm.Ns < 10e9) {
				t.Errorf("timing %s = %g ns, want a positive duration under 10 s", tm.Label, tm.Ns)
			}
		}
	})
}

func rssBytes() int64 {
	raw, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	var size, res int64
	fmt.Sscan(string(raw), &size, &res)
	return res * int64(os.Getpagesize())
}

func TestNoGrowthOverCycles(t *testing.T) {
	forEach(t, func(t *testing.T, d *Device) {
		p := mustPipeline(t, d, "inc.wgsl", incWGSL, nil)
		cycle := func() {
			b, err := d.NewBuffer("cycle", 4096, UsageTensor)
			if err != nil {
				t.Fatal(err)
			}
			g, err := d.BindGroup(p, Buf(b))
			if err != nil {
				t.Fatal(err)
			}
			r := d.NewRecorder()
			r.Dispatch(g, 1, 1, 1)
			if err := r.Submit(); err != nil {
				t.Fatal(err)
			}
			g.Release()
			b.Release()
		}
		for i := 0; i < 500; i++ { // warm up pools and caches
			cycle()
		}
		if err := d.Sync(); err != nil {
			t.Fatal(err)
		}
		before := d.LiveObjects()
		rss0 := rssBytes()
		for i := 0; i < 10000; i++ {
			cycle()
			if i%1000 == 999 {
				if err := d.Sync(); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := d.Sync(); err != nil {
			t.Fatal(err)
		}
		after := d.LiveObjects()
		if fmt.Sprint(before) != fmt.Sprint(after) {
			t.Errorf("live objects grew over 10,000 cycles: %v -> %v", before, after)
		}
		growth := rssBytes() - rss0
		t.Logf("%s: RSS change over 10,000 cycles: %+d KiB", d.Lib.Runtime, growth/1024)
		// 10,000 leaked 4 KiB buffers alone would be 40 MiB.
		if growth > 24<<20 {
			t.Errorf("RSS grew by %d MiB over 10,000 create/release cycles", growth>>20)
		}
	})
}

// The feature numbering differs between the two implementations; compiling
// a shader that needs the feature proves the right one was enabled.
func TestFeaturesReallyEnabled(t *testing.T) {
	forEach(t, func(t *testing.T, d *Device) {
		cases := []struct {
			f    Feature
			code string
		}{
			{FeatureShaderF16, `enable f16;
@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@compute @workgroup_size(1) fn main() { let h: f16 = f16(x[0]); x[0] = f32(h * 2.0h); }`},
			{FeatureSubgroups, `enable subgroups;
@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@compute @workgroup_size(32) fn main(@builtin(local_invocation_index) i: u32) {
	let s = subgroupAdd(1.0);
	if (i == 0u) { x[0] = s; }
}`},
		}
		for _, c := range cases {
			if !d.Has(c.f) {
				t.Logf("%s: %s not enabled", d, c.f)
				continue
			}
			p := mustPipeline(t, d, string(c.f)+".wgsl", c.code, nil)
			b := mustBuffer(t, d, "x", 16)
			if err := b.WriteFloat32(0, []float32{1.5}); err != nil {
				t.Fatal(err)
			}
			g, err := d.BindGroup(p, Buf(b))
			if err != nil {
				t.Fatal(err)
			}
			r := d.NewRecorder()
			r.Dispatch(g, 1, 1, 1)
			if err := r.Submit(); err != nil {
				t.Fatal(err)
			}
			v, err := b.ReadFloat32(0, 1)
			if err != nil {
				t.Fatal(err)
			}
			switch c.f {
			case FeatureShaderF16:
				if v[0] != 3 {
					t.Errorf("f16 kernel gave %g, want 3", v[0])
				}
			case FeatureSubgroups:
				if lo, hi := float32(d.Info.SubgroupMin), float32(d.Info.SubgroupMax); d.Info.SubgroupMax > 0 && (v[0] < lo || v[0] > hi) {
					t.Errorf("subgroupAdd(1) = %g, outside the subgroup size range [%g, %g]", v[0], lo, hi)
				}
				if v[0] < 1 || v[0] > 128 {
					t.Errorf("subgroupAdd(1) = %g", v[0])
				}
			}
			g.Release()
			b.Release()
		}
	})
}

// TestDeviceLossIsAnError: after the device is lost, work returns an error
// wrapping ErrDeviceLost instead of crashing.
func TestDeviceLossIsAnError(t *testing.T) {
	for _, rt := range runtimes() {
		t.Run(string(rt), func(t *testing.T) {
			d, err := Open(Options{Runtime: rt, Adapter: -1})
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			if !d.forceLoss() {
				t.Skipf("%s cannot simulate device loss", rt)
			}
			p, err := d.Shader("inc.wgsl", incWGSL)
			if err == nil {
				_, err = d.Pipeline(p, "main", nil)
			}
			if err == nil {
				err = d.Sync()
			}
			if !errors.Is(err, ErrDeviceLost) {
				t.Fatalf("after a forced loss: %v, want an error wrapping ErrDeviceLost", err)
			}
			if !strings.Contains(err.Error(), "forced device loss") {
				t.Errorf("error %q does not carry the implementation's message", err)
			}
		})
	}
}

// Releasing objects after their device is closed is harmless.
func TestReleaseAfterClose(t *testing.T) {
	for _, rt := range runtimes() {
		t.Run(string(rt), func(t *testing.T) {
			d, err := Open(Options{Runtime: rt, Adapter: -1})
			if err != nil {
				t.Fatal(err)
			}
			p := mustPipeline(t, d, "inc.wgsl", incWGSL, nil)
			b := mustBuffer(t, d, "x", 256)
			g, err := d.BindGroup(p, Buf(b))
			if err != nil {
				t.Fatal(err)
			}
			d.Close()
			g.Release()
			b.Release()
			d.ReleasePipeline(p)
			if _, err := b.Read(0, 4); err == nil {
				t.Error("reading a buffer of a closed device succeeded")
			}
			if _, err := d.NewBuffer("y", 16, UsageTensor); err == nil {
				t.Error("a closed device made a buffer")
			}
		})
	}
}

// TestShaderChecksOffByDefault: without Options.Robust neither runtime
// adds bounds checks (Dawn through its toggle, wgpu-native through its
// trusted modules, which both libraries mom installs offer), and a robust
// device keeps them; the kernels of both compile and give the same result.
func TestShaderChecksOffByDefault(t *testing.T) {
	forEach(t, func(t *testing.T, d *Device) {
		if d.ShaderChecks() {
			t.Errorf("%s: the shader checks are on without Options.Robust", d)
		}
		rd, err := Open(Options{Runtime: d.Lib.Runtime, Adapter: -1, Robust: true})
		if err != nil {
			t.Fatalf("opening a robust %s device: %v", d.Lib.Runtime, err)
		}
		defer rd.Close()
		if !rd.ShaderChecks() {
			t.Errorf("%s: the shader checks are off with Options.Robust", rd)
		}
		const n = 1000 // not a multiple of the workgroup: the kernel's own check is exercised
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(i) - 500
		}
		for _, dev := range []*Device{d, rd} {
			y := scaleOn(t, dev, x, 4)
			for i := range y {
				if y[i] != 4*x[i] {
					t.Fatalf("checks %v: y[%d] = %g, want %g", dev.ShaderChecks(), i, y[i], 4*x[i])
				}
			}
		}
	})
}

// TestCloseKeepsOneInstance: devices opened and closed one after another
// (as mom bench kernels does, a device per case) leave the library holding
// one instance, the same each time, so that the Vulkan loader keeps the
// driver loaded; forty in a row open (on an H200, NVIDIA's driver failed to
// load at the 33rd when every close unloaded it).
func TestCloseKeepsOneInstance(t *testing.T) {
	for _, rt := range runtimes() {
		t.Run(string(rt), func(t *testing.T) {
			var kept unsafe.Pointer
			for i := 0; i < 40; i++ {
				d, err := Open(Options{Runtime: rt, Adapter: -1})
				if err != nil {
					t.Fatalf("device %d: %v", i+1, err)
				}
				d.Close()
				d.Lib.pinMu.Lock()
				pin := d.Lib.pin
				d.Lib.pinMu.Unlock()
				switch {
				case pin == nil:
					t.Fatalf("device %d: no instance kept after Close", i+1)
				case kept != nil && pin != kept:
					t.Fatalf("device %d: the kept instance changed", i+1)
				}
				kept = pin
			}
		})
	}
}
