package trainer

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeRun(t *testing.T, dir string, dense bool, losses []float64) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := `{"name":"` + filepath.Base(dir) + `","dense":` + map[bool]string{true: "true", false: "false"}[dense] + `}`
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := OpenMetrics(filepath.Join(dir, "metrics.jsonl"), -1)
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range losses {
		step := 10 * (i + 1)
		if err := m.Write(Record{"step": step, "split": "train", "flops": float64(step) * 100, "loss": l + 0.3}); err != nil {
			t.Fatal(err)
		}
		if err := m.Write(Record{"step": step, "split": "eval", "flops": float64(step) * 100, "loss": l, "loss_text": l}); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestCompareReach(t *testing.T) {
	root := t.TempDir()
	writeRun(t, filepath.Join(root, "dense"), true, []float64{5, 4, 3, 2.5})
	writeRun(t, filepath.Join(root, "mom"), false, []float64{4.5, 3, 2, 1.5})
	writeRun(t, filepath.Join(root, "slow"), false, []float64{6, 5, 4, 3})
	dense, err := LoadRun(filepath.Join(root, "dense"))
	if err != nil {
		t.Fatal(err)
	}
	mom, _ := LoadRun(filepath.Join(root, "mom"))
	rs, err := Compare(dense, mom)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 2 {
		t.Fatalf("%d comparisons, want total and text", len(rs))
	}
	// Dense ends at 2.5 after 4000 FLOPs; MoM passes 2.5 halfway between
	// 2000 (loss 3) and 3000 (loss 2): 2500 FLOPs, 62.5%.
	for _, r := range rs {
		if !r.Reached || r.MoMFLOPs != 2500 || r.Percent != 62.5 {
			t.Errorf("%s: %+v, want reached at 2500 FLOPs (62.5%%)", r.Modality, r)
		}
	}
	slow, _ := LoadRun(filepath.Join(root, "slow"))
	rs, _ = Compare(dense, slow)
	for _, r := range rs {
		if r.Reached {
			t.Errorf("%s: slow run reported as reaching dense loss", r.Modality)
		}
	}
	var buf bytes.Buffer
	FormatReach(&buf, dense, slow, rs)
	if !strings.Contains(buf.String(), "does not reach") {
		t.Errorf("table %q", buf.String())
	}
}

func TestLoadRunMalformed(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "metrics.jsonl"), []byte("{\"step\":1}\nnot json\n{\"step\":2}\n"), 0o644)
	if _, err := LoadRun(dir); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("got %v, want an error naming line 2", err)
	}
	// A torn last line (a live run) is not an error.
	os.WriteFile(filepath.Join(dir, "metrics.jsonl"), []byte("{\"step\":1}\n{\"step\":"), 0o644)
	r, err := LoadRun(dir)
	if err != nil || len(r.Records) != 1 {
		t.Fatalf("torn line: %v, %d records", err, len(r.Records))
	}
}
