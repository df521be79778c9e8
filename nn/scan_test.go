package nn_test

import (
	"fmt"
	"math/rand"
	"strings"
	"testing"

	"mom/gpu"
	"mom/nn"
	"mom/nn/internal/ktest"
	"mom/nn/ref"
)

// scanTols is the per-tensor tolerance table of the scan test, in the spirit
// of state-spaces/mamba's tests/ops/test_selective_scan.py: float32 on the
// GPU against float64 on the same inputs. An element passes when
// |got-want| <= abs*scale + rel*|want|, scale being the RMS of the tensor
// (so the absolute part follows the tensor's magnitude). ddelta and dA_log
// are looser: ddelta multiplies a sum of N cancelling terms by
// sigmoid(delta), and dA_log sums over every step of the sequence.
var scanTols = map[string]struct{ abs, rel float64 }{
	"y":      {2e-5, 1e-4},
	"du":     {2e-5, 1e-4},
	"ddelta": {1e-4, 5e-4},
	"dA_log": {1e-4, 5e-4},
	"dB":     {2e-5, 2e-4},
	"dC":     {2e-5, 2e-4},
	"dD":     {2e-5, 2e-4},
	"dz":     {2e-5, 1e-4},
	"final":  {2e-5, 1e-4},
}

func scanClose(t *testing.T, name string, got []float32, want []float64) {
	t.Helper()
	tol, ok := scanTols[name]
	if !ok {
		t.Fatalf("no tolerance for %s", name)
	}
	ktest.CloseRMS(t, name, got, want, tol.abs, tol.rel)
}

type scanCase struct {
	batch, l, ed, n int
	gate            bool
	opt             nn.ScanOptions
}

func (c scanCase) String() string {
	s := fmt.Sprintf("b%d_l%d_ed%d_n%d_z%v_p%d_g%d_k%d_qt%d_sg%d_pf%d", c.batch, c.l, c.ed, c.n, c.gate,
		c.opt.Threads, c.opt.Rows, c.opt.Items, c.opt.StateThreads, c.opt.Subgroups, c.opt.Prefetch)
	if bw := c.opt.Backward; bw != (nn.ScanLayout{}) {
		s += fmt.Sprintf("_bwd_p%d_g%d_k%d_qt%d", bw.Threads, bw.Rows, bw.Items, bw.StateThreads)
	}
	return s
}

// scanData are the float32 inputs of one case, in the ranges the model
// sees (see nn/ref's scan tests).
type scanData struct {
	u, delta, aLog, b, c, d, z, dy, daLog0, dd0 []float32
}

func newScanData(rng *rand.Rand, c scanCase) *scanData {
	bl := c.batch * c.l
	uni := func(n int, lo, hi float64) []float32 {
		out := make([]float32, n)
		for i := range out {
			out[i] = float32(lo + (hi-lo)*rng.Float64())
		}
		return out
	}
	s := &scanData{
		u: uni(bl*c.ed, -1, 1), delta: uni(bl*c.ed, -4, 1), aLog: uni(c.ed*c.n, -1, 2),
		b: uni(bl*c.n, -1, 1), c: uni(bl*c.n, -1, 1), d: uni(c.ed, -1, 1), dy: uni(bl*c.ed, -1, 1),
		daLog0: uni(c.ed*c.n, -1, 1), dd0: uni(c.ed, -1, 1),
	}
	if c.gate {
		s.z = uni(bl*c.ed, -2, 2)
	}
	return s
}

