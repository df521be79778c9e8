package interop

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"mom/mom"
	"mom/trainer"
	"mom/trainer/safetensors"
)

// ImportOptions configure Import.
type ImportOptions struct {
	From   string // an ecosystem folder or a mom run
	Out    string // the new run folder
	Target Target
	// DataDir is recorded as the run's data (a dataset folder); "" records
	// "synthetic".
	DataDir string
}

// ImportResult says what Import wrote.
type ImportResult struct {
	Run        string
	Checkpoint string
	Model      *Model
	Notes      []string
}

// importRecord is the "imported" object of the run's config.json.
type importRecord struct {
	From     string   `json:"from"`
	Upcycled bool     `json:"upcycled"`
	Notes    []string `json:"notes,omitempty"`
}

// runConfig is the run folder's config.json, with the fields the trainer
// writes that an imported run knows.
type runConfig struct {
	Name       string       `json:"name"`
	Dense      bool         `json:"dense"`
	Splits     []string     `json:"splits"`
	Modalities []string     `json:"modalities"`
	Model      mom.Config   `json:"model"`
	Steps      int          `json:"steps"`
	Data       string       `json:"data"`
	Imported   importRecord `json:"imported"`
}

// Import reads the model at o.From, places it in the target setting and
// splits (Upcycle), checks it, and writes the new run folder o.Out with a
// step-0 checkpoint (zero optimizer state) that `mom train --resume`
// continues. Every check runs before anything is written; an existing
// o.Out is refused.
func Import(o ImportOptions) (*ImportResult, error) {
	if o.Out == "" {
		return nil, fmt.Errorf("interop: no output folder")
	}
	if _, err := os.Lstat(o.Out); err == nil {
		return nil, fmt.Errorf("interop: %s already exists; import writes a new run folder", o.Out)
	}
	src, err := Read(o.From)
	if err != nil {
		return nil, err
	}
	m, err := Upcycle(src, o.Target)
	if err != nil {
		return nil, err
	}
	m.Config.Name = filepath.Base(filepath.Clean(o.Out))
	if err := m.Check(); err != nil {
		return nil, err
	}
	ck := &trainer.Checkpoint{Step: 0, Config: m.Config.JSON(),
		Meta: map[string]string{"imported_from": src.Source, "wall_s": "0"}}
	ck.Params = m.Tensors()
	for _, s := range m.Config.ParamSpecs() {
		z := make([]float32, s.Len())
		ck.Optimizer = append(ck.Optimizer, safetensors.F32("m."+s.Name, s.Shape, z), safetensors.F32("v."+s.Name, s.Shape, z))
	}
	data := o.DataDir
	if data == "" {
		data = "synthetic"
	}
	upcycled := m.Config.Splits != src.Config.Splits || len(m.Config.Modalities) != len(src.Config.Modalities)
	rc := runConfig{Name: m.Config.Name, Dense: m.Config.Splits.Dense(), Splits: splitNames(m.Config.Splits),
		Modalities: m.Config.ModalityNames(), Model: m.Config, Data: data,
		Imported: importRecord{From: src.Source, Upcycled: upcycled, Notes: m.Notes}}
	rcj, err := json.MarshalIndent(rc, "", "  ")
	if err != nil {
		return nil, err
	}
	files := []folderFile{{name: fileConfig, data: append(rcj, '\n')}}
	if m.Tokenizer != nil {
		files = append(files, folderFile{name: fileTokenizer, data: m.Tokenizer})
	}
	var ckPath string
	err = writeFolderWith(o.Out, files, func(tmp string) error {
		p, err := trainer.SaveCheckpoint(filepath.Join(tmp, "checkpoints"), ck, 0)
		ckPath = strings.Replace(p, tmp, o.Out, 1)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &ImportResult{Run: o.Out, Checkpoint: ckPath, Model: m, Notes: m.Notes}, nil
}

func splitNames(s mom.Splits) []string {
	out := []string{}
	for _, p := range []struct {
		on   bool
		name string
	}{{s.In, "in"}, {s.X, "x"}, {s.Dt, "dt"}, {s.Out, "out"}} {
		if p.on {
			out = append(out, p.name)
		}
	}
	return out
}
