package source

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// write creates the files under dir, making folders as needed.
func write(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func ids(texts []Text) []string {
	var out []string
	for _, x := range texts {
		out = append(out, x.ID)
	}
	return out
}

func TestParseFortunes(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want []Text
	}{
		{"two entries", "First one.\n%\nSecond\n\tline two.\n%\n", []Text{
			{ID: "fortunes/f#1", Source: "fortunes", Text: "First one."},
			{ID: "fortunes/f#2", Source: "fortunes", Text: "Second\n\tline two."},
		}},
		{"separator with trailing blanks", "a\n% \t\nb\n", []Text{{ID: "fortunes/f#1", Source: "fortunes", Text: "a"}, {ID: "fortunes/f#2", Source: "fortunes", Text: "b"}}},
		{"no final separator", "a\n%\nb", []Text{{ID: "fortunes/f#1", Source: "fortunes", Text: "a"}, {ID: "fortunes/f#2", Source: "fortunes", Text: "b"}}},
		{"empty entries counted", "%\n%\n  \n%\nthird\n", []Text{{ID: "fortunes/f#4", Source: "fortunes", Text: "third"}}},
		{"blank edges and trailing spaces", "\n\n  indented  \nnext   \n\n\n%\n", []Text{{ID: "fortunes/f#1", Source: "fortunes", Text: "  indented\nnext"}}},
		{"CRLF", "one\r\n%\r\ntwo\r\n", []Text{{ID: "fortunes/f#1", Source: "fortunes", Text: "one"}, {ID: "fortunes/f#2", Source: "fortunes", Text: "two"}}},
		{"percent inside text", "100% sure\n%%\n%x\n", []Text{{ID: "fortunes/f#1", Source: "fortunes", Text: "100% sure\n%%\n%x"}}},
		{"overstrike", "the ____\b\b\b\bLAST time, _\bI\n", []Text{{ID: "fortunes/f#1", Source: "fortunes", Text: "the LAST time, I"}}},
		{"empty file", "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseFortunes([]byte(tc.in), "f", "/x/f")
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
	_, err := parseFortunes([]byte("ok\n%\nbad \xff here"), "f", "/x/f")
	if err == nil || !strings.Contains(err.Error(), "/x/f: invalid UTF-8 at byte offset 9") {
		t.Errorf("invalid UTF-8: %v", err)
	}
}

func TestOverstrike(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain", "plain"},
		{"_\bx", "x"},
		{"x\b_", "_"},
		{"*___\b\b\band*", "*and*"},
		{"\b\bab", "ab"},
		{"ab\b\b\b", "ab"},
		{"é\b€", "€"},
	} {
		if got := overstrike(tc.in); got != tc.want {
			t.Errorf("overstrike(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestFortunesFolder(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, map[string]string{
		"zen":         "Z one\n%\nZ two\n",
		"art":         "A one\n%\n",
		"art.dat":     "\x00\x00\x00\x02binary",
		"off/rude":    "rude\n%\n",
		"de/computer": "Rechner\n%\n",
	})
	if err := os.Symlink("art", filepath.Join(dir, "art.u8")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("zen", filepath.Join(dir, "zen2")); err != nil {
		t.Fatal(err)
	}
	got, err := Fortunes(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"fortunes/art#1", "fortunes/de/computer#1", "fortunes/zen#1", "fortunes/zen#2"}
	if !slices.Equal(ids(got), want) {
		t.Errorf("IDs %q, want %q", ids(got), want)
	}
	write(t, dir, map[string]string{"bad": "caf\xe9\n"})
	if _, err := Fortunes(dir); err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "bad")+": invalid UTF-8 at byte offset 3") {
		t.Errorf("invalid UTF-8: %v", err)
	}
	if _, err := Fortunes(t.TempDir()); err == nil || !strings.Contains(err.Error(), "no fortune files") {
		t.Errorf("empty folder: %v", err)
	}
	if _, err := Fortunes(filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing folder: %v", err)
	}
}

func TestParseBible(t *testing.T) {
	in := "Ge1:1 In the beginning God created the heaven and the earth.\n" +
		"1Sm3:10 And the LORD came, and stood.\n\n" +
		"SSol2:4 He brought me to the banqueting house.\r\n"
	got, err := parseBible(strings.NewReader(in), "out")
	if err != nil {
		t.Fatal(err)
	}
	want := []Text{
		{ID: "bible-kjv/Ge1:1", Source: "bible-kjv", Text: "In the beginning God created the heaven and the earth."},
		{ID: "bible-kjv/1Sm3:10", Source: "bible-kjv", Text: "And the LORD came, and stood."},
		{ID: "bible-kjv/SSol2:4", Source: "bible-kjv", Text: "He brought me to the banqueting house."},
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %q", got)
	}
	for _, tc := range []struct{ name, in, want string }{
		{"no reference", "Ge1:1 ok\nGenesis chapter one\n", "out line 2"},
		{"no text", "Ge1:1    \n", "no text"},
		{"twice", "Ge1:1 a\nGe1:1 b\n", "twice"},
		{"empty", "\n\n", "no verses"},
		{"invalid UTF-8", "Ge1:1 \xff\n", "out line 1: invalid UTF-8"},
		{"long line", "Ge1:1 " + strings.Repeat("x", 2<<20) + "\n", "out line 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseBible(strings.NewReader(tc.in), "out")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestIsVerseRef(t *testing.T) {
	for s, want := range map[string]bool{
		"Ge1:1": true, "Rev22:21": true, "1Sm3:10": true, "3Jn1:15": true, "SSol8:14": true,
		"": false, "Ge": false, "Ge1": false, "Ge1:": false, ":1": false, "1:1": false, "4Ki1:1": false,
		"Ge1:1a": false, "Ge1-1": false, "Gé1:1": false, "11Sm1:1": false,
	} {
		if got := isVerseRef(s); got != want {
			t.Errorf("isVerseRef(%q) = %v", s, got)
		}
	}
}

func TestBibleKJVProgram(t *testing.T) {
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh for a stand-in bible program")
	}
	// A stand-in program on PATH shows how BibleKJV calls it.
	dir := t.TempDir()
	script := "#!/bin/sh\n[ \"$1\" = -f ] && [ \"$2\" = " + BibleRange + " ] || { echo usage >&2; exit 2; }\n" +
		"echo 'Ge1:1 In the beginning.'\necho 'Rev22:21 Amen.'\n"
	write(t, dir, map[string]string{"bible": script})
	os.Chmod(filepath.Join(dir, "bible"), 0o755)
	t.Setenv("PATH", dir)
	got, err := BibleKJV()
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"bible-kjv/Ge1:1", "bible-kjv/Rev22:21"}; !slices.Equal(ids(got), want) {
		t.Errorf("IDs %q", ids(got))
	}
	write(t, dir, map[string]string{"bible": "#!/bin/sh\necho 'no data file' >&2\nexit 1\n"})
	if _, err := BibleKJV(); err == nil || !strings.Contains(err.Error(), "no data file") {
		t.Errorf("failing program: %v", err)
	}
	t.Setenv("PATH", t.TempDir())
	if _, err := BibleKJV(); err == nil || !strings.Contains(err.Error(), "bible-kjv") || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing program: %v", err)
	}
}

