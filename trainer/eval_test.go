package trainer

import (
	"context"
	"errors"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"mom/gpu"
	"mom/mom"
	"mom/trainer/dataset"
	"mom/trainer/dataset/datasettest"
	"mom/trainer/tokenizer/bpe"
)

// TestBitsPerByte: a hand-checkable example. The text "hello world" (11
// bytes) between a document and an end marker (no bytes), scored at 22·ln 2
// nats in all, is 22 bits over 11 bytes: 2 bits per byte.
func TestBitsPerByte(t *testing.T) {
	tok, err := bpe.Train(func(yield func(string) bool) {
		for _, s := range []string{"hello world", "hello there", "world of words"} {
			if !yield(s) {
				return
			}
		}
	}, bpe.TrainConfig{VocabSize: 300, Specials: []string{"<|doc|>", "<|end|>"}})
	if err != nil {
		t.Fatal(err)
	}
	doc, _ := tok.Special("<|doc|>")
	end, _ := tok.Special("<|end|>")
	ids := append(append([]uint32{doc}, tok.Encode("hello world")...), end)
	lens := TextByteLengths(tok)
	var bytes int64
	for _, id := range ids {
		bytes += int64(lens[id])
	}
	if bytes != 11 {
		t.Fatalf("%v decode to %d bytes, want 11 (markers count none)", ids, bytes)
	}
	if got := BitsPerByte(22*math.Ln2, bytes); math.Abs(got-2) > 1e-12 {
		t.Errorf("bits per byte %v, want 2", got)
	}
	// Multi-byte characters count their UTF-8 bytes: "é" is 2.
	var n int64
	for _, id := range tok.Encode("é") {
		n += int64(lens[id])
	}
	if n != 2 {
		t.Errorf("\"é\" decodes to %d bytes, want 2", n)
	}
}

// buildDataset builds a small dataset of setting from a user's folders.
func buildDataset(t *testing.T, setting mom.Setting) string {
	t.Helper()
	f := datasettest.UserFolders(t, setting)
	bo := dataset.Options{Setting: setting, Out: f.Out, Seed: 5, TextVocab: 300, ImageCodes: 16, SpeechUnits: 16, EvalFraction: 0.2,
		TextDirs: f.TextDirs, ImageDir: f.ImageDir, Captions: f.Captions, SpeechDir: f.SpeechDir, Transcripts: f.Transcripts}
	if _, err := dataset.Build(context.Background(), bo); err != nil {
		t.Fatal(err)
	}
	return bo.Out
}

