package trainer

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"mom/gpu"
	"mom/mom"
	"mom/trainer/dataset"
	"mom/trainer/runfolder"
)

// Trained is a trained model opened for inference (sampling, evaluation):
// a checkpoint's parameters and model config, and what the run's
// config.json says about its data. Opening reads files only; no device is
// needed until NewModel.
type Trained struct {
	Run        string // the run folder ("" when the checkpoint is not inside one)
	Checkpoint *Checkpoint
	Config     mom.Config
	// From the run's config.json (zero when there is none): the data the
	// run trained on ("synthetic", a dataset folder, a token file), its
	// held-out token file, its batch shape and seed.
	Data, EvalData string
	Batch, SeqLen  int
	Seed           uint64
}

// OpenTrained opens the checkpoint at path (a run folder, its checkpoints
// folder, or one step folder; see LoadCheckpointAt) and the config.json of
// the run folder that holds it.
func OpenTrained(path string) (*Trained, error) {
	ck, err := LoadCheckpointAt(path)
	if err != nil {
		return nil, err
	}
	t := &Trained{Checkpoint: ck}
	if err := json.Unmarshal(ck.Config, &t.Config); err != nil {
		return nil, fmt.Errorf("trainer: checkpoint %s: its model config: %w", path, err)
	}
	if err := t.Config.Validate(); err != nil {
		return nil, fmt.Errorf("trainer: checkpoint %s: %w", path, err)
	}
	// The run folder: path itself, or one or two levels up (checkpoints/,
	// checkpoints/step_N).
	p := filepath.Clean(path)
	for i := 0; i < 3; i++ {
		if fi, err := os.Stat(filepath.Join(p, runfolder.ConfigFile)); err == nil && fi.Mode().IsRegular() {
			t.Run = p
			break
		}
		p = filepath.Dir(p)
	}
	if t.Run != "" {
		rc, _, err := runfolder.ReadConfig(t.Run)
		if err != nil {
			return nil, fmt.Errorf("trainer: run %s: %w", t.Run, err)
		}
		t.Data, t.EvalData, t.Batch, t.SeqLen, t.Seed = rc.Data, rc.EvalData, rc.Batch, rc.SeqLen, rc.Seed
	}
	return t, nil
}

// Name is how messages name the checkpoint: the run folder and step.
func (t *Trained) Name() string {
	if t.Run == "" {
		return fmt.Sprintf("checkpoint at step %d", t.Checkpoint.Step)
	}
	return fmt.Sprintf("%s (step %d)", t.Run, t.Checkpoint.Step)
}

// ErrNoDataset is wrapped by Dataset's error when the run trained on no
// dataset folder (the synthetic stream or a token file) and none was
// given: there is then no tokenizer to read or write its tokens.
var ErrNoDataset = errors.New("no dataset")

// Dataset opens the dataset the model's tokens come from: dir if given,
// else the run's data, which must then be a dataset folder (a run trained
// on the synthetic stream or on token files has no tokenizers). The
// dataset's vocabulary must be the model's.
func (t *Trained) Dataset(dir string) (*dataset.Dataset, error) {
	if dir == "" {
		dir = t.Data
		if dir == "" || dir == "synthetic" || !dataset.IsDataset(dir) {
			what := "synthetic data"
			switch {
			case t.Run == "":
				what = "data that its checkpoint does not name (no config.json beside it)"
			case dir != "" && dir != "synthetic":
				what = fmt.Sprintf("%s, which is not a dataset folder (now)", dir)
			}
			return nil, fmt.Errorf("trainer: %s was trained on %s, so it has no tokenizers: %w (give --data DIR, a dataset built by `mom data build` with this model's vocabulary)", t.Name(), what, ErrNoDataset)
		}
	}
	ds, err := dataset.Open(dir)
	if err != nil {
		return nil, err
	}
	want := t.Config.VocabRanges
	got := ds.Manifest.VocabRanges
	same := len(want) == len(got) && string(ds.Manifest.Setting) == string(t.Config.Setting)
	for i := 0; same && i < len(want); i++ {
		same = want[i] == got[i]
	}
	if !same {
		return nil, fmt.Errorf("trainer: dataset %s (%s, vocabulary %v) does not fit %s (%s, vocabulary %v)", dir, ds.Manifest.Setting, got, t.Name(), t.Config.Setting, want)
	}
	return ds, nil
}

// NewModel allocates the model on d for batches of b x l and uploads the
// checkpoint's parameters.
func (t *Trained) NewModel(d *gpu.Device, b, l int) (*mom.Model, error) {
	m, err := mom.NewModel(d, t.Config, b, l)
	if err != nil {
		return nil, err
	}
	if err := t.Upload(m); err != nil {
		m.Release()
		return nil, err
	}
	return m, nil
}

// Upload writes the checkpoint's parameters into m, whose config must be
// the checkpoint's.
func (t *Trained) Upload(m *mom.Model) error {
	byName := map[string]int{}
	for i, p := range t.Checkpoint.Params {
		byName[p.Name] = i
	}
	for _, p := range m.Params {
		i, ok := byName[p.Spec.Name]
		if !ok {
			return fmt.Errorf("trainer: %s lacks the parameter %s", t.Name(), p.Spec.Name)
		}
		v, err := t.Checkpoint.Params[i].Float32s()
		if err != nil {
			return fmt.Errorf("trainer: %s: %s: %w", t.Name(), p.Spec.Name, err)
		}
		if len(v) != p.Spec.Len() {
			return fmt.Errorf("trainer: %s: %s has %d values, the model %d", t.Name(), p.Spec.Name, len(v), p.Spec.Len())
		}
		if err := p.W.Upload(v); err != nil {
			return fmt.Errorf("trainer: %s: %w", p.Spec.Name, err)
		}
	}
	return nil
}
