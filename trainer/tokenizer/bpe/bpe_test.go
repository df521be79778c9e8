package bpe

import (
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
)

// refEncode is a plain reference for Encode: split out the added tokens,
// pre-tokenize, then in each piece merge the adjacent pair of lowest rank
// (the leftmost on a tie) until none is left, in O(n^2).
func refEncode(t *Tokenizer, s string) []uint32 {
	var out []uint32
	var enc func(part string, level int)
	enc = func(part string, level int) {
		m := []*matcher{t.rawAdded, t.normAdded}
		if level < 2 {
			m[level].split(part, func(p string, id int) {
				if id >= 0 {
					out = append(out, uint32(id))
				} else {
					enc(p, level+1)
				}
			})
			return
		}
		PreTokenize(part, func(piece string) {
			var syms []uint32
			for i := 0; i < len(piece); i++ {
				syms = append(syms, t.byteID[piece[i]])
			}
			for {
				best := -1
				var bestM mergeTo
				for i := 0; i+1 < len(syms); i++ {
					if m, ok := t.rank[pair{syms[i], syms[i+1]}]; ok && (best < 0 || m.rank < bestM.rank) {
						best, bestM = i, m
					}
				}
				if best < 0 {
					break
				}
				syms = slices.Replace(syms, best, best+2, bestM.id)
			}
			out = append(out, syms...)
		})
	}
	enc(s, 0)
	return out
}

// refTrain is a plain reference for Train: it recounts every pair before
// each merge.
func refTrain(texts []string, cfg TrainConfig) (vocab []string, merges [][2]string) {
	if cfg.MinFrequency == 0 {
		cfg.MinFrequency = 2
	}
	vocab = append(vocab, cfg.Specials...)
	special := map[string]bool{}
	for _, s := range cfg.Specials {
		special[s] = true
	}
	for b := 0; b < 256; b++ {
		vocab = append(vocab, byteString[b])
	}
	counts := map[string]int{}
	m := newMatcher(func() (a []addedToken) {
		for i, s := range cfg.Specials {
			a = append(a, addedToken{content: s, id: uint32(i)})
		}
		return
	}())
	for _, text := range texts {
		m.split(text, func(p string, id int) {
			if id < 0 {
				PreTokenize(p, func(piece string) { counts[piece]++ })
			}
		})
	}
	type word struct {
		syms []string
		n    int
	}
	var words []word
	for w, n := range counts {
		var syms []string
		for i := 0; i < len(w); i++ {
			syms = append(syms, byteString[w[i]])
		}
		words = append(words, word{syms, n})
	}
	id := map[string]int{}
	for i, v := range vocab {
		id[v] = i
	}
	banned := map[[2]string]bool{}
	for len(vocab) < cfg.VocabSize {
		pc := map[[2]string]int{}
		for _, w := range words {
			for i := 0; i+1 < len(w.syms); i++ {
				pc[[2]string{w.syms[i], w.syms[i+1]}] += w.n
			}
		}
		var best [2]string
		bestN := 0
		for p, n := range pc {
			if banned[p] {
				continue
			}
			less := func() bool {
				if id[p[0]] != id[best[0]] {
					return id[p[0]] < id[best[0]]
				}
				return id[p[1]] < id[best[1]]
			}
			if n > bestN || (n == bestN && less()) {
				best, bestN = p, n
			}
		}
		if bestN < cfg.MinFrequency {
			break
		}
		joined := best[0] + best[1]
		if special[joined] {
			banned[best] = true
			continue
		}
		if _, ok := id[joined]; !ok {
			id[joined] = len(vocab)
			vocab = append(vocab, joined)
		}
		merges = append(merges, best)
		for wi := range words {
			s := words[wi].syms
			var out []string
			for i := 0; i < len(s); i++ {
				if i+1 < len(s) && s[i] == best[0] && s[i+1] == best[1] {
					out = append(out, joined)
					i++
				} else {
					out = append(out, s[i])
				}
			}
			words[wi].syms = out
		}
	}
	return vocab, merges
}

