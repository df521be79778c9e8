package mom

import "sort"

// Tensor is a named tensor shape, with its size in bytes (float32).
type Tensor struct {
	Name  string
	Shape []int
	Bytes int64
}

func tensorOf(name string, shape ...int) Tensor {
	n := int64(4)
	for _, s := range shape {
		n *= int64(s)
	}
	return Tensor{Name: name, Shape: shape, Bytes: n}
}

// BoundWhole lists the tensors of a model for batches of b sequences of
// length l that one kernel binds whole, largest first: the parameters and
// their gradients (a matrix product binds a weight whole), the logits and
// the activations. Each must fit the device's maxStorageBufferBindingSize
// (128 MiB on lavapipe). The optimizer state, the gradient norm and the
// cross-entropy bind large tensors a range at a time and are not limited
// by it.
func (c Config) BoundWhole(b, l int) []Tensor {
	t := b * l
	out := []Tensor{
		tensorOf("logits", t, c.Vocab),
		tensorOf("activations (t, ed)", t, c.ED()),
		tensorOf("residual stream (t, d_model)", t, c.DModel),
	}
	if c.Continuous() {
		out = append(out, tensorOf("patches (t, patch_dim)", t, c.PatchDim))
	}
	seen := map[string]bool{}
	for _, s := range c.ParamSpecs() {
		name := s.Name
		if s.Layer >= 0 {
			name = "layers.N." + name[len(LayerParam(s.Layer, "")):]
		}
		if seen[name] {
			continue
		}
		seen[name] = true
		out = append(out, tensorOf(name, s.Shape...))
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Bytes > out[j].Bytes })
	return out
}
