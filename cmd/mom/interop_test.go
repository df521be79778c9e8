package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestInteropUsageErrors(t *testing.T) {
	exists := t.TempDir()
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"export", "--format", "hf"}, "--checkpoint, --format and --out are required"},
		{[]string{"export", "--checkpoint", "x", "--format", "onnx", "--out", "y"}, "unknown format"},
		{[]string{"export", "--checkpoint", "x", "--format", "hf", "--out", exists}, "already exists"},
		{[]string{"import", "--out", "y"}, "--from and --out are required"},
		{[]string{"import", "--from", "/nonexistent", "--out", "y"}, "is not a folder"},
		{[]string{"import", "--from", exists, "--out", exists}, "already exists"},
		{[]string{"import", "--from", exists, "--out", filepath.Join(exists, "r"), "--split", "in,bogus"}, "unknown split"},
		{[]string{"import", "--from", exists, "--out", filepath.Join(exists, "r"), "--setting", "audio"}, "--setting"},
	}
	for _, c := range cases {
		code, _, errOut := runCLI(c.args...)
		if code != 2 || !strings.Contains(errOut, c.want) {
			t.Errorf("mom %v: exit %d, stderr %q; want exit 2 and %q", c.args, code, errOut, c.want)
		}
	}
}

// TestImportExportCLI: import the transformers fixture as an upcycled MoM
// run, export it in the paper's layout, import that again (no device is
// needed for any of it); a dense-only format is refused with a hint.
func TestImportExportCLI(t *testing.T) {
	td := "../../trainer/interop/testdata"
	dir := t.TempDir()
	run := filepath.Join(dir, "up")
	code, out, errOut := runCLI("import", "--from", td+"/hf_tiny", "--out", run, "--data", td+"/dataset_tiny", "--split", "all")
	if code != 0 || !strings.Contains(out, "split in,x,dt,out") || !strings.Contains(out, "copy of the dense weights") {
		t.Fatalf("import: exit %d\n%s%s", code, out, errOut)
	}
	code, _, errOut = runCLI("export", "--checkpoint", run, "--format", "hf", "--out", filepath.Join(dir, "hf"))
	if code != 1 || !strings.Contains(errOut, "--format paper") {
		t.Errorf("MoM to hf: exit %d, %s", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(dir, "hf")); err == nil {
		t.Error("a refused export left a folder")
	}
	code, out, errOut = runCLI("export", "--checkpoint", run, "--format", "paper", "--out", filepath.Join(dir, "paper"))
	if code != 0 || !strings.Contains(out, "tokenizer.json") {
		t.Fatalf("export paper: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = runCLI("import", "--from", filepath.Join(dir, "paper"), "--out", filepath.Join(dir, "back"))
	if code != 0 || !strings.Contains(out, "split in,x,dt,out") {
		t.Fatalf("import paper: exit %d\n%s%s", code, out, errOut)
	}
}
