package nn

import (
	"errors"
	"fmt"
	"strings"

	"mom/gpu"
	"mom/shaders"
)

// Pipeline compiles (or fetches from the device's cache) kernel k with the
// override constants c; every constant the descriptor lists must be set.
func Pipeline(d *gpu.Device, k shaders.Kernel, c gpu.Constants) (*gpu.Pipeline, error) {
	return pipelineVariant(d, k, "", c)
}

// pipelineVariant is Pipeline for a variant of k's file ("f16"; "" for the
// file as it is).
func pipelineVariant(d *gpu.Device, k shaders.Kernel, variant string, c gpu.Constants) (*gpu.Pipeline, error) {
	for _, name := range k.Constants {
		if _, ok := c[name]; !ok {
			return nil, fmt.Errorf("nn: kernel %s needs override constant %s", k.Name(), name)
		}
	}
	if variant == "f16" && !d.Has(gpu.FeatureShaderF16) {
		return nil, fmt.Errorf("nn: kernel %s in float16 needs the %s feature, which %s does not offer", k.Name(), gpu.FeatureShaderF16, d)
	}
	src, lines, err := shaders.ComposeVariant(k.File, variant)
	if err != nil {
		return nil, err
	}
	name := k.File
	if variant != "" {
		name += "(" + variant + ")"
	}
	s, err := compile(d, name, src, lines)
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

// Bind compiles k and binds ts to its bindings 0, 1, ... in order. When the
// tensors at the kernel's Half bindings are float16 (all of them, and no
// other), it takes the file's f16 variant.
func Bind(d *gpu.Device, k shaders.Kernel, c gpu.Constants, ts ...*Tensor) (*gpu.BindGroup, error) {
	if len(ts) != len(k.Bindings) {
		return nil, fmt.Errorf("nn: kernel %s has %d bindings, got %d tensors", k.Name(), len(k.Bindings), len(ts))
	}
	variant, err := halfVariant(k, ts)
	if err != nil {
		return nil, err
	}
	p, err := pipelineVariant(d, k, variant, c)
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

// halfVariant returns "f16" when the tensors at k's Half bindings are
// float16, "" when every tensor is float32, and an error for a mixture or a
// float16 tensor elsewhere.
func halfVariant(k shaders.Kernel, ts []*Tensor) (string, error) {
	half := map[int]bool{}
	for _, i := range k.Half {
		half[i] = true
	}
	n16 := 0
	for i, t := range ts {
		if t == nil || t.DType != F16 {
			continue
		}
		if !half[i] {
			return "", fmt.Errorf("nn: kernel %s: binding %d (%s) is %s %s; it takes float32", k.Name(), i, k.Bindings[i], t.DType, t.Name)
		}
		n16++
	}
	switch n16 {
	case 0:
		return "", nil
	case len(k.Half):
		return "f16", nil
	}
	var names []string
	for _, i := range k.Half {
		if ts[i] != nil {
			names = append(names, fmt.Sprintf("%s %s", ts[i].Name, ts[i].DType))
		}
	}
	return "", fmt.Errorf("nn: kernel %s: its inputs must be all float16 or all float32, got %s", k.Name(), strings.Join(names, ", "))
}
