package interop

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"mom/mom"
	"mom/trainer"
	"mom/trainer/safetensors"
)

// randomModel draws every parameter of c (random values, so that a tensor
// moved to the wrong place is noticed).
func randomModel(c mom.Config, seed uint64) *Model {
	rng := rand.New(rand.NewPCG(seed, 1))
	m := &Model{Config: c, Params: map[string][]float32{}, Source: "random"}
	for _, s := range c.ParamSpecs() {
		v := make([]float32, s.Len())
		for i := range v {
			v[i] = float32(rng.NormFloat64())
		}
		m.Params[s.Name] = v
	}
	return m
}

// writeRun writes m as a mom run folder (config.json and a checkpoint),
// as training would.
func writeRun(t *testing.T, dir string, m *Model, data string) string {
	t.Helper()
	ck := &trainer.Checkpoint{Step: 7, Params: m.Tensors(), Config: m.Config.JSON()}
	if _, err := trainer.SaveCheckpoint(filepath.Join(dir, "checkpoints"), ck, 0); err != nil {
		t.Fatal(err)
	}
	rc, _ := json.Marshal(map[string]any{"name": filepath.Base(dir), "model": m.Config, "data": data})
	if err := os.WriteFile(filepath.Join(dir, "config.json"), rc, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func preset(t *testing.T, s mom.Setting, sp mom.Splits) mom.Config {
	t.Helper()
	c, err := mom.Preset("tiny", s, sp)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func sameParams(t *testing.T, what string, a, b *Model) {
	t.Helper()
	if string(a.Config.JSON()) != string(b.Config.JSON()) {
		t.Errorf("%s: config changed:\n%s\nvs\n%s", what, a.Config.JSON(), b.Config.JSON())
	}
	if len(a.Params) != len(b.Params) {
		t.Errorf("%s: %d parameters, want %d", what, len(b.Params), len(a.Params))
	}
	for k, v := range a.Params {
		w, ok := b.Params[k]
		if !ok || len(w) != len(v) {
			t.Errorf("%s: %s missing or resized", what, k)
			continue
		}
		for i := range v {
			if math.Float32bits(v[i]) != math.Float32bits(w[i]) {
				t.Errorf("%s: %s[%d] = %g, want %g", what, k, i, w[i], v[i])
				break
			}
		}
	}
}

// TestExportImportRoundTrip: export then import gives back every tensor
// bit for bit (and the config), dense and MoM, in every format that fits.
func TestExportImportRoundTrip(t *testing.T) {
	untied := preset(t, mom.Chameleon, mom.Splits{})
	untied.TieEmbeddings = false
	cases := []struct {
		name    string
		c       mom.Config
		formats []Format
	}{
		{"dense three", preset(t, mom.ThreeModal, mom.Splits{}), []Format{HF, MambaSSM, Paper}},
		{"dense untied", untied, []Format{HF, MambaSSM, Paper}},
		{"MoM all", preset(t, mom.ThreeModal, mom.AllSplits), []Format{Paper}},
		{"MoM in,dt", preset(t, mom.Chameleon, mom.Splits{In: true, Dt: true}), []Format{Paper}},
		{"MoM transfusion", preset(t, mom.Transfusion, mom.Splits{X: true, Out: true}), []Format{Paper}},
	}
	for i, tc := range cases {
		m := randomModel(tc.c, uint64(i))
		run := writeRun(t, filepath.Join(t.TempDir(), "run"), m, "synthetic")
		for _, f := range tc.formats {
			out := filepath.Join(t.TempDir(), "export")
			res, err := Export(run, f, out)
			if err != nil {
				t.Fatalf("%s: export %s: %v", tc.name, f, err)
			}
			back, err := ReadDir(out)
			if err != nil {
				t.Fatalf("%s: import %s: %v", tc.name, f, err)
			}
			sameParams(t, tc.name+" via "+string(f), m, back)
			// The same folder without mom.json is read as the ecosystem
			// sees it: a dense export gives the same weights in a
			// text-only config, a paper export the same model.
			os.Remove(filepath.Join(out, fileMom))
			plain, err := ReadDir(out)
			if err != nil {
				t.Fatalf("%s: import %s without mom.json: %v", tc.name, f, err)
			}
			for k, v := range m.Params {
				if w := plain.Params[k]; len(w) != len(v) || math.Float32bits(w[len(w)-1]) != math.Float32bits(v[len(v)-1]) {
					t.Errorf("%s: %s without mom.json: %s differs", tc.name, f, k)
				}
			}
			if res.Tensors == 0 {
				t.Errorf("%s: export reports no tensors", tc.name)
			}
		}
	}
}

// TestExportNames: the files carry the ecosystem's names and shapes.
func TestExportNames(t *testing.T) {
	c := preset(t, mom.Chameleon, mom.Splits{})
	run := writeRun(t, filepath.Join(t.TempDir(), "run"), randomModel(c, 3), "synthetic")
	E, D := c.ED(), c.DModel
	want := map[Format]map[string][]int{
		HF: {"backbone.embeddings.weight": {c.Vocab, D}, "backbone.layers.1.mixer.in_proj.weight": {2 * E, D},
			"backbone.layers.0.mixer.conv1d.weight": {E, 1, c.DConv}, "backbone.layers.0.mixer.x_proj.weight": {c.DtRank + 2*c.DState, E},
			"backbone.norm_f.weight": {D}},
		MambaSSM: {"backbone.embedding.weight": {c.Vocab, D}, "lm_head.weight": {c.Vocab, D}, "backbone.layers.1.norm.weight": {D}},
	}
	absent := map[Format][]string{HF: {"lm_head.weight", "backbone.embedding.weight"}, MambaSSM: {"backbone.embeddings.weight"}}
	for f, names := range want {
		out := filepath.Join(t.TempDir(), "x")
		if _, err := Export(run, f, out); err != nil {
			t.Fatal(err)
		}
		ts, meta, err := safetensors.Read(filepath.Join(out, fileWeights))
		if err != nil {
			t.Fatal(err)
		}
		if meta["format"] != "pt" {
			t.Errorf("%s: metadata %v lacks format=pt (transformers wants it)", f, meta)
		}
		got := map[string][]int{}
		for _, x := range ts {
			got[x.Name] = x.Shape
		}
		for n, s := range names {
			if !sameShape(got[n], s) {
				t.Errorf("%s: %s has shape %v, want %v", f, n, got[n], s)
			}
		}
		for _, n := range absent[f] {
			if _, ok := got[n]; ok {
				t.Errorf("%s: %s should not be written", f, n)
			}
		}
	}
	// transformers 5 checks config field types (1.0, not 1) and, with
	// rescale_prenorm_residual true, re-initialises the loaded out_proj
	// weights: both were seen breaking the loaded model.
	out := filepath.Join(t.TempDir(), "hf")
	if _, err := Export(run, HF, out); err != nil {
		t.Fatal(err)
	}
	cj, err := os.ReadFile(filepath.Join(out, fileConfig))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"rescale_prenorm_residual": false`, `"time_step_scale": 1.0,`, `"model_type": "mamba"`, `"tie_word_embeddings": true`} {
		if !strings.Contains(string(cj), want) {
			t.Errorf("hf config.json lacks %s:\n%s", want, cj)
		}
	}
	m := preset(t, mom.ThreeModal, mom.AllSplits)
	lay, err := Layout(m, Paper)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, ft := range lay {
		names[ft.Name] = true
	}
	for _, n := range []string{"backbone.layers.0.mixer.local_experts_in_proj.2.weight", "backbone.layers.1.mixer.local_experts_x_proj.0.weight",
		"backbone.layers.0.mixer.local_experts_dt_proj.1.weight", "backbone.layers.0.mixer.local_experts_dt_proj.1.bias",
		"backbone.layers.1.mixer.local_experts_out_proj.2.weight", "backbone.layers.0.mixer.conv1d.weight", "backbone.layers.0.mixer.A_log",
		"backbone.layers.0.mixer.D", "backbone.embedding.weight", "lm_head.weight"} {
		if !names[n] {
			t.Errorf("paper layout lacks %s", n)
		}
	}
}

// TestExportRefuses: a MoM model in a dense-only format, and an existing
// --out, are errors that say what fits; nothing is written.
func TestExportRefuses(t *testing.T) {
	run := writeRun(t, filepath.Join(t.TempDir(), "run"), randomModel(preset(t, mom.ThreeModal, mom.AllSplits), 1), "synthetic")
	tf := writeRun(t, filepath.Join(t.TempDir(), "tf"), randomModel(preset(t, mom.Transfusion, mom.Splits{}), 1), "synthetic")
	exists := t.TempDir()
	cases := []struct {
		run  string
		f    Format
		out  string
		want string
	}{
		{run, HF, "", "export it with --format paper"},
		{run, MambaSSM, "", "export it with --format paper"},
		{tf, HF, "", "export it with --format paper"},
		{run, Paper, exists, "already exists"},
		{run, "onnx", "", "unknown format"},
	}
	for _, c := range cases {
		out := c.out
		if out == "" {
			out = filepath.Join(t.TempDir(), "out")
		}
		_, err := Export(c.run, c.f, out)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("export %s to %s: error %v, want %q", c.run, c.f, err, c.want)
		}
		if c.out == "" {
			if _, err := os.Stat(out); err == nil {
				t.Errorf("export %s to %s wrote %s despite the error", c.run, c.f, out)
			}
		}
	}
}

// TestReadFixtures: the transformers and the mamba_ssm fixture (the same
// model) read to the same parameters; the mamba_ssm one through the pickle
// reader, with its padded vocabulary.
func TestReadFixtures(t *testing.T) {
	hf, err := ReadDir("testdata/hf_tiny")
	if err != nil {
		t.Fatal(err)
	}
	ssm, err := ReadDir("testdata/mamba_ssm_tiny")
	if err != nil {
		t.Fatal(err)
	}
	c := hf.Config
	if c.DModel != 64 || c.Layers != 2 || c.DState != 16 || c.DConv != 4 || c.Expand != 2 || c.DtRank != 4 || c.Vocab != 256 || !c.TieEmbeddings {
		t.Errorf("hf fixture config: %+v", c)
	}
	sameParams(t, "mamba_ssm fixture vs hf fixture", hf, ssm)
	if hf.Tokenizer == nil {
		t.Error("hf fixture: tokenizer.json not kept")
	}
	if !strings.Contains(strings.Join(ssm.Notes, "\n"), "padded to 256") {
		t.Errorf("mamba_ssm fixture notes %v do not mention the padded vocabulary", ssm.Notes)
	}
}
