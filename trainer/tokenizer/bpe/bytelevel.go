package bpe

import (
	"unicode"
	"unicode/utf8"
)

// byteRune maps a byte to the printable character that stands for it in
// a byte-level vocabulary (GPT-2's bytes_to_unicode): the bytes '!'..'~',
// '¡'..'¬' and '®'..'ÿ' stand for themselves; the other 68 bytes, in
// increasing order, take the characters U+0100, U+0101, ... So the space
// is 'Ġ' (U+0120) and the newline 'Ċ' (U+010A).
var byteRune [256]rune

// runeByte is the inverse of byteRune.
var runeByte map[rune]byte

// byteString[b] is string(byteRune[b]).
var byteString [256]string

func init() {
	n := 0
	runeByte = make(map[rune]byte, 256)
	for b := 0; b < 256; b++ {
		if ('!' <= b && b <= '~') || (0xA1 <= b && b <= 0xAC) || (0xAE <= b && b <= 0xFF) {
			byteRune[b] = rune(b)
		} else {
			byteRune[b] = rune(256 + n)
			n++
		}
		runeByte[byteRune[b]] = byte(b)
		byteString[b] = string(byteRune[b])
	}
}

// ByteLevel returns s with every byte replaced by the character that
// stands for it in a byte-level vocabulary.
func ByteLevel(s string) string {
	out := make([]rune, len(s))
	for i := 0; i < len(s); i++ {
		out[i] = byteRune[s[i]]
	}
	return string(out)
}

// unByteLevel turns a byte-level token back into its bytes. ok is false
// when some character of tok stands for no byte.
func unByteLevel(tok string) (b []byte, ok bool) {
	b = make([]byte, 0, len(tok))
	for _, r := range tok {
		c, found := runeByte[r]
		if !found {
			return nil, false
		}
		b = append(b, c)
	}
	return b, true
}

// class is the category of a character in the GPT-2 pattern.
type class uint8

const (
	classSpace  class = iota // \s: Unicode White_Space
	classLetter              // \p{L}
	classNumber              // \p{N}
	classOther               // everything else, invalid UTF-8 bytes included
)

// classOf returns the class of the character starting at s[i] and its
// width in bytes. A byte that does not start valid UTF-8 is a character of
// width 1 in classOther, so every byte of the input lands in some piece.
func classOf(s string, i int) (class, int) {
	c := s[i]
	if c < utf8.RuneSelf {
		return asciiClass[c], 1
	}
	r, w := utf8.DecodeRuneInString(s[i:])
	switch {
	case r == utf8.RuneError && w == 1:
		return classOther, 1
	case unicode.IsSpace(r):
		return classSpace, w
	case unicode.IsLetter(r):
		return classLetter, w
	case unicode.IsNumber(r):
		return classNumber, w
	}
	return classOther, w
}

var asciiClass [utf8.RuneSelf]class

func init() {
	for c := 0; c < utf8.RuneSelf; c++ {
		r := rune(c)
		switch {
		case unicode.IsSpace(r):
			asciiClass[c] = classSpace
		case unicode.IsLetter(r):
			asciiClass[c] = classLetter
		case unicode.IsNumber(r):
			asciiClass[c] = classNumber
		default:
			asciiClass[c] = classOther
		}
	}
}

// PreTokenize splits s into the pieces that the Hugging Face ByteLevel
// pre-tokenizer (add_prefix_space false, use_regex true) makes of it,
// calling emit with each in order. The pieces are substrings of s and
// their concatenation is s. The pattern's alternatives, tried in order at
// each position as a backtracking engine does:
//
//   - 's 't 're 've 'm 'll 'd (lower case only);
//   - an optional ASCII space, then a run of letters; or of numbers; or of
//     characters that are neither white space, letters nor numbers;
//   - \s+(?!\S): a run of white space, less its last character when a
//     non-space character follows (that character then starts the next
//     piece, as " word" or alone); a run of one such character matches
//     the last alternative, \s+, by itself.
func PreTokenize(s string, emit func(piece string)) {
	i := 0
	for i < len(s) {
		end := pieceEnd(s, i)
		emit(s[i:end])
		i = end
	}
}

// pieceEnd returns where the piece that starts at s[i] ends.
func pieceEnd(s string, i int) int {
	c := s[i]
	if c == '\'' && i+1 < len(s) {
		switch s[i+1] {
		case 's', 't', 'm', 'd':
			return i + 2
		case 'r':
			if i+2 < len(s) && s[i+2] == 'e' {
				return i + 3
			}
		case 'v':
			if i+2 < len(s) && s[i+2] == 'e' {
				return i + 3
			}
		case 'l':
			if i+2 < len(s) && s[i+2] == 'l' {
				return i + 3
			}
		}
	}
	j := i
	cls, w := classOf(s, j)
	if c == ' ' && i+1 < len(s) {
		if next, nw := classOf(s, i+1); next != classSpace {
			j, cls, w = i+1, next, nw
		}
	}
	if cls != classSpace {
		// A run of one class (letters, numbers or other).
		j += w
		for j < len(s) {
			k, kw := classOf(s, j)
			if k != cls {
				break
			}
			j += kw
		}
		return j
	}
	// A run of white space from i; last is where its final character starts.
	last := i
	j = i + w
	for j < len(s) {
		k, kw := classOf(s, j)
		if k != classSpace {
			break
		}
		last = j
		j += kw
	}
	if j == len(s) || last == i {
		return j // the run ends the text, or is a single character
	}
	return last
}