func TestParagraphs(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"\n\n \n\t\n", nil},
		{"one", []string{"one"}},
		{"one\ntwo\n\nthree\n", []string{"one\ntwo", "three"}},
		{"\n\n  a  \n b\n \n\n\nc", []string{"  a\n b", "c"}},
		{"a\r\nb\r\n\r\nc\r\n", []string{"a\nb", "c"}},
		{"\ufeffbom\n", []string{"bom"}},
		{"x\n\u00a0\ny", []string{"x", "y"}},
	} {
		if got := Paragraphs(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("Paragraphs(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestTextFolder(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, map[string]string{
		"b.txt":        "B one.\n\nB two.\n",
		"a/z.TXT":      "Z.\n",
		"a/notes.md":   "not text\n",
		"a/deep/c.txt": "C one\nstill C one\n\n\nC two\n",
		"empty.txt":    "",
		"ignored.txt~": "backup\n",
	})
	got, err := TextFolder(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []Text{
		{ID: "user-text/a/deep/c.txt#1", Source: "user-text", Text: "C one\nstill C one"},
		{ID: "user-text/a/deep/c.txt#2", Source: "user-text", Text: "C two"},
		{ID: "user-text/a/z.TXT#1", Source: "user-text", Text: "Z."},
		{ID: "user-text/b.txt#1", Source: "user-text", Text: "B one."},
		{ID: "user-text/b.txt#2", Source: "user-text", Text: "B two."},
	}
	if !slices.Equal(got, want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	write(t, dir, map[string]string{"a/bad.txt": "good\n\nbad \xc3("})
	_, err = TextFolder(dir)
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "a", "bad.txt")+": invalid UTF-8 at byte offset 10") {
		t.Errorf("invalid UTF-8: %v", err)
	}
	if _, err := TextFolder(t.TempDir()); err == nil || !strings.Contains(err.Error(), "no .txt files") {
		t.Errorf("empty folder: %v", err)
	}
	if _, err := TextFolder(filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing folder: %v", err)
	}
}

