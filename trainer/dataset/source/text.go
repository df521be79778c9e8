package source

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"
)

// Where the Debian packages put the text corpora, and how the Bible is read.
const (
	FortunesDir  = "/usr/share/games/fortunes" // Debian package fortunes (and fortunes-min)
	WordNetDir   = "/usr/share/wordnet"        // Debian package wordnet-base
	BibleProgram = "bible"                     // Debian package bible-kjv (with bible-kjv-text)
	BibleRange   = "Gen1:1-Rev22:21"           // every verse
)

// validUTF8 returns an error naming file and the byte offset of the first
// invalid UTF-8 in data, nil if it is all valid.
func validUTF8(data []byte, file string) error {
	if utf8.Valid(data) {
		return nil
	}
	for off := 0; off < len(data); {
		r, w := utf8.DecodeRune(data[off:])
		if r == utf8.RuneError && w == 1 {
			return fmt.Errorf("%s: invalid UTF-8 at byte offset %d", file, off)
		}
		off += w
	}
	return nil
}

// Fortunes reads the fortune-cookie files under dir (FortunesDir for
// Debian's): every regular file, in sorted order through subfolders, less
// the strfile indexes (*.dat), the *.u8 links, symbolic links and the
// offensive collection (any folder named "off"). Entries are separated by
// lines that show only "%" (trailing blanks allowed). Each becomes one Text with ID
// "fortunes/<relpath>#<n>", n counting the entries of the file from 1
// (empty ones are skipped but counted, so IDs stay put). Overstruck text
// ("_\bx", kept from the days of printing terminals) is resolved as the
// terminal showed it; trailing spaces and blank edge lines are trimmed.
func Fortunes(dir string) ([]Text, error) {
	var out []Text
	files := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if d.Name() == "off" && path != dir {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || strings.HasSuffix(path, ".dat") || strings.HasSuffix(path, ".u8") {
			return nil
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		texts, err := parseFortunes(data, filepath.ToSlash(rel), path)
		if err != nil {
			return err
		}
		files++
		out = append(out, texts...)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("source: fortunes: %w", err)
	}
	if files == 0 {
		return nil, fmt.Errorf("source: fortunes: no fortune files under %s (Debian package fortunes)", dir)
	}
	return out, nil
}

// parseFortunes splits one fortune file into its entries (see Fortunes);
// name goes into the IDs ("fortunes/<name>#<n>") and file into errors.
func parseFortunes(data []byte, name, file string) ([]Text, error) {
	if err := validUTF8(data, file); err != nil {
		return nil, err
	}
	var out []Text
	n := 0
	var entry []string
	flush := func() {
		n++
		if text := tidyLines(entry); text != "" {
			out = append(out, Text{ID: fmt.Sprintf("fortunes/%s#%d", name, n), Source: "fortunes", Text: text})
		}
		entry = entry[:0]
	}
	for line := range strings.Lines(string(data)) {
		line = strings.TrimRight(line, "\r\n")
		if strings.TrimRight(overstrike(line), " \t\r\v\f") == "%" {
			flush()
			continue
		}
		entry = append(entry, line)
	}
	if len(entry) > 0 {
		flush()
	}
	return out, nil
}

// tidyLines joins lines with "\n" after resolving overstrikes and trimming
// each line's trailing white space, without blank lines at either end.
func tidyLines(lines []string) string {
	start, end := 0, len(lines)
	for start < end && strings.TrimSpace(lines[start]) == "" {
		start++
	}
	for end > start && strings.TrimSpace(lines[end-1]) == "" {
		end--
	}
	var b strings.Builder
	for i := start; i < end; i++ {
		if i > start {
			b.WriteByte('\n')
		}
		b.WriteString(strings.TrimRight(overstrike(lines[i]), " \t\r\v\f"))
	}
	return b.String()
}

// overstrike resolves backspaces in a line as a terminal shows them: a
// backspace moves back one column, and the last character written to a
// column is the one seen (as `col -b` does).
func overstrike(line string) string {
	if !strings.Contains(line, "\b") {
		return line
	}
	var cols []rune
	cur := 0
	for _, r := range line {
		if r == '\b' {
			if cur > 0 {
				cur--
			}
			continue
		}
		if cur < len(cols) {
			cols[cur] = r
		} else {
			cols = append(cols, r)
		}
		cur++
	}
	return string(cols)
}

// BibleKJV reads the King James Bible, one Text per verse with ID
// "bible-kjv/<ref>" as the program writes the reference (e.g.
// "bible-kjv/Ge1:1"), through the `bible` program of the Debian package
// bible-kjv: `bible -f Gen1:1-Rev22:21` prints one "Ge1:1 text" line per
// verse.
func BibleKJV() ([]Text, error) {
	prog, err := exec.LookPath(BibleProgram)
	if err != nil {
		return nil, fmt.Errorf("source: bible-kjv: the %q program is missing (install the Debian package bible-kjv): %w", BibleProgram, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, prog, "-f", BibleRange)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("source: bible-kjv: %s -f %s: %w: %s", prog, BibleRange, err, strings.TrimSpace(stderr.String()))
	}
	texts, err := parseBible(&stdout, prog+" output")
	if err != nil {
		return nil, fmt.Errorf("source: bible-kjv: %w", err)
	}
	return texts, nil
}

// parseBible reads lines "<ref> <verse text>" as `bible -f` prints them;
// the reference is a book abbreviation (which may start with a digit),
// chapter, ':' and verse. file names the input in errors.
func parseBible(r io.Reader, file string) ([]Text, error) {
	var out []Text
	seen := map[string]bool{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		s := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(s) == "" {
			continue
		}
		if !utf8.ValidString(s) {
			return nil, fmt.Errorf("%s line %d: invalid UTF-8", file, line)
		}
		ref, text, ok := strings.Cut(s, " ")
		if !ok || !isVerseRef(ref) {
			return nil, fmt.Errorf("%s line %d: %q does not start with a verse reference such as Ge1:1", file, line, clip(s))
		}
		text = strings.TrimSpace(text)
		if text == "" {
			return nil, fmt.Errorf("%s line %d: verse %s has no text", file, line, ref)
		}
		if seen[ref] {
			return nil, fmt.Errorf("%s line %d: verse %s appears twice", file, line, ref)
		}
		seen[ref] = true
		out = append(out, Text{ID: "bible-kjv/" + ref, Source: "bible-kjv", Text: text})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s line %d: %w", file, line+1, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no verses", file)
	}
	return out, nil
}

