// Package datasettest makes small datasets for tests: a user's own text,
// captioned images and transcribed recordings, generated in a temporary
// folder.
package datasettest

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"mom/mom"
	"mom/trainer/media"
)

// Folders are a user's data folders and a dataset folder to build into.
type Folders struct {
	Out                    string
	TextDirs               []string
	ImageDir, Captions     string
	SpeechDir, Transcripts string
}

// UserFolders writes a small set of a user's own data: text files,
// captioned images of varying size, and transcribed recordings (tones
// whose pitch follows the words), and returns the folders.
func UserFolders(t testing.TB, setting mom.Setting) Folders {
	t.Helper()
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(3, 3))
	words := strings.Fields("the quick brown fox jumps over a lazy dog while seven small birds sing near an old stone bridge at dawn")
	sentence := func() string {
		n := 5 + rng.IntN(8)
		w := make([]string, n)
		for i := range w {
			w[i] = words[rng.IntN(len(words))]
		}
		return strings.Join(w, " ")
	}
	textDir := filepath.Join(dir, "text")
	os.MkdirAll(filepath.Join(textDir, "sub"), 0o755)
	for f := 0; f < 3; f++ {
		var paras []string
		for p := 0; p < 40; p++ {
			paras = append(paras, sentence()+". "+sentence()+".")
		}
		name := filepath.Join(textDir, fmt.Sprintf("f%d.txt", f))
		if f == 2 {
			name = filepath.Join(textDir, "sub", "f2.txt")
		}
		if err := os.WriteFile(name, []byte(strings.Join(paras, "\n\n")), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	o := Folders{Out: filepath.Join(dir, "ds"), TextDirs: []string{textDir}}
	spec, _ := mom.LookupSetting(setting)
	cfg := mom.Config{Modalities: spec.Modalities}
	if cfg.ModalityIndex("image") >= 0 {
		imDir := filepath.Join(dir, "images")
		os.MkdirAll(imDir, 0o755)
		var lines []string
		for i := 0; i < 40; i++ {
			w, h := 20+rng.IntN(30), 20+rng.IntN(30)
			im, _ := media.NewImage(w, h, 3)
			cx, cy, r := rng.Float64()*float64(w), rng.Float64()*float64(h), 5+rng.Float64()*8
			for y := 0; y < h; y++ {
				for x := 0; x < w; x++ {
					v := float32(0.1)
					if math.Hypot(float64(x)-cx, float64(y)-cy) < r {
						v = 0.9
					}
					for c := 0; c < 3; c++ {
						im.Pix[(y*w+x)*3+c] = v
					}
				}
			}
			name := fmt.Sprintf("im%02d.png", i)
			if err := media.WritePNG(filepath.Join(imDir, name), im); err != nil {
				t.Fatal(err)
			}
			js, _ := json.Marshal(map[string]string{"file": name, "caption": "a round spot, " + sentence()})
			lines = append(lines, string(js))
		}
		o.ImageDir, o.Captions = imDir, filepath.Join(dir, "captions.jsonl")
		os.WriteFile(o.Captions, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
	}
	if cfg.ModalityIndex("speech") >= 0 {
		spDir := filepath.Join(dir, "speech")
		os.MkdirAll(spDir, 0o755)
		var lines []string
		for i := 0; i < 24; i++ {
			text := sentence()
			a := &media.Audio{Rate: 16000}
			for k, wd := range strings.Fields(text) {
				f := 200 + 40*float64(len(wd)) + 15*float64(k%3)
				for s := 0; s < 1600; s++ {
					a.Samples = append(a.Samples, float32(0.3*math.Sin(2*math.Pi*f*float64(s)/16000)))
				}
			}
			name := fmt.Sprintf("u%02d.wav", i)
			if err := media.WriteWAV(filepath.Join(spDir, name), a); err != nil {
				t.Fatal(err)
			}
			js, _ := json.Marshal(map[string]string{"file": name, "text": text})
			lines = append(lines, string(js))
		}
		o.SpeechDir, o.Transcripts = spDir, filepath.Join(dir, "transcripts.jsonl")
		os.WriteFile(o.Transcripts, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
	}
	return o
}
