package trainer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sort"
	"sync"

	"mom/trainer/atomicfile"
)

// Record is one line of a run's metrics.jsonl. Conventional keys:
//
//	step          int     optimizer steps taken when the record was made
//	tokens        int     training tokens consumed
//	flops         float   training FLOPs spent
//	wall_s        float   seconds since the run (first) started
//	lr            float   learning rate of the step
//	loss          float   mean loss over all positions with a target
//	loss_<name>   float   the loss of one modality (loss_text, loss_image, ...)
//	step_ms       float   milliseconds per step
//	tokens_per_s  float   throughput
//	split         string  "train" or "eval"
//	grad_norm     float   global gradient norm before clipping
//
// Values are anything encoding/json encodes. JSON has no NaN or infinity,
// so float NaN, +Inf and -Inf are written as the strings "NaN", "+Inf" and
// "-Inf" (a diverged loss is recorded, not lost); ReadMetrics turns them
// back into floats.
type Record map[string]any

// MetricsWriter appends Records to a metrics.jsonl file, one JSON object
// per line. It is safe for concurrent use.
type MetricsWriter struct {
	mu   sync.Mutex
	path string
	f    *os.File
	buf  []byte
}

// OpenMetrics opens a run's metrics file for appending, creating it (and
// its folder) if needed.
//
// resumeStep < 0 starts a fresh run: if the file already holds records it
// fails (nothing written is ever destroyed) with an error that says to use
// --resume or another --out. resumeStep >= 0 resumes a run from the
// checkpoint of that step: records with step <= resumeStep (and records
// without a step) are kept, later ones (written after that checkpoint by
// the interrupted run) are dropped by rewriting the file atomically, and
// new records are appended after them. A torn last line (a crash in the
// middle of a write) is dropped; any other line that is not a JSON object
// is an error naming the file and the line.
func OpenMetrics(path string, resumeStep int) (*MetricsWriter, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("trainer: metrics: %w", err)
	}
	old, err := os.ReadFile(path)
	exists := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("trainer: metrics: %w", err)
	}
	if resumeStep < 0 {
		if exists {
			lines, _, err := metricLines(old, path)
			n := len(lines)
			if err != nil || n > 0 || len(bytes.TrimSpace(old)) > 0 {
				if n == 0 {
					n = 1
				}
				return nil, fmt.Errorf("trainer: %s already holds %d metric record(s) of an earlier run: use --resume to continue that run, or another --out", path, n)
			}
		}
	} else if exists {
		lines, recs, err := metricLines(old, path)
		if err != nil {
			return nil, err
		}
		var keep bytes.Buffer
		for i, r := range recs {
			s, has, err := recordStep(r)
			if err != nil {
				return nil, fmt.Errorf("trainer: metrics %s: line %d: %w", path, lines[i].no, err)
			}
			if !has || s <= float64(resumeStep) {
				keep.Write(lines[i].text)
				keep.WriteByte('\n')
			}
		}
		if !bytes.Equal(keep.Bytes(), old) {
			if err := atomicfile.WriteFile(path, keep.Bytes(), 0o644); err != nil {
				return nil, fmt.Errorf("trainer: metrics: %w", err)
			}
		}
	}
	flags := os.O_WRONLY | os.O_APPEND | os.O_CREATE
	if !exists {
		flags |= os.O_EXCL // a concurrent run creating the same file fails here
	}
	f, err := os.OpenFile(path, flags, 0o644)
	if err != nil {
		return nil, fmt.Errorf("trainer: metrics: %w", err)
	}
	return &MetricsWriter{path: path, f: f}, nil
}

// Path is the file written.
func (m *MetricsWriter) Path() string { return m.path }

