package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"mom/mom"
	"mom/trainer"
	"mom/trainer/sample"
)

func init() {
	register(command{"sample", "draw samples (text, images, speech) from a checkpoint", cmdSample})
}

func cmdSample(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("sample", "sample --checkpoint RUN [--prompt TEXT | --prompt-file F] [--modality text|image|speech] [--n N] [--out DIR] [flags]", stderr)
	df := addDeviceFlags(fs)
	ckpt := fs.String("checkpoint", "", "run folder, its checkpoints folder, or a step folder")
	prompt := fs.String("prompt", "", "text the samples continue (\"\": from the start of a document)")
	promptFile := fs.String("prompt-file", "", "a file whose text is the prompt")
	modality := fs.String("modality", "text", "what follows the prompt: text (the model writes on), or one item of another modality (image, speech)")
	n := fs.Int("n", 4, "samples (streams run together)")
	maxTokens := fs.Int("max-tokens", sample.DefaultMaxTokens, "tokens generated per sample at most (also caps a speech span)")
	temperature := fs.Float64("temperature", 1, "sampling temperature (0: greedy)")
	topK := fs.Int("top-k", 0, "keep the k most likely ids (0: off)")
	topP := fs.Float64("top-p", 0, "keep the most likely ids holding this much probability (0 or 1: off)")
	seed := fs.Uint64("seed", 1, "seed of the draws and the diffusion noise: the same seed gives the same samples")
	steps := fs.Int("steps", 0, fmt.Sprintf("diffusion: noise levels visited, 1 to %d (0: all; continuous images only)", mom.TimestepBuckets))
	sampler := fs.String("sampler", "", "diffusion sampler: ddpm (default) or ddim (continuous images only)")
	out := fs.String("out", "", "folder for the samples (default RUN/samples/step_N)")
	data := fs.String("data", "", "dataset folder with the tokenizers (default: the run's data)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected arguments %v", fs.Args())
	}
	if *ckpt == "" {
		return usagef("--checkpoint is required (a run folder)")
	}
	if flagSet(fs, "prompt") && flagSet(fs, "prompt-file") {
		return usagef("--prompt and --prompt-file: give one")
	}
	if *n < 1 || *n > 1024 {
		return usagef("--n %d: want 1 to 1024 samples", *n)
	}
	if *maxTokens < 1 {
		return usagef("--max-tokens %d must be positive", *maxTokens)
	}
	o := sample.Options{Prompt: *prompt, Modality: *modality, MaxTokens: *maxTokens, Steps: *steps, Diffusion: *sampler,
		Params: mom.SampleParams{Temperature: *temperature, TopK: *topK, TopP: *topP, Seed: *seed}}
	if *promptFile != "" {
		b, err := os.ReadFile(*promptFile)
		if err != nil {
			return usagef("--prompt-file: %v", err)
		}
		o.Prompt = strings.TrimRight(string(b), "\r\n")
	}
	// Everything that can be refused is refused before a device opens.
	tr, err := trainer.OpenTrained(*ckpt)
	if err != nil {
		return err
	}
	ds, err := tr.Dataset(*data)
	if err != nil {
		if errors.Is(err, trainer.ErrNoDataset) {
			return usagef("%v", err)
		}
		return err
	}
	toks, err := ds.LoadTokenizers()
	if err != nil {
		return err
	}
	v, err := sample.NewVocab(tr.Config, ds, toks)
	if err != nil {
		return err
	}
	if err := o.Check(v); err != nil {
		return usagef("%v", err)
	}
	dir := *out
	if dir == "" {
		if tr.Run == "" {
			return usagef("--out is required for a checkpoint outside a run folder")
		}
		dir = filepath.Join(tr.Run, "samples", trainer.StepDirName(tr.Checkpoint.Step))
	}

	d, err := df.open()
	if err != nil {
		return err
	}
	defer d.Close()
	m, err := tr.NewModel(d, 1, 1)
	if err != nil {
		return err
	}
	defer m.Release()
	s, err := sample.New(m, v, *n)
	if err != nil {
		return err
	}
	defer s.Release()
	res, err := s.Sample(o)
	if err != nil {
		return err
	}
	files, err := res.Write(dir)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s, %s setting, %s; %d samples of %s\n", tr.Name(), tr.Config.Setting, d, *n, o.Modality)
	for i, smp := range res.Samples {
		fmt.Fprintf(stdout, "--- sample %d (%d tokens, %s)\n%s\n", i, len(smp.IDs), smp.Stop, smp.Text)
		for _, it := range smp.Items {
			if it.Err != nil {
				fmt.Fprintf(stdout, "    %s: not decoded: %v\n", it.Modality, it.Err)
			}
		}
	}
	switch {
	case res.Seconds <= 0:
	case tr.Config.Modalities[tr.Config.ModalityIndex(o.Modality)].Continuous:
		fmt.Fprintf(stdout, "%s, %d noise levels: %d steps of %d streams (%d patches per image, one pass per level) in %.2f s: %.0f stream steps per second\n",
			o.Diffusion, o.Steps, res.Steps, *n, v.ItemLen(tr.Config.ModalityIndex(o.Modality)), res.Seconds, float64(res.Steps**n)/res.Seconds)
	default:
		fmt.Fprintf(stdout, "%d tokens in %d steps of %d streams in %.2f s: %.0f tokens per second, %.2f ms per step\n",
			res.Tokens, res.Steps, *n, res.Seconds, float64(res.Tokens)/res.Seconds, 1e3*res.Seconds/float64(res.Steps))
	}
	fmt.Fprintf(stdout, "wrote %d files to %s\n", len(files), dir)
	return nil
}