// isVerseRef reports whether s looks like "Ge1:1", "1Sm3:10" or "SSol2:4":
// an optional digit, letters, digits, ':', digits.
func isVerseRef(s string) bool {
	i := 0
	if i < len(s) && '1' <= s[i] && s[i] <= '3' {
		i++
	}
	letters := i
	for i < len(s) && (('a' <= s[i] && s[i] <= 'z') || ('A' <= s[i] && s[i] <= 'Z')) {
		i++
	}
	if i == letters {
		return false
	}
	digits := func() bool {
		j := i
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			i++
		}
		return i > j
	}
	if !digits() || i >= len(s) || s[i] != ':' {
		return false
	}
	i++
	return digits() && i == len(s)
}

// clip shortens s for an error message.
func clip(s string) string {
	if len(s) > 60 {
		for i := 60; i > 50; i-- {
			if utf8.RuneStart(s[i]) {
				return s[:i] + "..."
			}
		}
		return s[:50] + "..."
	}
	return s
}

// TextFolder reads every .txt file under dir (through subfolders, in
// sorted order) and splits each into paragraphs at blank lines (lines of
// white space only). Each paragraph is one Text with ID
// "user-text/<relpath>#<n>", n counting the file's paragraphs from 1.
// Line ends may be "\n" or "\r\n"; a leading byte-order mark is dropped;
// invalid UTF-8 is an error naming the file and the byte offset.
func TextFolder(dir string) ([]Text, error) {
	var out []Text
	files := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !strings.EqualFold(filepath.Ext(path), ".txt") {
			return nil
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if err := validUTF8(data, path); err != nil {
			return err
		}
		files++
		for i, p := range Paragraphs(string(data)) {
			out = append(out, Text{ID: fmt.Sprintf("user-text/%s#%d", filepath.ToSlash(rel), i+1), Source: "user-text", Text: p})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("source: text folder: %w", err)
	}
	if files == 0 {
		return nil, fmt.Errorf("source: text folder: no .txt files under %s", dir)
	}
	return out, nil
}

// Paragraphs splits text at blank lines (lines of white space only) into
// paragraphs: each keeps its lines joined by "\n", less trailing white
// space on each line; none is empty. A leading byte-order mark is
// dropped, and "\r\n" line ends count as "\n".
func Paragraphs(text string) []string {
	text = strings.TrimPrefix(text, "\ufeff")
	var out, cur []string
	for line := range strings.Lines(text) {
		line = strings.TrimRight(line, "\r\n")
		if strings.TrimSpace(line) == "" {
			if len(cur) > 0 {
				out = append(out, tidyParagraph(cur))
				cur = cur[:0]
			}
			continue
		}
		cur = append(cur, line)
	}
	if len(cur) > 0 {
		out = append(out, tidyParagraph(cur))
	}
	return out
}

func tidyParagraph(lines []string) string {
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " \t\r\v\f")
	}
	return strings.Join(lines, "\n")
}
