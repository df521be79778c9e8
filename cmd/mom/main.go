// Command mom trains Mixture-of-Mamba models on WebGPU.
//
// Usage: mom <command> [flags]; `mom help` lists the commands.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// command is one subcommand.
type command struct {
	name, summary string
	run           func(args []string, stdout, stderr io.Writer) error
}

var commands []command

func register(c command) { commands = append(commands, c) }

// errUsage marks a bad invocation (exit code 2).
var errUsage = errors.New("usage")

// Exit statuses: 0 done, 1 an error, 2 a bad invocation, 130 and 143 a
// training stopped by SIGINT or SIGTERM (after writing a checkpoint).

// exitError carries an exit status other than 1.
type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string { return e.err.Error() }
func (e exitError) Unwrap() error { return e.err }

func usage(w io.Writer) {
	fmt.Fprintln(w, "mom trains Mixture-of-Mamba models (per-modality Mamba projections) on WebGPU.")
	fmt.Fprintln(w, "\nUsage: mom <command> [flags]\n\nCommands:")
	sort.Slice(commands, func(i, j int) bool { return commands[i].name < commands[j].name })
	for _, c := range commands {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun `mom <command> --help` for a command's flags.")
	fmt.Fprintln(w, "The WebGPU library is found through $MOM_WEBGPU_LIB, the project's .deps folder, or the system (see README).")
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands {
		if c.name == args[0] {
			err := c.run(args[1:], stdout, stderr)
			var ee exitError
			var qe quietError
			switch {
			case err == nil:
				return 0
			case errors.As(err, &qe):
				return qe.code
			case errors.Is(err, flag.ErrHelp):
				return 0
			case errors.As(err, &ee):
				fmt.Fprintf(stderr, "mom %s: %v\n", c.name, ee.err)
				return ee.code
			case errors.Is(err, errUsage):
				fmt.Fprintf(stderr, "mom %s: %v\n", c.name, err)
				return 2
			default:
				fmt.Fprintf(stderr, "mom %s: %v\n", c.name, err)
				return 1
			}
		}
	}
	fmt.Fprintf(stderr, "mom: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

// newFlags makes a flag set that reports errors instead of exiting.
func newFlags(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: mom %s\n\nFlags:\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses flags and turns a flag error into errUsage.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	return nil
}

func usagef(format string, a ...any) error {
	return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, a...))
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, ",")
}
