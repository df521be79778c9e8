package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"mom/mom"
	"mom/trainer/interop"
)

func init() {
	register(command{"import", "make a run from a transformers, mamba_ssm or paper checkpoint, or upcycle a dense run to MoM", cmdImport})
}

func cmdImport(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("import", "import --from DIR --out runs/NAME [--setting S] [--split in,x,dt,out] [--data DATASET]", stderr)
	from := fs.String("from", "", "a folder in transformers', mamba_ssm's or the paper export's layout, or a mom run")
	out := fs.String("out", "", "new run folder (refused if it exists)")
	setting := fs.String("setting", "", "chameleon, transfusion or three (default: the dataset's, else the checkpoint's, else three)")
	split := fs.String("split", "", "upcycle: split these projections per modality, each expert a copy of the dense weights (any subset of in,x,dt,out, or all)")
	data := fs.String("data", "", "dataset folder (dataset.json): the setting and the new modalities' vocabulary ranges")
	imageVocab := fs.Int("image-vocab", 8192, "image ids to add when the checkpoint has none (without --data)")
	speechVocab := fs.Int("speech-vocab", 4096, "speech ids to add when the checkpoint has none (without --data)")
	patch := fs.Int("patch-dim", 256, "Transfusion patch size, when the checkpoint has none")
	seed := fs.Uint64("seed", 1, "seed of the new embedding rows")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected arguments %v", fs.Args())
	}
	if *from == "" || *out == "" {
		return usagef("--from and --out are required")
	}
	if fi, err := os.Stat(*from); err != nil || !fi.IsDir() {
		return usagef("--from %s is not a folder", *from)
	}
	if _, err := os.Lstat(*out); err == nil {
		return usagef("--out %s already exists; import writes a new run folder", *out)
	}
	t := interop.Target{Setting: mom.Setting(*setting), ImageVocab: *imageVocab, SpeechVocab: *speechVocab, PatchDim: *patch, Seed: *seed}
	if *setting != "" {
		switch t.Setting {
		case mom.Chameleon, mom.Transfusion, mom.ThreeModal:
		default:
			return usagef("--setting %q: want chameleon, transfusion or three", *setting)
		}
	}
	if *split != "" {
		sp, err := mom.ParseSplits(*split)
		if err != nil {
			return usagef("--split: %v", err)
		}
		t.Splits = &sp
	}
	if *imageVocab <= 0 || *speechVocab <= 0 || *patch <= 0 {
		return usagef("--image-vocab, --speech-vocab and --patch-dim must be positive")
	}
	if *data != "" {
		ds, err := interop.ReadDataset(*data)
		if err != nil {
			return err
		}
		t.Dataset = ds
	}
	if t.Setting == "" && t.Dataset == nil && !interop.IsRun(*from) && !fileExists(filepath.Join(*from, "mom.json")) {
		t.Setting = mom.ThreeModal
	}
	res, err := interop.Import(interop.ImportOptions{From: *from, Out: *out, Target: t, DataDir: *data})
	if err != nil {
		return err
	}
	c := res.Model.Config
	total, active := c.ParamCount()
	fmt.Fprintf(stdout, "wrote run %s: %s setting, modalities %v, vocabulary %v, split %s, %s params (%s active/token)\n",
		res.Run, c.Setting, c.Modalities, c.VocabRanges, c.Splits, human(float64(total)), human(float64(active)))
	fmt.Fprintf(stdout, "  checkpoint %s (step 0, zero optimizer state)\n", res.Checkpoint)
	for _, n := range res.Notes {
		fmt.Fprintf(stdout, "  note: %s\n", n)
	}
	fmt.Fprintf(stdout, "continue with: mom train --out %s --resume --steps N [--data ...]\n", res.Run)
	return nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// runModelConfig reads the model config a run folder's config.json
// records ("model"); ok is false when the folder has none.
func runModelConfig(dir string) (c mom.Config, ok bool, err error) {
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if errors.Is(err, os.ErrNotExist) {
		return c, false, nil
	}
	if err != nil {
		return c, false, err
	}
	var rc struct {
		Model *mom.Config `json:"model"`
	}
	if err := json.Unmarshal(b, &rc); err != nil {
		return c, false, fmt.Errorf("%s: %w", filepath.Join(dir, "config.json"), err)
	}
	if rc.Model == nil {
		return c, false, nil
	}
	return *rc.Model, true, nil
}
