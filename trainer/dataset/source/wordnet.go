package source

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// WordNet's parts of speech, in the order WordNetTexts reads them: the
// names of its data.<pos> files.
var WordNetPOS = []string{"noun", "verb", "adj", "adv"}

// synset is one line of a WordNet data file (wndb(5WN)).
type synset struct {
	offset int64    // byte offset of the line in its file, its key
	ssType byte     // n, v, a, s (adjective satellite) or r
	words  []string // as written: underscores for spaces, adjective markers such as "(p)" kept
	gloss  string   // definitions and quoted examples, e.g. `a garment; "he wore a shirt"`
}

// definition returns the gloss text before its first quoted example,
// without the separating "; ".
func (s synset) definition() string {
	d, _, _ := strings.Cut(s.gloss, `"`)
	return strings.TrimRight(strings.TrimSpace(d), "; ")
}

// lemma turns a word of a data or index file into a lower-case lemma:
// underscores become spaces and an adjective marker ("(a)", "(p)",
// "(ip)") is dropped.
func lemma(word string) string {
	for _, m := range []string{"(a)", "(p)", "(ip)"} {
		word = strings.TrimSuffix(word, m)
	}
	return strings.ToLower(strings.ReplaceAll(word, "_", " "))
}

// parseDataLine parses one synset line of a data file:
//
//	synset_offset lex_filenum ss_type w_cnt word lex_id [word lex_id...] p_cnt [ptr...] [frames...] | gloss
//
// w_cnt is two hexadecimal digits, lex_id one, p_cnt three decimal ones;
// a pointer is "symbol offset pos source/target"; verbs add frames
// "f_cnt + f_num w_num ...".
func parseDataLine(line string) (synset, error) {
	head, gloss, ok := strings.Cut(line, "|")
	if !ok {
		return synset{}, errors.New("no '|' before the gloss")
	}
	f := strings.Fields(head)
	next := func(what string) (string, error) {
		if len(f) == 0 {
			return "", fmt.Errorf("the line ends before its %s", what)
		}
		s := f[0]
		f = f[1:]
		return s, nil
	}
	num := func(what string, base, bits int) (int64, error) {
		s, err := next(what)
		if err != nil {
			return 0, err
		}
		v, err := strconv.ParseInt(s, base, bits)
		if err != nil || v < 0 {
			return 0, fmt.Errorf("%s %q is not a number", what, s)
		}
		return v, nil
	}
	var s synset
	var err error
	if s.offset, err = num("synset offset", 10, 40); err != nil {
		return s, err
	}
	if _, err = num("lexicographer file number", 10, 16); err != nil {
		return s, err
	}
	t, err := next("synset type")
	if err != nil {
		return s, err
	}
	if len(t) != 1 || !strings.Contains("nvasr", t) {
		return s, fmt.Errorf("synset type %q is not one of n v a s r", t)
	}
	s.ssType = t[0]
	wcnt, err := num("word count", 16, 16)
	if err != nil {
		return s, err
	}
	if wcnt == 0 {
		return s, errors.New("the synset has no words")
	}
	for i := int64(0); i < wcnt; i++ {
		w, err := next("word")
		if err != nil {
			return s, err
		}
		s.words = append(s.words, w)
		if _, err := num("lex_id", 16, 16); err != nil {
			return s, err
		}
	}
	pcnt, err := num("pointer count", 10, 16)
	if err != nil {
		return s, err
	}
	for i := int64(0); i < pcnt; i++ {
		if len(f) < 4 {
			return s, fmt.Errorf("pointer %d of %d is cut short", i+1, pcnt)
		}
		f = f[4:]
	}
	if s.ssType == 'v' && len(f) > 0 {
		fcnt, err := num("frame count", 10, 16)
		if err != nil {
			return s, err
		}
		for i := int64(0); i < fcnt; i++ {
			if len(f) < 3 || f[0] != "+" {
				return s, fmt.Errorf("frame %d of %d is not \"+ f_num w_num\"", i+1, fcnt)
			}
			f = f[3:]
		}
	}
	if len(f) > 0 {
		return s, fmt.Errorf("unexpected %q before the gloss", f[0])
	}
	s.gloss = strings.TrimSpace(gloss)
	return s, nil
}

// readData reads the synsets of a data file, checking that each line's
// offset field is its byte offset in the file, as wndb(5WN) says. The
// license lines at the top start with two spaces and are skipped.
func readData(path string) ([]synset, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if err := validUTF8(data, path); err != nil {
		return nil, err
	}
	var out []synset
	off, n := 0, 0
	for line := range strings.Lines(string(data)) {
		n++
		start := off
		off += len(line)
		line = strings.TrimRight(line, "\n")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, " ") {
			continue
		}
		s, err := parseDataLine(line)
		if err != nil {
			return nil, fmt.Errorf("%s line %d: %w", path, n, err)
		}
		if s.offset != int64(start) {
			return nil, fmt.Errorf("%s line %d: synset offset %08d, but the line starts at byte %d", path, n, s.offset, start)
		}
		out = append(out, s)
	}
	return out, nil
}