// The installed corpora, when the set-up installed them.

func TestInstalledFortunes(t *testing.T) {
	if _, err := os.Stat(FortunesDir); err != nil {
		t.Skipf("%s is absent (Debian package fortunes): %v", FortunesDir, err)
	}
	texts, err := Fortunes(FortunesDir)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, x := range texts {
		if seen[x.ID] || x.Text == "" || strings.ContainsRune(x.Text, '\b') {
			t.Fatalf("%s: duplicate, empty or with a backspace: %q", x.ID, x.Text)
		}
		seen[x.ID] = true
	}
	if len(texts) < 1000 {
		t.Errorf("only %d fortunes", len(texts))
	}
	t.Logf("%d fortunes", len(texts))
}

func TestInstalledBible(t *testing.T) {
	if _, err := os.Stat("/usr/bin/" + BibleProgram); err != nil {
		t.Skipf("the bible program is absent (Debian package bible-kjv): %v", err)
	}
	texts, err := BibleKJV()
	if err != nil {
		t.Fatal(err)
	}
	if len(texts) != 31102 {
		t.Errorf("%d verses, want the KJV's 31102", len(texts))
	}
	if texts[0].ID != "bible-kjv/Ge1:1" || !strings.HasPrefix(texts[0].Text, "In the beginning God created") {
		t.Errorf("first verse %q", texts[0])
	}
	if last := texts[len(texts)-1]; last.ID != "bible-kjv/Rev22:21" {
		t.Errorf("last verse %q", last)
	}
}

func TestInstalledWordNet(t *testing.T) {
	if _, err := os.Stat(filepath.Join(WordNetDir, "data.noun")); err != nil {
		t.Skipf("WordNet is absent (Debian package wordnet-base): %v", err)
	}
	g, err := WordNetGlosses(WordNetDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, noun := range []string{"shirt", "t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "sneaker", "bag", "boot"} {
		if len(g[noun]) == 0 {
			t.Errorf("no gloss for %q", noun)
		}
	}
	// Sense order: a coat is a garment before it is a layer of paint.
	if c := g["coat"]; len(c) < 2 || !strings.Contains(c[0], "garment") {
		t.Errorf("coat: %q", c)
	}
	texts, err := WordNetTexts(WordNetDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(texts) < 100000 {
		t.Errorf("only %d synsets", len(texts))
	}
	t.Logf("%d noun lemmas, %d synset glosses", len(g), len(texts))
}