// scanCases cover the edge sizes with few distinct pipelines (each costs a
// shader compile on lavapipe): the pipeline depends on N, the gate and the
// layout options, not on the batch, the length or ED.
func scanCases() []scanCase {
	var cs []scanCase
	// Sequence lengths around multiples of the default chunk (4 threads x 4
	// items = 16) and of 64.
	for _, l := range []int{1, 63, 64, 65, 2047, 2049} {
		ed := 5
		if l > 100 {
			ed = 4
		}
		cs = append(cs, scanCase{batch: 1, l: l, ed: ed, n: 16, gate: true})
	}
	cs = append(cs,
		// Batch, several channel blocks (ED > Rows: the dB, dC partials are
		// summed), N = 64.
		scanCase{batch: 3, l: 65, ed: 6, n: 16, gate: true},
		scanCase{batch: 2, l: 70, ed: 40, n: 16, gate: true},
		scanCase{batch: 3, l: 65, ed: 6, n: 64, gate: true},
		scanCase{batch: 1, l: 130, ed: 3, n: 64, gate: true},
		// N = 1 (three padded state lanes), no gate, Rows not dividing ED (a
		// dead row in the last block), rows shorter than a subgroup.
		scanCase{batch: 3, l: 65, ed: 8, n: 1, gate: false, opt: nn.ScanOptions{Threads: 4, Rows: 3, Items: 2}},
		scanCase{batch: 1, l: 100, ed: 4, n: 1, gate: false, opt: nn.ScanOptions{Threads: 4, Rows: 3, Items: 2}},
		// One thread per row, items not a power of two, N not a multiple of 4.
		scanCase{batch: 2, l: 37, ed: 3, n: 5, gate: true, opt: nn.ScanOptions{Threads: 1, Items: 5}},
		// Rows spanning several subgroups, one item per thread.
		scanCase{batch: 1, l: 300, ed: 5, n: 4, gate: false, opt: nn.ScanOptions{Threads: 64, Rows: 2, Items: 1}},
		// The workgroup-memory row scan where subgroups would be used.
		scanCase{batch: 2, l: 129, ed: 5, n: 4, gate: false, opt: nn.ScanOptions{Threads: 8, Rows: 4, Items: 2, Subgroups: -1}},
		scanCase{batch: 1, l: 64, ed: 3, n: 4, gate: false, opt: nn.ScanOptions{Threads: 8, Rows: 4, Items: 2, Subgroups: -1}},
		// State threads: one quad each (N = 16), two quads each (N = 16),
		// a padded last quad (N = 13), several channel blocks, the
		// workgroup-memory row scan, rows spanning subgroups.
		scanCase{batch: 2, l: 65, ed: 6, n: 16, gate: true, opt: nn.ScanOptions{Rows: 4, StateThreads: 4}},
		scanCase{batch: 1, l: 130, ed: 9, n: 16, gate: true, opt: nn.ScanOptions{Threads: 4, Rows: 4, Items: 3, StateThreads: 2}},
		scanCase{batch: 2, l: 37, ed: 5, n: 13, gate: false, opt: nn.ScanOptions{Threads: 2, Rows: 3, Items: 4, StateThreads: 4}},
		scanCase{batch: 1, l: 129, ed: 5, n: 8, gate: true, opt: nn.ScanOptions{Threads: 8, Rows: 2, Items: 2, StateThreads: 2, Subgroups: -1}},
		scanCase{batch: 1, l: 300, ed: 3, n: 8, gate: false, opt: nn.ScanOptions{Threads: 64, Rows: 1, Items: 1, StateThreads: 2}},
		// The GPU defaults (another layout for the backward, on the same
		// chunk), with several channel blocks of each and N = 64.
		scanCase{batch: 2, l: 70, ed: 40, n: 16, gate: true, opt: nn.ScanOptions{Threads: 4, Rows: 16, Items: 4,
			Backward: nn.ScanLayout{Threads: 8, Rows: 8, Items: 2}}},
		scanCase{batch: 1, l: 130, ed: 20, n: 64, gate: true, opt: nn.ScanOptions{Threads: 4, Rows: 16, Items: 4,
			Backward: nn.ScanLayout{Threads: 8, Rows: 8, Items: 2}}},
		scanCase{batch: 2, l: 33, ed: 7, n: 5, gate: false, opt: nn.ScanOptions{Threads: 2, Rows: 4, Items: 4,
			Backward: nn.ScanLayout{Threads: 4, Rows: 2, Items: 2}}},
		// Loads one chunk ahead, and not, on both runtimes whatever their
		// default; several staged entries of B and C per thread (N = 64).
		scanCase{batch: 2, l: 70, ed: 9, n: 16, gate: true, opt: nn.ScanOptions{Threads: 4, Rows: 4, Items: 4, Prefetch: 1}},
		scanCase{batch: 1, l: 129, ed: 5, n: 64, gate: true, opt: nn.ScanOptions{Threads: 4, Rows: 2, Items: 4, Prefetch: 1}},
		scanCase{batch: 2, l: 70, ed: 9, n: 16, gate: false, opt: nn.ScanOptions{Threads: 4, Rows: 4, Items: 4, Prefetch: -1}},
		scanCase{batch: 1, l: 129, ed: 5, n: 64, gate: true, opt: nn.ScanOptions{Threads: 4, Rows: 2, Items: 4, Prefetch: -1}},
	)
	return cs
}

func TestSelectiveScan(t *testing.T) {
	ktest.ForEachDevice(t, func(t *testing.T, d *gpu.Device) {
		rng := rand.New(rand.NewSource(1))
		for _, c := range scanCases() {
			t.Run(c.String(), func(t *testing.T) { scanRun(t, d, rng, c) })
		}
	})
}

