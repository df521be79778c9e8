package bpe

import (
	"fmt"
	"strings"
	"sync"
)

// Tokenizer is a byte-level BPE tokenizer. It is safe for concurrent use.
type Tokenizer struct {
	vocab  []string          // id -> token (byte-level form; raw content for added tokens)
	ids    map[string]uint32 // the model's vocabulary: token -> id
	bytes  [][]byte          // id -> the bytes it decodes to
	byteID [256]uint32       // byte -> id of its single-byte token
	merges []pair            // rank -> the merged pair
	rank   map[pair]mergeTo  // pair -> rank and the id it merges into
	added  []addedToken      // in id order
	// splitters for added tokens: HF matches the non-normalized ones on the
	// raw text first, then the normalized ones inside the remaining pieces.
	rawAdded, normAdded *matcher
	unk                 string            // the model's unk_token, kept for Save ("" = none)
	byID                map[uint32]string // used while parsing only

	mu    sync.RWMutex
	cache map[string][]uint32 // piece -> ids, bounded by cacheMax
}

type pair struct{ a, b uint32 }

type mergeTo struct{ rank, id uint32 }

type addedToken struct {
	content    string
	id         uint32
	special    bool
	normalized bool
}

const cacheMax = 1 << 17

// Size is the number of ids: every id is in [0, Size).
func (t *Tokenizer) Size() int { return len(t.vocab) }

// Special returns the id of an added (special) token by its content.
func (t *Tokenizer) Special(name string) (uint32, bool) {
	for _, a := range t.added {
		if a.content == name {
			return a.id, true
		}
	}
	return 0, false
}

// Specials returns the contents of the added tokens in id order.
func (t *Tokenizer) Specials() []string {
	out := make([]string, len(t.added))
	for i, a := range t.added {
		out[i] = a.content
	}
	return out
}

// Token returns the vocabulary entry of id: the byte-level string of a
// model token (e.g. "Ġthe" for " the") or an added token's content.
func (t *Tokenizer) Token(id uint32) (string, bool) {
	if int(id) >= len(t.vocab) {
		return "", false
	}
	return t.vocab[id], true
}

// Merges is the number of merge rules.
func (t *Tokenizer) Merges() int { return len(t.merges) }

// Decode turns ids back into text: the bytes of each token in turn (an
// added token gives its content). Decoding the ids that Encode made of s
// gives s back exactly. The bytes of a partial ids sequence need not be
// valid UTF-8; they are returned as they are.
func (t *Tokenizer) Decode(ids []uint32) (string, error) {
	n := 0
	for i, id := range ids {
		if int(id) >= len(t.vocab) {
			return "", fmt.Errorf("bpe: decode: id %d at position %d is outside the vocabulary of %d ids", id, i, len(t.vocab))
		}
		n += len(t.bytes[id])
	}
	var b strings.Builder
	b.Grow(n)
	for _, id := range ids {
		b.Write(t.bytes[id])
	}
	return b.String(), nil
}

// Encode turns text into ids. Any string is accepted, invalid UTF-8
// included (its bytes encode as themselves).
func (t *Tokenizer) Encode(s string) []uint32 {
	return t.EncodeAppend(nil, s)
}

// EncodeAppend appends the ids of s to dst and returns the extended slice.
func (t *Tokenizer) EncodeAppend(dst []uint32, s string) []uint32 {
	sc := scratchPool.Get().(*scratch)
	defer scratchPool.Put(sc)
	t.rawAdded.split(s, func(part string, id int) {
		if id >= 0 {
			dst = append(dst, uint32(id))
			return
		}
		t.normAdded.split(part, func(part string, id int) {
			if id >= 0 {
				dst = append(dst, uint32(id))
				return
			}
			PreTokenize(part, func(piece string) {
				dst = t.encodePiece(dst, piece, sc)
			})
		})
	})
	return dst
}

