package gpu

// BestKind lists, in index order, the adapters of the kind Open picks when
// asked for the best one (Options.Adapter -1): the same adapter type
// (discrete GPU first) and backend class. Data-parallel ranks on one host
// share them out: local rank k takes the k-th.
//
// wgpu-native lists every GPU, identical ones included; Dawn's C API shows
// one adapter per kind of GPU, so on a host with several identical GPUs
// only wgpu-native reaches them all.
func BestKind(infos []AdapterInfo) []int {
	best := -1
	for _, a := range infos {
		best = max(best, adapterScore(a))
	}
	var out []int
	for i, a := range infos {
		if adapterScore(a) == best {
			out = append(out, i)
		}
	}
	return out
}
