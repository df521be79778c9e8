package viz

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Modalities are the modalities a run can have, in the order the plots
// and the window's keys 1, 2, 3 use.
var Modalities = []string{"text", "image", "speech"}

// NumModalities is len(Modalities).
const NumModalities = 3

// ModalityIndex returns the position of name in Modalities, or -1.
func ModalityIndex(name string) int {
	for i, m := range Modalities {
		if m == name {
			return i
		}
	}
	return -1
}

// Splits of a record.
const (
	SplitTrain = "train"
	SplitEval  = "eval"
)

// MetricsFile is the name of a run's metrics file inside its folder.
const MetricsFile = "metrics.jsonl"

// ConfigFile is the name of a run's configuration inside its folder.
const ConfigFile = "config.json"

// Record is one line of a run's metrics.jsonl.
type Record struct {
	Step       int64
	Tokens     int64
	FLOPs      float64
	WallS      float64 // seconds since the run started
	LR         float64
	Loss       float64 // total loss
	Split      string  // SplitTrain or SplitEval
	StepMS     float64
	TokensPerS float64
	// ModalityLoss holds "loss_<modality>" in the order of Modalities; NaN
	// where the record has none.
	ModalityLoss [NumModalities]float64
}

// Has reports whether the record carries a loss for modality m (an index
// into Modalities).
func (r Record) Has(m int) bool { return m >= 0 && m < NumModalities && !math.IsNaN(r.ModalityLoss[m]) }

// wireRecord is a record as it is written; pointers tell absent fields.
type wireRecord struct {
	Step       *float64 `json:"step"`
	Tokens     *float64 `json:"tokens"`
	FLOPs      *float64 `json:"flops"`
	WallS      *float64 `json:"wall_s"`
	LR         *float64 `json:"lr"`
	Loss       *float64 `json:"loss"`
	Split      *string  `json:"split"`
	StepMS     *float64 `json:"step_ms"`
	TokensPerS *float64 `json:"tokens_per_s"`
	LossText   *float64 `json:"loss_text"`
	LossImage  *float64 `json:"loss_image"`
	LossSpeech *float64 `json:"loss_speech"`
}

func val(p *float64) float64 {
	if p == nil {
		return math.NaN()
	}
	return *p
}

// MarshalJSON writes the record in the metrics.jsonl format (absent values
// left out), so tests and tools can produce metrics files.
func (r Record) MarshalJSON() ([]byte, error) {
	m := map[string]any{"step": r.Step, "tokens": r.Tokens, "split": r.Split}
	put := func(k string, v float64) {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			m[k] = v
		}
	}
	put("flops", r.FLOPs)
	put("wall_s", r.WallS)
	put("lr", r.LR)
	put("loss", r.Loss)
	put("step_ms", r.StepMS)
	put("tokens_per_s", r.TokensPerS)
	for i, name := range Modalities {
		put("loss_"+name, r.ModalityLoss[i])
	}
	return json.Marshal(m)
}

// ParseRecord decodes one metrics line.
func ParseRecord(line []byte) (Record, error) {
	line = bytes.TrimSpace(line)
	if len(line) == 0 || line[0] != '{' {
		return Record{}, errors.New("not a JSON object")
	}
	var w wireRecord
	dec := json.NewDecoder(bytes.NewReader(line))
	if err := dec.Decode(&w); err != nil {
		return Record{}, err
	}
	if dec.More() {
		return Record{}, errors.New("more than one JSON value on the line")
	}
	if w.Step == nil {
		return Record{}, errors.New(`no "step"`)
	}
	if *w.Step != math.Trunc(*w.Step) || *w.Step < 0 {
		return Record{}, fmt.Errorf(`"step" %v is not a non-negative integer`, *w.Step)
	}
	r := Record{
		Step:       int64(*w.Step),
		FLOPs:      val(w.FLOPs),
		WallS:      val(w.WallS),
		LR:         val(w.LR),
		Loss:       val(w.Loss),
		Split:      SplitTrain,
		StepMS:     val(w.StepMS),
		TokensPerS: val(w.TokensPerS),
	}
	if w.Tokens != nil {
		r.Tokens = int64(*w.Tokens)
	}
	if w.Split != nil {
		switch *w.Split {
		case SplitTrain, SplitEval:
			r.Split = *w.Split
		default:
			return Record{}, fmt.Errorf(`"split" is %q, want "train" or "eval"`, *w.Split)
		}
	}
	r.ModalityLoss = [NumModalities]float64{val(w.LossText), val(w.LossImage), val(w.LossSpeech)}
	return r, nil
}

