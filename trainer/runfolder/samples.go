package runfolder

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Samples in a run folder: samples/step_N/ holds what was sampled from the
// model at step N, by `mom sample` (one set, in the step folder itself) or
// by training with --sample-every (one set per modality, in subfolders
// named after the modalities: text/, image/, speech/). A set is the files
// of package trainer/sample's Result.Write: SampleTextFile,
// SampleJSONFile, one PNG or WAV per decoded item and, where there are
// images, SampleGridFile.
const (
	SamplesDir     = "samples"
	SampleTextFile = "samples.txt"
	SampleJSONFile = "samples.json"
	SampleGridFile = "grid.png"
)

// SampleStepDir is the folder of step's samples in run: run/samples/step_N.
func SampleStepDir(run string, step int) string {
	return filepath.Join(run, SamplesDir, StepDirName(step))
}

// WriteSamples writes step's samples into run/samples/step_N as one
// change: fill writes into a new temporary folder beside it, which then
// replaces the step folder (an existing one is moved aside first and
// removed after), so a reader sees the old samples or the new ones, never
// a half-written folder under the step's name. It returns the step
// folder's path. A failed fill leaves the old folder as it was.
func WriteSamples(run string, step int, fill func(dir string) error) (string, error) {
	if step < 0 {
		return "", fmt.Errorf("runfolder: samples of a negative step %d", step)
	}
	root := filepath.Join(run, SamplesDir)
	if err := os.MkdirAll(root, 0o777); err != nil {
		return "", fmt.Errorf("runfolder: samples: %w", err)
	}
	final, old, err := replaceStepDir(root, StepDirName(step), fill)
	if err != nil {
		return final, fmt.Errorf("runfolder: samples %s: %w", final, err)
	}
	if old != "" {
		if err := os.RemoveAll(old); err != nil {
			return final, fmt.Errorf("runfolder: samples %s written; removing the replaced ones: %w", final, err)
		}
	}
	return final, nil
}

// CleanSamples removes from run/samples what interrupted writes left
// (temporary and replaced folders) and, when after >= 0, the step folders
// of steps after it: a run resumed from the checkpoint of step after
// redoes those steps, as it drops their metrics records. It returns the
// names removed; a run without samples has none.
func CleanSamples(run string, after int) ([]string, error) {
	root := filepath.Join(run, SamplesDir)
	ents, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("runfolder: %w", err)
	}
	var removed []string
	var errs []error
	for _, e := range ents {
		n := e.Name()
		step, isStep := ParseStepDirName(n)
		stale := strings.HasPrefix(n, ckptTmpPrefix+"step_") || strings.HasPrefix(n, ckptOldPrefix+"step_") ||
			(isStep && e.IsDir() && after >= 0 && step > after)
		if !stale {
			continue
		}
		if err := os.RemoveAll(filepath.Join(root, n)); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, n)
	}
	if err := errors.Join(errs...); err != nil {
		return removed, fmt.Errorf("runfolder: cleaning %s: %w", root, err)
	}
	return removed, nil
}

// SampleSteps returns the steps that have a samples folder in run, newest
// first (none when the run has no samples).
func SampleSteps(run string) ([]int, error) {
	return ListCheckpoints(filepath.Join(run, SamplesDir))
}

// Samples is one step's samples, as a reader (the live window) shows them.
type Samples struct {
	Step int
	Dir  string // run/samples/step_N
	// Time is the step folder's modification time: a folder written again
	// (a resumed run replacing it) has a new one.
	Time time.Time
	// Sets are the step folder's own set (`mom sample`) and its
	// subfolders' (one per modality when training samples), in name order.
	Sets []SampleSet
}

// SampleSet is one Result.Write's files.
type SampleSet struct {
	Dir      string
	Name     string // the subfolder's name ("" for the step folder itself)
	Prompt   string
	Modality string   // what was asked for: text, image, speech, ...
	Texts    []string // each sample's text
	Grid     string   // the image grid's path ("" when the set has no images)
}

// samplesJSON is the part of SampleJSONFile that readers use.
type samplesJSON struct {
	Prompt   string `json:"prompt"`
	Modality string `json:"modality"`
	Samples  []struct {
		Text string `json:"text"`
	} `json:"samples"`
}

// ReadSamples reads the samples of step in run. A set is a folder with
// SampleJSONFile (its texts, prompt and modality) or at least a grid; a
// malformed SampleJSONFile is an error naming it.
func ReadSamples(run string, step int) (*Samples, error) {
	dir := SampleStepDir(run, step)
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("runfolder: samples: %w", err)
	}
	s := &Samples{Step: step, Dir: dir, Time: fi.ModTime()}
	read := func(d, name string) error {
		set := SampleSet{Dir: d, Name: name}
		b, err := os.ReadFile(filepath.Join(d, SampleJSONFile))
		switch {
		case err == nil:
			var sj samplesJSON
			if err := json.Unmarshal(b, &sj); err != nil {
				return fmt.Errorf("runfolder: %s: %w", filepath.Join(d, SampleJSONFile), err)
			}
			set.Prompt, set.Modality = sj.Prompt, sj.Modality
			for _, smp := range sj.Samples {
				set.Texts = append(set.Texts, smp.Text)
			}
		case !errors.Is(err, fs.ErrNotExist):
			return fmt.Errorf("runfolder: samples: %w", err)
		}
		if g := filepath.Join(d, SampleGridFile); exists(g) {
			set.Grid = g
		}
		if err == nil || set.Grid != "" {
			s.Sets = append(s.Sets, set)
		}
		return nil
	}
	if err := read(dir, ""); err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("runfolder: samples: %w", err)
	}
	for _, e := range ents { // ReadDir sorts by name
		if e.IsDir() {
			if err := read(filepath.Join(dir, e.Name()), e.Name()); err != nil {
				return nil, err
			}
		}
	}
	return s, nil
}

// LatestSamples reads the newest step's samples in run; nil (and no
// error) when the run has none.
func LatestSamples(run string) (*Samples, error) {
	steps, err := SampleSteps(run)
	if err != nil || len(steps) == 0 {
		return nil, err
	}
	return ReadSamples(run, steps[0])
}