// scanRun runs one case forward and backward on the GPU and compares every
// output with the float64 reference.
func scanRun(t *testing.T, d *gpu.Device, rng *rand.Rand, c scanCase) {
	in := newScanData(rng, c)
	b, l, ed, n := c.batch, c.l, c.ed, c.n
	tn := func(name string, v []float32, shape ...int) *nn.Tensor { return ktest.Tensor(t, d, name, v, shape...) }
	a := nn.ScanArgs{
		Batch: b, Len: l,
		U: tn("u", in.u, b, l, ed), Delta: tn("delta", in.delta, b, l, ed), ALog: tn("a_log", in.aLog, ed, n),
		Bm: tn("B", in.b, b, l, n), Cm: tn("C", in.c, b, l, n), D: tn("D", in.d, ed), Y: tn("y", nil, b, l, ed),
		DY: tn("dy", in.dy, b, l, ed), DU: tn("du", nil, b, l, ed), DDelta: tn("ddelta", nil, b, l, ed),
		DALog: tn("da_log", in.daLog0, ed, n), DB: tn("dB", nil, b, l, n), DC: tn("dC", nil, b, l, n), DD: tn("dD", in.dd0, ed),
		Final: tn("final", nil, b, ed, n),
	}
	if c.gate {
		a.Z = tn("z", in.z, b, l, ed)
		a.DZ = tn("dz", nil, b, l, ed)
		ktest.Poison(t, a.DZ)
	}
	for _, x := range []*nn.Tensor{a.Y, a.DU, a.DDelta, a.DB, a.DC, a.Final} {
		ktest.Poison(t, x)
	}
	s, err := nn.NewSelectiveScanWith(d, a, c.opt)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Release()
	if c.opt.Subgroups == 1 && !s.Subgroups() {
		t.Fatal("subgroups requested but not used")
	}
	ktest.Run(t, d, func(r *gpu.Recorder) {
		s.RecordForward(r)
		s.RecordBackward(r)
	})

	f := ktest.F64
	var z []float64
	if c.gate {
		z = f(in.z)
	}
	y := make([]float64, b*l*ed)
	ref.SelectiveScan(y, f(in.u), f(in.delta), f(in.aLog), f(in.b), f(in.c), f(in.d), z, b, l, ed, n)
	scanClose(t, "y", ktest.Download(t, a.Y), y)
	hf := make([]float64, b*ed*n)
	ref.SelectiveScanFinal(hf, f(in.u), f(in.delta), f(in.aLog), f(in.b), b, l, ed, n)
	scanClose(t, "final", ktest.Download(t, a.Final), hf)

	du := make([]float64, b*l*ed)
	ddelta := make([]float64, b*l*ed)
	daLog := f(in.daLog0)
	db := make([]float64, b*l*n)
	dc := make([]float64, b*l*n)
	dd := f(in.dd0)
	var dz []float64
	if c.gate {
		dz = make([]float64, b*l*ed)
	}
	ref.SelectiveScanBackward(du, ddelta, daLog, db, dc, dd, dz, f(in.dy), f(in.u), f(in.delta), f(in.aLog), f(in.b), f(in.c), f(in.d), z, b, l, ed, n)
	scanClose(t, "du", ktest.Download(t, a.DU), du)
	scanClose(t, "ddelta", ktest.Download(t, a.DDelta), ddelta)
	scanClose(t, "dA_log", ktest.Download(t, a.DALog), daLog)
	scanClose(t, "dB", ktest.Download(t, a.DB), db)
	scanClose(t, "dC", ktest.Download(t, a.DC), dc)
	scanClose(t, "dD", ktest.Download(t, a.DD), dd)
	if c.gate {
		scanClose(t, "dz", ktest.Download(t, a.DZ), dz)
	}
}