// RunConfig is the part of a run's config.json the plots use.
type RunConfig struct {
	Name       string   `json:"name"`
	Dense      bool     `json:"dense"`
	Splits     []string `json:"splits"`
	Modalities []string `json:"modalities"`
}

// Kind is "dense" or "MoM", for legends.
func (c RunConfig) Kind() string {
	if c.Dense {
		return "dense"
	}
	return "MoM"
}

// Run is a run folder read whole.
type Run struct {
	Dir       string
	Config    RunConfig
	HasConfig bool // config.json was present
	Records   []Record
}

// ReadRunConfig reads dir/config.json. A missing file is no error: the
// config then only has Name, the folder's name.
func ReadRunConfig(dir string) (RunConfig, bool, error) {
	cfg := RunConfig{Name: filepath.Base(filepath.Clean(dir))}
	b, err := os.ReadFile(filepath.Join(dir, ConfigFile))
	if errors.Is(err, fs.ErrNotExist) {
		return cfg, false, nil
	}
	if err != nil {
		return cfg, false, fmt.Errorf("viz: reading the run config: %w", err)
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		return cfg, false, fmt.Errorf("viz: %s: %w", filepath.Join(dir, ConfigFile), err)
	}
	if cfg.Name == "" {
		cfg.Name = filepath.Base(filepath.Clean(dir))
	}
	return cfg, true, nil
}

// runDir accepts a run folder or a path to its metrics file.
func runDir(path string) (dir, metrics string) {
	if st, err := os.Stat(path); err == nil && !st.IsDir() {
		return filepath.Dir(path), path
	}
	return path, filepath.Join(path, MetricsFile)
}

// ReadRun reads a run folder (or a path to its metrics.jsonl): its config,
// when present, and every complete record. A torn last line (a run still
// writing) is left out; a malformed line elsewhere is an error naming the
// file and line.
func ReadRun(path string) (*Run, error) {
	dir, metrics := runDir(path)
	cfg, has, err := ReadRunConfig(dir)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(metrics)
	if err != nil {
		return nil, fmt.Errorf("viz: run %s: %w", path, err)
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("viz: reading %s: %w", metrics, err)
	}
	var p lineParser
	recs, _, err := p.parse(data, metrics)
	if err != nil {
		return nil, err
	}
	return &Run{Dir: dir, Config: cfg, HasConfig: has, Records: recs}, nil
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
			return out, pos, fmt.Errorf("viz: %s:%d: malformed metrics record: %v", file, p.line, err)
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
	_, metrics := runDir(path)
	return &Tail{Path: metrics}
}

// Poll returns the records appended since the last call. A file that does
// not exist yet is no error (the run has not started); a file that shrank
// was replaced, and is read again from its start (the consumer sees steps
// go back and rewinds, see Source).
func (t *Tail) Poll() ([]Record, error) {
	f, err := os.Open(t.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("viz: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("viz: %w", err)
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
		return nil, fmt.Errorf("viz: reading %s: %w", t.Path, err)
	}
	recs, used, err := t.parser.parse(buf[:n], t.Path)
	t.off += int64(used)
	return recs, err
}

// Follower delivers the records of a growing metrics file on a channel.
type Follower struct {
	// C receives each new record in file order. It is closed when the
	// context ends or reading fails (then Err says why).
	C    <-chan Record
	mu   sync.Mutex
	err  error
	done chan struct{}
}

// DefaultPoll is the interval at which followed files are polled.
const DefaultPoll = 200 * time.Millisecond

// Follow polls the metrics file of a run folder (or the file itself) every
// interval (DefaultPoll when not positive) and sends new records on the
// returned Follower's channel until ctx ends or a malformed line is found.
// Records already in the file are sent first.
func Follow(ctx context.Context, path string, interval time.Duration) *Follower {
	if interval <= 0 {
		interval = DefaultPoll
	}
	ch := make(chan Record, 256)
	f := &Follower{C: ch, done: make(chan struct{})}
	t := NewTail(path)
	go func() {
		defer close(f.done)
		defer close(ch)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			recs, err := t.Poll()
			for _, r := range recs {
				select {
				case ch <- r:
				case <-ctx.Done():
					return
				}
			}
			if err != nil {
				f.mu.Lock()
				f.err = err
				f.mu.Unlock()
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return f
}

// Err is why the channel closed: nil when the context ended.
func (f *Follower) Err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// Done is closed when the follower has stopped.
func (f *Follower) Done() <-chan struct{} { return f.done }
