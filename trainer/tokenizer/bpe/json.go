package bpe

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"mom/trainer/atomicfile"
)

// Save writes t to path in the tokenizer.json format, atomically (a crash
// leaves the old file or the new one). The bytes are those that the
// Python library's Tokenizer.save writes for the same model: pretty JSON
// with two-space indents, the vocabulary in id order and the merges as
// pairs of strings.
func (t *Tokenizer) Save(path string) error {
	if err := atomicfile.WriteFile(path, t.JSON(), 0o644); err != nil {
		return fmt.Errorf("bpe: saving %s: %w", path, err)
	}
	return nil
}

// JSON returns the tokenizer.json form of t (see Save).
func (t *Tokenizer) JSON() []byte {
	var b bytes.Buffer
	b.Grow(64 * len(t.vocab))
	b.WriteString("{\n  \"version\": \"1.0\",\n  \"truncation\": null,\n  \"padding\": null,\n  \"added_tokens\": [")
	for i, a := range t.added {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("\n    {\n      \"id\": ")
		b.WriteString(strconv.FormatUint(uint64(a.id), 10))
		b.WriteString(",\n      \"content\": ")
		writeJSONString(&b, a.content)
		b.WriteString(",\n      \"single_word\": false,\n      \"lstrip\": false,\n      \"rstrip\": false,\n      \"normalized\": ")
		b.WriteString(strconv.FormatBool(a.normalized))
		b.WriteString(",\n      \"special\": ")
		b.WriteString(strconv.FormatBool(a.special))
		b.WriteString("\n    }")
	}
	if len(t.added) > 0 {
		b.WriteString("\n  ")
	}
	b.WriteString("],\n  \"normalizer\": null,\n" +
		"  \"pre_tokenizer\": {\n    \"type\": \"ByteLevel\",\n    \"add_prefix_space\": false,\n    \"trim_offsets\": true,\n    \"use_regex\": true\n  },\n" +
		"  \"post_processor\": null,\n" +
		"  \"decoder\": {\n    \"type\": \"ByteLevel\",\n    \"add_prefix_space\": true,\n    \"trim_offsets\": true,\n    \"use_regex\": true\n  },\n" +
		"  \"model\": {\n    \"type\": \"BPE\",\n    \"dropout\": null,\n    \"unk_token\": ")
	if t.unk == "" {
		b.WriteString("null")
	} else {
		writeJSONString(&b, t.unk)
	}
	b.WriteString(",\n    \"continuing_subword_prefix\": null,\n    \"end_of_word_suffix\": null,\n" +
		"    \"fuse_unk\": false,\n    \"byte_fallback\": false,\n    \"ignore_merges\": false,\n    \"vocab\": {")
	n := 0
	for id, tok := range t.vocab {
		if _, inModel := t.ids[tok]; !inModel || t.ids[tok] != uint32(id) {
			continue // an added token that the model's vocabulary lacks
		}
		if n > 0 {
			b.WriteByte(',')
		}
		n++
		b.WriteString("\n      ")
		writeJSONString(&b, tok)
		b.WriteString(": ")
		b.WriteString(strconv.Itoa(id))
	}
	if n > 0 {
		b.WriteString("\n    ")
	}
	b.WriteString("},\n    \"merges\": [")
	for i, p := range t.merges {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("\n      [\n        ")
		writeJSONString(&b, t.vocab[p.a])
		b.WriteString(",\n        ")
		writeJSONString(&b, t.vocab[p.b])
		b.WriteString("\n      ]")
	}
	if len(t.merges) > 0 {
		b.WriteString("\n    ")
	}
	b.WriteString("]\n  }\n}")
	return b.Bytes()
}