// parseIndexLine parses one line of an index file:
//
//	lemma pos synset_cnt p_cnt [ptr_symbol...] sense_cnt tagsense_cnt synset_offset [synset_offset...]
//
// and returns the lemma and its synsets' offsets, most frequent sense first.
func parseIndexLine(line string) (string, []int64, error) {
	f := strings.Fields(line)
	if len(f) < 4 {
		return "", nil, errors.New("fewer than 4 fields")
	}
	count := func(s, what string) (int, error) {
		v, err := strconv.Atoi(s)
		if err != nil || v < 0 || v > 1<<20 {
			return 0, fmt.Errorf("%s %q is not a count", what, s)
		}
		return v, nil
	}
	scnt, err := count(f[2], "synset_cnt")
	if err != nil {
		return "", nil, err
	}
	pcnt, err := count(f[3], "p_cnt")
	if err != nil {
		return "", nil, err
	}
	rest := f[4:]
	if len(rest) != pcnt+2+scnt {
		return "", nil, fmt.Errorf("%d fields after p_cnt, want %d pointer symbols, 2 counts and %d offsets", len(rest), pcnt, scnt)
	}
	var offsets []int64
	for _, s := range rest[pcnt+2:] {
		v, err := strconv.ParseInt(s, 10, 40)
		if err != nil || v < 0 {
			return "", nil, fmt.Errorf("synset offset %q is not a number", s)
		}
		offsets = append(offsets, v)
	}
	return lemma(f[0]), offsets, nil
}

// WordNetGlosses reads the nouns of WordNet (data.noun under dir,
// WordNetDir for Debian's) and returns, for every lower-case noun lemma
// (underscores become spaces: "ankle boot"), the definitions of its
// synsets: each gloss's text before its first quoted example. When
// index.noun is there, a lemma's definitions come in its sense order (the
// most frequent sense first), otherwise in file order.
func WordNetGlosses(dir string) (map[string][]string, error) {
	syns, err := readData(filepath.Join(dir, "data.noun"))
	if err != nil {
		return nil, fmt.Errorf("source: wordnet (Debian package wordnet-base): %w", err)
	}
	byOffset := make(map[int64]int, len(syns))
	lemmas := make(map[string][]int) // lemma -> synsets (indexes into syns), file order
	for i, s := range syns {
		byOffset[s.offset] = i
		for _, w := range s.words {
			l := lemma(w)
			if k := lemmas[l]; len(k) == 0 || k[len(k)-1] != i {
				lemmas[l] = append(k, i)
			}
		}
	}
	if err := senseOrder(filepath.Join(dir, "index.noun"), lemmas, byOffset); err != nil {
		return nil, fmt.Errorf("source: wordnet: %w", err)
	}
	out := make(map[string][]string, len(lemmas))
	for l, idx := range lemmas {
		for _, i := range idx {
			if d := syns[i].definition(); d != "" {
				out[l] = append(out[l], d)
			}
		}
	}
	return out, nil
}

// senseOrder reorders each lemma's synsets by the index file at path, if
// there is one; synsets that the index does not list keep their place
// after those it does.
func senseOrder(path string, lemmas map[string][]int, byOffset map[int64]int) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := validUTF8(data, path); err != nil {
		return err
	}
	n := 0
	for line := range strings.Lines(string(data)) {
		n++
		line = strings.TrimRight(line, "\n")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, " ") {
			continue
		}
		l, offsets, err := parseIndexLine(line)
		if err != nil {
			return fmt.Errorf("%s line %d: %w", path, n, err)
		}
		have, ok := lemmas[l]
		if !ok {
			continue
		}
		order := make([]int, 0, len(have))
		placed := make(map[int]bool, len(have))
		for _, off := range offsets {
			i, ok := byOffset[off]
			if ok && !placed[i] && slices.Contains(have, i) {
				order = append(order, i)
				placed[i] = true
			}
		}
		for _, i := range have {
			if !placed[i] {
				order = append(order, i)
			}
		}
		lemmas[l] = order
	}
	return nil
}

// WordNetTexts reads every synset of WordNet's data files (data.noun,
// data.verb, data.adj, data.adv under dir) as one Text: its whole gloss,
// definitions and quoted examples, with ID "wordnet/<pos>/<offset>" (the
// offset as the file writes it, 8 digits).
func WordNetTexts(dir string) ([]Text, error) {
	var out []Text
	for _, pos := range WordNetPOS {
		syns, err := readData(filepath.Join(dir, "data."+pos))
		if err != nil {
			return nil, fmt.Errorf("source: wordnet (Debian package wordnet-base): %w", err)
		}
		for _, s := range syns {
			if s.gloss == "" {
				continue
			}
			out = append(out, Text{ID: fmt.Sprintf("wordnet/%s/%08d", pos, s.offset), Source: "wordnet", Text: s.gloss})
		}
	}
	return out, nil
}
