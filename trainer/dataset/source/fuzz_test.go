package source

import (
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func FuzzFortuneFile(f *testing.F) {
	f.Add([]byte("First.\n%\nSecond\n\tline.\n%\n"))
	f.Add([]byte("%\n%\n\n%\nx   \r\n"))
	f.Add([]byte("the ____\b\b\b\bLAST\b\b time\n%"))
	f.Add([]byte("caf\xe9\n%\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, data []byte) {
		texts, err := parseFortunes(data, "f", "f")
		if err != nil {
			if utf8.Valid(data) {
				t.Fatalf("valid UTF-8 refused: %v", err)
			}
			return
		}
		seen := map[string]bool{}
		for _, x := range texts {
			if x.Text == "" || strings.ContainsRune(x.Text, '\b') || seen[x.ID] || !strings.HasPrefix(x.ID, "fortunes/f#") {
				t.Fatalf("bad entry %q", x)
			}
			seen[x.ID] = true
			for line := range strings.Lines(x.Text) {
				line = strings.TrimSuffix(line, "\n")
				if line == "%" || strings.TrimRight(line, " \t\r\v\f") != line {
					t.Fatalf("entry %s has the line %q", x.ID, line)
				}
			}
		}
	})
}

func FuzzParagraphs(f *testing.F) {
	f.Add("one\ntwo\n\nthree\n")
	f.Add("\ufeff a \r\n\r\n\t\n b  ")
	f.Add("x\n\u00a0\n\u2028y")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		ps := Paragraphs(s)
		for _, p := range ps {
			if strings.TrimSpace(p) == "" {
				t.Fatalf("empty paragraph in %q", ps)
			}
			for line := range strings.Lines(p) {
				if strings.TrimSpace(line) == "" {
					t.Fatalf("paragraph %q holds a blank line", p)
				}
			}
		}
		// Only white space is dropped (and a leading byte-order mark).
		got := strings.Fields(strings.Join(ps, " "))
		want := strings.Fields(strings.TrimPrefix(s, "\ufeff"))
		if !slices.Equal(got, want) {
			t.Fatalf("words %q, want %q", got, want)
		}
	})
}

func FuzzWordNetLine(f *testing.F) {
	f.Add(`00001740 03 n 01 entity 0 003 ~ 00001930 n 0000 ~ 00002137 n 0000 ~ 04424418 n 0000 | that which is perceived  `)
	f.Add(`00001740 29 v 02 breathe 0 respire 3 001 * 00005041 v 0000 02 + 02 00 + 08 00 | draw air; "I can breathe"  `)
	f.Add(`00014358 00 s 02 abounding 0 galore(ip) 0 001 & 00013887 a 0000 | existing in abundance`)
	f.Add("bag n 9 5 @ ~ #p %p + 9 6 02773037 13754778 02797881 02774152 13764639 02773838 09832321 02370360 00432881  ")
	f.Add("x n 1 0 1 1 zz")
	f.Fuzz(func(t *testing.T, line string) {
		if s, err := parseDataLine(line); err == nil {
			if len(s.words) == 0 || s.gloss != strings.TrimSpace(s.gloss) || strings.Contains(s.definition(), `"`) || !strings.ContainsRune("nvasr", rune(s.ssType)) {
				t.Fatalf("parsed %q to %+v", line, s)
			}
		}
		if l, offs, err := parseIndexLine(line); err == nil {
			if strings.Contains(l, "_") || l != strings.ToLower(l) {
				t.Fatalf("lemma %q", l)
			}
			for _, o := range offs {
				if o < 0 {
					t.Fatalf("offset %d", o)
				}
			}
		}
	})
}

func FuzzBibleOutput(f *testing.F) {
	f.Add("Ge1:1 In the beginning.\n1Sm3:10 And the LORD came.\r\n\nRev22:21 Amen.\n")
	f.Add("Ge1:1 a\nGe1:1 b\n")
	f.Add("Genesis 1\n")
	f.Fuzz(func(t *testing.T, s string) {
		texts, err := parseBible(strings.NewReader(s), "in")
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, x := range texts {
			ref, ok := strings.CutPrefix(x.ID, "bible-kjv/")
			if !ok || !isVerseRef(ref) || seen[x.ID] || x.Text == "" || x.Text != strings.TrimSpace(x.Text) {
				t.Fatalf("bad verse %q", x)
			}
			seen[x.ID] = true
		}
	})
}
