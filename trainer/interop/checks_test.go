package interop

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"mom/mom"
	"mom/trainer/safetensors"
)

// copyFixture copies hf_tiny into a temporary folder, changing its
// tensors with edit and its config with cfg (either may be nil).
func copyFixture(t *testing.T, edit func([]safetensors.Tensor) []safetensors.Tensor, cfg func(map[string]any)) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "hf")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ts, meta, err := safetensors.Read("testdata/hf_tiny/model.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		ts = edit(ts)
	}
	if err := safetensors.Write(filepath.Join(dir, fileWeights), ts, meta); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("testdata/hf_tiny/config.json")
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	json.Unmarshal(b, &c)
	if cfg != nil {
		cfg(c)
	}
	b, _ = json.Marshal(c)
	if err := os.WriteFile(filepath.Join(dir, fileConfig), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func drop(name string) func([]safetensors.Tensor) []safetensors.Tensor {
	return func(ts []safetensors.Tensor) []safetensors.Tensor {
		var out []safetensors.Tensor
		for _, x := range ts {
			if x.Name != name {
				out = append(out, x)
			}
		}
		return out
	}
}

// TestImportChecks: each problem is an error naming it, found before
// anything is written.
func TestImportChecks(t *testing.T) {
	ds, err := ReadDataset("testdata/dataset_tiny")
	if err != nil {
		t.Fatal(err)
	}
	otherDS := *ds
	otherDS.VocabRanges = [][2]int{{0, 250}, {250, 320}, {320, 352}}
	otherTok := *ds
	otherTok.Dir = t.TempDir()
	os.WriteFile(filepath.Join(otherTok.Dir, "tokenizer.json"), []byte(`{"model": {"type": "BPE"}}`), 0o644)
	all := mom.AllSplits
	cases := []struct {
		name string
		from string
		t    Target
		want []string
	}{
		{"missing tensors", copyFixture(t, func(ts []safetensors.Tensor) []safetensors.Tensor {
			return drop("backbone.layers.1.mixer.D")(drop("backbone.norm_f.weight")(ts))
		}, nil), Target{Dataset: ds}, []string{"missing: ", "backbone.layers.1.mixer.D", "backbone.norm_f.weight"}},
		{"unexpected tensor", copyFixture(t, func(ts []safetensors.Tensor) []safetensors.Tensor {
			return append(ts, safetensors.F32("backbone.layers.0.mixer.in_proj.bias", []int{256}, make([]float32, 256)))
		}, nil), Target{Dataset: ds}, []string{"unexpected: backbone.layers.0.mixer.in_proj.bias"}},
		{"config vs shapes", copyFixture(t, nil, func(c map[string]any) { c["state_size"] = 8 }), Target{Dataset: ds},
			[]string{"wrong shape", "A_log is (128, 16), the config needs (128, 8)", "x_proj.weight is (36, 128), the config needs (20, 128)"}},
		{"vocabulary limit", "testdata/hf_tiny", Target{Setting: mom.ThreeModal, ImageVocab: 60000, SpeechVocab: 8000},
			[]string{"68256 ids", "limit of 65536"}},
		{"dataset text range", "testdata/hf_tiny", Target{Dataset: &otherDS}, []string{"dataset", "[0, 250)", "[0, 256)"}},
		{"dataset tokenizer", "testdata/hf_tiny", Target{Dataset: &otherTok}, []string{"differs from the checkpoint's tokenizer.json"}},
		{"bias", copyFixture(t, nil, func(c map[string]any) { c["use_bias"] = true }), Target{Dataset: ds}, []string{"use_bias"}},
		{"mamba2", copyFixture(t, nil, func(c map[string]any) { c["model_type"] = "mamba2" }), Target{Dataset: ds}, []string{"Mamba-2"}},
		{"text-only without a setting", "testdata/hf_tiny", Target{Splits: &all}, []string{"choose a setting"}},
	}
	for _, c := range cases {
		out := filepath.Join(t.TempDir(), "run")
		_, err := Import(ImportOptions{From: c.from, Out: out, Target: c.t})
		if err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q lacks %q", c.name, err, w)
			}
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("%s: %s was written despite the error", c.name, out)
		}
	}
	// An existing --out is refused and left alone.
	exists := t.TempDir()
	os.WriteFile(filepath.Join(exists, "keep"), []byte("x"), 0o644)
	if _, err := Import(ImportOptions{From: "testdata/hf_tiny", Out: exists, Target: Target{Dataset: ds}}); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("existing out: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(exists, "keep")); string(b) != "x" {
		t.Error("existing out was touched")
	}
}

