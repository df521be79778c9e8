package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"mom/trainer"
	"mom/trainer/atomicfile"
)

func init() {
	register(command{"eval", "held-out loss, perplexity, accuracy and bits per byte of a checkpoint", cmdEval})
}

// jsonFlag is --json, --json=FILE or --json FILE: "-" for stdout.
type jsonFlag struct{ path string }

func (j *jsonFlag) String() string   { return j.path }
func (j *jsonFlag) IsBoolFlag() bool { return true }
func (j *jsonFlag) Set(v string) error {
	switch v {
	case "true", "":
		j.path = "-"
	case "false":
		j.path = ""
	default:
		j.path = v
	}
	return nil
}

// optionalValue rewrites "--name VALUE" as "--name=VALUE" for a flag whose
// value is optional, when VALUE is not a flag.
func optionalValue(args []string, name string) []string {
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(out, args[i:]...)
		}
		if (a == "-"+name || a == "--"+name) && i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
			out = append(out, a+"="+args[i+1])
			i++
			continue
		}
		out = append(out, a)
	}
	return out
}

func cmdEval(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("eval", "eval --checkpoint RUN [--data DIR] [--batches N] [--json [FILE]]", stderr)
	df := addDeviceFlags(fs)
	ckpt := fs.String("checkpoint", "", "run folder, its checkpoints folder, or a step folder")
	data := fs.String("data", "", "dataset folder whose held-out split is scored (default: the run's data)")
	batches := fs.Int("batches", 0, "held-out batches of the run's shape (0: the whole held-out split once)")
	var js jsonFlag
	fs.Var(&js, "json", "write the figures as JSON: to stdout, or to FILE (--json FILE)")
	if err := parse(fs, optionalValue(args, "json")); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected arguments %v", fs.Args())
	}
	if *ckpt == "" {
		return usagef("--checkpoint is required (a run folder)")
	}
	if *batches < 0 {
		return usagef("--batches %d must not be negative (0: the whole held-out split)", *batches)
	}
	tr, err := trainer.OpenTrained(*ckpt)
	if err != nil {
		return err
	}
	ev, err := trainer.NewEval(tr, trainer.EvalOptions{Data: *data, Batches: *batches})
	if err != nil {
		return err
	}
	defer ev.Close()
	d, err := df.open()
	if err != nil {
		return err
	}
	defer d.Close()
	res, err := ev.Run(d)
	if err != nil {
		return err
	}
	if js.path != "" {
		b, err := json.MarshalIndent(res, "", "  ")
		if err != nil {
			return err
		}
		b = append(b, '\n')
		if js.path == "-" {
			_, err := stdout.Write(b)
			return err
		}
		if err := atomicfile.WriteFile(js.path, b, 0o644); err != nil {
			return err
		}
	}
	printEval(stdout, res)
	if js.path != "" {
		fmt.Fprintf(stdout, "wrote %s\n", js.path)
	}
	return nil
}

func printEval(w io.Writer, r *trainer.EvalResult) {
	split := fmt.Sprintf("%d batches", r.Batches)
	if r.Whole {
		split = fmt.Sprintf("the whole split, %d batches", r.Batches)
	}
	fmt.Fprintf(w, "%s on %s (%s of %dx%d)\n", r.Checkpoint, r.Data, split, r.Batch, r.SeqLen)
	fmt.Fprintf(w, "%-8s %-10s %9s %9s %11s %9s %10s\n", "modality", "loss", "targets", "value", "perplexity", "accuracy", "bits/byte")
	opt := func(p *float64, f string) string {
		if p == nil {
			return "-"
		}
		return fmt.Sprintf(f, *p)
	}
	for _, name := range r.Order {
		m := r.Modalities[name]
		ppl := "-"
		if m.Perplexity > 0 {
			ppl = fmt.Sprintf("%.3f", m.Perplexity)
		}
		fmt.Fprintf(w, "%-8s %-10s %9d %9.4f %11s %9s %10s\n", name, m.Kind, m.Targets, m.Loss, ppl, opt(m.Accuracy, "%.4f"), opt(m.BitsPerByte, "%.4f"))
	}
	fmt.Fprintf(w, "total loss %.4f\n", r.Loss)
}
