package runfolder

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMetricsWrite(t *testing.T) {
	p := filepath.Join(t.TempDir(), "runs", "a", "metrics.jsonl")
	m, err := OpenMetrics(p, -1)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Write(Record{"step": 1, "split": "train", "loss": 2.5, "loss_text": float32(0.25), "tokens": int64(4096)}); err != nil {
		t.Fatal(err)
	}
	// Readers following the file see the line before Close.
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"loss":2.5,"loss_text":0.25,"split":"train","step":1,"tokens":4096}` + "\n"; string(b) != want {
		t.Errorf("line %q, want %q", b, want)
	}
	if err := m.Write(Record{"step": 2, "loss": math.NaN(), "grad_norm": math.Inf(1), "x": float32(math.Inf(-1))}); err != nil {
		t.Fatal(err)
	}
	if err := m.Write(Record{"step": 3, "bad": make(chan int)}); err == nil || !strings.Contains(err.Error(), "key bad") {
		t.Errorf("unencodable value: %v", err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := m.Write(Record{"step": 4}); err == nil {
		t.Error("write after Close succeeded")
	}
	recs, err := ReadMetrics(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 {
		t.Fatalf("%d records, want 2", len(recs))
	}
	if recs[0]["step"] != 1.0 || recs[0]["split"] != "train" {
		t.Errorf("record 0 = %v", recs[0])
	}
	if l, _ := recs[1]["loss"].(float64); !math.IsNaN(l) {
		t.Errorf("NaN loss read back as %v", recs[1]["loss"])
	}
	if g, _ := recs[1]["grad_norm"].(float64); !math.IsInf(g, 1) {
		t.Errorf("+Inf read back as %v", recs[1]["grad_norm"])
	}
	if x, _ := recs[1]["x"].(float64); !math.IsInf(x, -1) {
		t.Errorf("-Inf read back as %v", recs[1]["x"])
	}
	b, _ = os.ReadFile(p)
	if !strings.Contains(string(b), `"loss":"NaN"`) {
		t.Errorf("NaN not written as a string: %s", b)
	}
}

func TestMetricsFreshRunRefusesOldRecords(t *testing.T) {
	p := filepath.Join(t.TempDir(), "metrics.jsonl")
	old := `{"step":1}` + "\n" + `{"step":2}` + "\n"
	os.WriteFile(p, []byte(old), 0o644)
	_, err := OpenMetrics(p, -1)
	if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "--resume") ||
		!strings.Contains(err.Error(), "--out") || !strings.Contains(err.Error(), "2 metric record") {
		t.Errorf("err = %v", err)
	}
	if b, _ := os.ReadFile(p); string(b) != old {
		t.Errorf("file changed: %q", b)
	}
	// Even unreadable contents are never overwritten by a fresh run.
	os.WriteFile(p, []byte("garbage\n"), 0o644)
	if _, err := OpenMetrics(p, -1); err == nil {
		t.Error("fresh run opened a file holding garbage")
	}
	// An empty file is fine.
	os.WriteFile(p, nil, 0o644)
	m, err := OpenMetrics(p, -1)
	if err != nil {
		t.Fatal(err)
	}
	m.Close()
}

func TestMetricsResume(t *testing.T) {
	p := filepath.Join(t.TempDir(), "metrics.jsonl")
	m, err := OpenMetrics(p, -1)
	if err != nil {
		t.Fatal(err)
	}
	for s := 1; s <= 10; s++ {
		m.Write(Record{"step": s, "split": "train"})
		if s%5 == 0 {
			m.Write(Record{"step": s, "split": "eval"})
		}
	}
	m.Close()
	// A crash in the middle of a line leaves a torn last line.
	f, _ := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"step":11,"spl`)
	f.Close()

	m, err = OpenMetrics(p, 6)
	if err != nil {
		t.Fatal(err)
	}
	m.Write(Record{"step": 7, "split": "train", "resumed": true})
	m.Close()
	recs, err := ReadMetrics(p)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range recs {
		got = append(got, itoa(int(r["step"].(float64)))+r["split"].(string)[:1])
	}
	want := "1t 2t 3t 4t 5t 5e 6t 7t"
	if strings.Join(got, " ") != want {
		t.Errorf("records after resume: %s, want %s", strings.Join(got, " "), want)
	}
	if recs[len(recs)-1]["resumed"] != true {
		t.Error("appended record missing")
	}
	// Resuming a run whose metrics file is gone starts a new one.
	p2 := filepath.Join(t.TempDir(), "m.jsonl")
	m, err = OpenMetrics(p2, 100)
	if err != nil {
		t.Fatal(err)
	}
	m.Close()
}

func TestMetricsResumeBadLine(t *testing.T) {
	p := filepath.Join(t.TempDir(), "metrics.jsonl")
	old := `{"step":1}` + "\n" + `{"step":2` + "\n" + `{"step":3}` + "\n"
	os.WriteFile(p, []byte(old), 0o644)
	_, err := OpenMetrics(p, 2)
	if err == nil || !strings.Contains(err.Error(), p+": line 2") {
		t.Errorf("err = %v, want one naming line 2", err)
	}
	os.WriteFile(p, []byte(`{"step":"one"}`+"\n"), 0o644)
	if _, err := OpenMetrics(p, 2); err == nil || !strings.Contains(err.Error(), "line 1: \"step\" one is not a number") {
		t.Errorf("err = %v", err)
	}
	if _, err := ReadMetrics(filepath.Join(t.TempDir(), "none")); err == nil {
		t.Error("reading a missing file succeeded")
	}
}