// encodePiece appends the ids of one pre-tokenized piece.
func (t *Tokenizer) encodePiece(dst []uint32, piece string, sc *scratch) []uint32 {
	if len(piece) == 1 {
		return append(dst, t.byteID[piece[0]])
	}
	t.mu.RLock()
	ids, ok := t.cache[piece]
	t.mu.RUnlock()
	if ok {
		return append(dst, ids...)
	}
	n := len(dst)
	dst = t.mergePiece(dst, piece, sc)
	if len(piece) <= 64 {
		ids := append([]uint32(nil), dst[n:]...)
		t.mu.Lock()
		if len(t.cache) >= cacheMax {
			clear(t.cache)
		}
		t.cache[piece] = ids
		t.mu.Unlock()
	}
	return dst
}

// scratch holds the work buffers of mergePiece.
type scratch struct {
	sym        []uint32 // symbol ids; a merged-away symbol keeps its slot
	prev, next []int32  // linked list over the live symbols (-1: none)
	alive      []bool
	heap       []candidate
}

// candidate is a possible merge of the symbol at pos with the next live one.
type candidate struct {
	rank uint32
	pos  int32
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// mergePiece runs the merges on the bytes of piece, lowest rank first and
// the leftmost on a tie, exactly as the Python library's BPE model does,
// in O(n log n) for a piece of n bytes.
func (t *Tokenizer) mergePiece(dst []uint32, piece string, sc *scratch) []uint32 {
	n := len(piece)
	sc.sym = sc.sym[:0]
	sc.prev = sc.prev[:0]
	sc.next = sc.next[:0]
	sc.alive = sc.alive[:0]
	sc.heap = sc.heap[:0]
	for i := 0; i < n; i++ {
		sc.sym = append(sc.sym, t.byteID[piece[i]])
		sc.prev = append(sc.prev, int32(i-1))
		nx := int32(i + 1)
		if i == n-1 {
			nx = -1
		}
		sc.next = append(sc.next, nx)
		sc.alive = append(sc.alive, true)
	}
	for i := 0; i+1 < n; i++ {
		if m, ok := t.rank[pair{sc.sym[i], sc.sym[i+1]}]; ok {
			sc.push(candidate{m.rank, int32(i)})
		}
	}
	for len(sc.heap) > 0 {
		c := sc.pop()
		p := c.pos
		if !sc.alive[p] || sc.next[p] < 0 {
			continue
		}
		q := sc.next[p]
		m, ok := t.rank[pair{sc.sym[p], sc.sym[q]}]
		if !ok || m.rank != c.rank {
			continue // stale: the pair at p has changed since
		}
		sc.sym[p] = m.id
		sc.alive[q] = false
		nq := sc.next[q]
		sc.next[p] = nq
		if nq >= 0 {
			sc.prev[nq] = p
			if m2, ok := t.rank[pair{m.id, sc.sym[nq]}]; ok {
				sc.push(candidate{m2.rank, p})
			}
		}
		if pp := sc.prev[p]; pp >= 0 {
			if m2, ok := t.rank[pair{sc.sym[pp], m.id}]; ok {
				sc.push(candidate{m2.rank, pp})
			}
		}
	}
	for i := int32(0); i >= 0; i = sc.next[i] {
		dst = append(dst, sc.sym[i])
	}
	return dst
}

func (a candidate) less(b candidate) bool {
	return a.rank < b.rank || (a.rank == b.rank && a.pos < b.pos)
}

func (sc *scratch) push(c candidate) {
	h := append(sc.heap, c)
	i := len(h) - 1
	for i > 0 {
		parent := (i - 1) / 2
		if !h[i].less(h[parent]) {
			break
		}
		h[i], h[parent] = h[parent], h[i]
		i = parent
	}
	sc.heap = h
}

func (sc *scratch) pop() candidate {
	h := sc.heap
	top := h[0]
	last := len(h) - 1
	h[0] = h[last]
	h = h[:last]
	i := 0
	for {
		l, r, m := 2*i+1, 2*i+2, i
		if l < len(h) && h[l].less(h[m]) {
			m = l
		}
		if r < len(h) && h[r].less(h[m]) {
			m = r
		}
		if m == i {
			break
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
	sc.heap = h
	return top
}

// matcher splits text at occurrences of a set of tokens: at each step the
// leftmost occurrence, and the longest of the tokens that start there.
type matcher struct {
	tokens []string
	ids    []int
}

// split calls emit with the parts of s in order: an occurrence of a token
// with its id, the text between occurrences with id -1 (never empty).
func (m *matcher) split(s string, emit func(part string, id int)) {
	if m == nil || len(m.tokens) == 0 {
		if s != "" {
			emit(s, -1)
		}
		return
	}
	// next[k]: where token k next occurs at or after pos (-1: never).
	next := make([]int, len(m.tokens))
	for k, tok := range m.tokens {
		next[k] = strings.Index(s, tok)
	}
	pos := 0
	for {
		best := -1
		for k := range m.tokens {
			if next[k] < 0 {
				continue
			}
			if best < 0 || next[k] < next[best] || (next[k] == next[best] && len(m.tokens[k]) > len(m.tokens[best])) {
				best = k
			}
		}
		if best < 0 {
			break
		}
		start := next[best]
		end := start + len(m.tokens[best])
		if start > pos {
			emit(s[pos:start], -1)
		}
		emit(s[start:end], m.ids[best])
		pos = end
		for k, tok := range m.tokens {
			if next[k] >= 0 && next[k] < pos {
				if i := strings.Index(s[pos:], tok); i >= 0 {
					next[k] = pos + i
				} else {
					next[k] = -1
				}
			}
		}
	}
	if pos < len(s) {
		emit(s[pos:], -1)
	}
}

// newMatcher returns a matcher for the given added tokens, nil if none.
func newMatcher(tokens []addedToken) *matcher {
	if len(tokens) == 0 {
		return nil
	}
	m := &matcher{}
	for _, a := range tokens {
		m.tokens = append(m.tokens, a.content)
		m.ids = append(m.ids, int(a.id))
	}
	return m
}

// build fills the derived tables of t from vocab, the merges and the
// added tokens, checking them. vocab must have every id in [0, len) set.
func (t *Tokenizer) build() error {
	t.bytes = make([][]byte, len(t.vocab))
	isAdded := make(map[uint32]bool, len(t.added))
	for _, a := range t.added {
		isAdded[a.id] = true
		t.bytes[a.id] = []byte(a.content)
	}
	for id, tok := range t.vocab {
		if isAdded[uint32(id)] {
			continue
		}
		// As the Python ByteLevel decoder: a token all of whose characters
		// stand for bytes gives those bytes, any other its own UTF-8.
		if b, ok := unByteLevel(tok); ok {
			t.bytes[id] = b
		} else {
			t.bytes[id] = []byte(tok)
		}
	}
	for b := 0; b < 256; b++ {
		id, ok := t.ids[byteString[b]]
		if !ok {
			return fmt.Errorf("bpe: the vocabulary lacks the token %q of byte 0x%02x (a byte-level vocabulary needs all 256)", byteString[b], b)
		}
		t.byteID[b] = id
	}
	t.rank = make(map[pair]mergeTo, len(t.merges))
	for r, p := range t.merges {
		if _, dup := t.rank[p]; dup {
			return fmt.Errorf("bpe: merge %d (%q %q) repeats an earlier merge", r, t.vocab[p.a], t.vocab[p.b])
		}
		joined := t.vocab[p.a] + t.vocab[p.b]
		id, ok := t.ids[joined]
		if !ok {
			return fmt.Errorf("bpe: merge %d (%q %q) makes %q, which is not in the vocabulary", r, t.vocab[p.a], t.vocab[p.b], joined)
		}
		t.rank[p] = mergeTo{uint32(r), id}
	}
	var raw, norm []addedToken
	for _, a := range t.added {
		if a.content == "" {
			return fmt.Errorf("bpe: added token %d is empty", a.id)
		}
		if a.normalized {
			norm = append(norm, a)
		} else {
			raw = append(raw, a)
		}
	}
	t.rawAdded, t.normAdded = newMatcher(raw), newMatcher(norm)
	t.cache = make(map[string][]uint32)
	return nil
}