// writeJSONString writes s as a JSON string escaped as serde_json (the
// Python library's serializer) does: only '"', '\\' and control
// characters below 0x20 are escaped. s must be valid UTF-8.
func writeJSONString(b *bytes.Buffer, s string) {
	const hex = "0123456789abcdef"
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			b.WriteString(`\"`)
		case c == '\\':
			b.WriteString(`\\`)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '\r':
			b.WriteString(`\r`)
		case c == '\t':
			b.WriteString(`\t`)
		case c == '\b':
			b.WriteString(`\b`)
		case c == '\f':
			b.WriteString(`\f`)
		case c < 0x20:
			b.WriteString(`\u00`)
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
}

// Load reads a tokenizer.json file (see Parse).
func Load(path string) (*Tokenizer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("bpe: %w", err)
	}
	t, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// Parse reads the tokenizer.json format. It takes a byte-level BPE model
// (the ByteLevel pre-tokenizer with add_prefix_space false and use_regex
// true, no normalizer, the ByteLevel decoder) and refuses, naming the
// field, anything whose encoding this package would not reproduce:
// another model, pre-tokenizer or decoder, a normalizer, truncation or
// padding, a post-processor other than ByteLevel, dropout, byte_fallback,
// ignore_merges, subword prefixes or suffixes, added tokens with
// single_word, lstrip or rstrip, and unknown fields.
func Parse(data []byte) (*Tokenizer, error) {
	top, err := object(data, "the file")
	if err != nil {
		return nil, err
	}
	if err := known(top, "", "version", "truncation", "padding", "added_tokens", "normalizer",
		"pre_tokenizer", "post_processor", "decoder", "model"); err != nil {
		return nil, err
	}
	var version string
	if err := field(top, "version", &version); err != nil {
		return nil, fmt.Errorf("bpe: %w", err)
	}
	if version != "1.0" {
		return nil, fmt.Errorf("bpe: version %q: only \"1.0\" is known", version)
	}
	for _, k := range []string{"truncation", "padding", "normalizer"} {
		if !isNull(top[k]) {
			return nil, fmt.Errorf("bpe: %s is set: only null is supported", k)
		}
	}
	if err := checkPreTokenizer(top["pre_tokenizer"]); err != nil {
		return nil, err
	}
	if err := checkProcessor(top["post_processor"], "post_processor", true); err != nil {
		return nil, err
	}
	if err := checkProcessor(top["decoder"], "decoder", false); err != nil {
		return nil, err
	}
	t := &Tokenizer{}
	if err := t.parseModel(top["model"]); err != nil {
		return nil, err
	}
	if err := t.parseAdded(top["added_tokens"]); err != nil {
		return nil, err
	}
	if err := t.build(); err != nil {
		return nil, err
	}
	return t, nil
}

func checkPreTokenizer(raw json.RawMessage) error {
	const name = "pre_tokenizer"
	if isNull(raw) {
		return fmt.Errorf("bpe: %s is null: a ByteLevel pre-tokenizer is needed", name)
	}
	m, err := object(raw, name)
	if err != nil {
		return err
	}
	if err := known(m, name, "type", "add_prefix_space", "trim_offsets", "use_regex"); err != nil {
		return err
	}
	var typ string
	var prefix, regex bool
	if err := field(m, "type", &typ); err != nil {
		return fmt.Errorf("bpe: %s: %w", name, err)
	}
	if typ != "ByteLevel" {
		return fmt.Errorf("bpe: %s.type is %q: only ByteLevel is supported", name, typ)
	}
	if err := field(m, "add_prefix_space", &prefix); err != nil {
		return fmt.Errorf("bpe: %s: %w", name, err)
	}
	if prefix {
		return fmt.Errorf("bpe: %s.add_prefix_space is true: only false is supported", name)
	}
	regex = true // the library's default when the field is absent
	if _, ok := m["use_regex"]; ok {
		if err := field(m, "use_regex", &regex); err != nil {
			return fmt.Errorf("bpe: %s: %w", name, err)
		}
	}
	if !regex {
		return fmt.Errorf("bpe: %s.use_regex is false: only true is supported", name)
	}
	if _, ok := m["trim_offsets"]; ok {
		var b bool
		if err := field(m, "trim_offsets", &b); err != nil {
			return fmt.Errorf("bpe: %s: %w", name, err)
		}
	}
	return nil
}

