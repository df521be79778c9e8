package source

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"mom/trainer/media"
)

// speechLineMax bounds one line of a transcripts file.
const speechLineMax = 1 << 20

// speechTranscript is one line of a transcripts file.
type speechTranscript struct {
	File string // slash-separated, relative to the folder, cleaned
	Text string
	Line int // 1-based
}

// readSpeechTranscripts reads a JSONL transcripts file (name is for
// messages): one JSON object per line, {"file": "relative/path.wav",
// "text": "..."}; other fields are ignored, blank lines skipped, a leading
// UTF-8 byte-order mark dropped. Each file must be a relative path inside
// the folder ending in .wav, named once; each text must be non-empty.
func readSpeechTranscripts(r io.Reader, name string) ([]speechTranscript, error) {
	br := bufio.NewReader(r)
	var out []speechTranscript
	seen := map[string]int{}
	for line := 1; ; line++ {
		raw, err := readSpeechLine(br)
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("source: %s line %d: %w", name, line, err)
		}
		if line == 1 {
			raw = bytes.TrimPrefix(raw, []byte("\xef\xbb\xbf"))
		}
		if len(bytes.TrimSpace(raw)) > 0 {
			tr, perr := parseSpeechLine(raw)
			if perr != nil {
				return nil, fmt.Errorf("source: %s line %d: %w", name, line, perr)
			}
			if first, dup := seen[tr.File]; dup {
				return nil, fmt.Errorf("source: %s line %d: %q already has a transcript on line %d", name, line, tr.File, first)
			}
			seen[tr.File] = line
			tr.Line = line
			out = append(out, tr)
		}
		if errors.Is(err, io.EOF) {
			return out, nil
		}
	}
}

// readSpeechLine reads one line without its line ending; io.EOF comes with
// the last line.
func readSpeechLine(br *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > speechLineMax {
			return nil, fmt.Errorf("longer than %d bytes", speechLineMax)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		line = bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
		return line, err
	}
}

func parseSpeechLine(raw []byte) (speechTranscript, error) {
	var v struct {
		File *string `json:"file"`
		Text *string `json:"text"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return speechTranscript{}, fmt.Errorf("not a JSON object of \"file\" and \"text\": %v", err)
	}
	if v.File == nil || v.Text == nil {
		return speechTranscript{}, errors.New(`want a JSON object with "file" and "text"`)
	}
	if strings.TrimSpace(*v.Text) == "" {
		return speechTranscript{}, fmt.Errorf("the text of %q is empty", *v.File)
	}
	f := strings.ReplaceAll(*v.File, `\`, "/")
	clean := path.Clean(f)
	if f == "" || path.IsAbs(f) || filepath.IsAbs(*v.File) || clean == ".." || strings.HasPrefix(clean, "../") || strings.ContainsRune(f, 0) {
		return speechTranscript{}, fmt.Errorf("file %q must be a relative path inside the folder", *v.File)
	}
	if !strings.EqualFold(path.Ext(clean), ".wav") {
		return speechTranscript{}, fmt.Errorf("file %q is not a .wav file", *v.File)
	}
	return speechTranscript{File: clean, Text: *v.Text}, nil
}

// SpeechFolder reads a user's recordings: the .wav files under dir (any
// depth) and the transcripts file (JSONL, one {"file": "relative/path.wav",
// "text": "..."} per line, paths relative to dir; see the package doc).
// Every transcript must name an existing file and every .wav file under dir
// must have a transcript, so that nothing is silently left out. The
// utterances come sorted by path, with ID "user-speech/<relative path>"
// and Source "user-speech", their audio resampled to 16 kHz.
func SpeechFolder(dir, transcripts string) ([]Utterance, error) {
	f, err := os.Open(transcripts)
	if err != nil {
		return nil, fmt.Errorf("source: speech transcripts: %w", err)
	}
	defer f.Close()
	trs, err := readSpeechTranscripts(f, transcripts)
	if err != nil {
		return nil, err
	}
	wavs := map[string]bool{}
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.EqualFold(filepath.Ext(p), ".wav") {
			rel, err := filepath.Rel(dir, p)
			if err != nil {
				return err
			}
			wavs[filepath.ToSlash(rel)] = true
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("source: speech folder %s: %w", dir, err)
	}
	named := map[string]bool{}
	for _, tr := range trs {
		if !wavs[tr.File] {
			return nil, fmt.Errorf("source: %s line %d: %s is not a .wav file under %s", transcripts, tr.Line, tr.File, dir)
		}
		named[tr.File] = true
	}
	var missing []string
	for w := range wavs {
		if !named[w] {
			missing = append(missing, w)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return nil, fmt.Errorf("source: speech folder %s: %d .wav files have no transcript in %s, first %s", dir, len(missing), transcripts, missing[0])
	}
	sort.Slice(trs, func(i, j int) bool { return trs[i].File < trs[j].File })
	out := make([]Utterance, 0, len(trs))
	for _, tr := range trs {
		a, err := media.ReadWAV(filepath.Join(dir, filepath.FromSlash(tr.File)))
		if err != nil {
			return nil, fmt.Errorf("source: speech folder: %w", err)
		}
		out = append(out, Utterance{ID: "user-speech/" + tr.File, Source: "user-speech", Audio: media.Resample(a, speakRate), Transcript: tr.Text})
	}
	return out, nil
}