// TestSelectiveScanForwardOnly builds the op without backward tensors and
// checks that a backward on it fails at submit.
func TestSelectiveScanForwardOnly(t *testing.T) {
	ktest.ForEachDevice(t, func(t *testing.T, d *gpu.Device) {
		rng := rand.New(rand.NewSource(2))
		c := scanCase{batch: 2, l: 70, ed: 3, n: 16, gate: true} // the default case's forward pipeline
		in := newScanData(rng, c)
		b, l, ed, n := c.batch, c.l, c.ed, c.n
		a := nn.ScanArgs{Batch: b, Len: l,
			U: ktest.Tensor(t, d, "u", in.u, b, l, ed), Delta: ktest.Tensor(t, d, "delta", in.delta, b, l, ed),
			ALog: ktest.Tensor(t, d, "a_log", in.aLog, ed, n), Bm: ktest.Tensor(t, d, "B", in.b, b, l, n),
			Cm: ktest.Tensor(t, d, "C", in.c, b, l, n), D: ktest.Tensor(t, d, "D", in.d, ed), Y: ktest.Tensor(t, d, "y", nil, b, l, ed),
			Z: ktest.Tensor(t, d, "z", in.z, b, l, ed), Final: ktest.Tensor(t, d, "final", nil, b, ed, n)}
		ktest.Poison(t, a.Y)
		ktest.Poison(t, a.Final)
		s, err := nn.NewSelectiveScan(d, a)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Release()
		ktest.Run(t, d, s.RecordForward)
		y := make([]float64, b*l*ed)
		f := ktest.F64
		ref.SelectiveScan(y, f(in.u), f(in.delta), f(in.aLog), f(in.b), f(in.c), f(in.d), f(in.z), b, l, ed, n)
		scanClose(t, "y", ktest.Download(t, a.Y), y)
		hf := make([]float64, b*ed*n)
		ref.SelectiveScanFinal(hf, f(in.u), f(in.delta), f(in.aLog), f(in.b), b, l, ed, n)
		scanClose(t, "final", ktest.Download(t, a.Final), hf)
		r := d.NewRecorder()
		s.RecordBackward(r)
		if err := r.Submit(); err == nil {
			t.Error("a backward on a forward-only scan submitted without error")
		}
	})
}

func TestSelectiveScanErrors(t *testing.T) {
	ktest.ForEachDevice(t, func(t *testing.T, d *gpu.Device) {
		const b, l, ed, n = 2, 5, 3, 4
		tn := func(name string, shape ...int) *nn.Tensor { return ktest.Tensor(t, d, name, nil, shape...) }
		good := func() nn.ScanArgs {
			return nn.ScanArgs{Batch: b, Len: l, U: tn("u", b, l, ed), Delta: tn("delta", b, l, ed), ALog: tn("a_log", ed, n),
				Bm: tn("B", b, l, n), Cm: tn("C", b, l, n), D: tn("D", ed), Y: tn("y", b, l, ed)}
		}
		withBwd := func(a nn.ScanArgs) nn.ScanArgs {
			a.DY, a.DU, a.DDelta = tn("dy", b, l, ed), tn("du", b, l, ed), tn("ddelta", b, l, ed)
			a.DALog, a.DB, a.DC, a.DD = tn("da_log", ed, n), tn("dB", b, l, n), tn("dC", b, l, n), tn("dD", ed)
			return a
		}
		if s, err := nn.NewSelectiveScan(d, withBwd(good())); err != nil {
			t.Fatalf("valid args: %v", err)
		} else {
			s.Release()
		}
		cases := []struct {
			name string
			mod  func(a *nn.ScanArgs)
			want string
		}{
			{"U shape", func(a *nn.ScanArgs) { a.U = tn("u", b, l+1, ed) }, "u has shape"},
			{"Delta shape", func(a *nn.ScanArgs) { a.Delta = tn("delta", b, l, ed+1) }, "delta has shape"},
			{"Bm shape", func(a *nn.ScanArgs) { a.Bm = tn("B", b, l, n+1) }, "B has shape"},
			{"Cm missing", func(a *nn.ScanArgs) { a.Cm = nil }, "missing"},
			{"D shape", func(a *nn.ScanArgs) { a.D = tn("D", ed, 1) }, "D has shape"},
			{"Z shape", func(a *nn.ScanArgs) { a.Z = tn("z", b, l) }, "z has shape"},
			{"Y shape", func(a *nn.ScanArgs) { a.Y = tn("y", b*l*ed) }, "y has shape"},
			{"ALog rank", func(a *nn.ScanArgs) { a.ALog = tn("a_log", ed*n) }, "ALog must be"},
			{"batch", func(a *nn.ScanArgs) { a.Batch = 0 }, "positive"},
			{"partial backward", func(a *nn.ScanArgs) { a.DY = tn("dy", b, l, ed) }, "backward needs all"},
			{"DB shape", func(a *nn.ScanArgs) { *a = withBwd(*a); a.DB = tn("dB", b, l, ed) }, "dB has shape"},
			{"DZ without Z", func(a *nn.ScanArgs) { *a = withBwd(*a); a.DZ = tn("dz", b, l, ed) }, "DZ must be given"},
			{"Z without DZ", func(a *nn.ScanArgs) { *a = withBwd(*a); a.Z = tn("z", b, l, ed) }, "DZ must be given"},
			{"Y aliases U", func(a *nn.ScanArgs) { a.Y = a.U }, "also the input"},
			{"Final shape", func(a *nn.ScanArgs) { a.Final = tn("final", b, n, ed) }, "final has shape"},
		}
		for _, c := range cases {
			a := good()
			c.mod(&a)
			s, err := nn.NewSelectiveScan(d, a)
			if err == nil {
				s.Release()
				t.Errorf("%s: no error", c.name)
				continue
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("%s: error %q does not mention %q", c.name, err, c.want)
			}
		}
		if _, err := nn.NewSelectiveScanWith(d, good(), nn.ScanOptions{Threads: 3}); err == nil {
			t.Error("Threads 3: no error")
		}
		if _, err := nn.NewSelectiveScanWith(d, good(), nn.ScanOptions{StateThreads: 3}); err == nil {
			t.Error("StateThreads 3: no error")
		}
		if _, err := nn.NewSelectiveScanWith(d, good(), nn.ScanOptions{Threads: 4, Items: 4,
			Backward: nn.ScanLayout{Threads: 8, Items: 4}}); err == nil || !strings.Contains(err.Error(), "chunk") {
			t.Errorf("forward and backward chunks of 16 and 32 steps: error %v, want one about the chunks", err)
		}
		if _, err := nn.NewSelectiveScanWith(d, good(), nn.ScanOptions{Items: 17}); err == nil {
			t.Error("Items 17: no error")
		}
	})
}

