package mom

import (
	"math"
	"testing"

	"mom/gpu"
)

// TestInitPieces: drawing a parameter in pieces cut anywhere (across
// blocks, inside one) gives the numbers of drawing it block by block; every
// kind of initialiser keeps its statistics.
func TestInitPieces(t *testing.T) {
	specs := []ParamSpec{
		{Name: "normal", Shape: []int{3, InitBlock/2 + 7}, Init: InitNormal, Scale: 0.02},
		{Name: "uniform", Shape: []int{5, 1000}, Init: InitUniform, Scale: 0.5},
		{Name: "alog", Shape: []int{InitBlock/16 + 3, 16}, Init: InitALog},
		{Name: "dtbias", Shape: []int{2000}, Init: InitDtBias},
		{Name: "ones", Shape: []int{77}, Init: InitOnes},
		{Name: "zeros", Shape: []int{77}, Init: InitZeros},
	}
	for i, s := range specs {
		n := s.Len()
		want := make([]float32, n)
		for k := 0; k*InitBlock < n; k++ {
			InitParamBlock(s, i, k, 42, want[k*InitBlock:min((k+1)*InitBlock, n)])
		}
		cuts := []int{InitBlock/3 + 1, InitBlock + 5, n}
		if n < 10000 {
			cuts = append(cuts, 1, 3, 4097)
		}
		for _, cut := range cuts {
			got := make([]float32, n)
			for j := range got {
				got[j] = float32(math.NaN()) // staging holds garbage: every value must be written
			}
			for lo := 0; lo < n; lo += cut {
				initPiece(s, i, 42, got[lo:min(lo+cut, n)], lo)
			}
			for j := range want {
				if math.Float32bits(got[j]) != math.Float32bits(want[j]) {
					t.Fatalf("%s cut every %d: value %d is %g, want %g", s.Name, cut, j, got[j], want[j])
				}
			}
		}
		var sum, sq float64
		for _, v := range want {
			sum += float64(v)
			sq += float64(v) * float64(v)
		}
		mean, sd := sum/float64(n), math.Sqrt(sq/float64(n)-(sum/float64(n))*(sum/float64(n)))
		switch s.Init {
		case InitNormal:
			if math.Abs(mean) > 1e-4 || math.Abs(sd-s.Scale) > 1e-3*s.Scale*10 {
				t.Errorf("%s: mean %g sd %g, want 0 and %g", s.Name, mean, sd, s.Scale)
			}
		case InitUniform:
			if math.Abs(mean) > 0.02 || math.Abs(sd-s.Scale/math.Sqrt(3)) > 0.01 {
				t.Errorf("%s: mean %g sd %g, want 0 and %g", s.Name, mean, sd, s.Scale/math.Sqrt(3))
			}
		case InitALog:
			if want[17] != float32(math.Log(2)) {
				t.Errorf("%s: A_log[1, 1] = %g, want log 2", s.Name, want[17])
			}
		case InitOnes:
			if mean != 1 {
				t.Errorf("%s: mean %g", s.Name, mean)
			}
		case InitZeros:
			if sq != 0 {
				t.Errorf("%s: not zero", s.Name)
			}
		}
	}
	// Another seed or another parameter index draws other numbers.
	a, b, c := make([]float32, 8), make([]float32, 8), make([]float32, 8)
	InitParamBlock(specs[1], 1, 0, 42, a)
	InitParamBlock(specs[1], 1, 0, 43, b)
	InitParamBlock(specs[1], 2, 0, 42, c)
	if a[0] == b[0] || a[0] == c[0] {
		t.Errorf("seed and index do not change the draw: %v %v %v", a[0], b[0], c[0])
	}
}

// TestInitParamsOnDevice: the parameters a model draws on the device are
// those of the blocks drawn on the host.
func TestInitParamsOnDevice(t *testing.T) {
	forEachDevice(t, func(t *testing.T, d *gpu.Device) {
		c, err := Preset("tiny", ThreeModal, AllSplits)
		if err != nil {
			t.Fatal(err)
		}
		m, err := NewModel(d, c, 1, 8)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Release()
		var calls int
		var last, total int64
		if err := m.InitParamsProgress(9, func(done, all int64) { calls++; last, total = done, all }); err != nil {
			t.Fatal(err)
		}
		if calls < len(m.Params) || last != total {
			t.Errorf("progress called %d times, last %d of %d", calls, last, total)
		}
		for i, p := range m.Params {
			got, err := p.W.Download()
			if err != nil {
				t.Fatal(err)
			}
			want := make([]float32, p.Spec.Len())
			InitParamBlock(p.Spec, i, 0, 9, want)
			for j := range want {
				if got[j] != want[j] {
					t.Fatalf("%s[%d] = %g, want %g", p.Spec.Name, j, got[j], want[j])
				}
			}
		}
	})
}
