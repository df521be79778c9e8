package viz

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestReadRun(t *testing.T) {
	r, err := ReadRun("testdata/mom")
	if err != nil {
		t.Fatal(err)
	}
	if !r.HasConfig || r.Config.Name != "mom" || r.Config.Dense || len(r.Config.Modalities) != 3 {
		t.Errorf("config %+v (present %v)", r.Config, r.HasConfig)
	}
	// 200 training records, 10 held-out ones; the torn step-201 line is left out.
	if len(r.Records) != 210 {
		t.Fatalf("%d records, want 210", len(r.Records))
	}
	first := r.Records[0]
	if stepOf(first) != 1 || first.Split() != SplitTrain || first.Float("tokens") != 4096 || first.Float("flops") != 1.5e12 || first.Float("wall_s") != 0.05 {
		t.Errorf("first record %+v", first)
	}
	for _, m := range []string{"text", "image", "speech"} {
		if !(first.Float("loss_"+m) > 0) {
			t.Errorf("first record has no %s loss", m)
		}
	}
	evals := 0
	for _, rec := range r.Records {
		if rec.Split() == SplitEval {
			evals++
			if stepOf(rec)%20 != 0 {
				t.Errorf("held-out record at step %d", stepOf(rec))
			}
		}
	}
	if evals != 10 {
		t.Errorf("%d held-out records, want 10", evals)
	}
	// The metrics file path works as well as the folder.
	r2, err := ReadRun("testdata/dense/metrics.jsonl")
	if err != nil || r2.Config.Name != "dense" || !r2.Config.Dense || len(r2.Records) != 210 {
		t.Errorf("by file: %v, %+v, %d records", err, r2.Config, len(r2.Records))
	}
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func appendFile(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

func line(step int, split string, text float64) string {
	r := Record{"step": step, "split": split, "flops": float64(step), "wall_s": float64(step), "loss": text, "loss_text": text}
	b, err := r.JSON()
	if err != nil {
		panic(err)
	}
	return string(b) + "\n"
}

func stepOf(r Record) int64 {
	s, _ := r.Step()
	return s
}

// has reports whether a record holds a number for a modality's loss.
func has(r Record, name string) bool { return !math.IsNaN(r.Float("loss_" + name)) }

func TestReadRunWithoutConfig(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "myrun")
	os.Mkdir(dir, 0o755)
	writeFile(t, filepath.Join(dir, MetricsFile), line(1, "train", 3)+"\n"+line(2, "train", 2.5))
	r, err := ReadRun(dir)
	if err != nil {
		t.Fatal(err)
	}
	if r.HasConfig || r.Config.Name != "myrun" || len(r.Records) != 2 {
		t.Errorf("got %+v, %d records", r.Config, len(r.Records))
	}
	if has(r.Records[1], "image") || !has(r.Records[1], "text") || r.Records[1].Float("loss_text") != 2.5 {
		t.Errorf("second record %+v", r.Records[1])
	}
}

func TestMalformedLine(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, MetricsFile)
	writeFile(t, path, line(1, "train", 3)+line(2, "train", 2.9)+"{\"step\": 3, \"loss\": oops}\n"+line(4, "train", 2.7))
	_, err := ReadRun(dir)
	if err == nil || !strings.Contains(err.Error(), MetricsFile+": line 3") {
		t.Fatalf("want an error naming %s line 3, got %v", MetricsFile, err)
	}
	// A torn last line is no error; the same text inside the file is.
	writeFile(t, path, line(1, "train", 3)+`{"step": 2, "lo`)
	r, err := ReadRun(dir)
	if err != nil || len(r.Records) != 1 {
		t.Fatalf("torn last line: %v, %d records", err, len(r.Records))
	}
	writeFile(t, path, line(1, "train", 3)+`{"step": 2, "lo`+"\n"+line(3, "train", 2))
	if _, err := ReadRun(dir); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("torn line in the middle: want an error naming line 2, got %v", err)
	}
}

func TestParseRecordErrors(t *testing.T) {
	for _, bad := range []string{
		`[1, 2]`,
		`{"loss": 1}`,
		`{"step": 1.5}`,
		`{"step": -1}`,
		`{"step": 1, "split": "test"}`,
		`{"step": 1, "loss_text": "x"}`,
		`{"step": 1} {"step": 2}`,
	} {
		if _, err := ParseRecord([]byte(bad)); err == nil {
			t.Errorf("%s: want an error", bad)
		}
	}
	r, err := ParseRecord([]byte(`{"step": 7, "loss_image": 0.5, "loss_speech": null}`))
	if err != nil || stepOf(r) != 7 || r.Split() != SplitTrain || has(r, "text") || !has(r, "image") || has(r, "speech") || !math.IsNaN(r.Float("flops")) {
		t.Errorf("minimal record: %+v, %v", r, err)
	}
}

