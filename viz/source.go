package viz

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"mom/trainer/runfolder"
)

// Source is one run the window shows: a run trained in this process (fed
// with Push), a followed run folder (FollowRun) or a finished run (RunSource).
//
// Push never blocks on the window: it appends to an in-memory list under a
// mutex that the window holds only to copy a slice header. The window reads
// the new records at its own pace and redraws at most at its frame rate; a
// slow window draws fewer frames, it never loses records.
type Source struct {
	mu      sync.Mutex
	cfg     RunConfig
	dir     string   // the run folder, when there is one (legends tell runs apart by it)
	records []Record // append only
	err     error    // why a followed folder stopped, shown in the window
	stop    context.CancelFunc
}

// NewSource makes a source for a run trained in this process: the trainer
// calls Push for every record it writes to metrics.jsonl.
func NewSource(cfg RunConfig) *Source {
	if cfg.Name == "" {
		cfg.Name = "run"
	}
	return &Source{cfg: cfg}
}

// SetDir names the folder of a run trained in this process: the window
// shows the newest samples written there (RUN/samples/step_N) and tells
// runs of the same name apart by it. Call it before Open.
func (s *Source) SetDir(dir string) { s.dir = dir }

// RunSource shows a run read whole (ReadRun).
func RunSource(r *Run) *Source {
	s := NewSource(r.Config)
	s.dir = r.Dir
	s.records = append([]Record(nil), r.Records...)
	return s
}

// FollowRun shows a run folder that may still be growing: its config is
// read now and its metrics file polled every interval (DefaultPoll when not
// positive) until ctx ends or Close is called.
//
// A folder that does not exist is an error (a mistyped name would
// otherwise be waited for for ever); one that exists but holds no metrics
// yet is followed until its run starts writing.
func FollowRun(ctx context.Context, dir string, interval time.Duration) (*Source, error) {
	d, _ := runfolder.SplitPath(dir)
	if err := checkRunDir(d); err != nil {
		return nil, err
	}
	cfg, _, err := ReadRunConfig(d)
	if err != nil {
		return nil, err
	}
	s := NewSource(cfg)
	s.dir = d
	ctx, cancel := context.WithCancel(ctx)
	s.stop = cancel
	f := Follow(ctx, dir, interval)
	go func() {
		for r := range f.C {
			s.Push(r)
		}
		if err := f.Err(); err != nil {
			s.mu.Lock()
			s.err = err
			s.mu.Unlock()
		}
	}()
	return s, nil
}

// Push adds a record. It is safe to call from any goroutine and returns at
// once: no channel send, no waiting for the window.
func (s *Source) Push(r Record) {
	s.mu.Lock()
	s.records = append(s.records, r)
	s.mu.Unlock()
}

// PushLine parses one metrics.jsonl line (as the trainer writes it) and
// pushes it. Empty lines are ignored.
func (s *Source) PushLine(line []byte) error {
	if len(bytes.TrimSpace(line)) == 0 {
		return nil
	}
	r, err := ParseRecord(line)
	if err != nil {
		return fmt.Errorf("viz: metrics record for %s: %w", s.cfg.Name, err)
	}
	s.Push(r)
	return nil
}

// Config is the run's configuration.
func (s *Source) Config() RunConfig { return s.cfg }

// Len is the number of records received.
func (s *Source) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.records)
}

// Err is why a followed folder stopped updating (nil while it runs).
func (s *Source) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Close stops following a folder; it does nothing for other sources.
func (s *Source) Close() {
	if s.stop != nil {
		s.stop()
	}
}

// snapshot returns every record received so far. The slice is shared:
// records are only ever appended, so the elements seen are never written.
func (s *Source) snapshot() []Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.records
}

// series holds one run's curves of one split: the x values of each axis
// kind and each modality's loss, NaN where a record has none. Every slice
// has one entry per record.
type series struct {
	step, flops, wall []float64
	loss              map[string][]float64
}

func (c *series) len() int { return len(c.step) }

func (c *series) x(kind XAxis) []float64 {
	switch kind {
	case XFLOPs:
		return c.flops
	case XWall:
		return c.wall
	}
	return c.step
}

// truncate drops the points at or after step (a run that was restarted
// from a checkpoint, or a file read again from its start).
func (c *series) truncate(step float64) {
	n := len(c.step)
	for n > 0 && c.step[n-1] >= step {
		n--
	}
	c.step, c.flops, c.wall = c.step[:n], c.flops[:n], c.wall[:n]
	for m := range c.loss {
		c.loss[m] = c.loss[m][:n]
	}
}

func (c *series) add(r Record, losses map[string]float64) {
	step, _ := r.Step()
	st := float64(step)
	if n := len(c.step); n > 0 && c.step[n-1] >= st {
		c.truncate(st)
	}
	n := len(c.step)
	c.step = append(c.step, st)
	c.flops = append(c.flops, r.Float("flops"))
	c.wall = append(c.wall, r.Float("wall_s"))
	if c.loss == nil {
		c.loss = map[string][]float64{}
	}
	for name, v := range losses {
		l, ok := c.loss[name]
		if !ok {
			l = make([]float64, n, n+64)
			for i := range l {
				l[i] = math.NaN()
			}
		}
		c.loss[name] = append(l, v)
	}
	for name, l := range c.loss {
		if len(l) == n {
			c.loss[name] = append(l, math.NaN())
		}
	}
}

// runData is what the plots draw of one run, built incrementally from its
// source's records.
type runData struct {
	src       *Source
	cfg       RunConfig
	rows      []runfolder.Modality // the config's modality rows
	label     string               // the run's name in legends (set by labelRuns)
	seen      int                  // records consumed from src
	train     series
	eval      series
	has       map[string]bool // a loss of this modality was declared or seen
	seenNames []string        // losses seen that no row declares, in order
}

func newRunData(src *Source) *runData {
	rd := &runData{src: src, cfg: src.cfg, rows: src.cfg.ModalityRows(), has: map[string]bool{}}
	for _, m := range rd.rows {
		rd.has[m.Name] = true
	}
	rd.label = runLabel(rd.cfg.Name, rd.cfg)
	return rd
}

// labelRuns names runs in legends so that no two share a label: each its
// config's name, told apart by folder when two are the same, with the kind
// (dense or MoM) unless the name says it.
func labelRuns(runs []*runData) {
	names := make([]string, len(runs))
	dirs := make([]string, len(runs))
	for i, rd := range runs {
		names[i], dirs[i] = rd.cfg.Name, rd.src.dir
		if dirs[i] == "" {
			dirs[i] = rd.cfg.Name
		}
	}
	for i, n := range runfolder.DisplayNames(names, dirs) {
		runs[i].label = runLabel(n, runs[i].cfg)
	}
}

// update consumes new records; it reports whether anything changed.
func (rd *runData) update() bool {
	recs := rd.src.snapshot()
	if len(recs) == rd.seen {
		return false
	}
	for _, r := range recs[rd.seen:] {
		rd.add(r)
	}
	rd.seen = len(recs)
	return true
}

func (rd *runData) add(r Record) {
	losses := r.Losses()
	if r.Split() == SplitEval {
		rd.eval.add(r, losses)
	} else {
		rd.train.add(r, losses)
	}
	for name, v := range losses {
		if !math.IsNaN(v) && !rd.has[name] {
			rd.has[name] = true
			rd.seenNames = append(rd.seenNames, name)
		}
	}
}

func (rd *runData) split(eval bool) *series {
	if eval {
		return &rd.eval
	}
	return &rd.train
}
