package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"mom/mom"
	"mom/trainer/dataset"
)

func init() {
	register(command{"data", "build a dataset from text, images and speech (data build), or show one (data show)", cmdData})
}

func cmdData(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintln(stdout, "Usage:\n  mom data build --setting chameleon|transfusion|three --out DIR [flags]\n  mom data show DIR [--examples OUT --n N]\n\nRun `mom data build --help` for the build's flags.")
		if len(args) == 0 {
			return usagef("data needs a subcommand: build or show")
		}
		return nil
	}
	switch args[0] {
	case "build":
		return cmdDataBuild(args[1:], stdout, stderr)
	case "show":
		return cmdDataShow(args[1:], stdout, stderr)
	}
	return usagef("unknown data subcommand %q (want build or show)", args[0])
}

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func cmdDataBuild(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("data build", "data build --setting chameleon|transfusion|three --out DIR [flags]", stderr)
	o := dataset.Options{System: true}
	setting := fs.String("setting", "three", "the setting the data trains: "+strings.Join(mom.SettingNames(), ", "))
	fs.StringVar(&o.Out, "out", "", "the dataset folder to create (it must not exist)")
	fs.IntVar(&o.Limit, "limit", 0, "at most N images and N text passages (and N/2 utterances); 0: everything (10,000 utterances)")
	fs.IntVar(&o.Utterances, "utterances", 0, "synthesised utterances (three modalities); 0: --limit/2, or 10,000 without a limit")
	fs.IntVar(&o.TextVocab, "text-vocab", 4096, "text BPE vocabulary size, markers and the 256 bytes included")
	fs.StringVar(&o.TextTokenizer, "text-tokenizer", "", "use this tokenizer.json (e.g. another dataset's) instead of training one")
	fs.IntVar(&o.ImageCodes, "image-codes", 512, "image VQ codes")
	fs.IntVar(&o.ImagePatch, "image-patch", 4, "image patch side (VQ and continuous patches)")
	fs.IntVar(&o.ImageSize, "image-size", 28, "images are made this many pixels square, grey")
	fs.IntVar(&o.SpeechUnits, "speech-units", 512, "speech units")
	fs.Uint64Var(&o.Seed, "seed", 1, "seed: the same seed and sources give the same dataset")
	fs.Float64Var(&o.EvalFraction, "eval-fraction", 0.05, "fraction of the items held out")
	noSystem := fs.Bool("no-system", false, "do not use the installed corpora (Fashion-MNIST, fortunes, the KJV Bible, WordNet); use only your folders")
	var texts stringList
	fs.Var(&texts, "text", "a folder of .txt files (repeatable)")
	fs.StringVar(&o.ImageDir, "images", "", "a folder of PNG/JPEG images (with --captions)")
	fs.StringVar(&o.Captions, "captions", "", `a JSONL file of {"file": "relative/path.png", "caption": "..."}`)
	fs.StringVar(&o.SpeechDir, "speech", "", "a folder of .wav files (with --transcripts)")
	fs.StringVar(&o.Transcripts, "transcripts", "", `a JSONL file of {"file": "relative/path.wav", "text": "..."}`)
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected arguments %v", fs.Args())
	}
	o.Setting = mom.Setting(*setting)
	o.System = !*noSystem
	o.TextDirs = texts
	o.Progress = stderr
	if err := o.Validate(); err != nil {
		return usagef("%v", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	m, err := dataset.Build(ctx, o)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "dataset %s: %s, %d train and %d held-out tokens, built in %.0f s\n", o.Out, m.Setting,
		m.Splits["train"].Tokens, m.Splits["eval"].Tokens, m.BuildSeconds)
	return nil
}

func cmdDataShow(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("data show", "data show DIR [--examples OUT] [--n N]", stderr)
	out := fs.String("examples", "", "write decoded held-out examples here: texts.txt, images.png, speech_NN.wav")
	n := fs.Int("n", 8, "examples of each modality")
	// Flags may follow the folder.
	var dir string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		dir, args = args[0], args[1:]
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	if dir == "" && fs.NArg() == 1 {
		dir = fs.Arg(0)
	} else if fs.NArg() > 0 {
		return usagef("unexpected arguments %v", fs.Args())
	}
	if dir == "" {
		return usagef("data show needs a dataset folder")
	}
	if *n < 0 {
		return usagef("--n %d must not be negative", *n)
	}
	return dataset.Show(dir, stdout, *out, *n)
}
