package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"mom/trainer/runfolder"
)

// TestPrecisionDryRun: --precision f16 on a device profile without
// shader-f16 (Dawn on the H200) fails with an error naming the feature
// and writes nothing; on one with it (wgpu-native on the H200, lavapipe)
// the accounting shows the float16 copies on top of float32's.
func TestPrecisionDryRun(t *testing.T) {
	out := filepath.Join(t.TempDir(), "run")
	common := []string{"train", "--preset", "tiny", "--setting", "three", "--batch", "2", "--seq", "32", "--out", out}
	code, _, errOut := runCLI(append(common, "--precision", "f16", "--dry-run", "h200")...)
	if code != 1 || !strings.Contains(errOut, "shader-f16") || !strings.Contains(errOut, "--precision f16") {
		t.Errorf("f16 on the h200 (Dawn) profile: exit %d, %q; want exit 1 naming shader-f16", code, errOut)
	}
	if _, err := os.Stat(out); err == nil {
		t.Errorf("the dry run made %s", out)
	}
	code, f32, errOut := runCLI(append(common, "--dry-run", "h200-wgpu")...)
	if code != 0 {
		t.Fatalf("f32 dry run: exit %d: %s", code, errOut)
	}
	code, f16, errOut := runCLI(append(common, "--precision", "f16", "--dry-run", "h200-wgpu")...)
	if code != 0 || !strings.Contains(f16, "precision f16") || !strings.Contains(f32, "precision f32") {
		t.Fatalf("f16 dry run: exit %d: %s\n%s", code, errOut, f16)
	}
	if f16 == f32 {
		t.Errorf("the f16 accounting is the f32 one:\n%s", f16)
	}
	code, _, errOut = runCLI("bench", "step", "--precision", "f16", "--dry-run", "h200")
	if code != 1 || !strings.Contains(errOut, "shader-f16") {
		t.Errorf("bench step f16 on the h200 profile: exit %d, %q; want exit 1 naming shader-f16", code, errOut)
	}
}

// TestTrainF16: `mom train --precision f16` trains on lavapipe: the
// summary, the metrics (the loss scale of every step) and config.json
// (the precision, which --resume takes from it).
func TestTrainF16(t *testing.T) {
	out := filepath.Join(t.TempDir(), "run")
	code, stdout, errOut := runCLI("train", "--preset", "tiny", "--setting", "transfusion", "--batch", "2", "--seq", "32", "--steps", "4",
		"--eval-every", "2", "--eval-batches", "1", "--precision", "f16", "--out", out)
	if code != 0 {
		t.Fatalf("exit %d: %s\n%s", code, stdout, errOut)
	}
	if !strings.Contains(errOut, "mixed precision") || !strings.Contains(stdout, "4 steps done") {
		t.Errorf("output lacks the mixed precision announcement or the summary:\n%s\n%s", errOut, stdout)
	}
	recs, err := runfolder.ReadMetrics(filepath.Join(out, runfolder.MetricsFile))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range recs {
		if r.Split() == runfolder.SplitTrain {
			n++
			if r.Float("loss_scale") != 65536 {
				t.Errorf("step record %v: loss_scale %v, want 65536", r["step"], r["loss_scale"])
			}
		}
	}
	if n != 4 {
		t.Errorf("%d training records, want 4", n)
	}
	b, err := os.ReadFile(filepath.Join(out, runfolder.ConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(b, &cfg); err != nil || cfg["precision"] != "f16" {
		t.Errorf("config.json precision %v (%v), want f16", cfg["precision"], err)
	}
}
