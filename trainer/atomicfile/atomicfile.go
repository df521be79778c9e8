package atomicfile

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// WriteFile replaces the file at path with data so that a crash at any
// moment leaves either the old contents or the new ones, never a mixture:
// the data go to a temporary file in the same folder, which is synced,
// renamed over path, and the folder itself is synced so the rename is
// durable.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	return Write(path, perm, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// Write is WriteFile for data produced by fill, which writes to a
// buffered writer. If fill returns an error (or panics), the temporary file
// is removed and whatever was at path is left untouched.
func Write(path string, perm os.FileMode, fill func(w io.Writer) error) error {
	p, err := Create(path, perm)
	if err != nil {
		return err
	}
	// abort is a no-op after commit; otherwise (an error or a panic inside
	// fill) it removes the temporary file.
	defer p.Abort()
	bw := bufio.NewWriterSize(p.f, 1<<20)
	if err := fill(bw); err != nil {
		return fmt.Errorf("atomicfile: writing %s: %w", path, err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("atomicfile: writing %s: %w", path, err)
	}
	return p.Commit()
}

// Pending is a temporary file that becomes path on Commit; Abort (or a
// failed Commit) removes it and leaves path untouched.
type Pending struct {
	path string
	f    *os.File
	done bool
}

// Create opens a temporary file next to path (same folder, so the
// final rename stays on one file system), named ".<base>.tmp-<random>",
// with permissions perm trimmed by the umask (pass 0o666 for an ordinary
// file).
func Create(path string, perm os.FileMode) (*Pending, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	if base == "" {
		return nil, fmt.Errorf("atomicfile: atomic write: %q names no file", path)
	}
	// Not os.CreateTemp: its files are 0600 whatever the umask. The file is
	// created with perm, which the process's umask trims as usual.
	var f *os.File
	var err error
	for try := 0; try < 100; try++ {
		name := filepath.Join(dir, "."+base+".tmp-"+strconv.FormatUint(uint64(rand.Uint32()), 10))
		f, err = os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, perm)
		if !errors.Is(err, fs.ErrExist) {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("atomicfile: writing %s: %w", path, err)
	}
	return &Pending{path: path, f: f}, nil
}

// MkdirTemp creates a new folder dir/prefix<random> with the permissions
// 0777 trimmed by the umask (os.MkdirTemp makes 0700 folders) and returns
// its path.
func MkdirTemp(dir, prefix string) (string, error) {
	var err error
	for try := 0; try < 100; try++ {
		name := filepath.Join(dir, prefix+strconv.FormatUint(uint64(rand.Uint32()), 10))
		if err = os.Mkdir(name, 0o777); err == nil {
			return name, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			break
		}
	}
	return "", err
}

// Commit syncs and closes the temporary file, renames it over the target
// and syncs the folder.
func (p *Pending) Commit() error {
	if p.done {
		return fmt.Errorf("atomicfile: writing %s: already committed or aborted", p.path)
	}
	p.done = true
	tmp := p.f.Name()
	if err := p.f.Sync(); err != nil {
		p.f.Close()
		os.Remove(tmp)
		return fmt.Errorf("atomicfile: syncing %s: %w", p.path, err)
	}
	if err := p.f.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("atomicfile: closing %s: %w", p.path, err)
	}
	if err := os.Rename(tmp, p.path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("atomicfile: writing %s: %w", p.path, err)
	}
	if err := SyncDir(filepath.Dir(p.path)); err != nil {
		return fmt.Errorf("atomicfile: writing %s: %w", p.path, err)
	}
	return nil
}

// File is the temporary file, for writing (and WriteAt) before Commit.
func (p *Pending) File() *os.File { return p.f }

// Abort removes the temporary file; the target is untouched. It is a no-op
// after Commit.
func (p *Pending) Abort() {
	if p.done {
		return
	}
	p.done = true
	p.f.Close()
	os.Remove(p.f.Name())
}

// SyncDir fsyncs a folder so that renames and creations inside it are
// durable. File systems that cannot sync a folder (EINVAL, as some network
// and Windows file systems answer) are not an error.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, errors.ErrUnsupported) {
		return fmt.Errorf("syncing folder %s: %w", dir, err)
	}
	return nil
}