func TestTailGrowing(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, MetricsFile)
	tail := NewTail(dir)
	if recs, err := tail.Poll(); err != nil || len(recs) != 0 {
		t.Fatalf("before the file exists: %v, %v", recs, err)
	}
	full := line(1, "train", 3)
	writeFile(t, path, full[:10])
	if recs, err := tail.Poll(); err != nil || len(recs) != 0 {
		t.Fatalf("torn first line: %d records, %v", len(recs), err)
	}
	appendFile(t, path, full[10:len(full)-1]) // complete, no newline yet
	recs, err := tail.Poll()
	if err != nil || len(recs) != 1 || stepOf(recs[0]) != 1 {
		t.Fatalf("complete line without newline: %v, %v", recs, err)
	}
	appendFile(t, path, "\n"+line(2, "train", 2.8)+line(2, "eval", 2.9))
	recs, err = tail.Poll()
	if err != nil || len(recs) != 2 || recs[1].Split() != SplitEval {
		t.Fatalf("two more: %v, %v", recs, err)
	}
	if recs, err := tail.Poll(); err != nil || len(recs) != 0 {
		t.Fatalf("nothing new: %v, %v", recs, err)
	}
	// Line numbers stay right across the pieces: the bad line is line 4.
	appendFile(t, path, "not json\n")
	if _, err := tail.Poll(); err == nil || !strings.Contains(err.Error(), MetricsFile+":4:") {
		t.Fatalf("want an error naming line 4, got %v", err)
	}
}

func TestTailRewritten(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, MetricsFile)
	writeFile(t, path, line(1, "train", 3)+line(2, "train", 2.9)+line(3, "train", 2.8))
	src := NewSource(RunConfig{Name: "r"})
	rd := newRunData(src)
	tail := NewTail(path)
	push := func() {
		recs, err := tail.Poll()
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			src.Push(r)
		}
		rd.update()
	}
	push()
	if rd.train.len() != 3 {
		t.Fatalf("%d points, want 3", rd.train.len())
	}
	// The run restarts (a new, shorter file): the curve starts over.
	writeFile(t, path, line(1, "train", 5))
	push()
	if rd.train.len() != 1 || rd.train.loss["text"][0] != 5 {
		t.Fatalf("after the rewrite: %d points, first %v", rd.train.len(), rd.train.loss["text"])
	}
	// A resume from a checkpoint at step 2 replaces steps 2 and later.
	appendFile(t, path, line(2, "train", 4)+line(3, "train", 3.5)+line(2, "train", 3.9)+line(3, "train", 3.4))
	push()
	if rd.train.len() != 3 || rd.train.loss["text"][1] != 3.9 || rd.train.loss["text"][2] != 3.4 {
		t.Fatalf("after a resume: steps %v losses %v", rd.train.step, rd.train.loss["text"])
	}
	if !rd.has["text"] || rd.has["image"] {
		t.Errorf("modalities seen: %v", rd.has)
	}
}

func TestFollow(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, MetricsFile)
	writeFile(t, path, line(1, "train", 3))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f := Follow(ctx, dir, 5*time.Millisecond)
	get := func() Record {
		select {
		case r, ok := <-f.C:
			if !ok {
				t.Fatalf("channel closed: %v", f.Err())
			}
			return r
		case <-time.After(5 * time.Second):
			t.Fatal("no record within 5 s")
		}
		return Record{}
	}
	if r := get(); stepOf(r) != 1 {
		t.Fatalf("first record step %d", stepOf(r))
	}
	appendFile(t, path, line(2, "train", 2.5)+`{"step": 3`)
	if r := get(); stepOf(r) != 2 {
		t.Fatalf("second record step %d", stepOf(r))
	}
	appendFile(t, path, `, "loss_text": 2}`+"\n")
	if r := get(); stepOf(r) != 3 || r.Float("loss_text") != 2 {
		t.Fatalf("completed torn record: %+v", r)
	}
	appendFile(t, path, "garbage\n")
	select {
	case _, ok := <-f.C:
		if ok {
			t.Fatal("a record after garbage")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the follower did not stop at a malformed line")
	}
	if err := f.Err(); err == nil || !strings.Contains(err.Error(), ":4:") {
		t.Errorf("Err = %v, want one naming line 4", err)
	}

	// A followed source shows the records and stops with the context.
	writeFile(t, filepath.Join(dir, ConfigFile), `{"name": "followed", "dense": true, "modalities": ["text"]}`)
	writeFile(t, path, line(1, "train", 3)+line(2, "train", 2))
	s, err := FollowRun(ctx, dir, 5*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	deadline := time.Now().Add(5 * time.Second)
	for s.Len() < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if s.Len() != 2 || s.Config().Name != "followed" || !s.Config().Dense {
		t.Errorf("followed source: %d records, config %+v", s.Len(), s.Config())
	}
}

func TestPushNeverWaits(t *testing.T) {
	// Nobody reads this source: pushing must still return at once (no
	// channel to fill, no window to wait for).
	const n = 200000
	s := NewSource(RunConfig{Name: "x"})
	t0 := time.Now()
	for i := 0; i < n; i++ {
		s.Push(Record{"step": i})
	}
	if s.Len() != n {
		t.Fatalf("%d records", s.Len())
	}
	t.Logf("%d pushes in %v (%.0f ns each)", n, time.Since(t0), float64(time.Since(t0).Nanoseconds())/n)
}

func TestPushLine(t *testing.T) {
	s := NewSource(RunConfig{Name: "x"})
	if err := s.PushLine([]byte(line(3, "eval", 2.5))); err != nil {
		t.Fatal(err)
	}
	if err := s.PushLine([]byte("  \n")); err != nil {
		t.Fatal(err)
	}
	if err := s.PushLine([]byte("{bad")); err == nil {
		t.Error("bad line: want an error")
	}
	recs := s.snapshot()
	if len(recs) != 1 || stepOf(recs[0]) != 3 || recs[0].Split() != SplitEval || recs[0].Float("loss_text") != 2.5 {
		t.Errorf("pushed %+v", recs)
	}
}