// checkProcessor accepts a ByteLevel post-processor or decoder (neither
// changes ids; the decoder maps byte characters back to bytes), or null
// where nullOK.
func checkProcessor(raw json.RawMessage, name string, nullOK bool) error {
	if isNull(raw) {
		if nullOK {
			return nil
		}
		return fmt.Errorf("bpe: %s is null: a ByteLevel decoder is needed", name)
	}
	m, err := object(raw, name)
	if err != nil {
		return err
	}
	if err := known(m, name, "type", "add_prefix_space", "trim_offsets", "use_regex"); err != nil {
		return err
	}
	var typ string
	if err := field(m, "type", &typ); err != nil {
		return fmt.Errorf("bpe: %s: %w", name, err)
	}
	if typ != "ByteLevel" {
		return fmt.Errorf("bpe: %s.type is %q: only ByteLevel is supported", name, typ)
	}
	for _, k := range []string{"add_prefix_space", "trim_offsets", "use_regex"} {
		if _, ok := m[k]; ok {
			var b bool
			if err := field(m, k, &b); err != nil {
				return fmt.Errorf("bpe: %s: %w", name, err)
			}
		}
	}
	return nil
}

func (t *Tokenizer) parseModel(raw json.RawMessage) error {
	const name = "model"
	if isNull(raw) {
		return fmt.Errorf("bpe: %s is missing", name)
	}
	m, err := object(raw, name)
	if err != nil {
		return err
	}
	if err := known(m, name, "type", "dropout", "unk_token", "continuing_subword_prefix",
		"end_of_word_suffix", "fuse_unk", "byte_fallback", "ignore_merges", "vocab", "merges"); err != nil {
		return err
	}
	var typ string
	if err := field(m, "type", &typ); err != nil {
		return fmt.Errorf("bpe: %s: %w", name, err)
	}
	if typ != "BPE" {
		return fmt.Errorf("bpe: model.type is %q: only BPE is supported", typ)
	}
	if raw, ok := m["dropout"]; ok && !isNull(raw) {
		var d float64
		if err := json.Unmarshal(raw, &d); err != nil {
			return fmt.Errorf("bpe: model.dropout: %w", err)
		}
		if d != 0 {
			return fmt.Errorf("bpe: model.dropout is %v: only null is supported (dropout makes encoding random)", d)
		}
	}
	for _, k := range []string{"continuing_subword_prefix", "end_of_word_suffix"} {
		if raw, ok := m[k]; ok && !isNull(raw) {
			return fmt.Errorf("bpe: model.%s is set: only null is supported", k)
		}
	}
	for _, k := range []string{"byte_fallback", "ignore_merges", "fuse_unk"} {
		if raw, ok := m[k]; ok {
			var b bool
			if err := json.Unmarshal(raw, &b); err != nil {
				return fmt.Errorf("bpe: model.%s: %w", k, err)
			}
			if b && k != "fuse_unk" { // fuse_unk only matters for unknown characters, which a byte-level vocabulary has none of
				return fmt.Errorf("bpe: model.%s is true: only false is supported", k)
			}
		}
	}
	if raw, ok := m["unk_token"]; ok && !isNull(raw) {
		if err := json.Unmarshal(raw, &t.unk); err != nil {
			return fmt.Errorf("bpe: model.unk_token: %w", err)
		}
	}
	if err := t.parseVocab(m["vocab"]); err != nil {
		return err
	}
	if t.unk != "" {
		if _, ok := t.ids[t.unk]; !ok {
			return fmt.Errorf("bpe: model.unk_token %q is not in model.vocab", t.unk)
		}
	}
	return t.parseMerges(m["merges"])
}