// randomText draws n strings from a small alphabet, so that pairs tie
// often and different merges can spell the same token.
func randomText(rng *rand.Rand, n int, alphabet []string) []string {
	var out []string
	for i := 0; i < n; i++ {
		var b strings.Builder
		for k := rng.IntN(30); k >= 0; k-- {
			b.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		out = append(out, b.String())
	}
	return out
}

var testAlphabet = []string{"a", "b", "c", "ab", " ", " ", "  ", "\n", "'s", "1", "2", "!", "é", "日", "<s>", "x<", "s>"}

func TestTrainMatchesReference(t *testing.T) {
	for _, tc := range []struct {
		name string
		seed uint64
		cfg  TrainConfig
	}{
		{"plain", 1, TrainConfig{VocabSize: 300}},
		{"specials", 2, TrainConfig{VocabSize: 320, Specials: []string{"<s>", "</s>"}}},
		{"min frequency 1", 3, TrainConfig{VocabSize: 400, MinFrequency: 1}},
		{"min frequency 5", 4, TrainConfig{VocabSize: 400, MinFrequency: 5}},
		{"special spelled by merges", 5, TrainConfig{VocabSize: 330, Specials: []string{"Ġa", "aa"}}},
		{"no merges", 6, TrainConfig{VocabSize: 257, Specials: []string{"<s>"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(tc.seed, 9))
			texts := randomText(rng, 300, testAlphabet)
			tok, err := Train(slices.Values(texts), tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			vocab, merges := refTrain(texts, tc.cfg)
			if !slices.Equal(tok.vocab, vocab) {
				t.Errorf("vocabulary differs from the reference:\n got %q\nwant %q", tok.vocab[256:], vocab[256:])
			}
			var got [][2]string
			for _, p := range tok.merges {
				got = append(got, [2]string{tok.vocab[p.a], tok.vocab[p.b]})
			}
			if !slices.Equal(got, merges) {
				t.Errorf("merges differ from the reference:\n got %q\nwant %q", got, merges)
			}
			if tok.Size() > tc.cfg.VocabSize {
				t.Errorf("Size %d > VocabSize %d", tok.Size(), tc.cfg.VocabSize)
			}
			// Training on the texts in another order gives the same tokenizer.
			rng.Shuffle(len(texts), func(i, j int) { texts[i], texts[j] = texts[j], texts[i] })
			tok2, err := Train(slices.Values(texts), tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if string(tok.JSON()) != string(tok2.JSON()) {
				t.Error("training on shuffled texts gave another tokenizer")
			}
			for _, s := range randomText(rng, 200, testAlphabet) {
				ids := tok.Encode(s)
				if want := refEncode(tok, s); !slices.Equal(ids, want) {
					t.Fatalf("Encode(%q) = %v, reference %v", s, ids, want)
				}
				if back, err := tok.Decode(ids); err != nil || back != s {
					t.Fatalf("Decode(Encode(%q)) = %q, %v", s, back, err)
				}
			}
		})
	}
}

func TestTrainDuplicateTokenStrings(t *testing.T) {
	// "ab" "c" and "a" "bc" both spell "abc": the second merge reuses the
	// first one's id, as the Python trainer does.
	texts := []string{"abc", "abc", "abc", "ab", "ab", "ab", "ab", "bc", "bc", "bc", "bc", "bc", "xabc"}
	tok, err := Train(slices.Values(texts), TrainConfig{VocabSize: 270, MinFrequency: 1})
	if err != nil {
		t.Fatal(err)
	}
	vocab, merges := refTrain(texts, TrainConfig{VocabSize: 270, MinFrequency: 1})
	if !slices.Equal(tok.vocab, vocab) || len(tok.merges) != len(merges) {
		t.Fatalf("got %q (%d merges), reference %q (%d merges)", tok.vocab[256:], len(tok.merges), vocab[256:], len(merges))
	}
	if _, err := Parse(tok.JSON()); err != nil {
		t.Fatalf("Parse of the saved tokenizer: %v", err)
	}
}

func TestTrainConfigErrors(t *testing.T) {
	texts := slices.Values([]string{"hello"})
	for _, tc := range []struct {
		name  string
		texts func(func(string) bool)
		cfg   TrainConfig
		want  string
	}{
		{"vocab too small", texts, TrainConfig{VocabSize: 257, Specials: []string{"<a>", "<b>"}}, "less than"},
		{"empty special", texts, TrainConfig{VocabSize: 300, Specials: []string{""}}, "empty"},
		{"duplicate special", texts, TrainConfig{VocabSize: 300, Specials: []string{"<a>", "<a>"}}, "twice"},
		{"invalid UTF-8 special", texts, TrainConfig{VocabSize: 300, Specials: []string{"\xff"}}, "UTF-8"},
		{"special is a byte token", texts, TrainConfig{VocabSize: 300, Specials: []string{"Ġ"}}, "byte 0x20"},
		{"negative min frequency", texts, TrainConfig{VocabSize: 300, MinFrequency: -1}, "negative"},
		{"nil texts", nil, TrainConfig{VocabSize: 300}, "no texts"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Train(tc.texts, tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestTrainProgressAndEarlyStop(t *testing.T) {
	var calls, last, total int
	tok, err := Train(slices.Values([]string{"aaaa bbbb", "aaaa bbbb"}), TrainConfig{
		VocabSize: 1000,
		Progress:  func(d, n int) { calls++; last, total = d, n },
	})
	if err != nil {
		t.Fatal(err)
	}
	if calls == 0 || last != tok.Size()-256 || total != 1000-256 {
		t.Errorf("progress: %d calls, last (%d, %d); size %d", calls, last, total, tok.Size())
	}
	if tok.Size() >= 1000 {
		t.Errorf("a two-word corpus gave %d ids", tok.Size())
	}
	if ids := tok.Encode("aaaa bbbb"); len(ids) != 2 {
		t.Errorf("Encode of a training text = %v, want 2 ids", ids)
	}
}

func fixtureTokenizer(t testing.TB) *Tokenizer {
	t.Helper()
	tok, err := Load("testdata/tokenizer.json")
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestSpecialsAndDecode(t *testing.T) {
	tok := fixtureTokenizer(t)
	for i, name := range []string{"<|bos|>", "<|eos|>", "<|pad|>"} {
		id, ok := tok.Special(name)
		if !ok || id != uint32(i) {
			t.Errorf("Special(%q) = %d, %v; want %d", name, id, ok, i)
		}
	}
	if _, ok := tok.Special("<|nope|>"); ok {
		t.Error("Special found a token that is not there")
	}
	if got := tok.Specials(); !slices.Equal(got, []string{"<|bos|>", "<|eos|>", "<|pad|>"}) {
		t.Errorf("Specials = %q", got)
	}
	ids := tok.Encode("<|bos|>hi<|eos|>")
	if ids[0] != 0 || ids[len(ids)-1] != 1 {
		t.Errorf("specials not split out: %v", ids)
	}
	_, err := tok.Decode([]uint32{5, uint32(tok.Size())})
	if err == nil || !strings.Contains(err.Error(), "id 1000 at position 1") {
		t.Errorf("Decode of an unknown id: %v", err)
	}
	if s, ok := tok.Token(3 + ' '); !ok || s != "Ġ" {
		t.Errorf("Token(space) = %q, %v", s, ok)
	}
	if _, ok := tok.Token(uint32(tok.Size())); ok {
		t.Error("Token of an unknown id")
	}
}

func TestMatcher(t *testing.T) {
	m := newMatcher([]addedToken{{content: "ab", id: 0}, {content: "abc", id: 1}, {content: "b", id: 2}, {content: "aa", id: 3}})
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"xyz", "xyz"},
		{"abc", "[1]"},
		{"abx", "[0]x"},
		{"xbx", "x[2]x"},
		{"aaa", "[3]a"},
		{"aab", "[3][2]"},
		{"abcabab", "[1][0][0]"},
	} {
		var b strings.Builder
		m.split(tc.in, func(p string, id int) {
			if p == "" {
				t.Errorf("%q: empty part", tc.in)
			}
			if id >= 0 {
				b.WriteString("[" + string(rune('0'+id)) + "]")
			} else {
				b.WriteString(p)
			}
		})
		if b.String() != tc.want {
			t.Errorf("split(%q) = %q, want %q", tc.in, b.String(), tc.want)
		}
	}
}

func TestEncodeConcurrent(t *testing.T) {
	tok := fixtureTokenizer(t)
	texts := lines(t, "testdata/corpus.txt")
	want := make([][]uint32, len(texts))
	for i, s := range texts {
		want[i] = refEncode(tok, s)
	}
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i, s := range texts {
				if got := tok.Encode(s); !slices.Equal(got, want[i]) {
					t.Errorf("line %d: %v, want %v", i, got, want[i])
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestLongPiece(t *testing.T) {
	// A long run of one class is one piece: the heap keeps it O(n log n).
	tok := fixtureTokenizer(t)
	s := strings.Repeat("the", 20000) + strings.Repeat("!", 20000)
	ids := tok.Encode(s)
	if back, err := tok.Decode(ids); err != nil || back != s {
		t.Fatalf("round trip of a long piece failed: %v", err)
	}
	short := s[:3000]
	if got, want := tok.Encode(short), refEncode(tok, short); !slices.Equal(got, want) {
		t.Errorf("long piece differs from the reference")
	}
}
