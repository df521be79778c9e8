package bpe

import (
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestByteTable(t *testing.T) {
	seen := map[rune]bool{}
	for b := 0; b < 256; b++ {
		r := byteRune[b]
		if seen[r] {
			t.Fatalf("byte 0x%02x maps to %q, already taken", b, r)
		}
		seen[r] = true
		if !utf8.ValidRune(r) || strings.TrimSpace(string(r)) == "" {
			t.Errorf("byte 0x%02x maps to %U, not a printable character", b, r)
		}
		if runeByte[r] != byte(b) {
			t.Errorf("runeByte(%q) = 0x%02x, want 0x%02x", r, runeByte[r], b)
		}
	}
	// Facts of GPT-2's table: the printable ranges map to themselves and
	// the others to U+0100 upwards in byte order.
	for _, tc := range []struct {
		b    byte
		want rune
	}{{0x00, 'Ā'}, {'\t', 'ĉ'}, {'\n', 'Ċ'}, {' ', 'Ġ'}, {'!', '!'}, {'~', '~'}, {0x7f, 'ġ'}, {0xa0, 'ł'}, {0xa1, '¡'}, {0xad, 'Ń'}, {0xae, '®'}, {0xff, 'ÿ'}} {
		if byteRune[tc.b] != tc.want {
			t.Errorf("byte 0x%02x maps to %q, want %q", tc.b, byteRune[tc.b], tc.want)
		}
	}
	if got := ByteLevel("a b\n"); got != "aĠbĊ" {
		t.Errorf("ByteLevel = %q", got)
	}
	if b, ok := unByteLevel("aĠbĊ"); !ok || string(b) != "a b\n" {
		t.Errorf("unByteLevel = %q, %v", b, ok)
	}
	if _, ok := unByteLevel("a☃"); ok {
		t.Error("unByteLevel took a character that stands for no byte")
	}
}

func pieces(s string) []string {
	var out []string
	PreTokenize(s, func(p string) { out = append(out, p) })
	return out
}

func TestPreTokenize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"Hello world", []string{"Hello", " world"}},
		{"It's we're I've he'd", []string{"It", "'s", " we", "'re", " I", "'ve", " he", "'d"}},
		{"IT'S", []string{"IT", "'", "S"}},
		{"'ll'm't", []string{"'ll", "'m", "'t"}},
		{"'r", []string{"'", "r"}},
		{"'", []string{"'"}},
		{"!!'s", []string{"!!'", "s"}},
		{" 's", []string{" '", "s"}},
		{"a  b", []string{"a", " ", " b"}},
		{"a   b", []string{"a", "  ", " b"}},
		{"a \n b", []string{"a", " \n", " b"}},
		{"a\nb", []string{"a", "\n", "b"}},
		{"a\n\nb", []string{"a", "\n", "\n", "b"}},
		{"x  ", []string{"x", "  "}},
		{"  ", []string{"  "}},
		{" ", []string{" "}},
		{"\t x", []string{"\t", " x"}},
		{"abc123 456", []string{"abc", "123", " 456"}},
		{" .,;x", []string{" .,;", "x"}},
		{"\u00a0x", []string{"\u00a0", "x"}},
		// Two white space characters before a letter: \s+(?!\S) keeps the
		// first; the second, not an ASCII space, stands alone.
		{" \u00a0x", []string{" ", "\u00a0", "x"}},
		{"cafe\u0301!", []string{"cafe", "\u0301!"}},
		{"日本語。", []string{"日本語", "。"}},
		{"a\xffb", []string{"a", "\xff", "b"}},
		{" \xff\xfe", []string{" \xff\xfe"}},
		{"½²", []string{"½²"}},
	} {
		if got := pieces(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("PreTokenize(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
