package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runCLI(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return code, o.String(), e.String()
}

func TestHelpListsCommands(t *testing.T) {
	code, out, _ := runCLI("--help")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, c := range []string{"devices", "check", "info", "train", "grads", "plot", "view", "compare", "bench"} {
		if !strings.Contains(out, "  "+c) {
			t.Errorf("help does not list %q:\n%s", c, out)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"frobnicate"}, 2, "unknown command"},
		{[]string{"train", "--steps", "10"}, 2, "--out is required"},
		{[]string{"train", "--out", "x", "--split", "in,bogus"}, 2, "unknown split"},
		{[]string{"train", "--out", "x", "--preset", "huge"}, 2, "unknown preset"},
		{[]string{"train", "--out", "x", "--steps", "-3"}, 2, "--steps"},
		{[]string{"info", "--setting", "audio"}, 2, "unknown setting"},
		{[]string{"devices", "--runtime", "vulkan"}, 2, "unknown WebGPU runtime"},
		{[]string{"bench"}, 2, "kernels|transfer|step"},
		{[]string{"bench", "sample", "--streams", "1,0"}, 2, "--streams"},
		{[]string{"bench", "sample", "--prompts", "x"}, 2, "--prompts"},
		{[]string{"bench", "sample", "--split", "in,bogus"}, 2, "unknown split"},
		{[]string{"compare", "one"}, 2, "two run folders"},
		{[]string{"grads"}, 2, "--checkpoint"},
		{[]string{"grads", "--checkpoint", "x", "--out", "y", "--batch", "0"}, 2, "--batch 0"},
		{[]string{"bench", "step", "--rounds", "0"}, 2, "--rounds 0"},
		{[]string{"bench", "step", "--precision", "half"}, 2, `--precision "half"`},
		{[]string{"bench", "step", "--profile", "-1"}, 2, "--profile -1"},
		{[]string{"bench", "step", "--profile", "5", "--interleave"}, 2, "--profile and --interleave"},
		{[]string{"bench", "kernels", "--reps", "0"}, 2, "--reps 0"},
		{[]string{"train", "--out", "x", "--grad-exchange", "f16"}, 2, `--grad-exchange "f16"`},
		{[]string{"train", "--out", "x", "--embedding-gather", "yes"}, 2, `--embedding-gather "yes"`},
	}
	for _, c := range cases {
		code, _, errOut := runCLI(c.args...)
		if code != c.code || !strings.Contains(errOut, c.want) {
			t.Errorf("mom %v: exit %d, stderr %q; want exit %d and %q", c.args, code, errOut, c.code, c.want)
		}
	}
}

func TestMissingLibraryIsAClearError(t *testing.T) {
	t.Setenv("MOM_WEBGPU_LIB", filepath.Join(t.TempDir(), "libwebgpu.so"))
	code, _, errOut := runCLI("devices")
	if code != 1 || !strings.Contains(errOut, "MOM_WEBGPU_LIB") || !strings.Contains(errOut, "libwebgpu_wrapper") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
}

func TestInfo(t *testing.T) {
	code, out, errOut := runCLI("info", "--preset", "1.4b", "--setting", "chameleon")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"parameters", "active per token", "FLOPs per token", "in,x,dt,out", "largest tensor      embedding.weight [61440 2048] = 480.0 MiB", "too large for lavapipe"} {
		if !strings.Contains(out, want) {
			t.Errorf("info output lacks %q:\n%s", want, out)
		}
	}
}

func TestPlotAndCompareOnFiles(t *testing.T) {
	dir := t.TempDir()
	mk := func(name string, dense bool, scale float64) string {
		d := filepath.Join(dir, name)
		os.MkdirAll(d, 0o755)
		cfg := `{"name":"` + name + `","dense":` + map[bool]string{true: "true", false: "false"}[dense] + `,"modalities":["text","image"]}`
		os.WriteFile(filepath.Join(d, "config.json"), []byte(cfg), 0o644)
		var b strings.Builder
		for s := 1; s <= 40; s++ {
			l := scale * (2 + 3/float64(s))
			b.WriteString(`{"step":` + itoa(s) + `,"split":"train","flops":` + itoa(s*1000) + `,"loss":` + ftoa(l) + `,"loss_text":` + ftoa(l) + `,"loss_image":` + ftoa(l*0.8) + "}\n")
			if s%10 == 0 {
				b.WriteString(`{"step":` + itoa(s) + `,"split":"eval","flops":` + itoa(s*1000) + `,"loss":` + ftoa(l) + `,"loss_text":` + ftoa(l) + `,"loss_image":` + ftoa(l*0.8) + "}\n")
			}
		}
		os.WriteFile(filepath.Join(d, "metrics.jsonl"), []byte(b.String()), 0o644)
		return d
	}
	dense, moe := mk("dense", true, 1), mk("mom", false, 0.9)
	png := filepath.Join(dir, "loss.png")
	if code, _, e := runCLI("plot", dense, moe, "-o", png); code != 0 {
		t.Fatalf("plot: exit %d: %s", code, e)
	}
	if st, err := os.Stat(png); err != nil || st.Size() == 0 {
		t.Fatalf("plot wrote nothing: %v", err)
	}
	code, out, e := runCLI("compare", dense, moe)
	if code != 0 || !strings.Contains(out, "reaches it") {
		t.Fatalf("compare: exit %d, %s %s", code, out, e)
	}
	// The baseline comes from the configs, not the order.
	_, out2, _ := runCLI("compare", moe, dense)
	if out2 != out || !strings.Contains(out, "mom (MoM) to reach dense's (dense)") {
		t.Errorf("compare MoM first:\n%s\nwant the same as dense first:\n%s", out2, out)
	}
	dense2 := mk("dense2", true, 1.1)
	if code, _, e := runCLI("compare", dense, dense2); code != 1 || !strings.Contains(e, "both runs are dense") {
		t.Errorf("compare two dense runs: exit %d, %s", code, e)
	}
	if code, _, e := runCLI("compare", dense, dense2, "--force"); code != 0 || !strings.Contains(e, "warning: both runs are dense") {
		t.Errorf("compare --force two dense runs: exit %d, %s", code, e)
	}
}

func itoa(i int) string     { return fmt.Sprint(i) }
func ftoa(x float64) string { return fmt.Sprintf("%.6f", x) }