// TestScanEnvLayout checks that MOM_SCAN forces the layouts (one for both
// kernels, or the forward's and the backward's) and that a malformed value
// or one with different chunks is refused with an error naming it.
func TestScanEnvLayout(t *testing.T) {
	ktest.ForEachDevice(t, func(t *testing.T, d *gpu.Device) {
		const b, l, ed, n = 2, 40, 6, 16
		tn := func(name string, shape ...int) *nn.Tensor { return ktest.Tensor(t, d, name, nil, shape...) }
		args := nn.ScanArgs{Batch: b, Len: l, U: tn("u", b, l, ed), Delta: tn("delta", b, l, ed), ALog: tn("a_log", ed, n),
			Bm: tn("B", b, l, n), Cm: tn("C", b, l, n), D: tn("D", ed), Y: tn("y", b, l, ed)}
		cases := []struct {
			env      string
			fwd, bwd nn.ScanLayout
			err      string
		}{
			{env: "2,4,4", fwd: nn.ScanLayout{2, 4, 4, 1}, bwd: nn.ScanLayout{2, 4, 4, 1}},
			{env: "2,4,4,2;4,2,2", fwd: nn.ScanLayout{2, 4, 4, 2}, bwd: nn.ScanLayout{4, 2, 2, 1}},
			{env: "4,8,4;8,8,4", err: "chunk"},
			{env: "4,8", err: nn.EnvScan},
			{env: "4,x,4", err: nn.EnvScan},
			{env: "4,8,4;4,8,4;4,8,4", err: nn.EnvScan},
			{env: "4,8,4,3", err: "StateThreads"},
		}
		for _, c := range cases {
			t.Setenv(nn.EnvScan, c.env)
			s, err := nn.NewSelectiveScan(d, args)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Errorf("%s=%q: error %v, want one naming %q", nn.EnvScan, c.env, err, c.err)
				}
				if err == nil {
					s.Release()
				}
				continue
			}
			if err != nil {
				t.Errorf("%s=%q: %v", nn.EnvScan, c.env, err)
				continue
			}
			if f, bw := s.Layouts(); f != c.fwd || bw != c.bwd {
				t.Errorf("%s=%q: layouts %v and %v, want %v and %v", nn.EnvScan, c.env, f, bw, c.fwd, c.bwd)
			}
			s.Release()
		}
		t.Setenv(nn.EnvScan, "")
		for _, c := range []struct {
			env  string
			want bool
			err  bool
		}{{"on", true, false}, {"off", false, false}, {"yes", false, true}} {
			t.Setenv(nn.EnvScanPrefetch, c.env)
			s, err := nn.NewSelectiveScan(d, args)
			if c.err {
				if err == nil || !strings.Contains(err.Error(), nn.EnvScanPrefetch) {
					t.Errorf("%s=%q: error %v, want one naming it", nn.EnvScanPrefetch, c.env, err)
				}
				if err == nil {
					s.Release()
				}
				continue
			}
			if err != nil {
				t.Errorf("%s=%q: %v", nn.EnvScanPrefetch, c.env, err)
				continue
			}
			if s.Prefetches() != c.want {
				t.Errorf("%s=%q: prefetch %v, want %v", nn.EnvScanPrefetch, c.env, s.Prefetches(), c.want)
			}
			s.Release()
		}
	})
}