// TestImportRun: an import writes a run folder whose checkpoint holds the
// upcycled model, a zero optimizer state, the tokenizer and a config.json
// that records the source.
func TestImportRun(t *testing.T) {
	ds, err := ReadDataset("testdata/dataset_tiny")
	if err != nil {
		t.Fatal(err)
	}
	all := mom.AllSplits
	out := filepath.Join(t.TempDir(), "up")
	res, err := Import(ImportOptions{From: "testdata/mamba_ssm_tiny", Out: out, Target: Target{Dataset: ds, Splits: &all, Seed: 3}, DataDir: "testdata/dataset_tiny"})
	if err != nil {
		t.Fatal(err)
	}
	back, err := ReadRun(out)
	if err != nil {
		t.Fatal(err)
	}
	sameParams(t, "imported run", res.Model, back)
	src, _ := ReadDir("testdata/hf_tiny")
	c := back.Config
	if c.Setting != mom.ThreeModal || c.Splits != mom.AllSplits || c.Vocab != 352 || c.Name != "up" {
		t.Errorf("config %+v", c)
	}
	// Every expert is the dense weight; text rows are the checkpoint's.
	for _, name := range []string{"layers.1.mixer.in_proj_z.weight", "layers.0.mixer.dt_proj.bias", "layers.0.mixer.out_proj.weight"} {
		dense, moe := src.Params[name], back.Params[name]
		for g := 0; g < 3; g++ {
			for i := range dense {
				if moe[g*len(dense)+i] != dense[i] {
					t.Fatalf("%s expert %d differs from the dense weight at %d", name, g, i)
				}
			}
		}
	}
	emb := back.Params[mom.NameEmbed]
	for i, x := range src.Params[mom.NameEmbed] {
		if emb[i] != x {
			t.Fatalf("text embedding changed at %d", i)
		}
	}
	if back.Tokenizer == nil {
		t.Error("the run has no tokenizer.json")
	}
	var rc map[string]any
	b, _ := os.ReadFile(filepath.Join(out, "config.json"))
	json.Unmarshal(b, &rc)
	if rc["data"] != "testdata/dataset_tiny" || rc["imported"] == nil {
		t.Errorf("config.json: %s", b)
	}
}

// TestShardedIndex: weights split over shards by an index read like one
// file; a shard that lacks a tensor the index places there is an error.
func TestShardedIndex(t *testing.T) {
	dir := copyFixture(t, nil, nil)
	ts, _, err := safetensors.Read(filepath.Join(dir, fileWeights))
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir, fileWeights))
	wm := map[string]string{}
	var a, b []safetensors.Tensor
	for i, x := range ts {
		f := "model-00001-of-00002.safetensors"
		if i%2 == 1 {
			f = "model-00002-of-00002.safetensors"
			b = append(b, x)
		} else {
			a = append(a, x)
		}
		wm[x.Name] = f
	}
	safetensors.Write(filepath.Join(dir, "model-00001-of-00002.safetensors"), a, nil)
	safetensors.Write(filepath.Join(dir, "model-00002-of-00002.safetensors"), b, nil)
	idx, _ := json.Marshal(map[string]any{"metadata": map[string]any{"total_size": 1}, "weight_map": wm})
	os.WriteFile(filepath.Join(dir, fileIndex), idx, 0o644)
	m, err := ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := ReadDir("testdata/hf_tiny")
	want.Tokenizer = nil
	sameParams(t, "sharded", want, m)
	wm["backbone.norm_f.weight"] = "model-00001-of-00002.safetensors"
	wm["backbone.layers.0.mixer.D"] = "../elsewhere.safetensors"
	idx, _ = json.Marshal(map[string]any{"weight_map": wm})
	os.WriteFile(filepath.Join(dir, fileIndex), idx, 0o644)
	if _, err := ReadDir(dir); err == nil || !strings.Contains(err.Error(), "not a file name in the same folder") {
		t.Errorf("index naming another folder: %v", err)
	}
}

// The readers of small files, fuzzed. Seeds (run in the normal suite) are
// the fixtures' files and variants.
func FuzzParseConfig(f *testing.F) {
	for _, p := range []string{"testdata/hf_tiny/config.json", "testdata/mamba_ssm_tiny/config.json"} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	c, _ := mom.Preset("tiny", mom.ThreeModal, mom.AllSplits)
	paper, _ := configJSON(c, Paper)
	f.Add(paper)
	f.Add([]byte(`{"d_model": 8, "n_layer": 1, "vocab_size": 3, "ssm_cfg": {"dt_rank": 1e9}}`))
	f.Add([]byte(`{"hidden_size": -1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := parseConfig(b)
		if err != nil {
			return
		}
		c := p.Config
		if c.DModel <= 0 || c.Layers <= 0 || c.Vocab <= 0 || c.DtRank <= 0 || c.DState <= 0 || c.Expand <= 0 || c.DConv <= 0 {
			t.Fatalf("accepted a config with a non-positive size: %+v", c)
		}
		_, _ = Layout(c, p.Format)
		mj := []byte(`{"format":"mom-export","version":1,"config":` + string(c.JSON()) + `}`)
		_, _ = parseMomFile(mj, c)
	})
}

func FuzzParseIndex(f *testing.F) {
	f.Add([]byte(`{"metadata": {"total_size": 8}, "weight_map": {"a": "model-00001-of-00002.safetensors"}}`))
	f.Add([]byte(`{"weight_map": {"a": "../x.safetensors"}}`))
	f.Add([]byte(`{"weight_map": {}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		wm, err := parseIndex(b)
		if err != nil {
			return
		}
		for _, v := range wm {
			if strings.ContainsAny(v, `/\`) || v == ".." {
				t.Fatalf("accepted shard %q", v)
			}
		}
	})
}

func FuzzParseDataset(f *testing.F) {
	b, err := os.ReadFile("testdata/dataset_tiny/dataset.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(`{"setting": "chameleon", "modalities": ["text", "image"], "vocab_ranges": [[0, 5], [4, 9]]}`))
	f.Add([]byte(`{"setting": "three", "modalities": ["text"], "vocab_ranges": [[0, 5]], "tokenizers": {"text": "../t.json"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := parseDataset(b)
		if err != nil {
			return
		}
		prev := 0
		for _, r := range d.VocabRanges {
			if r[0] != prev || r[1] <= r[0] {
				t.Fatalf("accepted ranges %v", d.VocabRanges)
			}
			prev = r[1]
		}
	})
}
