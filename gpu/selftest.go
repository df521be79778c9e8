package gpu

import (
	"fmt"
	"math"
	"time"
)

const selfTestWGSL = `
@group(0) @binding(0) var<storage, read> a: array<f32>;       // (n)
@group(0) @binding(1) var<storage, read> b: array<f32>;       // (n)
@group(0) @binding(2) var<storage, read_write> c: array<f32>; // (n)

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
	let i = gid.x;
	if (i < arrayLength(&c)) {
		c[i] = fma(a[i], b[i], c[i]);
	}
}
`

// SelfTestResult reports a small compute check.
type SelfTestResult struct {
	N        int
	MaxError float64
	Elapsed  time.Duration
}

// SelfTest runs a fused multiply-add kernel over n floats and checks every
// result against the CPU: a quick proof that the device computes.
func SelfTest(d *Device, n int) (SelfTestResult, error) {
	start := time.Now()
	res := SelfTestResult{N: n}
	s, err := d.Shader("selftest.wgsl", selfTestWGSL)
	if err != nil {
		return res, err
	}
	p, err := d.Pipeline(s, "main", nil)
	if err != nil {
		return res, err
	}
	a, b, c := make([]float32, n), make([]float32, n), make([]float32, n)
	for i := range a {
		a[i] = float32(i%97) * 0.25
		b[i] = float32(i%89) - 44
		c[i] = float32(i % 13)
	}
	var bufs [3]*Buffer
	for i, v := range [][]float32{a, b, c} {
		buf, err := d.NewBuffer(fmt.Sprintf("selftest.%d", i), int64(4*n), UsageTensor)
		if err != nil {
			return res, err
		}
		defer buf.Release()
		if err := buf.WriteFloat32(0, v); err != nil {
			return res, err
		}
		bufs[i] = buf
	}
	g, err := d.BindGroup(p, Buf(bufs[0]), Buf(bufs[1]), Buf(bufs[2]))
	if err != nil {
		return res, err
	}
	defer g.Release()
	r := d.NewRecorder()
	r.Dispatch(g, (n+63)/64, 1, 1)
	if err := r.Submit(); err != nil {
		return res, err
	}
	got, err := bufs[2].ReadFloat32(0, n)
	if err != nil {
		return res, err
	}
	for i := range got {
		want := float64(a[i])*float64(b[i]) + float64(c[i])
		if e := math.Abs(float64(got[i]) - want); e > res.MaxError || math.IsNaN(e) {
			res.MaxError = e
		}
	}
	res.Elapsed = time.Since(start)
	if res.MaxError != 0 {
		return res, fmt.Errorf("gpu self-test: max error %g over %d values (want exact)", res.MaxError, n)
	}
	return res, nil
}
