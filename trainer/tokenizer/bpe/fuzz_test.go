package bpe

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// gpt2Pattern is the GPT-2 pattern without its look-ahead, with \s spelled
// out as Unicode's White_Space (Go's \s is ASCII only). refPreTokenize
// applies the look-ahead by hand: an independent check of pieceEnd.
var gpt2Pattern = func() *regexp.Regexp {
	const ws = `\t\n\v\f\r \x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}`
	return regexp.MustCompile(`'s|'t|'re|'ve|'m|'ll|'d| ?\pL+| ?\pN+| ?[^` + ws + `\pL\pN]+|[` + ws + `]+`)
}()

func refPreTokenize(s string) []string {
	var out []string
	for len(s) > 0 {
		loc := gpt2Pattern.FindStringIndex(s)
		if loc == nil || loc[0] != 0 {
			panic("the pattern skipped text")
		}
		end := loc[1]
		m := s[:end]
		// \s+(?!\S): a white space run followed by a non-space character
		// gives up its last character when it has more than one.
		if strings.TrimFunc(m, isWS) == "" && end < len(s) {
			if _, lw := utf8.DecodeLastRuneInString(m); lw < len(m) {
				end -= lw
			}
		}
		out = append(out, s[:end])
		s = s[end:]
	}
	return out
}

func isWS(r rune) bool {
	return strings.ContainsRune("\t\n\v\f\r \u0085\u00a0\u1680\u2028\u2029\u202f\u205f\u3000", r) || (0x2000 <= r && r <= 0x200a)
}

// FuzzRoundTrip checks, for any string: Decode(Encode(s)) == s; Encode
// agrees with the plain reference encoder; the pieces of PreTokenize are
// non-empty, concatenate to s and agree with the regexp reference.
func FuzzRoundTrip(f *testing.F) {
	for _, s := range []string{
		"", "Hello world", "It's we'll THEY'RE", "a  b   c\n\n d  ", "\t\t x \u00a0y\u3000",
		"12345 3.14 ½²", "cafe\u0301 日本語 😀👍🏽", "<|bos|>hi<|eos|> <|pad|", "\xff\xfe a\x80b \xc3", "'''s'", " ",
	} {
		f.Add(s)
	}
	tok := fixtureTokenizer(f)
	f.Fuzz(func(t *testing.T, s string) {
		ids := tok.Encode(s)
		back, err := tok.Decode(ids)
		if err != nil || back != s {
			t.Fatalf("Decode(Encode(%q)) = %q, %v", s, back, err)
		}
		if len(s) < 4096 {
			if want := refEncode(tok, s); !slices.Equal(ids, want) {
				t.Fatalf("Encode(%q) = %v, reference %v", s, ids, want)
			}
		}
		got := pieces(s)
		for _, p := range got {
			if p == "" {
				t.Fatalf("PreTokenize(%q) gave an empty piece", s)
			}
		}
		if strings.Join(got, "") != s {
			t.Fatalf("PreTokenize(%q) pieces %q do not make the input", s, got)
		}
		if want := refPreTokenize(s); !slices.Equal(got, want) {
			t.Fatalf("PreTokenize(%q) = %q, regexp reference %q", s, got, want)
		}
	})
}

// FuzzParse checks that Parse never panics, and that what it accepts
// saves to a file that parses to the same tokenizer and round-trips text.
func FuzzParse(f *testing.F) {
	small := smallTokenizer(f).JSON()
	f.Add(small)
	if fixture, err := os.ReadFile("testdata/tokenizer.json"); err == nil {
		f.Add(fixture)
	}
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"version": "1.0", "model": {"type": "BPE", "vocab": {}, "merges": []}}`))
	f.Add(small[:len(small)/3])
	f.Add([]byte(strings.Replace(string(small), `"merges": [`, `"merges": ["Ġ t", `, 1)))
	var m map[string]any
	json.Unmarshal(small, &m)
	m["added_tokens"] = append(m["added_tokens"].([]any), map[string]any{"id": 100000, "content": "<big>"})
	big, _ := json.Marshal(m)
	f.Add(big)
	f.Fuzz(func(t *testing.T, data []byte) {
		tok, err := Parse(data)
		if err != nil {
			return
		}
		again, err := Parse(tok.JSON())
		if err != nil {
			t.Fatalf("Parse of the saved form failed: %v", err)
		}
		if string(again.JSON()) != string(tok.JSON()) {
			t.Fatal("the saved form saves differently")
		}
		for _, s := range []string{"hello world", "<s> x </s>", "日本 \xff 12"} {
			ids := tok.Encode(s)
			if back, err := tok.Decode(ids); err != nil || back != s {
				t.Fatalf("Decode(Encode(%q)) = %q, %v", s, back, err)
			}
			if !slices.Equal(ids, again.Encode(s)) {
				t.Fatalf("%q encodes differently after a save and parse", s)
			}
		}
	})
}
