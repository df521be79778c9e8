package source

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"path/filepath"
	"strings"
)

// fileIndexMaxLine bounds one line of a JSONL index file.
const fileIndexMaxLine = 1 << 20

// fileEntry is one line of a JSONL index of a user's folder: a file and
// its text (an image's caption, a recording's transcript).
type fileEntry struct {
	File string // slash-separated, relative to the folder, cleaned
	Text string // trimmed, not empty
	Line int    // 1-based
}

// readFileIndex reads a JSONL index (name is for messages): one JSON
// object per line with "file" and the key textKey (other fields are
// ignored, so an index may carry the user's own metadata), blank lines
// skipped, a leading UTF-8 byte-order mark dropped. Each file is a path
// relative to the folder (backslashes read as slashes, cleaned; absolute
// paths and paths leaving the folder are refused) whose name okName
// accepts (kind says what it must be, for messages), named once; each text
// is not blank. Errors name the file and line.
func readFileIndex(r io.Reader, name, textKey, kind string, okName func(string) bool) ([]fileEntry, error) {
	br := bufio.NewReader(r)
	var out []fileEntry
	seen := map[string]int{}
	for line := 1; ; line++ {
		raw, err := readFileIndexLine(br)
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("source: %s line %d: %w", name, line, err)
		}
		if line == 1 {
			raw = bytes.TrimPrefix(raw, []byte("\xef\xbb\xbf"))
		}
		if len(bytes.TrimSpace(raw)) > 0 {
			e, perr := parseFileIndexLine(raw, textKey, kind, okName)
			if perr != nil {
				return nil, fmt.Errorf("source: %s line %d: %w", name, line, perr)
			}
			if first, dup := seen[e.File]; dup {
				return nil, fmt.Errorf("source: %s line %d: %q is already listed on line %d", name, line, e.File, first)
			}
			seen[e.File] = line
			e.Line = line
			out = append(out, e)
		}
		if errors.Is(err, io.EOF) {
			return out, nil
		}
	}
}

// readFileIndexLine reads one line without its line ending; io.EOF comes with
// the last line.
func readFileIndexLine(br *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > fileIndexMaxLine {
			return nil, fmt.Errorf("longer than %d bytes", fileIndexMaxLine)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		line = bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
		return line, err
	}
}

func parseFileIndexLine(raw []byte, textKey, kind string, okName func(string) bool) (fileEntry, error) {
	var v map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&v); err != nil || v == nil {
		return fileEntry{}, fmt.Errorf("want a JSON object with \"file\" and %q (%v)", textKey, err)
	}
	if dec.More() {
		return fileEntry{}, errors.New("more than one JSON value on the line")
	}
	var file, text string
	if err := json.Unmarshal(v["file"], &file); err != nil || v["file"] == nil {
		return fileEntry{}, fmt.Errorf("want a JSON object with a string \"file\" and %q", textKey)
	}
	if err := json.Unmarshal(v[textKey], &text); err != nil || v[textKey] == nil {
		return fileEntry{}, fmt.Errorf("want a JSON object with \"file\" and a string %q", textKey)
	}
	if text = strings.TrimSpace(text); text == "" {
		return fileEntry{}, fmt.Errorf("the %s of %q is empty", textKey, file)
	}
	f := strings.ReplaceAll(file, `\`, "/")
	clean := path.Clean(f)
	if f == "" || path.IsAbs(f) || filepath.IsAbs(file) || clean == "." || clean == ".." || strings.HasPrefix(clean, "../") || strings.ContainsRune(f, 0) {
		return fileEntry{}, fmt.Errorf("file %q must be a relative path inside the folder", file)
	}
	if !okName(clean) {
		return fileEntry{}, fmt.Errorf("file %q is not %s", file, kind)
	}
	return fileEntry{File: clean, Text: text}, nil
}
