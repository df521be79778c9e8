package source

import (
	"bytes"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"mom/trainer/media"
)

func needEspeak(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("espeak-ng"); err != nil {
		t.Skip("espeak-ng is not installed (Debian package espeak-ng): skipping speech synthesis")
	}
}

func TestVoiceCheck(t *testing.T) {
	for _, v := range Voices() {
		if err := v.check(); err != nil {
			t.Errorf("default voice %v: %v", v, err)
		}
	}
	for _, c := range []struct {
		v    Voice
		want string
	}{
		{Voice{"", 175, 50}, "must start with a letter"},
		{Voice{"--help", 175, 50}, "must start with a letter"},
		{Voice{"en us", 175, 50}, `character ' '`},
		{Voice{"en;rm", 175, 50}, `character ';'`},
		{Voice{"en-us", 79, 50}, "speed 79"},
		{Voice{"en-us", 451, 50}, "speed 451"},
		{Voice{"en-us", 175, 100}, "pitch 100"},
		{Voice{"en-us", 175, -1}, "pitch -1"},
	} {
		if err := c.v.check(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want %q", c.v, err, c.want)
		}
	}
	if err := (Voice{"en-gb-x-rp+f1", 0, 0}).check(); err != nil {
		t.Errorf("zero speed and pitch: %v", err)
	}
}

func TestSpeakErrors(t *testing.T) {
	if _, err := Speak("  \n", Voice{"en-us", 175, 50}); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("empty text: %v", err)
	}
	if _, err := Speak("hello", Voice{"en-us", 175, 500}); err == nil || !strings.Contains(err.Error(), "pitch 500") {
		t.Errorf("bad voice: %v", err)
	}
	if _, err := SpeakAll([]string{"a"}, nil, 1, nil); err == nil || !strings.Contains(err.Error(), "no voices") {
		t.Errorf("no voices: %v", err)
	}
	old := espeakProgram
	espeakProgram = "espeak-ng-not-installed-for-this-test"
	defer func() { espeakProgram = old }()
	_, err := Speak("hello", Voice{"en-us", 175, 50})
	if err == nil || !strings.Contains(err.Error(), "the Debian package espeak-ng") {
		t.Errorf("missing program: %v", err)
	}
	_, err = SpeakAll([]string{"a", "b"}, Voices(), 2, nil)
	if err == nil || !strings.Contains(err.Error(), "speaking text 0") {
		t.Errorf("missing program in SpeakAll: %v", err)
	}
}

func peak(a *media.Audio) float32 {
	var p float32
	for _, v := range a.Samples {
		p = max(p, v, -v)
	}
	return p
}

func TestSpeak(t *testing.T) {
	needEspeak(t)
	const text = "The quick brown fox jumps over the lazy dog."
	var prev []*media.Audio
	for _, v := range Voices() {
		a, err := Speak(text, v)
		if err != nil {
			t.Fatal(err)
		}
		if a.Rate != 16000 || a.Seconds() < 1 || a.Seconds() > 6 || peak(a) < 0.1 {
			t.Errorf("voice %v: %d Hz, %.2f s, peak %.3f", v, a.Rate, a.Seconds(), peak(a))
		}
		// Deterministic: the same voice gives the same audio.
		b, err := Speak(text, v)
		if err != nil || !slices.Equal(a.Samples, b.Samples) {
			t.Errorf("voice %v: two runs differ (%v)", v, err)
		}
		// Every default voice sounds different (espeak-ng silently drops
		// some variants, e.g. on "en-gb").
		for i, p := range prev {
			if slices.Equal(p.Samples, a.Samples) {
				t.Errorf("voice %v sounds exactly like %v", v, Voices()[i])
			}
		}
		prev = append(prev, a)
	}
	// A faster voice speaks the same text in less time.
	slow, _ := Speak(text, Voice{"en-us", 120, 50})
	fast, _ := Speak(text, Voice{"en-us", 300, 50})
	if fast.Seconds() > 0.6*slow.Seconds() {
		t.Errorf("300 wpm took %.2f s, 120 wpm %.2f s", fast.Seconds(), slow.Seconds())
	}
	// Text is never read as options or markup.
	if a, err := Speak("--version <speak>hello</speak>", Voice{"en-us", 175, 50}); err != nil || a.Seconds() < 0.5 {
		t.Errorf("option-like text: %v", err)
	}
	if _, err := Speak("hello", Voice{"xx-no-such-voice", 175, 50}); err == nil || !strings.Contains(err.Error(), "xx-no-such-voice") {
		t.Errorf("unknown voice: %v", err)
	}
}

