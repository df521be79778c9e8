package source

import (
	"bytes"
	"errors"
	"fmt"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"mom/trainer/media"
)

// espeakProgram is the synthesiser Speak runs (a variable so that tests can
// make it missing).
var espeakProgram = "espeak-ng"

// speakRate is the sample rate of the audio Speak returns, the speech
// tokenizer's.
const speakRate = 16000

// Voice is an espeak-ng voice: Name is a voice or language name, optionally
// with a variant after '+' ("en-us", "en-gb-scotland+f4"); Speed is in
// words per minute (80 to 450; 0 means espeak-ng's default, 175); Pitch is
// 0 to 99 (espeak-ng's default is 50).
type Voice struct {
	Name         string
	Speed, Pitch int
}

// String is the voice as "name/speed/pitch".
func (v Voice) String() string { return fmt.Sprintf("%s/%d/%d", v.Name, v.Speed, v.Pitch) }

func (v Voice) check() error {
	if v.Name == "" || v.Name[0] == '-' || v.Name[0] == '+' {
		return fmt.Errorf("source: espeak-ng voice name %q: must start with a letter", v.Name)
	}
	for _, r := range v.Name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_+./", r)) {
			return fmt.Errorf("source: espeak-ng voice name %q: character %q is not allowed", v.Name, r)
		}
	}
	if v.Speed != 0 && (v.Speed < 80 || v.Speed > 450) {
		return fmt.Errorf("source: espeak-ng voice %s: speed %d words per minute (want 80 to 450, or 0 for the default)", v.Name, v.Speed)
	}
	if v.Pitch < 0 || v.Pitch > 99 {
		return fmt.Errorf("source: espeak-ng voice %s: pitch %d (want 0 to 99)", v.Name, v.Pitch)
	}
	return nil
}

// Voices is a default set of ten English voices: American, British,
// Scottish, received pronunciation, Caribbean and New York accents, five
// with male and five with female variants, at 150 to 200 words per minute
// and a spread of pitches. Every one sounds different (tested): note that
// espeak-ng ignores a variant on "en-gb", so the British voices use its
// other name, "en".
func Voices() []Voice {
	return []Voice{
		{"en-us", 175, 50},
		{"en-us+f3", 165, 65},
		{"en+m3", 160, 45},
		{"en+f2", 180, 60},
		{"en-gb-scotland", 150, 45},
		{"en-gb-scotland+f4", 170, 60},
		{"en-gb-x-rp+m2", 190, 40},
		{"en-gb-x-rp+f1", 155, 70},
		{"en-029+f5", 165, 55},
		{"en-us-nyc+m7", 200, 35},
	}
}

// Speak synthesises text with espeak-ng (the Debian package espeak-ng),
// reading its WAV from standard output and resampling it to 16 kHz. The
// text goes to espeak-ng's standard input as UTF-8, never as an argument,
// and is not read as markup. For the same text and voice, espeak-ng's
// output is the same bytes every time (tested), so Speak is deterministic.
func Speak(text string, v Voice) (*media.Audio, error) {
	if strings.TrimSpace(text) == "" {
		return nil, errors.New("source: speaking: the text is empty")
	}
	if err := v.check(); err != nil {
		return nil, err
	}
	prog, err := exec.LookPath(espeakProgram)
	if err != nil {
		return nil, fmt.Errorf("source: speech synthesis needs %s, from the Debian package espeak-ng (apt-get install espeak-ng): %w", espeakProgram, err)
	}
	args := []string{"--stdout", "-b", "1", "-v", v.Name, "-p", strconv.Itoa(v.Pitch)}
	if v.Speed != 0 {
		args = append(args, "-s", strconv.Itoa(v.Speed))
	}
	cmd := exec.Command(prog, args...)
	cmd.Stdin = strings.NewReader(text)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("source: espeak-ng with voice %s: %w: %s", v, err, strings.TrimSpace(errOut.String()))
	}
	a, err := media.DecodeWAV(&out)
	if err != nil {
		return nil, fmt.Errorf("source: espeak-ng's output for voice %s: %w", v, err)
	}
	return media.Resample(a, speakRate), nil
}

// SpeakAll speaks texts[i] with voices[i % len(voices)] on workers
// goroutines (GOMAXPROCS when workers <= 0), each running espeak-ng, and
// returns the audio in the order of texts. Progress, if set, is called
// (from one goroutine at a time) after each text with (done, total). After
// a failure no new text is started, and the error of the lowest-numbered
// failed text is returned.
func SpeakAll(texts []string, voices []Voice, workers int, progress func(done, total int)) ([]*media.Audio, error) {
	if len(voices) == 0 {
		return nil, errors.New("source: speaking: no voices")
	}
	for _, v := range voices {
		if err := v.check(); err != nil {
			return nil, err
		}
	}
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = max(1, min(workers, len(texts)))
	out := make([]*media.Audio, len(texts))
	errs := make([]error, len(texts))
	var next atomic.Int64
	var failed atomic.Bool
	var mu sync.Mutex
	done := 0
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !failed.Load() {
				i := int(next.Add(1) - 1)
				if i >= len(texts) {
					return
				}
				a, err := Speak(texts[i], voices[i%len(voices)])
				if err != nil {
					errs[i] = fmt.Errorf("source: speaking text %d (%.40q): %w", i, texts[i], err)
					failed.Store(true)
					return
				}
				out[i] = a
				if progress != nil {
					mu.Lock()
					done++
					progress(done, len(texts))
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}
