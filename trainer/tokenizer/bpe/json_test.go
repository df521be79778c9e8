package bpe

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func smallTokenizer(t testing.TB) *Tokenizer {
	t.Helper()
	tok, err := Train(slices.Values([]string{"the cat sat on the mat", "the dog", "the end<s>", "hello world hello"}),
		TrainConfig{VocabSize: 280, Specials: []string{"<s>", "</s>"}})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// edit decodes a tokenizer.json, applies f to it and encodes it again.
func edit(t *testing.T, data []byte, f func(m map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	f(m)
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sub(m map[string]any, key string) map[string]any { return m[key].(map[string]any) }

func TestSaveLoadRoundTrip(t *testing.T) {
	tok := smallTokenizer(t)
	path := filepath.Join(t.TempDir(), "tok.json")
	if err := tok.Save(path); err != nil {
		t.Fatal(err)
	}
	back, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(back.JSON()) != string(tok.JSON()) {
		t.Error("Load(Save(t)) saves differently")
	}
	if back.Size() != tok.Size() || back.Merges() != tok.Merges() {
		t.Errorf("size %d/%d merges %d/%d", back.Size(), tok.Size(), back.Merges(), tok.Merges())
	}
	for _, s := range []string{"the cat", "<s>hello</s>", "unseen words 123"} {
		if a, b := tok.Encode(s), back.Encode(s); !slices.Equal(a, b) {
			t.Errorf("%q: %v after loading, %v before", s, b, a)
		}
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.json")); err == nil || !strings.Contains(err.Error(), "missing.json") {
		t.Errorf("Load of a missing file: %v", err)
	}
	bad := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(bad, []byte(`{"version": "2.0"}`), 0o644)
	if _, err := Load(bad); err == nil || !strings.Contains(err.Error(), "bad.json") {
		t.Errorf("Load of a bad file should name it: %v", err)
	}
}

func TestParseOtherLayouts(t *testing.T) {
	tok := smallTokenizer(t)
	data := tok.JSON()
	want := tok.Encode("the cat<s> hello")

	// Merges as "a b" strings, the library's older format.
	legacy := edit(t, data, func(m map[string]any) {
		model := sub(m, "model")
		var ms []any
		for _, p := range model["merges"].([]any) {
			pp := p.([]any)
			ms = append(ms, pp[0].(string)+" "+pp[1].(string))
		}
		model["merges"] = ms
	})
	got, err := Parse(legacy)
	if err != nil {
		t.Fatalf("legacy merges: %v", err)
	}
	if ids := got.Encode("the cat<s> hello"); !slices.Equal(ids, want) {
		t.Errorf("legacy merges encode %v, want %v", ids, want)
	}

	// GPT-2's layout: an added token after the model's vocabulary, absent
	// from it; a ByteLevel post-processor; no optional fields.
	gpt2 := edit(t, data, func(m map[string]any) {
		m["added_tokens"] = append(m["added_tokens"].([]any), map[string]any{
			"id": float64(tok.Size()), "content": "<|endoftext|>", "special": true, "normalized": true,
		})
		m["post_processor"] = map[string]any{"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false}
		model := sub(m, "model")
		for _, k := range []string{"dropout", "fuse_unk", "byte_fallback", "ignore_merges", "continuing_subword_prefix", "end_of_word_suffix"} {
			delete(model, k)
		}
	})
	got, err = Parse(gpt2)
	if err != nil {
		t.Fatalf("GPT-2 layout: %v", err)
	}
	if got.Size() != tok.Size()+1 {
		t.Errorf("size %d, want %d", got.Size(), tok.Size()+1)
	}
	ids := got.Encode("x<|endoftext|>y<s>")
	if id, _ := got.Special("<|endoftext|>"); !slices.Contains(ids, id) {
		t.Errorf("the added token %d is not in %v", id, ids)
	}
	if back, err := got.Decode(ids); err != nil || back != "x<|endoftext|>y<s>" {
		t.Errorf("decode: %q, %v", back, err)
	}
	// Save writes the vocabulary without the added token that the model lacks.
	again, err := Parse(got.JSON())
	if err != nil || again.Size() != got.Size() {
		t.Fatalf("re-parse of a saved GPT-2 layout: %v", err)
	}
}

func TestParseNormalizedAddedTokensSplitLater(t *testing.T) {
	// The library matches non-normalized added tokens on the raw text
	// first and normalized ones in what is left: "<s>" (raw) wins inside
	// "x<s>" (normalized) although the latter starts further left.
	tok := smallTokenizer(t)
	data := edit(t, tok.JSON(), func(m map[string]any) {
		m["added_tokens"] = append(m["added_tokens"].([]any), map[string]any{
			"id": float64(tok.Size()), "content": "x<s", "special": false, "normalized": true,
		})
	})
	got, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	ids := got.Encode("ax<s>")
	if !slices.Contains(ids, 0) || slices.Contains(ids, uint32(tok.Size())) {
		t.Errorf("Encode(ax<s>) = %v: want <s> (0), not x<s (%d)", ids, tok.Size())
	}
	if ids := got.Encode("ax<sb"); !slices.Contains(ids, uint32(tok.Size())) {
		t.Errorf("Encode(ax<sb) = %v: want x<s (%d)", ids, tok.Size())
	}
}

func TestParseRefuses(t *testing.T) {
	data := smallTokenizer(t).JSON()
	set := func(path []string, v any) func(m map[string]any) {
		return func(m map[string]any) {
			for _, k := range path[:len(path)-1] {
				m = sub(m, k)
			}
			if v == nil {
				delete(m, path[len(path)-1])
			} else {
				m[path[len(path)-1]] = v
			}
		}
	}
	null := json.RawMessage("null")
	for _, tc := range []struct {
		name string
		f    func(m map[string]any)
		want string
	}{
		{"version", set([]string{"version"}, "2.0"), "version"},
		{"truncation", set([]string{"truncation"}, map[string]any{"max_length": 5}), "truncation"},
		{"padding", set([]string{"padding"}, map[string]any{"pad_id": 0}), "padding"},
		{"normalizer", set([]string{"normalizer"}, map[string]any{"type": "NFC"}), "normalizer"},
		{"pre_tokenizer missing", set([]string{"pre_tokenizer"}, null), "pre_tokenizer"},
		{"pre_tokenizer type", set([]string{"pre_tokenizer", "type"}, "Whitespace"), "pre_tokenizer.type"},
		{"add_prefix_space", set([]string{"pre_tokenizer", "add_prefix_space"}, true), "add_prefix_space"},
		{"use_regex", set([]string{"pre_tokenizer", "use_regex"}, false), "use_regex"},
		{"pre_tokenizer unknown field", set([]string{"pre_tokenizer", "pattern"}, "x"), "pre_tokenizer.pattern"},
		{"post_processor", set([]string{"post_processor"}, map[string]any{"type": "TemplateProcessing"}), "post_processor.type"},
		{"decoder null", set([]string{"decoder"}, null), "decoder"},
		{"decoder type", set([]string{"decoder", "type"}, "WordPiece"), "decoder.type"},
		{"model type", set([]string{"model", "type"}, "WordPiece"), "model.type"},
		{"dropout", set([]string{"model", "dropout"}, 0.1), "dropout"},
		{"byte_fallback", set([]string{"model", "byte_fallback"}, true), "byte_fallback"},
		{"ignore_merges", set([]string{"model", "ignore_merges"}, true), "ignore_merges"},
		{"subword prefix", set([]string{"model", "continuing_subword_prefix"}, "##"), "continuing_subword_prefix"},
		{"word suffix", set([]string{"model", "end_of_word_suffix"}, "</w>"), "end_of_word_suffix"},
		{"unknown model field", set([]string{"model", "cache_capacity"}, 5), "model.cache_capacity"},
		{"unknown top field", set([]string{"extra"}, 5), "extra"},
		{"unk not in vocab", set([]string{"model", "unk_token"}, "<unk>"), "unk_token"},
		{"vocab missing", set([]string{"model", "vocab"}, nil), "model.vocab"},
		{"merges missing", set([]string{"model", "merges"}, nil), "model.merges"},
		{"merge of unknown token", set([]string{"model", "merges"}, []any{[]any{"t", "zzz"}}), "merges[0]"},
		{"merge with 3 parts", set([]string{"model", "merges"}, []any{"t h e"}), "merges[0]"},
		{"merge result missing", set([]string{"model", "merges"}, []any{[]any{"z", "z"}}), "not in the vocabulary"},
		{"duplicate merge", func(m map[string]any) {
			model := sub(m, "model")
			ms := model["merges"].([]any)
			model["merges"] = append(ms, ms[0])
		}, "repeats"},
		{"byte token missing", func(m map[string]any) {
			model := sub(m, "model")
			vocab := sub(model, "vocab")
			vocab["☃"] = vocab["Ġ"]
			delete(vocab, "Ġ")
			model["merges"] = []any{}
		}, "byte 0x20"},
		{"id gap", func(m map[string]any) { sub(sub(m, "model"), "vocab")["Ġ"] = 5000.0 }, "gaps"},
		{"id not integer", func(m map[string]any) { sub(sub(m, "model"), "vocab")["Ġ"] = 1.5 }, "not an id"},
		{"id twice", func(m map[string]any) { sub(sub(m, "model"), "vocab")["Ġ"] = 0.0 }, "id 0"},
		{"added lstrip", func(m map[string]any) { m["added_tokens"].([]any)[0].(map[string]any)["lstrip"] = true }, "added_tokens[0].lstrip"},
		{"added single_word", func(m map[string]any) { m["added_tokens"].([]any)[1].(map[string]any)["single_word"] = true }, "added_tokens[1].single_word"},
		{"added empty", func(m map[string]any) { m["added_tokens"].([]any)[0].(map[string]any)["content"] = "" }, "empty"},
		{"added id clash", func(m map[string]any) { m["added_tokens"].([]any)[0].(map[string]any)["content"] = "<x>" }, "added_tokens[0]"},
		{"added twice", func(m map[string]any) { a := m["added_tokens"].([]any); m["added_tokens"] = append(a, a[0]) }, "twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(edit(t, data, tc.f))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one naming %q", err, tc.want)
			}
		})
	}
	for _, tc := range []struct{ name, data, want string }{
		{"empty", "", "not a JSON object"},
		{"array", "[]", "not a JSON object"},
		{"truncated", string(data[:len(data)/2]), "unexpected EOF"},
		{"trailing data", string(data) + "{}", "after the end"},
		{"duplicate field", `{"version": "1.0", "version": "1.0"}`, "twice"},
		{"duplicate vocab token", strings.Replace(string(data), `"Ġ": `, `"Ġ": 100000, "Ġ": `, 1), "twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.data))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
}
