package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestH200Script: the speed script the lead runs on the H200 parses, names
// only commands and flags mom has, and its PyTorch companion compiles.
// (SMOKE=1 runs the whole script at tiny sizes on lavapipe.)
func TestH200Script(t *testing.T) {
	if out, err := exec.Command("bash", "-n", "testdata/h200_speed.sh").CombinedOutput(); err != nil {
		t.Fatalf("bash -n: %v\n%s", err, out)
	}
	if py, err := exec.LookPath("python3"); err == nil {
		if out, err := exec.Command(py, "-c", "import ast,sys; ast.parse(open(sys.argv[1]).read())", "testdata/h200_cublas.py").CombinedOutput(); err != nil {
			t.Errorf("h200_cublas.py does not parse: %v\n%s", err, out)
		}
	}
	for _, args := range [][]string{
		{"bench", "kernels", "--help"}, {"bench", "transfer", "--help"}, {"bench", "step", "--help"}, {"train", "--help"},
	} {
		_, _, errOut := runCLI(args...)
		for _, flag := range map[string][]string{
			"kernels":  {"-size", "-filter", "-runtime"},
			"transfer": {"-mib", "-reps", "-runtime"},
			"step":     {"-preset", "-setting", "-batch", "-seq", "-steps", "-rounds", "-runtime", "-precision", "-profile"},
			"train":    {"-dry-run", "-split", "-batch", "-seq"},
		}[args[len(args)-2]] {
			if !strings.Contains(errOut, flag+" ") {
				t.Errorf("mom %s lacks %s, which the script uses", strings.Join(args[:len(args)-1], " "), flag)
			}
		}
	}
}