// parseVocab reads model.vocab, an object of token -> id, refusing
// duplicate tokens and ids.
func (t *Tokenizer) parseVocab(raw json.RawMessage) error {
	if isNull(raw) {
		return fmt.Errorf("bpe: model.vocab is missing")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return fmt.Errorf("bpe: model.vocab is not an object")
	}
	t.ids = make(map[string]uint32)
	t.byID = map[uint32]string{}
	for dec.More() {
		off := dec.InputOffset()
		k, err := dec.Token()
		if err != nil {
			return fmt.Errorf("bpe: model.vocab at byte %d of the object: %w", off, err)
		}
		key, _ := k.(string)
		v, err := dec.Token()
		if err != nil {
			return fmt.Errorf("bpe: model.vocab[%q]: %w", key, err)
		}
		num, ok := v.(json.Number)
		if !ok {
			return fmt.Errorf("bpe: model.vocab[%q] is not a number", key)
		}
		id, err := strconv.ParseUint(num.String(), 10, 32)
		if err != nil || id >= maxIDs {
			return fmt.Errorf("bpe: model.vocab[%q] = %s is not an id (0..%d)", key, num, maxIDs-1)
		}
		if _, dup := t.ids[key]; dup {
			return fmt.Errorf("bpe: model.vocab has the token %q twice", key)
		}
		if other, dup := t.byID[uint32(id)]; dup {
			return fmt.Errorf("bpe: model.vocab gives id %d to both %q and %q", id, other, key)
		}
		t.ids[key] = uint32(id)
		t.byID[uint32(id)] = key
	}
	if _, err := dec.Token(); err != nil {
		return fmt.Errorf("bpe: model.vocab: %w", err)
	}
	return nil
}

// maxIDs bounds the ids that Parse accepts.
const maxIDs = 1 << 24

// parseMerges reads model.merges: pairs ["a", "b"] (the current format) or
// strings "a b" (the older one).
func (t *Tokenizer) parseMerges(raw json.RawMessage) error {
	if isNull(raw) {
		return fmt.Errorf("bpe: model.merges is missing")
	}
	var list []json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil {
		return fmt.Errorf("bpe: model.merges: %w", err)
	}
	t.merges = make([]pair, 0, len(list))
	for i, item := range list {
		var parts []string
		var s string
		if err := json.Unmarshal(item, &s); err == nil {
			parts = strings.Split(s, " ")
		} else if err := json.Unmarshal(item, &parts); err != nil {
			return fmt.Errorf("bpe: model.merges[%d] is neither a pair of strings nor a string", i)
		}
		if len(parts) != 2 {
			return fmt.Errorf("bpe: model.merges[%d] has %d parts, not 2", i, len(parts))
		}
		a, ok := t.ids[parts[0]]
		if !ok {
			return fmt.Errorf("bpe: model.merges[%d]: %q is not in model.vocab", i, parts[0])
		}
		b, ok := t.ids[parts[1]]
		if !ok {
			return fmt.Errorf("bpe: model.merges[%d]: %q is not in model.vocab", i, parts[1])
		}
		t.merges = append(t.merges, pair{a, b})
	}
	return nil
}

