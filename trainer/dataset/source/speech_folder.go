package source

import (
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

// readSpeechTranscripts reads a transcripts file: a JSONL index of
// {"file": "relative/path.wav", "text": "..."} (see readFileIndex).
func readSpeechTranscripts(r io.Reader, name string) ([]fileEntry, error) {
	return readFileIndex(r, name, "text", "a .wav file", func(f string) bool { return strings.EqualFold(path.Ext(f), ".wav") })
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
