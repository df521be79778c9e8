package runfolder

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"mom/trainer/atomicfile"
)

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
// checkpoint of that step: records with step <= resumeStep are kept, later
// ones (written after that checkpoint by the interrupted run) are dropped
// by rewriting the file atomically, and new records are appended after
// them. A torn last line (a crash in the middle of a write) is dropped; any
// other line that is not a record is an error naming the file and the line.
func OpenMetrics(path string, resumeStep int) (*MetricsWriter, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o777); err != nil {
		return nil, fmt.Errorf("runfolder: metrics: %w", err)
	}
	old, err := os.ReadFile(path)
	exists := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("runfolder: metrics: %w", err)
	}
	if resumeStep < 0 {
		if exists {
			lines, _, err := metricLines(old, path)
			n := len(lines)
			if err != nil || n > 0 || len(bytes.TrimSpace(old)) > 0 {
				if n == 0 {
					n = 1
				}
				return nil, fmt.Errorf("runfolder: %s already holds %d metric record(s) of an earlier run: use --resume to continue that run, or another --out", path, n)
			}
		}
	} else if exists {
		keep, _, err := keepUpTo(old, path, resumeStep)
		if err != nil {
			return nil, err
		}
		if !bytes.Equal(keep, old) {
			if err := atomicfile.WriteFile(path, keep, 0o666); err != nil {
				return nil, fmt.Errorf("runfolder: metrics: %w", err)
			}
		}
	}
	flags := os.O_WRONLY | os.O_APPEND | os.O_CREATE
	if !exists {
		flags |= os.O_EXCL // a concurrent run creating the same file fails here
	}
	f, err := os.OpenFile(path, flags, 0o666)
	if err != nil {
		return nil, fmt.Errorf("runfolder: metrics: %w", err)
	}
	return &MetricsWriter{path: path, f: f}, nil
}

// keepUpTo returns the lines of a metrics file whose step is at most step
// (each with its newline), and how many records it dropped.
func keepUpTo(old []byte, path string, step int) ([]byte, int, error) {
	lines, recs, err := metricLines(old, path)
	if err != nil {
		return nil, 0, err
	}
	var keep bytes.Buffer
	dropped := 0
	for i, r := range recs {
		if s, _ := r.Step(); s <= int64(step) {
			keep.Write(lines[i].text)
			keep.WriteByte('\n')
		} else {
			dropped++
		}
	}
	return keep.Bytes(), dropped, nil
}

// CountMetrics returns the number of records of a metrics file with a step
// above step (0 for a missing file).
func CountMetrics(path string, step int) (int, error) {
	old, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("runfolder: metrics: %w", err)
	}
	_, n, err := keepUpTo(old, path, step)
	return n, err
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
		return fmt.Errorf("runfolder: metrics %s: write after Close", m.path)
	}
	b, err := appendRecord(m.buf[:0], r)
	if err != nil {
		return fmt.Errorf("runfolder: metrics %s: %w", m.path, err)
	}
	b = append(b, '\n')
	m.buf = b
	if _, err := m.f.Write(b); err != nil {
		return fmt.Errorf("runfolder: metrics %s: %w", m.path, err)
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
		return fmt.Errorf("runfolder: metrics %s: %w", m.path, err)
	}
	if serr != nil {
		return fmt.Errorf("runfolder: metrics %s: %w", m.path, serr)
	}
	return nil
}

type metricLine struct {
	no   int // 1-based
	text []byte
}

// metricLines splits a metrics file into its non-blank lines and decodes
// them. A torn last line (no newline at its end and not a record) is
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
		r, err := ParseRecord(line)
		if err != nil {
			if !found {
				break // torn last line
			}
			return nil, nil, fmt.Errorf("runfolder: metrics %s: line %d: %w", path, no, err)
		}
		lines = append(lines, metricLine{no, line})
		recs = append(recs, r)
	}
	return lines, recs, nil
}

// ReadMetrics reads every record of a metrics file, in order. A torn last
// line, as a reader following a live file can see, is skipped; any other
// malformed line is an error naming the file and line.
func ReadMetrics(path string) ([]Record, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("runfolder: metrics: %w", err)
	}
	_, recs, err := metricLines(b, path)
	return recs, err
}

// lineParser turns metrics bytes into records, remembering where it is so
// that a growing file can be read in pieces.
type lineParser struct {
	line int // lines consumed so far
	// open: the last record consumed had no newline yet (it parsed whole);
	// the newline that completes it is not a new line.
	open bool
}

// parse consumes the complete lines of data (and an unterminated last line
// when it parses as a whole record) and returns their records and the
// number of bytes consumed. An unterminated line that does not parse is
// torn: it is left for the next call.
func (p *lineParser) parse(data []byte, file string) ([]Record, int, error) {
	var out []Record
	pos := 0
	if p.open && len(data) > 0 {
		// The newline completing the record accepted last time.
		if data[0] == '\n' {
			pos = 1
		} else if data[0] == '\r' && len(data) > 1 && data[1] == '\n' {
			pos = 2
		}
		if pos > 0 || len(bytes.TrimSpace(data[:1])) != 0 {
			p.open = false
		}
	}
	for pos < len(data) {
		nl := bytes.IndexByte(data[pos:], '\n')
		if nl < 0 {
			rest := data[pos:]
			if len(bytes.TrimSpace(rest)) == 0 {
				return out, pos, nil // wait for more
			}
			r, err := ParseRecord(rest)
			if err != nil {
				return out, pos, nil // torn: skipped until complete
			}
			p.line++
			p.open = true
			return append(out, r), len(data), nil
		}
		line := data[pos : pos+nl]
		pos += nl + 1
		p.line++
		p.open = false
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		r, err := ParseRecord(line)
		if err != nil {
			return out, pos, fmt.Errorf("runfolder: %s:%d: malformed metrics record: %v", file, p.line, err)
		}
		out = append(out, r)
	}
	return out, pos, nil
}

// Tail reads a metrics file that is still growing, a piece at a time.
type Tail struct {
	Path   string
	off    int64
	parser lineParser
}

// NewTail follows the metrics file at path (a run folder or the file).
func NewTail(path string) *Tail {
	_, metrics := SplitPath(path)
	return &Tail{Path: metrics}
}

// Poll returns the records appended since the last call. A file that does
// not exist yet is no error (the run has not started); a file that shrank
// was replaced (a resumed run dropped records after its checkpoint), and is
// read again from its start: the caller sees steps go back and rewinds.
func (t *Tail) Poll() ([]Record, error) {
	f, err := os.Open(t.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("runfolder: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("runfolder: %w", err)
	}
	size := st.Size()
	if size < t.off {
		t.off = 0
		t.parser = lineParser{}
	}
	if size == t.off {
		return nil, nil
	}
	buf := make([]byte, size-t.off)
	n, err := f.ReadAt(buf, t.off)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("runfolder: reading %s: %w", t.Path, err)
	}
	recs, used, err := t.parser.parse(buf[:n], t.Path)
	t.off += int64(used)
	return recs, err
}
