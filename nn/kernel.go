package nn

import (
	"errors"
	"fmt"

	"mom/gpu"
	"mom/shaders"
)

// Pipeline compiles (or fetches from the device's cache) kernel k with the
// override constants c; every constant the descriptor lists must be set.
func Pipeline(d *gpu.Device, k shaders.Kernel, c gpu.Constants) (*gpu.Pipeline, error) {
	for _, name := range k.Constants {
		if _, ok := c[name]; !ok {
			return nil, fmt.Errorf("nn: kernel %s needs override constant %s", k.Name(), name)
		}
	}
	src, lines, err := shaders.Compose(k.File)
	if err != nil {
		return nil, err
	}
	s, err := compile(d, k.File, src, lines)
	if err != nil {
		return nil, err
	}
	return d.Pipeline(s, k.Entry, c)
}

// compile compiles a composed shader; a compile error names the file and
// line it came from (an imported shared piece, or the kernel file itself).
func compile(d *gpu.Device, name, src string, lines shaders.LineMap) (*gpu.Shader, error) {
	s, err := d.Shader(name, src)
	var ce *gpu.CompileError
	if errors.As(err, &ce) && ce.Line > 0 {
		if file, line, via := lines.Locate(ce.Line); file != "" {
			ce.Shader, ce.Line, ce.Via = file, line, via
		}
	}
	return s, err
}

// Bind compiles k and binds ts to its bindings 0, 1, ... in order.
func Bind(d *gpu.Device, k shaders.Kernel, c gpu.Constants, ts ...*Tensor) (*gpu.BindGroup, error) {
	if len(ts) != len(k.Bindings) {
		return nil, fmt.Errorf("nn: kernel %s has %d bindings, got %d tensors", k.Name(), len(k.Bindings), len(ts))
	}
	p, err := Pipeline(d, k, c)
	if err != nil {
		return nil, err
	}
	bs := make([]gpu.Binding, len(ts))
	for i, t := range ts {
		if t == nil {
			return nil, fmt.Errorf("nn: kernel %s: binding %d (%s) is nil", k.Name(), i, k.Bindings[i])
		}
		bs[i] = gpu.Buf(t.Buf)
	}
	return d.BindGroup(p, bs...)
}

// Grid splits n workgroups over x and y so that neither exceeds the
// device's maxComputeWorkgroupsPerDimension. A kernel dispatched this way
// computes its linear workgroup index as wg.x + wg.y * num_workgroups.x and
// returns when it is past n.
func Grid(d *gpu.Device, n int) (x, y int) {
	lim := int(d.Limits.MaxComputeWorkgroupsPerDimension)
	if n <= lim {
		return n, 1
	}
	y = (n + lim - 1) / lim
	x = (n + y - 1) / y
	return x, y
}

// CeilDiv is ceil(a/b) for positive b.
func CeilDiv(a, b int) int { return (a + b - 1) / b }
