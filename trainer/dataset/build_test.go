package dataset

import (
	"bytes"
	"context"
	"mom/trainer/dataset/datasettest"
	"mom/trainer/dataset/source"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"mom/mom"
)

// TestBuildUserFolders builds a dataset of each setting from a user's own
// folders and checks what was written: the manifest, both splits (held
// out by item), the tokenizers, and that the documents decode back to the
// user's words, images and sounds.
func TestBuildUserFolders(t *testing.T) {
	for _, setting := range []mom.Setting{mom.Chameleon, mom.Transfusion, mom.ThreeModal} {
		t.Run(string(setting), func(t *testing.T) {
			o := userFolders(t, setting)
			var log bytes.Buffer
			o.Progress = &log
			m, err := Build(context.Background(), o)
			if err != nil {
				t.Fatalf("%v\n%s", err, log.String())
			}
			d, err := Open(o.Out)
			if err != nil {
				t.Fatal(err)
			}
			if d.Manifest.Splits["train"].SHA256 != m.Splits["train"].SHA256 {
				t.Error("the manifest read back differs")
			}
			// A model config takes the dataset's vocabulary.
			c, _ := mom.Preset("tiny", setting, mom.AllSplits)
			c, err = d.ModelConfig(c)
			if err != nil {
				t.Fatal(err)
			}
			if c.VocabRanges[0][1] != m.TokenizerInfo["text"].Size || (c.Continuous() && c.PatchDim != 16) {
				t.Errorf("model config ranges %v patch %d", c.VocabRanges, c.PatchDim)
			}
			toks, err := d.LoadTokenizers()
			if err != nil {
				t.Fatal(err)
			}
			seen := map[string]int{}
			for _, split := range SplitNames {
				docs, err := d.Documents(split, 0)
				if err != nil {
					t.Fatal(err)
				}
				if len(docs) != m.Splits[split].Documents {
					t.Errorf("%s: %d documents, the manifest says %d", split, len(docs), m.Splits[split].Documents)
				}
				for _, doc := range docs {
					for _, s := range doc.Spans {
						seen[s.Modality]++
						switch s.Modality {
						case "text":
							txt, err := toks.Text.Decode(s.IDs)
							if err != nil || strings.ContainsRune(txt, '\uFFFD') {
								t.Fatalf("text span decodes to %q, %v", txt, err)
							}
						case "image":
							want := 49
							if len(s.IDs) != want {
								t.Fatalf("image span of %d tokens, want %d", len(s.IDs), want)
							}
						case "speech":
							if len(s.IDs) == 0 {
								t.Fatal("empty speech span")
							}
						}
					}
				}
			}
			for _, mod := range m.Modalities {
				if seen[mod] == 0 {
					t.Errorf("no %s spans in the documents", mod)
				}
			}
			// Splits are by item: per source, train + eval = items, and
			// both splits have some.
			for _, s := range m.Sources {
				if s.Train+s.Eval != s.Items || s.Train == 0 || s.Eval == 0 {
					t.Errorf("source %+v", s)
				}
			}
			// Nothing else is left beside the dataset.
			ents, _ := os.ReadDir(filepath.Dir(o.Out))
			for _, e := range ents {
				if strings.Contains(e.Name(), ".building-") {
					t.Errorf("leftover %s", e.Name())
				}
			}
			// show writes examples.
			var out bytes.Buffer
			ex := filepath.Join(t.TempDir(), "show")
			if err := Show(o.Out, &out, ex, 3); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out.String(), "splits:") {
				t.Errorf("show printed %s", out.String())
			}
			if slices.Contains(m.Modalities, "image") {
				if _, err := os.Stat(filepath.Join(ex, "images.png")); err != nil {
					t.Error(err)
				}
			}
			if slices.Contains(m.Modalities, "speech") {
				if _, err := os.Stat(filepath.Join(ex, "speech_00.wav")); err != nil {
					t.Error(err)
				}
			}
		})
	}
}

