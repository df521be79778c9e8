package bpe

import (
	"errors"
	"fmt"
	"slices"
	"unicode/utf8"
)

// TrainConfig sets up Train.
type TrainConfig struct {
	// VocabSize is the number of ids wanted, the special and the 256 byte
	// tokens included. Training stops earlier when no pair occurs
	// MinFrequency times any more; Size tells the size reached.
	VocabSize int
	// Specials are the special tokens, ids 0..len-1 in this order, e.g.
	// "<|bos|>". They are split out of the training texts (and of any
	// text given to Encode) and never take part in merges.
	Specials []string
	// MinFrequency: pairs that occur fewer times than this are not merged
	// (0 means the default, 2).
	MinFrequency int
	// Progress, if set, is called after each merge with the number of
	// merges done and the number wanted.
	Progress func(done, total int)
}

// Train learns a byte-level BPE tokenizer from texts (an iter.Seq[string]).
// The same texts, in any order, and the same config give the same
// tokenizer.
func Train(texts func(yield func(string) bool), cfg TrainConfig) (*Tokenizer, error) {
	if cfg.MinFrequency == 0 {
		cfg.MinFrequency = 2
	}
	if cfg.MinFrequency < 0 {
		return nil, fmt.Errorf("bpe: train: MinFrequency %d is negative", cfg.MinFrequency)
	}
	base := len(cfg.Specials) + 256
	if cfg.VocabSize < base {
		return nil, fmt.Errorf("bpe: train: VocabSize %d is less than the %d special and 256 byte tokens", cfg.VocabSize, len(cfg.Specials))
	}
	if texts == nil {
		return nil, errors.New("bpe: train: no texts")
	}
	t := &Tokenizer{ids: make(map[string]uint32, cfg.VocabSize)}
	specialSet := make(map[string]bool, len(cfg.Specials))
	for i, s := range cfg.Specials {
		switch {
		case s == "":
			return nil, fmt.Errorf("bpe: train: special token %d is empty", i)
		case !utf8.ValidString(s):
			return nil, fmt.Errorf("bpe: train: special token %d (%q) is not valid UTF-8", i, s)
		case specialSet[s]:
			return nil, fmt.Errorf("bpe: train: special token %d (%q) is given twice", i, s)
		}
		specialSet[s] = true
		t.added = append(t.added, addedToken{content: s, id: uint32(i), special: true})
		t.vocab = append(t.vocab, s)
		t.ids[s] = uint32(i)
	}
	for b := 0; b < 256; b++ {
		if specialSet[byteString[b]] {
			return nil, fmt.Errorf("bpe: train: special token %q is the vocabulary entry of byte 0x%02x", byteString[b], b)
		}
		t.ids[byteString[b]] = uint32(len(t.vocab))
		t.vocab = append(t.vocab, byteString[b])
	}

	// Count the pre-tokenized words once.
	specials := newMatcher(t.added)
	counts := make(map[string]int64)
	for text := range texts {
		specials.split(text, func(part string, id int) {
			if id < 0 {
				PreTokenize(part, func(piece string) { counts[piece]++ })
			}
		})
	}
	byteOf := func(b byte) uint32 { return uint32(len(cfg.Specials) + int(b)) }
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	tr := &trainer{
		words:  make([]trainWord, 0, len(keys)),
		counts: make(map[pair]int64),
		where:  make(map[pair][]int32),
	}
	for wi, k := range keys {
		syms := make([]uint32, len(k))
		for i := 0; i < len(k); i++ {
			syms[i] = byteOf(k[i])
		}
		tr.words = append(tr.words, trainWord{syms: syms, freq: counts[k]})
		for i := 0; i+1 < len(syms); i++ {
			p := pair{syms[i], syms[i+1]}
			tr.counts[p] += counts[k]
			if w := tr.where[p]; len(w) == 0 || w[len(w)-1] != int32(wi) {
				tr.where[p] = append(w, int32(wi))
			}
		}
	}
	counts, keys = nil, nil
	for p, c := range tr.counts {
		tr.heap = append(tr.heap, pairCount{c, p})
	}
	tr.heapify()

	total := cfg.VocabSize - base
	for len(t.vocab) < cfg.VocabSize && len(tr.heap) > 0 {
		top := tr.pop()
		cur := tr.counts[top.p]
		if cur != top.count {
			// Stale. A pair's count only falls, except just after a merge
			// that created it, when a newer entry was pushed.
			if cur > 0 && cur < top.count {
				tr.push(pairCount{cur, top.p})
			}
			continue
		}
		if cur < int64(cfg.MinFrequency) {
			break
		}
		joined := t.vocab[top.p.a] + t.vocab[top.p.b]
		if specialSet[joined] {
			// The merge would make a special token's text: never merge it.
			delete(tr.counts, top.p)
			delete(tr.where, top.p)
			continue
		}
		id, exists := t.ids[joined]
		if !exists {
			id = uint32(len(t.vocab))
			t.vocab = append(t.vocab, joined)
			t.ids[joined] = id
		}
		t.merges = append(t.merges, top.p)
		tr.merge(top.p, id)
		if cfg.Progress != nil {
			cfg.Progress(len(t.vocab)-base, total)
		}
	}
	if err := t.build(); err != nil {
		return nil, fmt.Errorf("bpe: train: %w", err)
	}
	return t, nil
}

