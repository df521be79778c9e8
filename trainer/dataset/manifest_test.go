package dataset

import (
	"encoding/json"
	"strings"
	"testing"
)

// goodManifest is a small valid manifest of the chameleon setting.
func goodManifest() *Manifest {
	return &Manifest{
		Format: ManifestFormat, Version: ManifestVersion, Setting: "chameleon",
		Modalities: []string{"text", "image"}, VocabRanges: [][2]int{{0, 300}, {300, 316}},
		Specials:      map[string]int{"<|doc|>": 0, "<|end|>": 1, "<|image|>": 2, "<|/image|>": 3},
		Tokenizers:    map[string]string{"text": "tokenizer.json", "image": "image_vq.safetensors"},
		TokenizerInfo: map[string]TokenizerInfo{"text": {Kind: "bpe", Version: 1, Size: 300}, "image": {Kind: "vq", Version: 1, Size: 16}},
		Splits: map[string]Split{
			"train": {File: "train.momtok", Tokens: 100, Documents: 3, Bytes: 600, SHA256: "00"},
			"eval":  {File: "eval.momtok", Tokens: 10, Documents: 1, Bytes: 90, SHA256: "00"},
		},
		Documents: map[string]int{"text": 2, "caption-image": 2}, Seed: 1,
	}
}

func TestParseManifest(t *testing.T) {
	m, err := ParseManifest(goodManifest().JSON())
	if err != nil {
		t.Fatal(err)
	}
	if v := m.Vocab(); v.Size() != 316 || v.Names[1] != "image" {
		t.Errorf("vocab %v", v)
	}
	cases := []struct {
		name string
		mut  func(m *Manifest)
		want string
	}{
		{"format", func(m *Manifest) { m.Format = "other" }, `format "other"`},
		{"version", func(m *Manifest) { m.Version = 9 }, "version 9"},
		{"setting", func(m *Manifest) { m.Setting = "video" }, `unknown setting "video"`},
		{"modalities", func(m *Manifest) { m.Modalities = []string{"text", "speech"} }, "the chameleon setting has"},
		{"ranges", func(m *Manifest) { m.VocabRanges[1][0] = 301 }, "gap"},
		{"empty range", func(m *Manifest) { m.VocabRanges[1] = [2]int{300, 300} }, "range [300, 300) is empty"},
		{"patch", func(m *Manifest) { m.PatchDim = 16 }, "patch_dim 16"},
		{"special", func(m *Manifest) { m.Specials["<|x|>"] = 300 }, "outside the text range"},
		{"tokenizer modality", func(m *Manifest) { m.Tokenizers["speech"] = "s.safetensors" }, `a tokenizer for "speech"`},
		{"tokenizer path", func(m *Manifest) { m.Tokenizers["text"] = "../tokenizer.json" }, "not a plain name"},
		{"split path", func(m *Manifest) { s := m.Splits["train"]; s.File = "/etc/passwd"; m.Splits["train"] = s }, "not a plain name"},
		{"no eval", func(m *Manifest) { delete(m.Splits, "eval") }, "no eval split"},
		{"extra split", func(m *Manifest) { m.Splits["test"] = m.Splits["eval"] }, "3 splits"},
		{"tiny split", func(m *Manifest) { s := m.Splits["eval"]; s.Tokens = 1; m.Splits["eval"] = s }, "has 1 tokens"},
	}
	for _, c := range cases {
		m := goodManifest()
		c.mut(m)
		if _, err := ParseManifest(m.JSON()); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
	tf := goodManifest()
	tf.Setting, tf.VocabRanges, tf.PatchDim = "transfusion", [][2]int{{0, 300}, {300, 333}}, 16
	if _, err := ParseManifest(tf.JSON()); err == nil || !strings.Contains(err.Error(), "has 33 ids, want 32") {
		t.Errorf("transfusion range: %v", err)
	}
	for _, raw := range []string{"", "{", `{"format":"mom-dataset"} {}`, `{"unknown": 1}`, `[]`} {
		if _, err := ParseManifest([]byte(raw)); err == nil {
			t.Errorf("ParseManifest(%q) succeeded", raw)
		}
	}
}

func FuzzParseManifest(f *testing.F) {
	f.Add(goodManifest().JSON())
	m := goodManifest()
	m.Setting, m.VocabRanges, m.PatchDim = "transfusion", [][2]int{{0, 300}, {300, 332}}, 16
	f.Add(m.JSON())
	f.Add([]byte(`{"format":"mom-dataset","version":1}`))
	f.Add([]byte(`{"format":"mom-dataset","version":1,"setting":"three","modalities":["text","image","speech"],"vocab_ranges":[[0,-5],[-5,3],[3,4]]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseManifest(b)
		if err != nil {
			return
		}
		// What parses is consistent: it validates again after a round trip
		// and its vocabulary is well formed.
		var back Manifest
		if err := json.Unmarshal(m.JSON(), &back); err != nil {
			t.Fatalf("round trip: %v", err)
		}
		if err := back.validate(); err != nil {
			t.Fatalf("valid manifest fails after a round trip: %v", err)
		}
		if err := m.Vocab().Validate(); err != nil {
			t.Fatalf("vocab: %v", err)
		}
	})
}