// TestBuildDeterministic: the same options give byte-identical token files
// and manifests (but for the build's time).
func TestBuildDeterministic(t *testing.T) {
	o := userFolders(t, mom.ThreeModal)
	a, err := Build(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	o2 := o
	o2.Out = o.Out + "-again"
	b, err := Build(context.Background(), o2)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range SplitNames {
		if a.Splits[s].SHA256 != b.Splits[s].SHA256 {
			t.Errorf("%s split differs between two builds", s)
		}
	}
	for mod, info := range a.TokenizerInfo {
		if b.TokenizerInfo[mod].SHA256 != info.SHA256 {
			t.Errorf("%s tokenizer differs between two builds", mod)
		}
	}
}

func TestBuildRefuses(t *testing.T) {
	o := userFolders(t, mom.Chameleon)
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(o.Out, "keep"), []byte("precious"), 0o644)
	cases := []struct {
		mut  func(o *Options)
		want string
	}{
		{func(o *Options) {}, "exists; mom data build never overwrites"},
		{func(o *Options) { o.Out += "2"; o.Setting = "video" }, `unknown setting "video"`},
		{func(o *Options) { o.Out += "2"; o.Limit = -1 }, "--limit -1"},
		{func(o *Options) { o.Out += "2"; o.TextVocab = 100 }, "--text-vocab 100"},
		{func(o *Options) { o.Out += "2"; o.Captions = "" }, "--images and --captions go together"},
		{func(o *Options) { o.Out += "2"; o.SpeechDir, o.Transcripts = o.ImageDir, o.Captions }, "has no speech"},
		{func(o *Options) { o.Out += "2"; o.ImagePatch = 5 }, "not a multiple of the patch"},
		{func(o *Options) { o.Out += "2"; o.TextDirs = []string{"/no/such/folder"} }, "is not a folder"},
		{func(o *Options) { o.Out += "2"; o.TextDirs = nil }, "no text"},
	}
	for _, c := range cases {
		oo := o
		c.mut(&oo)
		if _, err := Build(context.Background(), oo); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("got %v, want %q", err, c.want)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(o.Out, "keep")); string(b) != "precious" {
		t.Error("the existing folder was touched")
	}
	// A cancelled build leaves nothing behind.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	o.Out += "-cancelled"
	if _, err := Build(ctx, o); err == nil {
		t.Error("a cancelled build succeeded")
	}
	if _, err := os.Stat(o.Out); !os.IsNotExist(err) {
		t.Errorf("a cancelled build left %s", o.Out)
	}
}