type trainWord struct {
	syms  []uint32
	freq  int64
	stamp int32 // the last merge that rewrote this word, to skip repeats in where lists
}

type pairCount struct {
	count int64
	p     pair
}

// trainer holds the pair statistics during training.
type trainer struct {
	words  []trainWord
	counts map[pair]int64   // pair -> occurrences, weighted by word frequency
	where  map[pair][]int32 // pair -> words it occurs in (may hold stale entries)
	heap   []pairCount      // max-heap by count, then by smaller pair
	merged int32
	delta  map[pair]int64
}

// merge replaces every occurrence of p by id in the words that hold it and
// updates the pair counts.
func (tr *trainer) merge(p pair, id uint32) {
	tr.merged++
	if tr.delta == nil {
		tr.delta = make(map[pair]int64)
	}
	clear(tr.delta)
	for _, wi := range tr.where[p] {
		w := &tr.words[wi]
		if w.stamp == tr.merged {
			continue
		}
		w.stamp = tr.merged
		syms := w.syms
		found := false
		for i := 0; i+1 < len(syms); i++ {
			if syms[i] == p.a && syms[i+1] == p.b {
				found = true
				break
			}
		}
		if !found {
			continue
		}
		for i := 0; i+1 < len(syms); i++ {
			tr.delta[pair{syms[i], syms[i+1]}] -= w.freq
		}
		out := syms[:0]
		for i := 0; i < len(syms); i++ {
			if i+1 < len(syms) && syms[i] == p.a && syms[i+1] == p.b {
				out = append(out, id)
				i++
			} else {
				out = append(out, syms[i])
			}
		}
		w.syms = out
		for i := 0; i+1 < len(out); i++ {
			q := pair{out[i], out[i+1]}
			tr.delta[q] += w.freq
			if q.a == id || q.b == id {
				if l := tr.where[q]; len(l) == 0 || l[len(l)-1] != wi {
					tr.where[q] = append(l, wi)
				}
			}
		}
	}
	delete(tr.where, p)
	for q, d := range tr.delta {
		if d == 0 {
			continue
		}
		c := tr.counts[q] + d
		if c <= 0 {
			delete(tr.counts, q)
			delete(tr.where, q)
			continue
		}
		tr.counts[q] = c
		if d > 0 {
			tr.push(pairCount{c, q})
		}
	}
}

// before orders the heap: more occurrences first, then the smaller pair.
func (x pairCount) before(y pairCount) bool {
	if x.count != y.count {
		return x.count > y.count
	}
	if x.p.a != y.p.a {
		return x.p.a < y.p.a
	}
	return x.p.b < y.p.b
}

func (tr *trainer) heapify() {
	for i := len(tr.heap)/2 - 1; i >= 0; i-- {
		tr.down(i)
	}
}

func (tr *trainer) push(x pairCount) {
	tr.heap = append(tr.heap, x)
	i := len(tr.heap) - 1
	for i > 0 {
		parent := (i - 1) / 2
		if !tr.heap[i].before(tr.heap[parent]) {
			break
		}
		tr.heap[i], tr.heap[parent] = tr.heap[parent], tr.heap[i]
		i = parent
	}
}

func (tr *trainer) pop() pairCount {
	top := tr.heap[0]
	last := len(tr.heap) - 1
	tr.heap[0] = tr.heap[last]
	tr.heap = tr.heap[:last]
	tr.down(0)
	return top
}

func (tr *trainer) down(i int) {
	h := tr.heap
	for {
		l, r, m := 2*i+1, 2*i+2, i
		if l < len(h) && h[l].before(h[m]) {
			m = l
		}
		if r < len(h) && h[r].before(h[m]) {
			m = r
		}
		if m == i {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}
