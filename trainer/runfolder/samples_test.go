package runfolder

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// writeSet writes one set's files as Result.Write would: a samples.json
// with texts, and a grid when grid is set.
func writeSet(t *testing.T, dir, modality string, texts []string, grid bool) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	js := `{"prompt": "p", "modality": "` + modality + `", "samples": [`
	for i, s := range texts {
		if i > 0 {
			js += ","
		}
		js += `{"text": "` + s + `", "ids": [1, 2]}`
	}
	js += "]}"
	if err := os.WriteFile(filepath.Join(dir, SampleJSONFile), []byte(js), 0o666); err != nil {
		t.Fatal(err)
	}
	if grid {
		if err := os.WriteFile(filepath.Join(dir, SampleGridFile), []byte("png"), 0o666); err != nil {
			t.Fatal(err)
		}
	}
}

// TestWriteSamples: a step's samples appear whole under the step's name;
// writing the step again replaces them; a failed write leaves the old ones
// and no temporary folder.
func TestWriteSamples(t *testing.T) {
	run := t.TempDir()
	fill := func(texts ...string) func(string) error {
		return func(dir string) error {
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("the temporary folder %s holds %d entries at the start", dir, len(entries))
			}
			writeSet(t, filepath.Join(dir, "text"), "text", texts, false)
			return nil
		}
	}
	steps := []struct {
		fill  func(string) error
		want  string // the text read back
		fails bool
	}{
		{fill("first"), "first", false},
		{fill("second"), "second", false}, // replaces
		{func(dir string) error {
			writeSet(t, dir, "text", []string{"third"}, false)
			return errors.New("disk full")
		}, "second", true},
	}
	for i, s := range steps {
		dir, err := WriteSamples(run, 7, s.fill)
		if s.fails != (err != nil) {
			t.Fatalf("write %d: error %v", i, err)
		}
		if !s.fails && dir != SampleStepDir(run, 7) {
			t.Errorf("write %d: wrote %s", i, dir)
		}
		got, err := ReadSamples(run, 7)
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Sets) != 1 || got.Sets[0].Name != "text" || !slices.Equal(got.Sets[0].Texts, []string{s.want}) {
			t.Errorf("write %d: read back %+v, want the text %q", i, got.Sets, s.want)
		}
		entries, _ := os.ReadDir(filepath.Join(run, SamplesDir))
		if len(entries) != 1 || entries[0].Name() != StepDirName(7) {
			t.Errorf("write %d: the samples folder holds %v", i, entries)
		}
	}
	if _, err := WriteSamples(run, -1, fill("x")); err == nil {
		t.Error("a negative step was written")
	}
}

// TestCleanSamples: leftovers of interrupted writes go, and with a step,
// the folders of later steps; the rest stays.
func TestCleanSamples(t *testing.T) {
	cases := []struct {
		after     int
		removed   []string
		stepsLeft []int
	}{
		{-1, []string{".old-step_00000003-9", ".tmp-step_00000009-1"}, []int{12, 8, 4}},
		{8, []string{".old-step_00000003-9", ".tmp-step_00000009-1", StepDirName(12)}, []int{8, 4}},
		{0, []string{".old-step_00000003-9", ".tmp-step_00000009-1", StepDirName(12), StepDirName(4), StepDirName(8)}, nil},
	}
	for _, c := range cases {
		run := t.TempDir()
		for _, n := range []string{StepDirName(4), StepDirName(8), StepDirName(12), ".tmp-step_00000009-1", ".old-step_00000003-9", "notes"} {
			if err := os.MkdirAll(filepath.Join(run, SamplesDir, n), 0o777); err != nil {
				t.Fatal(err)
			}
		}
		removed, err := CleanSamples(run, c.after)
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(removed)
		want := slices.Clone(c.removed)
		slices.Sort(want)
		if !slices.Equal(removed, want) {
			t.Errorf("after %d: removed %v, want %v", c.after, removed, want)
		}
		if steps, _ := SampleSteps(run); !slices.Equal(steps, c.stepsLeft) {
			t.Errorf("after %d: steps %v left, want %v", c.after, steps, c.stepsLeft)
		}
		if _, err := os.Stat(filepath.Join(run, SamplesDir, "notes")); err != nil {
			t.Errorf("after %d: a folder of another name went: %v", c.after, err)
		}
	}
	if removed, err := CleanSamples(t.TempDir(), 3); err != nil || removed != nil {
		t.Errorf("a run without samples: %v, %v", removed, err)
	}
}

// TestReadSamples: the newest step is read, the step folder's own set
// (`mom sample`) before its subfolders' (training), in name order; a
// folder with only a grid is a set; a malformed samples.json is an error
// naming it.
func TestReadSamples(t *testing.T) {
	run := t.TempDir()
	if s, err := LatestSamples(run); s != nil || err != nil {
		t.Fatalf("no samples: %+v, %v", s, err)
	}
	writeSet(t, SampleStepDir(run, 3), "image", []string{"old"}, true)
	step := SampleStepDir(run, 20)
	writeSet(t, step, "text", []string{"own"}, false)
	writeSet(t, filepath.Join(step, "text"), "text", []string{"a", "b"}, false)
	writeSet(t, filepath.Join(step, "image"), "image", []string{"c"}, true)
	os.MkdirAll(filepath.Join(step, "speech"), 0o777) // nothing readable: no set
	os.MkdirAll(filepath.Join(step, "grid-only"), 0o777)
	os.WriteFile(filepath.Join(step, "grid-only", SampleGridFile), []byte("png"), 0o666)
	s, err := LatestSamples(run)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, set := range s.Sets {
		names = append(names, set.Name+":"+set.Modality+":"+strings.Join(set.Texts, "+")+":"+filepath.Base(set.Grid))
	}
	want := []string{":text:own:.", "grid-only:::grid.png", "image:image:c:grid.png", "text:text:a+b:."}
	if s.Step != 20 || !slices.Equal(names, want) {
		t.Errorf("step %d, sets %q; want step 20, sets %q", s.Step, names, want)
	}
	os.WriteFile(filepath.Join(step, "image", SampleJSONFile), []byte("{not json"), 0o666)
	if _, err := ReadSamples(run, 20); err == nil || !strings.Contains(err.Error(), filepath.Join("image", SampleJSONFile)) {
		t.Errorf("malformed samples.json: %v", err)
	}
	if _, err := ReadSamples(run, 21); err == nil {
		t.Error("a missing step was read")
	}
}