func TestSpeakAll(t *testing.T) {
	needEspeak(t)
	texts := []string{"One.", "Two words.", "Three little words.", "Four is a number.", "Five, six.", "Seven!"}
	voices := Voices()[:4]
	var calls []int
	got, err := SpeakAll(texts, voices, 3, func(done, total int) {
		if total != len(texts) {
			t.Errorf("total %d", total)
		}
		calls = append(calls, done)
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(calls, []int{1, 2, 3, 4, 5, 6}) {
		t.Errorf("progress calls %v", calls)
	}
	for i, text := range texts {
		want, err := Speak(text, voices[i%len(voices)])
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got[i].Samples, want.Samples) {
			t.Errorf("text %d: not the audio of Speak with voice %d", i, i%len(voices))
		}
	}
	bad := slices.Clone(texts)
	bad[4] = " "
	if _, err := SpeakAll(bad, voices, 1, nil); err == nil || !strings.Contains(err.Error(), "speaking text 4") {
		t.Errorf("error %v, want one naming text 4", err)
	}
}

// writeTone writes a short tone as a WAV file under dir.
func writeTone(t *testing.T, dir, rel string, rate int, freq float64) {
	t.Helper()
	a := &media.Audio{Rate: rate, Samples: make([]float32, rate/10)}
	for i := range a.Samples {
		a.Samples[i] = float32(0.3 * math.Sin(2*math.Pi*freq*float64(i)/float64(rate)))
	}
	p := filepath.Join(dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := media.WriteWAV(p, a); err != nil {
		t.Fatal(err)
	}
}

func TestSpeechFolder(t *testing.T) {
	dir := t.TempDir()
	writeTone(t, dir, "b.wav", 16000, 300)
	writeTone(t, dir, "sub/a.WAV", 8000, 500)
	writeTone(t, dir, "c d.wav", 44100, 700)
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("not audio"), 0o644)
	tr := filepath.Join(dir, "transcripts.jsonl")
	write := func(s string) { os.WriteFile(tr, []byte(s), 0o644) }
	write("\xef\xbb\xbf{\"file\": \"b.wav\", \"text\": \"bee\"}\r\n\n" +
		`{"file": "./sub/a.WAV", "text": "ay", "speaker": "x"}` + "\n" +
		`{"text": "see dee", "file": "c d.wav"}`)
	us, err := SpeechFolder(dir, tr)
	if err != nil {
		t.Fatal(err)
	}
	var ids, texts []string
	for _, u := range us {
		ids = append(ids, u.ID)
		texts = append(texts, u.Transcript)
		if u.Source != "user-speech" || u.Audio.Rate != 16000 || math.Abs(u.Audio.Seconds()-0.1) > 0.001 {
			t.Errorf("%s: source %q, %d Hz, %.3f s", u.ID, u.Source, u.Audio.Rate, u.Audio.Seconds())
		}
	}
	if !slices.Equal(ids, []string{"user-speech/b.wav", "user-speech/c d.wav", "user-speech/sub/a.WAV"}) || !slices.Equal(texts, []string{"bee", "see dee", "ay"}) {
		t.Errorf("ids %q, texts %q", ids, texts)
	}

	for _, c := range []struct {
		name, jsonl, want string
	}{
		{"missing wav", `{"file":"b.wav","text":"x"}` + "\n" + `{"file":"sub/a.WAV","text":"y"}` + "\n" + `{"file":"c d.wav","text":"z"}` + "\n" + `{"file":"e.wav","text":"w"}`, "line 4: e.wav is not a .wav file under"},
		{"untranscribed", `{"file":"b.wav","text":"x"}`, "2 .wav files have no transcript in " + tr + ", first c d.wav"},
		{"bad json", `{"file":"b.wav","text":"x"}` + "\n" + `{"file": "c d.wav", "text": }`, `line 2: want a JSON object with "file" and "text"`},
	} {
		write(c.jsonl)
		if _, err := SpeechFolder(dir, tr); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", c.name, err, c.want)
		}
	}
	if _, err := SpeechFolder(dir, filepath.Join(dir, "none.jsonl")); err == nil || !strings.Contains(err.Error(), "none.jsonl") {
		t.Errorf("missing transcripts: %v", err)
	}
	// A broken WAV file is named.
	os.WriteFile(filepath.Join(dir, "sub", "a.WAV"), []byte("RIFF...."), 0o644)
	write(`{"file":"b.wav","text":"x"}` + "\n" + `{"file":"sub/a.WAV","text":"y"}` + "\n" + `{"file":"c d.wav","text":"z"}`)
	if _, err := SpeechFolder(dir, tr); err == nil || !strings.Contains(err.Error(), filepath.Join("sub", "a.WAV")+": media: WAV offset 0") {
		t.Errorf("broken WAV: %v", err)
	}
}

