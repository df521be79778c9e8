package runfolder

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// ErrLocked is wrapped by Acquire's error when another process holds the
// run folder's lock.
var ErrLocked = errors.New("the run folder is in use")

// Lock is a run folder's exclusive lock, held by the one process that
// writes the run (its metrics, config and checkpoints) for as long as it
// runs.
//
// It is an operating-system lock on the file .lock inside the folder
// (flock on Unix, LockFileEx on Windows), so it goes away with the process
// however that ends: a crash or kill -9 leaves no stale lock behind, and
// the file staying in the folder means nothing. The file holds the
// holder's process id, for the message a second writer gets. On systems
// with neither (Plan 9, WebAssembly) Acquire takes no lock and always
// succeeds; two writers there are not stopped.
type Lock struct {
	f    *os.File
	path string
}

// Acquire takes dir's lock, which must be free: when another process (or
// another Acquire in this one) holds it, the error wraps ErrLocked and
// names the holder's process id. dir must exist.
func Acquire(dir string) (*Lock, error) {
	p := filepath.Join(dir, LockFile)
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		return nil, fmt.Errorf("runfolder: locking %s: %w", dir, err)
	}
	if err := lockFile(f); err != nil {
		holder := readHolder(f)
		f.Close()
		if errors.Is(err, errWouldBlock) {
			return nil, fmt.Errorf("runfolder: %s is in use by %s, which holds its lock %s (another training writes there: wait for it, stop it, or use another --out): %w",
				dir, holder, p, ErrLocked)
		}
		return nil, fmt.Errorf("runfolder: locking %s: %w", p, err)
	}
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &Lock{f: f, path: p}, nil
}

// readHolder returns "process N" from a lock file, or a vaguer phrase.
func readHolder(f *os.File) string {
	b, err := io.ReadAll(io.NewSectionReader(f, 0, 64))
	if err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
			return "process " + strconv.Itoa(pid)
		}
	}
	return "another process"
}

// Path is the lock file.
func (l *Lock) Path() string { return l.path }

// Release gives the lock up. Releasing twice, or a nil Lock, is harmless.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := unlockFile(l.f)
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	l.f = nil
	if err != nil {
		return fmt.Errorf("runfolder: unlocking %s: %w", l.path, err)
	}
	return nil
}
