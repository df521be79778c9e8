package mom

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestPresetsValidate(t *testing.T) {
	for _, name := range PresetNames() {
		for _, row := range Settings() {
			s := row.Name
			for _, sp := range []Splits{{}, AllSplits} {
				c, err := Preset(name, s, sp)
				if err != nil {
					t.Fatalf("%s/%s: %v", name, s, err)
				}
				total, active := c.ParamCount()
				if sp.Dense() && total != active {
					t.Errorf("%s/%s dense: total %d != active %d", name, s, total, active)
				}
				if !sp.Dense() && c.Groups() > 1 && total <= active {
					t.Errorf("%s/%s MoM: total %d should exceed active %d", name, s, total, active)
				}
			}
		}
	}
}

func TestPresetScales(t *testing.T) {
	// The dense Chameleon models should land near the paper's sizes.
	want := map[string]float64{"37m": 37e6, "94m": 94e6, "443m": 443e6, "880m": 880e6, "1.4b": 1.4e9}
	for name, w := range want {
		c, err := Preset(name, Chameleon, Splits{})
		if err != nil {
			t.Fatal(err)
		}
		total, _ := c.ParamCount()
		if r := float64(total) / w; r < 0.75 || r > 1.3 {
			t.Errorf("preset %s has %.1fM parameters, not near %.0fM", name, float64(total)/1e6, w/1e6)
		}
	}
}

func TestMoMSameActiveParamsAndFLOPs(t *testing.T) {
	dense, _ := Preset("small", ThreeModal, Splits{})
	mom, _ := Preset("small", ThreeModal, AllSplits)
	_, ad := dense.ParamCount()
	_, am := mom.ParamCount()
	if ad != am {
		t.Errorf("active params: dense %d, MoM %d", ad, am)
	}
	if dense.StepFLOPs() != mom.StepFLOPs() {
		t.Errorf("FLOPs differ: %+v vs %+v", dense.StepFLOPs(), mom.StepFLOPs())
	}
}

func TestParseSplits(t *testing.T) {
	cases := []struct {
		in   string
		want Splits
		err  bool
	}{
		{"", Splits{}, false},
		{"all", AllSplits, false},
		{"in,out", Splits{In: true, Out: true}, false},
		{"x, dt", Splits{X: true, Dt: true}, false},
		{"in,foo", Splits{}, true},
	}
	for _, c := range cases {
		got, err := ParseSplits(c.in)
		if (err != nil) != c.err || (!c.err && got != c.want) {
			t.Errorf("ParseSplits(%q) = %+v, %v", c.in, got, err)
		}
	}
}

func TestValidateErrors(t *testing.T) {
	c, _ := Preset("tiny", Chameleon, AllSplits)
	bad := []struct {
		mut  func(*Config)
		want string
	}{
		{func(c *Config) { c.DModel = 0 }, "d_model"},
		{func(c *Config) { c.DState = 65 }, "d_state"},
		{func(c *Config) { c.VocabRanges[1][0]++ }, "contiguous"},
		{func(c *Config) { c.Vocab++ }, "vocab_size"},
		{func(c *Config) { c.Setting = "x" }, "unknown setting"},
	}
	for _, b := range bad {
		cc := c
		cc.VocabRanges = [][2]int{c.VocabRanges[0], c.VocabRanges[1]}
		b.mut(&cc)
		if err := cc.Validate(); err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("got %v, want an error mentioning %q", err, b.want)
		}
	}
}

func TestInitDtBias(t *testing.T) {
	p := ParamSpec{Shape: []int{1000}, Init: InitDtBias}
	v := InitParam(p, rand.New(rand.NewPCG(1, 2)))
	for _, b := range v {
		dt := math.Log1p(math.Exp(float64(b))) // softplus
		if dt < 1e-3*0.999 || dt > 1e-1*1.001 {
			t.Fatalf("softplus(bias) = %g outside [1e-3, 1e-1]", dt)
		}
	}
	a := InitParam(ParamSpec{Shape: []int{2, 4}, Init: InitALog}, nil)
	if math.Abs(float64(a[5])-math.Log(2)) > 1e-7 {
		t.Errorf("A_log[1][1] = %g, want log 2", a[5])
	}
}