// TestOpenRefusesDamage: a truncated or altered token file, or a missing
// tokenizer, is refused at Open, naming the file.
func TestOpenRefusesDamage(t *testing.T) {
	o := userFolders(t, mom.Chameleon)
	if _, err := Build(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	damage := []struct {
		name string
		fn   func(dir string) error
		want string
	}{
		{"truncated", func(dir string) error {
			p := filepath.Join(dir, trainFile)
			b, _ := os.ReadFile(p)
			return os.WriteFile(p, b[:len(b)-4], 0o644)
		}, "train.momtok is"},
		{"flipped", func(dir string) error {
			p := filepath.Join(dir, evalFile)
			b, _ := os.ReadFile(p)
			b[len(b)/2] ^= 1
			return os.WriteFile(p, b, 0o644)
		}, "eval.momtok is corrupt"},
		{"tokenizer", func(dir string) error { return os.Remove(filepath.Join(dir, textTokenizerFile)) }, "text tokenizer"},
		{"manifest", func(dir string) error { return os.WriteFile(filepath.Join(dir, ManifestName), []byte("{"), 0o644) }, "bad JSON"},
	}
	for _, c := range damage {
		dir := filepath.Join(t.TempDir(), "copy")
		if err := os.CopyFS(dir, os.DirFS(o.Out)); err != nil {
			t.Fatal(err)
		}
		if err := c.fn(dir); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
	if _, err := Open(t.TempDir()); err == nil || !strings.Contains(err.Error(), "mom data build") {
		t.Errorf("empty folder: %v", err)
	}
}

// userFolders writes a user's small dataset (datasettest.UserFolders) and
// returns options that build only from it, with small tokenizers.
func userFolders(t testing.TB, setting mom.Setting) Options {
	f := datasettest.UserFolders(t, setting)
	return Options{Setting: setting, Out: f.Out, Seed: 5, TextVocab: 300, ImageCodes: 16, SpeechUnits: 16, EvalFraction: 0.2,
		TextDirs: f.TextDirs, ImageDir: f.ImageDir, Captions: f.Captions, SpeechDir: f.SpeechDir, Transcripts: f.Transcripts}
}

// TestBuildSystem builds a small three-modality dataset from the corpora
// the set-up installs (Fashion-MNIST, fortunes, the Bible, WordNet and
// espeak-ng), checking that captions name the garment and that synthesised
// speech is there.
func TestBuildSystem(t *testing.T) {
	for _, p := range []string{source.FashionMNISTDir, source.FortunesDir, source.WordNetDir} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("%s is not installed (make deps installs it): %v", p, err)
		}
	}
	o := Options{Setting: mom.ThreeModal, Out: filepath.Join(t.TempDir(), "ds"), Limit: 80, TextVocab: 400, ImageCodes: 32, SpeechUnits: 32, Seed: 2, System: true}
	m, err := Build(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, s := range m.Sources {
		names[s.Name] = s.Items > 0
	}
	for _, want := range []string{"fashion-mnist", "fortunes", "bible-kjv", "wordnet", "espeak-ng"} {
		if !names[want] {
			t.Errorf("no items from %s: %+v", want, m.Sources)
		}
	}
	for _, k := range []string{DocCaptionImage, DocImageCaption, DocCaptionSpeech, DocSpeechCaption, DocText} {
		if m.Documents[k] == 0 {
			t.Errorf("no %s documents: %v", k, m.Documents)
		}
	}
	for _, f := range []string{"text_bytes_per_token", "image_psnr_db", "speech_tokens_per_second"} {
		if m.Figures[f] <= 0 {
			t.Errorf("figure %s = %v", f, m.Figures[f])
		}
	}
	// Captions of Fashion-MNIST images name their class.
	train, _, err := source.FashionMNIST(source.FashionMNISTDir, 20)
	if err != nil {
		t.Fatal(err)
	}
	gloss, err := source.WordNetGlosses(source.WordNetDir)
	if err != nil {
		t.Fatal(err)
	}
	distinct := map[string]bool{}
	for _, im := range train {
		c := caption(im, gloss, 1)
		distinct[c] = true
		if !strings.Contains(c, im.Label) {
			t.Errorf("caption %q does not name %q", c, im.Label)
		}
	}
	if len(distinct) < 15 {
		t.Errorf("only %d distinct captions of 20 images", len(distinct))
	}
}

// TestBuildSharedTokenizer: a text-only dataset built with another
// dataset's tokenizer.json uses it unchanged (so the two share a text
// vocabulary), and a tokenizer without the markers a setting needs is
// refused.
func TestBuildSharedTokenizer(t *testing.T) {
	three := userFolders(t, mom.ThreeModal)
	m3, err := Build(context.Background(), three)
	if err != nil {
		t.Fatal(err)
	}
	text := userFolders(t, mom.TextOnly)
	text.TextTokenizer = filepath.Join(three.Out, textTokenizerFile)
	mt, err := Build(context.Background(), text)
	if err != nil {
		t.Fatal(err)
	}
	if mt.TokenizerInfo["text"].SHA256 != m3.TokenizerInfo["text"].SHA256 || mt.VocabRanges[0] != m3.VocabRanges[0] {
		t.Errorf("the shared tokenizer changed: %+v vs %+v", mt.TokenizerInfo["text"], m3.TokenizerInfo["text"])
	}
	if len(mt.Modalities) != 1 || mt.Documents[DocText] == 0 {
		t.Errorf("text dataset: %v %v", mt.Modalities, mt.Documents)
	}
	back := userFolders(t, mom.ThreeModal)
	back.TextTokenizer = filepath.Join(text.Out, textTokenizerFile)
	// The text dataset's file is the three-modality tokenizer, so it has
	// the markers; a tokenizer trained for text alone does not.
	plain := userFolders(t, mom.TextOnly)
	if _, err := Build(context.Background(), plain); err != nil {
		t.Fatal(err)
	}
	back.TextTokenizer = filepath.Join(plain.Out, textTokenizerFile)
	if _, err := Build(context.Background(), back); err == nil || !strings.Contains(err.Error(), "lacks the markers [<|image|> <|/image|> <|speech|> <|/speech|>]") {
		t.Errorf("tokenizer without markers: %v", err)
	}
}
