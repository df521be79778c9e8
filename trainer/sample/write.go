package sample

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"mom/trainer/atomicfile"
	"mom/trainer/media"
	"mom/trainer/runfolder"
)

// Files written by Result.Write (named by package runfolder, whose
// readers find them in a run's samples folder).
const (
	TextFile = runfolder.SampleTextFile
	JSONFile = runfolder.SampleJSONFile
	GridFile = runfolder.SampleGridFile
)

// sampleJSON is one sample in samples.json.
type sampleJSON struct {
	Text  string     `json:"text"`
	IDs   []uint32   `json:"ids"`
	Stop  string     `json:"stop"`
	Items []itemJSON `json:"items,omitempty"`
}

type itemJSON struct {
	Modality string `json:"modality"`
	File     string `json:"file,omitempty"`
	Error    string `json:"error,omitempty"`
}

// Write writes the samples into dir (made if needed): samples.txt, every
// sample's text; sample_NN_<modality>_K.png or .wav, each decoded span;
// grid.png, every image with the prompt as its caption; samples.json, the
// options, ids, texts, files and stop reasons. It decodes the samples
// first if Generate left them undecoded. It returns the paths written.
func (r *Result) Write(dir string) ([]string, error) {
	r.Decode()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("sample: %w", err)
	}
	var files []string
	var texts []string
	var images []*media.Image
	var captions []string
	out := struct {
		Prompt   string       `json:"prompt"`
		Modality string       `json:"modality"`
		Options  Options      `json:"options"`
		Seconds  float64      `json:"seconds"`
		Tokens   int          `json:"tokens"`
		Samples  []sampleJSON `json:"samples"`
	}{Prompt: r.Prompt, Modality: r.Modality, Options: r.Options, Seconds: r.Seconds, Tokens: r.Tokens}
	caption := r.Prompt
	if strings.TrimSpace(caption) == "" {
		caption = "(no prompt)"
	}
	for i, smp := range r.Samples {
		texts = append(texts, fmt.Sprintf("--- sample %d (%s)\n%s", i, smp.Stop, smp.Text))
		sj := sampleJSON{Text: smp.Text, IDs: smp.IDs, Stop: smp.Stop}
		n := map[string]int{}
		for _, it := range smp.Items {
			n[it.Modality]++
			ij := itemJSON{Modality: it.Modality}
			if it.Err != nil {
				ij.Error = it.Err.Error()
				sj.Items = append(sj.Items, ij)
				continue
			}
			name := fmt.Sprintf("sample_%02d_%s_%d", i, it.Modality, n[it.Modality])
			var err error
			switch val := it.Value.(type) {
			case *media.Image:
				name += ".png"
				err = media.WritePNG(filepath.Join(dir, name), val)
				images = append(images, val)
				captions = append(captions, fmt.Sprintf("%d: %s", i, caption))
			case *media.Audio:
				name += ".wav"
				err = media.WriteWAV(filepath.Join(dir, name), val)
			default:
				err = fmt.Errorf("a %T item", it.Value)
			}
			if err != nil {
				return files, fmt.Errorf("sample: writing %s: %w", name, err)
			}
			ij.File = name
			files = append(files, filepath.Join(dir, name))
			sj.Items = append(sj.Items, ij)
		}
		out.Samples = append(out.Samples, sj)
	}
	if len(images) > 0 {
		g, err := media.Grid(images, captions, min(len(images), 4), 4)
		if err != nil {
			return files, fmt.Errorf("sample: %w", err)
		}
		p := filepath.Join(dir, GridFile)
		if err := media.WritePNG(p, g); err != nil {
			return files, fmt.Errorf("sample: %w", err)
		}
		files = append(files, p)
	}
	p := filepath.Join(dir, TextFile)
	if err := atomicfile.WriteFile(p, []byte(strings.Join(texts, "\n\n")+"\n"), 0o644); err != nil {
		return files, fmt.Errorf("sample: %w", err)
	}
	files = append(files, p)
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return files, fmt.Errorf("sample: %w", err)
	}
	p = filepath.Join(dir, JSONFile)
	if err := atomicfile.WriteFile(p, append(b, '\n'), 0o644); err != nil {
		return files, fmt.Errorf("sample: %w", err)
	}
	return append(files, p), nil
}
