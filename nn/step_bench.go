package nn

import (
	"fmt"

	"mom/gpu"
)

// Benchmarks of the step mode's two costliest kernels at 1 and 64 streams:
// the routed GEMV (3 weight sets, the streams spread over them) and the
// selective state update. Their compulsory traffic: the weight sets in use
// read once, x read, y written; the state read and written once.
func init() {
	RegisterBench(func(size BenchSize) []BenchCase {
		n, k, ed, ns := 512, 256, 256, 16
		if size == BenchLarge {
			n, k, ed, ns = 2560, 1280, 2560, 16
		}
		var cases []BenchCase
		for _, s := range []int{1, 64} {
			cases = append(cases, gemvBenchCase(s, 3, n, k), ssmStepBenchCase(s, ed, ns))
		}
		return cases
	})
}

func gemvBenchCase(s, groups, n, k int) BenchCase {
	return BenchCase{
		Name: fmt.Sprintf("gemv_routed/s%d_g%d_n%d_k%d", s, groups, n, k),
		Setup: func(d *gpu.Device) (*BenchRun, error) {
			ts, release, err := benchTensors(d, map[string][]int{"x": {s, k}, "w": {groups, n, k}, "y": {s, n}, "grp": {s}})
			if err != nil {
				return nil, err
			}
			grp := make([]uint32, s)
			for i := range grp {
				grp[i] = uint32(i % groups)
			}
			if err := ts["grp"].UploadU32(grp); err != nil {
				release()
				return nil, err
			}
			l, err := NewRoutedLinear(d, RoutedLinearArgs{X: ts["x"], W: ts["w"], Group: ts["grp"], Y: ts["y"]})
			if err != nil {
				release()
				return nil, err
			}
			used := min(s, groups)
			return &BenchRun{Record: l.Record, FLOPs: l.FLOPs(),
				Bytes:   4 * float64(used*n*k+s*k+s*n),
				Cleanup: func() { l.Release(); release() }}, nil
		},
	}
}

// SSM step FLOPs per (stream, channel): 8 per state (as the scan's
// forward) plus 12 (softplus, D skip, gate).
func ssmStepBenchCase(s, ed, n int) BenchCase {
	return BenchCase{
		Name: fmt.Sprintf("ssm_step/s%d_ed%d_n%d", s, ed, n),
		Setup: func(d *gpu.Device) (*BenchRun, error) {
			ts, release, err := benchTensors(d, map[string][]int{"u": {s, ed}, "delta": {s, ed}, "z": {s, ed}, "a_log": {ed, n},
				"bc": {s, 2 * n}, "D": {ed}, "y": {s, ed}, "state": {s, ed, n}})
			if err != nil {
				return nil, err
			}
			st, err := NewSSMStep(d, SSMStepArgs{U: ts["u"], Delta: ts["delta"], Z: ts["z"], ALog: ts["a_log"], BC: ts["bc"], CCol: n,
				D: ts["D"], Y: ts["y"], State: ts["state"]})
			if err != nil {
				release()
				return nil, err
			}
			se := float64(s * ed)
			return &BenchRun{Record: st.Record, FLOPs: se * float64(8*n+12),
				Bytes:   4 * (se*float64(2*n+4) + float64(ed*n+ed+s*2*n)),
				Cleanup: func() { st.Release(); release() }}, nil
		},
	}
}