func TestReadSpeechTranscripts(t *testing.T) {
	good, err := readSpeechTranscripts(strings.NewReader("{\"file\":\"x/../a.wav\",\"text\":\"A\"}\n\n  \n{\"file\":\"b\\\\c.wav\",\"text\":\"B\"}"), "t")
	if err != nil {
		t.Fatal(err)
	}
	if len(good) != 2 || good[0] != (fileEntry{"a.wav", "A", 1}) || good[1] != (fileEntry{"b/c.wav", "B", 4}) {
		t.Errorf("read %+v", good)
	}
	for _, c := range []struct {
		name, in, want string
	}{
		{"not json", "hello", `t line 1: want a JSON object with "file" and "text"`},
		{"array", `[1, 2]`, `line 1: want a JSON object with "file" and "text"`},
		{"null", `null`, `line 1: want a JSON object with "file" and "text"`},
		{"no text", `{"file":"a.wav"}`, `want a JSON object with "file" and a string "text"`},
		{"text type", `{"file":"a.wav","text":3}`, `line 1: want a JSON object with "file" and a string "text"`},
		{"empty text", `{"file":"a.wav","text":"  "}`, `the text of "a.wav" is empty`},
		{"absolute", `{"file":"/etc/a.wav","text":"x"}`, `file "/etc/a.wav" must be a relative path`},
		{"escape", "\n" + `{"file":"../a.wav","text":"x"}`, `line 2: file "../a.wav" must be a relative path`},
		{"escape deep", `{"file":"a/../../b.wav","text":"x"}`, "must be a relative path"},
		{"empty file", `{"file":"","text":"x"}`, "must be a relative path"},
		{"not wav", `{"file":"a.mp3","text":"x"}`, `file "a.mp3" is not a .wav file`},
		{"duplicate", `{"file":"a.wav","text":"x"}` + "\n" + `{"file":"./a.wav","text":"y"}`, `line 2: "a.wav" is already listed on line 1`},
		{"trailing", `{"file":"a.wav","text":"x"} {}`, "line 1: more than one JSON value"},
		{"long line", `{"file":"a.wav","text":"` + strings.Repeat("x", fileIndexMaxLine) + `"}`, "line 1: longer than"},
	} {
		if _, err := readSpeechTranscripts(strings.NewReader(c.in), "t"); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", c.name, err, c.want)
		}
	}
}

func FuzzReadSpeechTranscripts(f *testing.F) {
	f.Add([]byte(`{"file":"a.wav","text":"hello"}` + "\n" + `{"file":"d/b.wav","text":"x"}`))
	f.Add([]byte("\xef\xbb\xbf{\"file\":\"a.WAV\",\"text\":\"x\"}\r\n\r\n"))
	f.Add([]byte(`{"file":"../a.wav","text":"x"}`))
	f.Add([]byte(`{"file":"a.wav","text":"x"}` + "\n" + `{"file":"a.wav","text":"y"}`))
	f.Add([]byte(`{"file":"a\\b.wav","text":"x","extra":[1,{"a":null}]}`))
	f.Add([]byte("\n\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		trs, err := readSpeechTranscripts(bytes.NewReader(b), "fuzz")
		if err != nil {
			return
		}
		seen := map[string]bool{}
		last := 0
		for _, tr := range trs {
			if tr.Line <= last || seen[tr.File] || strings.TrimSpace(tr.Text) == "" || !strings.EqualFold(filepath.Ext(tr.File), ".wav") ||
				strings.HasPrefix(tr.File, "/") || tr.File == ".." || strings.HasPrefix(tr.File, "../") {
				t.Fatalf("bad transcript %+v", tr)
			}
			seen[tr.File] = true
			last = tr.Line
		}
	})
}