// TestEvaluate: on the trainer's held-out batches Evaluate's losses are the
// trainer's held-out losses at the same checkpoint (Chameleon, and
// Transfusion, whose diffusion loss depends on the evaluation's noise);
// over the whole held-out split every target is scored once (the counts
// and the text's bytes, decoded independently, agree), perplexity is
// exp(loss) and accuracies are fractions.
func TestEvaluate(t *testing.T) {
	for _, setting := range []mom.Setting{mom.Chameleon, mom.Transfusion} {
		ds := buildDataset(t, setting)
		forEachDevice(t, func(t *testing.T, d *gpu.Device) {
			o := tinyOptions(t, setting, mom.AllSplits, t.TempDir())
			c, err := DatasetConfig(o.Config, ds)
			if err != nil {
				t.Fatal(err)
			}
			o.Config, o.Data = c, ds
			o.Steps, o.Warmup, o.EvalEvery, o.CkptEvery, o.EvalBatches = 30, 5, 30, 30, 3
			if _, err := Train(context.Background(), d, o); err != nil {
				t.Fatal(err)
			}
			ev := evalLosses(t, o.Out)
			last := ev[len(ev)-1]
			tr, err := OpenTrained(o.Out)
			if err != nil {
				t.Fatal(err)
			}
			if tr.Run != o.Out || tr.Data != ds || tr.Batch != o.Batch || tr.SeqLen != o.SeqLen || tr.Checkpoint.Step != 30 {
				t.Fatalf("opened %+v", tr)
			}
			res, err := Evaluate(d, tr, EvalOptions{Batches: o.EvalBatches})
			if err != nil {
				t.Fatal(err)
			}
			near := func(what string, got, want float64) {
				t.Helper()
				if math.Abs(got-want) > 1e-5*math.Abs(want) {
					t.Errorf("%s %s: Evaluate %.8g, the trainer %.8g", setting, what, got, want)
				}
			}
			near("loss", res.Loss, last["loss"].(float64))
			for _, name := range c.ModalityNames() {
				near(name+" loss", res.Modalities[name].Loss, last["loss_"+name].(float64))
			}
			if res.Whole || res.Batches != 3 || res.Positions != int64(3*o.Batch*o.SeqLen) {
				t.Errorf("3 batches: %+v", res)
			}

			// The whole held-out split.
			whole, err := Evaluate(d, tr, EvalOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if !whole.Whole {
				t.Fatal("not the whole split")
			}
			want := heldOutTargets(t, ds, c)
			for g, row := range c.Modalities {
				me := whole.Modalities[row.Name]
				if me.Targets != want.targets[g] {
					t.Errorf("%s: %d targets scored, the split has %d", row.Name, me.Targets, want.targets[g])
				}
				if row.Continuous {
					if me.Accuracy != nil || me.Perplexity != 0 || !(me.Loss > 0) {
						t.Errorf("%s (diffusion): %+v", row.Name, me)
					}
					continue
				}
				if me.Accuracy == nil || *me.Accuracy < 0 || *me.Accuracy > 1 || math.Abs(me.Perplexity-math.Exp(me.Loss)) > 1e-9*me.Perplexity {
					t.Errorf("%s: %+v", row.Name, me)
				}
			}
			text := whole.Modalities["text"]
			if text.BitsPerByte == nil || text.Bytes != want.textBytes {
				t.Fatalf("text: %d bytes (bits per byte %v), the split's text targets decode to %d", text.Bytes, text.BitsPerByte, want.textBytes)
			}
			near("bits per byte", *text.BitsPerByte, text.Loss*float64(text.Targets)/math.Ln2/float64(want.textBytes))
			t.Logf("%s whole held-out split (%d batches): loss %.4f; text %.4f nats, %.3f bits/byte, accuracy %.3f; image %.4f",
				setting, whole.Batches, whole.Loss, text.Loss, *text.BitsPerByte, *text.Accuracy, whole.Modalities["image"].Loss)
		})
	}
}

// splitTargets are a held-out split's next-token targets per modality
// (continuous modalities: their positions) and the bytes of its text
// targets, counted from the token file.
type splitTargets struct {
	targets   []int64
	textBytes int64
}

func heldOutTargets(t *testing.T, dir string, c mom.Config) splitTargets {
	t.Helper()
	d, err := dataset.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	f, err := d.OpenSplit("eval")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tok, err := bpe.Load(d.TokenizerPath("text"))
	if err != nil {
		t.Fatal(err)
	}
	ids, mods, _ := f.Tokens()
	out := splitTargets{targets: make([]int64, c.Groups())}
	var text []uint32
	specials := map[uint32]bool{}
	for _, s := range tok.Specials() {
		id, _ := tok.Special(s)
		specials[id] = true
	}
	for k := range ids {
		if c.Modalities[mods[k]].Continuous {
			out.targets[mods[k]]++
		}
		if k == 0 || c.Modalities[mods[k]].Continuous || c.Modalities[mods[k-1]].Continuous {
			continue
		}
		out.targets[mods[k]]++
		if mods[k] == 0 && !specials[ids[k]] {
			text = append(text, ids[k])
		}
	}
	s, err := tok.Decode(text)
	if err != nil {
		t.Fatal(err)
	}
	out.textBytes = int64(len(s))
	return out
}

// TestEvaluateErrors: a run on synthetic data has no tokenizers (a clear
// error naming the way out) but is still scored, without bits per byte.
func TestEvaluateErrors(t *testing.T) {
	forEachDevice(t, func(t *testing.T, d *gpu.Device) {
		o := tinyOptions(t, mom.ThreeModal, mom.AllSplits, filepath.Join(t.TempDir(), "run"))
		o.Steps, o.Warmup, o.EvalEvery, o.CkptEvery = 2, 1, 0, 2
		if _, err := Train(context.Background(), d, o); err != nil {
			t.Fatal(err)
		}
		tr, err := OpenTrained(filepath.Join(o.Out, "checkpoints"))
		if err != nil {
			t.Fatal(err)
		}
		if tr.Run != o.Out || tr.Data != "synthetic" {
			t.Fatalf("opened %+v", tr)
		}
		if _, err := tr.Dataset(""); !errors.Is(err, ErrNoDataset) || !strings.Contains(err.Error(), "--data") {
			t.Errorf("tokenizers of a synthetic run: %v", err)
		}
		res, err := Evaluate(d, tr, EvalOptions{Batches: 1})
		if err != nil {
			t.Fatal(err)
		}
		if res.Modalities["text"].BitsPerByte != nil || res.Modalities["image"].Accuracy == nil {
			t.Errorf("synthetic: %+v %+v", res.Modalities["text"], res.Modalities["image"])
		}
		if _, err := Evaluate(d, tr, EvalOptions{Batches: -1}); err == nil {
			t.Error("--batches -1: no error")
		}
		if _, err := OpenTrained(t.TempDir()); err == nil {
			t.Error("a folder without checkpoints: no error")
		}
	})
}
