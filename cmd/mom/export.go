package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"mom/trainer/interop"
)

func init() {
	register(command{"export", "write a checkpoint for transformers (hf), mamba_ssm or the paper's MixtureOfMamba", cmdExport})
}

func cmdExport(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("export", "export --checkpoint runs/NAME[/checkpoints/step_N] --format hf|mamba_ssm|paper --out DIR", stderr)
	ckpt := fs.String("checkpoint", "", "run folder, checkpoints folder or step folder")
	format := fs.String("format", "", "hf (transformers MambaForCausalLM, dense), mamba_ssm (MambaLMHeadModel, dense) or paper (Mixture-of-Mamba experts)")
	out := fs.String("out", "", "new folder to write (refused if it exists)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected arguments %v", fs.Args())
	}
	if *ckpt == "" || *format == "" || *out == "" {
		return usagef("--checkpoint, --format and --out are required")
	}
	f, err := interop.ParseFormat(*format)
	if err != nil {
		return usagef("--format: %v", err)
	}
	if _, err := os.Lstat(*out); err == nil {
		return usagef("--out %s already exists; export writes a new folder", *out)
	}
	res, err := interop.Export(*ckpt, f, *out)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s (%s): %s; %d tensors\n", res.Dir, f, strings.Join(res.Files, ", "), res.Tensors)
	for _, n := range res.Notes {
		fmt.Fprintf(stdout, "  note: %s\n", n)
	}
	return nil
}