// Write appends r as one line with its keys sorted, handed to the
// operating system at once (one write call, no buffering), so that readers
// following the file see whole records as they come.
func (m *MetricsWriter) Write(r Record) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.f == nil {
		return fmt.Errorf("trainer: metrics %s: write after Close", m.path)
	}
	b, err := appendRecord(m.buf[:0], r)
	if err != nil {
		return fmt.Errorf("trainer: metrics %s: %w", m.path, err)
	}
	b = append(b, '\n')
	m.buf = b
	if _, err := m.f.Write(b); err != nil {
		return fmt.Errorf("trainer: metrics: %w", err)
	}
	return nil
}

// Close syncs and closes the file. Closing twice is not an error.
func (m *MetricsWriter) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.f == nil {
		return nil
	}
	f := m.f
	m.f = nil
	serr := f.Sync()
	if err := f.Close(); err != nil {
		return fmt.Errorf("trainer: metrics: %w", err)
	}
	if serr != nil {
		return fmt.Errorf("trainer: metrics: %w", serr)
	}
	return nil
}

// appendRecord appends r's JSON encoding, keys sorted, non-finite floats as
// strings.
func appendRecord(b []byte, r Record) ([]byte, error) {
	keys := make([]string, 0, len(r))
	for k := range r {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		kb, err := json.Marshal(k)
		if err != nil {
			return nil, err
		}
		b = append(b, kb...)
		b = append(b, ':')
		v := r[k]
		switch x := v.(type) {
		case float64:
			v = finiteOrString(x)
		case float32:
			if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
				v = finiteOrString(float64(x))
			}
		}
		vb, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("key %s: %w", k, err)
		}
		b = append(b, vb...)
	}
	return append(b, '}'), nil
}

// finiteOrString maps NaN and the infinities to their string names.
func finiteOrString(x float64) any {
	switch {
	case math.IsNaN(x):
		return "NaN"
	case math.IsInf(x, 1):
		return "+Inf"
	case math.IsInf(x, -1):
		return "-Inf"
	}
	return x
}

type metricLine struct {
	no   int // 1-based
	text []byte
}

// metricLines splits a metrics file into its non-blank lines and decodes
// them. A torn last line (no newline at its end and not valid JSON) is
// dropped; any other bad line is an error.
func metricLines(b []byte, path string) ([]metricLine, []Record, error) {
	var lines []metricLine
	var recs []Record
	no := 0
	for len(b) > 0 {
		no++
		line, rest, found := bytes.Cut(b, []byte{'\n'})
		b = rest
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		r, err := ParseMetricsLine(line)
		if err != nil {
			if !found {
				break // torn last line
			}
			return nil, nil, fmt.Errorf("trainer: metrics %s: line %d: %w", path, no, err)
		}
		lines = append(lines, metricLine{no, line})
		recs = append(recs, r)
	}
	return lines, recs, nil
}

// ParseMetricsLine decodes one line of a metrics file: numbers become
// float64, the strings "NaN", "+Inf" and "-Inf" become those floats.
func ParseMetricsLine(line []byte) (Record, error) {
	var r Record
	if err := json.Unmarshal(line, &r); err != nil {
		return nil, fmt.Errorf("not a JSON object: %w", err)
	}
	if r == nil {
		return nil, errors.New("not a JSON object: null")
	}
	for k, v := range r {
		if s, ok := v.(string); ok {
			switch s {
			case "NaN":
				r[k] = math.NaN()
			case "+Inf":
				r[k] = math.Inf(1)
			case "-Inf":
				r[k] = math.Inf(-1)
			}
		}
	}
	return r, nil
}

// ReadMetrics reads every record of a metrics file, in order. A torn last
// line, as a reader following a live file can see, is skipped.
func ReadMetrics(path string) ([]Record, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("trainer: metrics: %w", err)
	}
	_, recs, err := metricLines(b, path)
	return recs, err
}

// recordStep returns a record's step, whether it has one, and an error if
// its step is not a number.
func recordStep(r Record) (float64, bool, error) {
	v, ok := r["step"]
	if !ok {
		return 0, false, nil
	}
	f, ok := v.(float64)
	if !ok {
		return 0, true, fmt.Errorf("step %v is not a number", v)
	}
	return f, true, nil
}
