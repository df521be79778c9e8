package viz

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"time"

	"mom/trainer/runfolder"
)

// Runs and records are the run folder's (package trainer/runfolder): one
// reader for the trainer, the plots and the window.

// Record is one line of a run's metrics.jsonl.
type Record = runfolder.Record

// Splits of a record.
const (
	SplitTrain = runfolder.SplitTrain
	SplitEval  = runfolder.SplitEval
)

// File names inside a run folder.
const (
	MetricsFile = runfolder.MetricsFile
	ConfigFile  = runfolder.ConfigFile
)

// ParseRecord decodes one metrics line (runfolder.ParseRecord).
func ParseRecord(line []byte) (Record, error) { return runfolder.ParseRecord(line) }

// RunConfig is a run's config.json: the plots use its name, its kind
// (dense or MoM) and its modality rows (names, colours, window keys).
type RunConfig = runfolder.Config

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
	c, found, err := runfolder.ReadConfig(dir)
	if err != nil {
		return c, false, fmt.Errorf("viz: %w", err)
	}
	return c, found, nil
}

// checkRunDir fails when dir is not a folder (a mistyped run name).
func checkRunDir(dir string) error {
	st, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("viz: run folder %s does not exist", dir)
	}
	if err != nil {
		return fmt.Errorf("viz: %w", err)
	}
	if !st.IsDir() {
		return fmt.Errorf("viz: %s is not a run folder", dir)
	}
	return nil
}

// ReadRun reads a run folder (or a path to its metrics.jsonl): its config,
// when present, and every complete record. A torn last line (a run still
// writing) is left out; a malformed line elsewhere is an error naming the
// file and line.
func ReadRun(path string) (*Run, error) {
	dir, metrics := runfolder.SplitPath(path)
	if err := checkRunDir(dir); err != nil {
		return nil, err
	}
	cfg, has, err := ReadRunConfig(dir)
	if err != nil {
		return nil, err
	}
	recs, err := runfolder.ReadMetrics(metrics)
	if err != nil {
		return nil, fmt.Errorf("viz: run %s: %w", path, err)
	}
	return &Run{Dir: dir, Config: cfg, HasConfig: has, Records: recs}, nil
}

// Tail reads a metrics file that is still growing, a piece at a time.
type Tail = runfolder.Tail

// NewTail follows the metrics file at path (a run folder or the file).
func NewTail(path string) *Tail { return runfolder.NewTail(path) }

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