// parseAdded reads added_tokens and completes the id table: every id in
// [0, Size) must belong to the model's vocabulary or to an added token.
func (t *Tokenizer) parseAdded(raw json.RawMessage) error {
	var list []json.RawMessage
	if !isNull(raw) {
		if err := json.Unmarshal(raw, &list); err != nil {
			return fmt.Errorf("bpe: added_tokens: %w", err)
		}
	}
	seen := map[string]bool{}
	for i, item := range list {
		name := fmt.Sprintf("added_tokens[%d]", i)
		m, err := object(item, name)
		if err != nil {
			return err
		}
		if err := known(m, name, "id", "content", "single_word", "lstrip", "rstrip", "normalized", "special"); err != nil {
			return err
		}
		var a addedToken
		var id uint64
		if err := field(m, "id", &id); err != nil {
			return fmt.Errorf("bpe: %s: %w", name, err)
		}
		if id >= maxIDs {
			return fmt.Errorf("bpe: %s.id %d is too large", name, id)
		}
		a.id = uint32(id)
		if err := field(m, "content", &a.content); err != nil {
			return fmt.Errorf("bpe: %s: %w", name, err)
		}
		if a.content == "" {
			return fmt.Errorf("bpe: %s.content is empty", name)
		}
		if seen[a.content] {
			return fmt.Errorf("bpe: %s: the token %q is added twice", name, a.content)
		}
		seen[a.content] = true
		for _, k := range []string{"single_word", "lstrip", "rstrip"} {
			if _, ok := m[k]; ok {
				var b bool
				if err := field(m, k, &b); err != nil {
					return fmt.Errorf("bpe: %s: %w", name, err)
				}
				if b {
					return fmt.Errorf("bpe: %s.%s is true: only false is supported", name, k)
				}
			}
		}
		if _, ok := m["normalized"]; ok {
			if err := field(m, "normalized", &a.normalized); err != nil {
				return fmt.Errorf("bpe: %s: %w", name, err)
			}
		}
		if _, ok := m["special"]; ok {
			if err := field(m, "special", &a.special); err != nil {
				return fmt.Errorf("bpe: %s: %w", name, err)
			}
		}
		if tok, ok := t.byID[a.id]; ok {
			if tok != a.content {
				return fmt.Errorf("bpe: %s: id %d is %q in model.vocab but %q here", name, a.id, tok, a.content)
			}
		} else if mid, ok := t.ids[a.content]; ok {
			return fmt.Errorf("bpe: %s: %q has id %d here but %d in model.vocab", name, a.content, a.id, mid)
		} else {
			t.byID[a.id] = a.content
		}
		t.added = append(t.added, a)
	}
	// Every id in [0, n) must be taken: n entries, none of them >= n.
	n := len(t.byID)
	t.vocab = make([]string, n)
	for id, tok := range t.byID {
		if int(id) >= n {
			return fmt.Errorf("bpe: id %d is past the %d ids of model.vocab and added_tokens (ids must run from 0 without gaps)", id, n)
		}
		t.vocab[id] = tok
	}
	t.byID = nil
	slices.SortFunc(t.added, func(x, y addedToken) int { return int(x.id) - int(y.id) })
	return nil
}

// object decodes an object into its fields, refusing duplicate keys.
func object(data []byte, name string) (map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, fmt.Errorf("bpe: %s is not a JSON object", name)
	}
	m := map[string]json.RawMessage{}
	for dec.More() {
		off := dec.InputOffset()
		k, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("bpe: %s, byte %d: %w", name, off, err)
		}
		key, _ := k.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("bpe: %s.%s: %w", name, key, err)
		}
		if _, dup := m[key]; dup {
			return nil, fmt.Errorf("bpe: %s has the field %q twice", name, key)
		}
		m[key] = v
	}
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("bpe: %s: %w", name, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("bpe: %s: data after the end of the object", name)
	}
	return m, nil
}

// known refuses fields other than the given ones.
func known(m map[string]json.RawMessage, name string, keys ...string) error {
	for k := range m {
		if !slices.Contains(keys, k) {
			where := k
			if name != "" {
				where = name + "." + k
			}
			return fmt.Errorf("bpe: unknown field %s: its effect on encoding is unknown", where)
		}
	}
	return nil
}

// field decodes the required field key of m into v.
func field(m map[string]json.RawMessage, key string, v any) error {
	raw, ok := m[key]
	if !ok {
		return fmt.Errorf("field %q is missing", key)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("field %q: %w", key, err)
	}
	if s, ok := v.(*string); ok && !utf8.ValidString(*s) {
		return fmt.Errorf("field %q is not valid UTF-8", key)
	}
	return nil
}

func isNull(raw json.RawMessage) bool {
	return len(raw) == 0 || string(bytes.TrimSpace(raw)) == "null"
}
